//! Choosing the restoring (blob-denoising) autoencoder of F11 with normal data only.
//!
//! ```text
//! cargo run --release -p latent-anomaly --example restoring_selection [CANDIDATE INDEX ...]
//! ```
//!
//! For each synthetic texture (brick, grass, gravel) the defect-free training crops are split
//! 80 / 20 exactly as in F11 (same seeds); every candidate configuration below is trained on
//! 32×32 crops of the 80 % with the default [`BlobNoise`] corruption, and scored on blob-corrupted
//! crops of the 20 % held-out *normal* images with [`restoration_check`] (the AUROC of the raw
//! error map for the corrupted pixels, and the restored MSE) and, as a whole F11 detector (32×32
//! tiles every 8 px, squared-error map smoothed by a Gaussian of σ ∈ {none, 1, 2, 4}), on
//! blob-corrupted full held-out normal images with [`corrupted_pixel_auroc`]. No test defect is
//! looked at. The (candidate, σ) with the best mean detector AUROC over the three textures is
//! the one to use, with the same configuration for every category.
//!
//! This was round 1 (winner: candidate 4, σ = 1). Round 2 — other maps, inference tricks, longer
//! training, more context and width, scored on three corruption draws instead of one — is
//! `restoring_variants.rs`, which holds the architecture F11 now uses.

mod common;

use latent_anomaly::restore::restoring_ae_params;

use latent_anomaly::{
    Detector, DetectorParams, MapParams, Result, corrupted_pixel_auroc, random_crops, restoration_check,
};
use latent_autoencoder::{BlobNoise, NoiseModel};
use latent_datasets::anomaly::TEXTURES;
use std::time::Instant;

/// A candidate: name, encoder stages (channels, kernel, stride, padding), epochs, training crops,
/// tile side (training crops and detector tiles).
type Candidate = (&'static str, &'static [(usize, usize, usize, usize)], usize, usize, usize);

const F11_AE: &[(usize, usize, usize, usize)] = &[(16, 4, 2, 1), (32, 4, 2, 1), (32, 4, 2, 1), (16, 3, 1, 1)];
const CODE_32_8: &[(usize, usize, usize, usize)] = &[(16, 4, 2, 1), (32, 4, 2, 1), (32, 3, 1, 1)];
const CODE_64_8: &[(usize, usize, usize, usize)] = &[(32, 4, 2, 1), (64, 4, 2, 1), (64, 3, 1, 1)];

/// Candidates 0–4 were the first selection round (tile 32); candidate 5 was added afterwards to
/// test more context (48×48 tiles) against the round's winner (4), by the same criterion.
const CANDIDATES: [Candidate; 6] = [
    ("F11 AE (code 16@4²), 10 ep, 4000 crops", F11_AE, 10, 4000, 32),
    ("code 32@8², 25 ep, 4000 crops", CODE_32_8, 25, 4000, 32),
    ("code 32@8², 25 ep, 8000 crops", CODE_32_8, 25, 8000, 32),
    ("code 64@8² (wider), 25 ep, 4000 crops", CODE_64_8, 25, 4000, 32),
    ("code 32@8², 50 ep, 4000 crops", CODE_32_8, 50, 4000, 32),
    ("48×48 tiles, code 32@12², 50 ep, 4000 crops", CODE_32_8, 50, 4000, 48),
];

/// Map smoothing σ of the detector (`None`: raw map).
const SIGMAS: [Option<f64>; 4] = [None, Some(1.0), Some(2.0), Some(4.0)];

fn main() -> Result<()> {
    let noise = NoiseModel::Blobs(BlobNoise::default());
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let run: Vec<usize> = if args.is_empty() { (0..CANDIDATES.len()).collect() } else { args };
    assert!(run.iter().all(|&k| k < CANDIDATES.len()), "candidate indices are 0..{}", CANDIDATES.len());
    let mut means = vec![0.0; CANDIDATES.len()];
    let mut det_means = vec![[0.0; SIGMAS.len()]; CANDIDATES.len()];
    for (ci, &name) in TEXTURES.iter().enumerate() {
        // the F11 data: seed 100·category (F11's default base seed is 0), 100 training crops, the last 20 % held out
        let (seed, fit, held) = common::texture_split(ci)?;
        for &k in &run {
            let (label, stages, epochs, crops, tile) = CANDIDATES[k];
            let held_crops = random_crops(&held, tile, tile, 400, seed + 2)?;
            let t = Instant::now();
            let train = random_crops(&fit, tile, tile, crops, seed + 1)?;
            let p = restoring_ae_params(tile, stages, epochs, seed, noise).check()?;
            let model = p.fit(&train)?.model;
            let c = restoration_check(&model, &held_crops, &noise, seed + 3)?;
            means[k] += c.changed_auroc / TEXTURES.len() as f64;
            let mut det_line = String::new();
            for (j, sigma) in SIGMAS.iter().enumerate() {
                let map = sigma.map_or(MapParams::new(), |s| MapParams::new().smoothing(s));
                let det = Detector::new(&model, DetectorParams::new().map(map).tiles(tile, tile, 8).check()?);
                let a = corrupted_pixel_auroc(&det, &held, &noise, seed + 4)?;
                det_means[k][j] += a / TEXTURES.len() as f64;
                det_line.push_str(&format!(" σ {sigma:?}: {a:.3}"));
            }
            println!(
                "{name:7} {label:40} crops: corrupted-pixel AUROC {:.3}, restored MSE {:.4} (changed {:.4}, unchanged {:.4}; identity {:.4}); detector on images:{det_line}  {:.1} s",
                c.changed_auroc,
                c.restored_mse,
                c.restored_mse_changed,
                c.restored_mse_unchanged,
                c.corrupted_mse,
                t.elapsed().as_secs_f64()
            );
        }
    }
    for &k in &run {
        let c = &CANDIDATES[k];
        println!(
            "mean over the textures: crops {:.3}; detector {}  {}",
            means[k],
            SIGMAS.iter().zip(&det_means[k]).map(|(s, a)| format!("σ {s:?}: {a:.3}")).collect::<Vec<_>>().join(", "),
            c.0
        );
    }
    Ok(())
}
