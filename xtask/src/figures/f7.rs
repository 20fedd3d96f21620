//! F7 "denoising autoencoder": masking noise at 0, 25 % and 50 %.

use super::common::{energy_concentration, err};
use super::plot::tile_sheet;
use super::{Cmp, Ctx, Figure, Rhs};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::{NoiseModel, ParamGuard};
use latent_datasets::Mnist;
use rand::SeedableRng;

pub const FIGURE: Figure = Figure {
    id: "F7",
    title: "Denoising autoencoder",
    claim: "A denoising autoencoder, trained to reconstruct clean inputs from corrupted ones (masking noise), \
            restores corrupted test digits and learns more stroke-like, less noisy first-layer filters as the noise \
            level grows (Vincent et al. 2010).",
    run,
};

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(u, v)| ((u - v) as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64
}

/// Correlation of neighbouring weights of a `side`-wide filter: the sum of products of horizontal
/// and vertical neighbours over the energy (≈ 1 for smooth strokes, ≈ 0 for pixel noise).
fn neighbour_correlation(f: &[f64], side: usize) -> f64 {
    let mut s = 0.0;
    let mut n = 0.0;
    for y in 0..f.len() / side {
        for x in 0..side {
            let v = f[y * side + x];
            if x + 1 < side {
                s += v * f[y * side + x + 1];
            }
            if (y + 1) * side + x < f.len() {
                s += v * f[(y + 1) * side + x];
            }
            n += v * v;
        }
    }
    if n > 0.0 { s / (2.0 * n) } else { 0.0 }
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let m = if ctx.quick { Mnist::load_small() } else { Mnist::load_default() }.map_err(err)?;
    let x = m.train.to_tensor4::<f32>(&(0..m.train.len()).collect::<Vec<_>>()).map_err(err)?;
    let n_test = m.test.len().min(2000);
    let clean = m.test.to_tensor4::<f32>(&(0..n_test).collect::<Vec<_>>()).map_err(err)?;
    let epochs = if ctx.quick { 20 } else { 25 };
    let show = 10;
    let mut rows = Vec::new();
    let mut measures: Vec<(f64, f64, f64)> = Vec::new();
    for (k, level) in [0.0, 0.25, 0.5].into_iter().enumerate() {
        let tag = format!("mask{:02}", (level * 100.0) as u32);
        let mut p =
            MlpAeParams::new(vec![784, 256, 64]).lr(1e-3).batch_size(128).epochs(epochs).seed(ctx.seed).progress(false);
        if level > 0.0 {
            p = p.denoising(NoiseModel::Masking { fraction: level });
        }
        let spin = ctx.spinner(&format!("F7 {tag}"));
        let fitted = p.check().map_err(err)?.fit(&x).map_err(err)?;
        spin.finish_and_clear();
        let mut noisy = clean.clone();
        if level > 0.0 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(ctx.seed + 99 + k as u64);
            NoiseModel::Masking { fraction: level }.corrupt(noisy.as_mut_slice(), None, &mut rng);
        }
        let out = fitted.model.reconstruct(&noisy).map_err(err)?;
        let out_clean = fitted.model.reconstruct(&clean).map_err(err)?;
        ctx.metric(&format!("{tag}_noisy_input_mse"), mse(noisy.as_slice(), clean.as_slice()));
        ctx.metric(&format!("{tag}_test_mse_vs_clean"), mse(out.as_slice(), clean.as_slice()));
        ctx.metric(&format!("{tag}_test_mse_clean_input"), mse(out_clean.as_slice(), clean.as_slice()));
        for t in [&noisy, &out] {
            rows.extend((0..show).map(|i| t.sample(i).unwrap_or_default().to_vec()));
        }
        let w = fitted.model.encoder().layers().iter().find_map(|l| l.weight_values()).ok_or("no encoder weight")?;
        let tiles: Vec<Vec<f32>> = (0..64).map(|j| w[j * 784..(j + 1) * 784].to_vec()).collect();
        // every first-layer filter: localisation (energy in its 20 % strongest pixels) and
        // smoothness (correlation of neighbouring weights; noise-like filters are near 0)
        let filters: Vec<Vec<f64>> = w.chunks(784).map(|f| f.iter().map(|&v| v as f64).collect()).collect();
        let loc: Vec<f64> = filters.iter().map(|f| energy_concentration(f)).collect();
        let smooth: Vec<f64> = filters.iter().map(|f| neighbour_correlation(f, 28)).collect();
        let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        ctx.metric(&format!("{tag}_filter_localisation"), avg(&loc));
        ctx.metric(&format!("{tag}_filter_smoothness"), avg(&smooth));
        measures.push((level, avg(&loc), avg(&smooth)));
        ctx.canvas(
            &format!("filters_{tag}.png"),
            &format!("First 64 first-layer filters (28×28, gray = 0), masking noise {:.0} %.", level * 100.0),
            &tile_sheet(&tiles, 28, 28, 8, 2, true),
        )?;
    }
    ctx.canvas(
        "denoising.png",
        "Pairs of rows for masking noise 0 %, 25 %, 50 %: corrupted test input, then the reconstruction by the \
         autoencoder trained with that noise level.",
        &tile_sheet(&rows, 28, 28, show, 3, false),
    )?;
    let rises = |f: fn(&(f64, f64, f64)) -> f64| measures.windows(2).all(|w| f(&w[1]) > f(&w[0]));
    ctx.claim(
        "filters_more_localised_as_noise_grows",
        rises(|m| m.1),
        "mask00_filter_localisation < mask25_filter_localisation < mask50_filter_localisation",
    );
    ctx.claim(
        "filters_smoother_as_noise_grows",
        rises(|m| m.2),
        "mask00_filter_smoothness < mask25_filter_smoothness < mask50_filter_smoothness",
    );
    ctx.check(
        "denoising_beats_the_noisy_input_at_50",
        "mask50_test_mse_vs_clean",
        Cmp::Lt,
        Rhs::Metric("mask50_noisy_input_mse"),
    )?;
    ctx.csv(
        "filter_measures",
        &["masking", "mean_localisation", "mean_smoothness"],
        &measures.iter().map(|m| vec![m.0, m.1, m.2]).collect::<Vec<_>>(),
    )?;
    ctx.config(
        "filter_measures",
        "over all 256 first-layer filters: localisation = fraction of a filter's energy in its 20 % strongest \
         pixels; smoothness = correlation of horizontally and vertically neighbouring weights Σ w·w' / Σ w²",
    );
    ctx.config("model", "MLP 784-256-64-256-784, ReLU, sigmoid output, MSE against the clean input");
    ctx.config("training", format!("Adam lr 1e-3, batch 128, {epochs} epochs"));
    ctx.config("train_images", x.n() as u64);
    ctx.config("test_images", n_test as u64);
    ctx.config("test_noise", "the same masking level as in training, fixed seed");
    Ok(())
}
