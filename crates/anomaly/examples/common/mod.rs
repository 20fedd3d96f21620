//! The data the restoring-autoencoder selection examples share with F11: the normal training
//! images of a texture split into fit (80 %) and held-out (20 %) images, and blob-corrupted copies
//! of the held-out images, cached training and the result table. (Each example uses only part of
//! it.)
#![allow(dead_code)]

use latent_anomaly::{Result, random_crops};
use latent_autoencoder::models::ConvAeParams;
use latent_autoencoder::{Autoencoder, NoiseModel};
use latent_datasets::anomaly::{AnomalyConfig, TEXTURES, generate_anomaly_set, load_texture};
use latent_linalg::Tensor4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::Instant;

/// Image size of F11's synthetic textures.
pub const CROP: usize = 64;

/// F11's normal data for texture `ci` (seed 100·ci, F11's default base seed being 0; 100 training
/// images, the last 20 % held out): `(seed, fit, held)`.
pub fn texture_split(ci: usize) -> Result<(u64, Tensor4<f32>, Tensor4<f32>)> {
    let name = TEXTURES[ci];
    let seed = 100 * ci as u64;
    let cfg = AnomalyConfig { crop: CROP, n_train: 100, n_test_good: 1, n_test_per_defect: 1, ..Default::default() };
    let set = generate_anomaly_set(&load_texture(name)?, name, &cfg, seed)?;
    let n = set.train.len();
    let n_fit = n - n / 5;
    let data: Vec<f32> = set.train.iter().flat_map(|g| g.data.iter().copied()).collect();
    let d = CROP * CROP;
    let fit = Tensor4::from_vec([n_fit, 1, CROP, CROP], data[..n_fit * d].to_vec())?;
    let held = Tensor4::from_vec([n - n_fit, 1, CROP, CROP], data[n_fit * d..].to_vec())?;
    Ok((seed, fit, held))
}

/// `draws` corrupted copies of `held` (draw `k` seeded with `seed + 4 + 1000·k`, so draw 0 is the
/// one of `corrupted_pixel_auroc(…, seed + 4)`), stacked, and which of their pixels changed.
pub fn corrupted_draws(
    held: &Tensor4<f32>,
    noise: &NoiseModel,
    seed: u64,
    draws: u64,
) -> Result<(Tensor4<f32>, Vec<bool>)> {
    let mut cor = Vec::new();
    let mut changed: Vec<bool> = Vec::new();
    for k in 0..draws {
        let mut c = held.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 4 + 1000 * k);
        noise.corrupt_images(c.as_mut_slice(), held.shape(), None, &mut rng);
        changed.extend(held.as_slice().iter().zip(c.as_slice()).map(|(a, b)| a != b));
        cor.extend_from_slice(c.as_slice());
    }
    let [n, c, h, w] = held.shape();
    Ok((Tensor4::from_vec([n * draws as usize, c, h, w], cor)?, changed))
}

/// Load the model `DIR/<key>.bin` from the cache, or train `params` on `crops` random `tile × tile`
/// crops of `fit` (crop seed `crop_seed`) and save it there (no cache: just train).
pub fn train_cached(
    cache: Option<&Path>,
    key: &str,
    fit: &Tensor4<f32>,
    tile: usize,
    crops: usize,
    crop_seed: u64,
    params: ConvAeParams,
) -> Result<Autoencoder<f32>> {
    let path = cache.map(|c| c.join(format!("{key}.bin")));
    if let Some(m) = path.as_ref().and_then(|p| Autoencoder::load(p).ok()) {
        return Ok(m);
    }
    let t = Instant::now();
    let crops = random_crops(fit, tile, tile, crops, crop_seed)?;
    let m = params.check()?.fit(&crops)?.model;
    if let Some(p) = &path {
        m.save(p)?;
    }
    println!("  trained {key} in {:.1} s", t.elapsed().as_secs_f64());
    Ok(m)
}

/// Rows of a result table: label and one score per texture.
#[derive(Default)]
pub struct Table(pub Vec<(String, Vec<f64>)>);

impl Table {
    /// Print and record one texture's score for `label`.
    pub fn push(&mut self, label: &str, texture: &str, a: f64) {
        println!("    {texture:7} {label}: {a:.4}");
        match self.0.iter_mut().find(|r| r.0 == label) {
            Some(row) => row.1.push(a),
            None => self.0.push((label.to_string(), vec![a])),
        }
    }

    /// Print the table (labels padded to `width`) with one column per texture and their mean.
    pub fn print(&self, header: &str, width: usize) {
        println!("{header:width$} {:>7} {:>7} {:>7} {:>7}", TEXTURES[0], TEXTURES[1], TEXTURES[2], "mean");
        for (label, v) in &self.0 {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let cells: Vec<String> = v.iter().map(|a| format!("{a:7.4}")).collect();
            println!("{label:width$} {} {mean:7.4}", cells.join(" "));
        }
    }
}
