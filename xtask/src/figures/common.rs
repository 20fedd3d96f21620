//! Helpers shared by several figures.

use latent_datasets::GrayImage;
use latent_datasets::patches::{PatchSet, extract_random_patches, whiten_1f};
use latent_datasets::{data_dir, load_image_folder};
use latent_linalg::DMatrix;

pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The natural photographs (not the textures used for anomaly detection).
pub fn natural_images() -> Result<Vec<(String, GrayImage)>, String> {
    let all = load_image_folder(data_dir().join("natural-gray")).map_err(err)?;
    Ok(all
        .into_iter()
        .map(|(p, i)| (p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), i))
        .filter(|(n, _)| !["skimage_brick", "skimage_grass", "skimage_gravel"].contains(&n.as_str()))
        .collect())
}

/// Olshausen & Field preprocessing: 1/f-whiten each image, then random `p × p` patches with the
/// mean removed and unit variance overall. One patch per column.
pub fn whitened_patches(images: &[GrayImage], p: usize, count: usize, seed: u64) -> Result<DMatrix<f64>, String> {
    let white: Vec<GrayImage> = images.iter().map(|i| whiten_1f(i, 0.4)).collect::<Result<_, _>>().map_err(err)?;
    let mut ps: PatchSet = extract_random_patches(&white, p, p, count, seed).map_err(err)?;
    ps.remove_mean();
    let m: DMatrix<f64> = ps.to_dmatrix_cols();
    let sd = (m.iter().map(|v| v * v).sum::<f64>() / m.len() as f64).sqrt().max(1e-12);
    Ok(m / sd)
}

/// Columns of a matrix as f32 tiles.
pub fn columns_f32(m: &DMatrix<f64>) -> Vec<Vec<f32>> {
    (0..m.ncols()).map(|j| m.column(j).iter().map(|&v| v as f32).collect()).collect()
}

/// Spatial concentration of an atom: the fraction of its energy in its 20 % largest pixels.
pub fn energy_concentration(atom: &[f64]) -> f64 {
    let mut e: Vec<f64> = atom.iter().map(|v| v * v).collect();
    e.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = e.iter().sum();
    let k = (e.len() as f64 * 0.2).ceil() as usize;
    if total > 0.0 { e[..k].iter().sum::<f64>() / total } else { 0.0 }
}

/// PSNR in dB of `a` against the reference `b` (values in [0, 1]).
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (1.0 / mse).log10() }
}
