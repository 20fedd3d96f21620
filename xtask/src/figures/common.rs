//! Helpers shared by several figures.

use latent_autoencoder::models::{Fitted, ModelParams};
use latent_autoencoder::{AutoencoderError, Fit, ParamGuard};
use latent_datasets::GrayImage;
use latent_datasets::patches::{PatchSet, extract_random_patches, whiten_1f};
use latent_datasets::{data_dir, load_image_folder};
use latent_linalg::{DMatrix, Real, Tensor4};

pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A dictionary learner's callback that advances `bar` by one mini-batch and shows its objective.
pub fn batch_progress(bar: &indicatif::ProgressBar) -> latent_sparse_coding::Callback<'_, f64> {
    Box::new(move |pr: &latent_sparse_coding::Progress<'_, f64>| {
        bar.set_message(format!("batch objective {:.4}", pr.objective));
        bar.inc(1);
        std::ops::ControlFlow::Continue(())
    })
}

/// Train an autoencoder builder on `x` with the figure's seed and no progress bar of its own (the
/// figure shows a spinner): the figures' common tail of the fit pattern.
pub fn fit_ae<T, P>(mut params: P, seed: u64, x: &Tensor4<T>) -> Result<Fitted<T>, String>
where
    T: Real,
    P: ModelParams + ParamGuard<Error = AutoencoderError> + Fit<Tensor4<T>, Fitted = Fitted<T>>,
{
    let train = params.train_params_mut();
    train.seed = seed;
    train.progress = false;
    params.check().map_err(err)?.fit(x).map_err(err)
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
