//! Validation-only experiment (no test defect is looked at): does a model-free local-mean-shift
//! map, alone or combined with the restoring autoencoder's error map, separate the corrupted
//! pixels of blob-corrupted held-out *normal* images better than the error map alone?
//!
//! Same data, seeds and corruption draws as `restoring_variants`; the round-1 restoring model is
//! loaded from `--cache DIR` (trained by `restoring_variants --cache DIR`).
//!
//! Maps: `ae` = G₁∗e² of the round-1 model; `ms σ` = |G_σ∗x − μ_σ| / s_σ with μ_σ, s_σ the mean and
//! standard deviation of G_σ∗x over the held-out normal images (two numbers per texture); `max`
//! = max of the two, each z-scored by the held-out normal images' own map statistics.
//!
//! ```text
//! cargo run --release -p latent-anomaly --example meanshift_validation -- --cache DIR
//! ```
//!
//! Result (2026-11-27; pixel AUROC of the corrupted pixels, three corruption draws):
//!
//! | map | brick | grass | gravel | mean |
//! |---|---|---|---|---|
//! | ae G₁∗e² (round-1 model) | 0.8827 | 0.6807 | 0.6700 | 0.7445 |
//! | ms σ = 1 / 2 / 4 | 0.635 / 0.593 / 0.573 | 0.622 / 0.629 / 0.626 | 0.555 / 0.553 / 0.560 | 0.604 / 0.592 / 0.586 |
//! | max(ae, ms σ = 1 / 2 / 4) | 0.877 / 0.876 / 0.873 | 0.675 / 0.684 / 0.688 | 0.652 / 0.656 / 0.660 | 0.735 / 0.739 / 0.740 |
//!
//! The mean-shift map alone is weak on these corruptions (only some blobs shift the mean; the
//! others blur, rescale contrast or flatten), and adding it to the error map does not help on
//! average (grass gains up to 0.007, brick and gravel lose more), so F11 does not use it.

mod common;

use latent_anomaly::filter::gaussian_blur;
use latent_anomaly::{Detector, DetectorParams, MapParams, Result, auroc};
use latent_autoencoder::{Autoencoder, BlobNoise, NoiseModel};
use latent_datasets::anomaly::TEXTURES;
use latent_linalg::Tensor4;

const TILE: usize = 32;
const DRAWS: u64 = 3;

fn f64s(x: &Tensor4<f32>) -> Result<Tensor4<f64>> {
    Ok(Tensor4::from_vec(x.shape(), x.as_slice().iter().map(|&v| f64::from(v)).collect())?)
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n;
    (m, var.sqrt().max(1e-12))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cache = args.iter().position(|a| a == "--cache").and_then(|i| args.get(i + 1)).cloned().unwrap_or(".".into());
    let noise = NoiseModel::Blobs(BlobNoise::default());
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    let mut push = |label: String, a: f64| match rows.iter_mut().find(|r| r.0 == label) {
        Some(r) => r.1.push(a),
        None => rows.push((label, vec![a])),
    };
    for (ci, &name) in TEXTURES.iter().enumerate() {
        let (seed, _, held) = common::texture_split(ci)?;
        let (cor, changed) = common::corrupted_draws(&held, &noise, seed, DRAWS)?;
        let model = Autoencoder::<f32>::load(std::path::Path::new(&cache).join(format!("{name}_round1.bin")))?;
        let det = Detector::new(&model, DetectorParams::new().map(MapParams::new()).tiles(TILE, TILE, 8).check()?);
        let err_map = |x: &Tensor4<f32>| -> Result<Tensor4<f64>> {
            let r = det.reconstruct(x)?;
            let e: Vec<f64> = x.as_slice().iter().zip(r.as_slice()).map(|(a, b)| f64::from(a - b).powi(2)).collect();
            gaussian_blur(&Tensor4::from_vec(x.shape(), e)?, 1.0)
        };
        let ae = err_map(&cor)?;
        let (ma, sa) = mean_sd(err_map(&held)?.as_slice());
        let za: Vec<f64> = ae.as_slice().iter().map(|v| (v - ma) / sa).collect();
        push("ae  G1*e^2".into(), auroc(ae.as_slice(), &changed)?);
        for sigma in [1.0, 2.0, 4.0] {
            let (mu, sd) = mean_sd(gaussian_blur(&f64s(&held)?, sigma)?.as_slice());
            let ms: Vec<f64> =
                gaussian_blur(&f64s(&cor)?, sigma)?.as_slice().iter().map(|v| (v - mu).abs() / sd).collect();
            push(format!("ms  sigma {sigma}"), auroc(&ms, &changed)?);
            // z-score the mean-shift map by its own held-out normal statistics, then combine
            let msh: Vec<f64> =
                gaussian_blur(&f64s(&held)?, sigma)?.as_slice().iter().map(|v| (v - mu).abs() / sd).collect();
            let (mm, sm) = mean_sd(&msh);
            let comb: Vec<f64> = za.iter().zip(&ms).map(|(a, b)| a.max((b - mm) / sm)).collect();
            push(format!("max(ae, ms sigma {sigma})"), auroc(&comb, &changed)?);
        }
    }
    println!("{:32} {:>7} {:>7} {:>7} {:>7}", "map", TEXTURES[0], TEXTURES[1], TEXTURES[2], "mean");
    for (label, v) in &rows {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let cells: Vec<String> = v.iter().map(|a| format!("{a:7.4}")).collect();
        println!("{label:32} {} {mean:7.4}", cells.join(" "));
    }
    Ok(())
}
