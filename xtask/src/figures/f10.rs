//! F10 "compression": MLP autoencoders with 2–40 latent variables as lossy codecs of MNIST digits.

use super::common::{err, fit_ae};
use super::plot::{Chart, Kind, Series, tile_sheet};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::{Activation, Decoder, Encoder};
use latent_datasets::Mnist;
use latent_linalg::Tensor4;

pub const FIGURE: Figure = Figure {
    id: "F10",
    title: "Compression with an autoencoder",
    claim: "An autoencoder is a lossy compressor: the code (here quantised to 8 bits per latent) is the compressed \
            image; fewer latents give fewer bytes but more distortion, and with too few latents a digit may be \
            turned into another one.",
    run,
};

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(u, v)| ((u - v) as f64).powi(2)).sum::<f64>() / a.len().max(1) as f64
}

fn nearest_mean(means: &[Vec<f32>], x: &[f32]) -> usize {
    let d = |m: &Vec<f32>| m.iter().zip(x).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
    (0..means.len()).min_by(|&a, &b| d(&means[a]).total_cmp(&d(&means[b]))).unwrap_or(0)
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let m = if ctx.quick { Mnist::load_small() } else { Mnist::load_default() }.map_err(err)?;
    let x = m.train.to_tensor4::<f32>(&(0..m.train.len()).collect::<Vec<_>>()).map_err(err)?;
    let test = m.test.to_tensor4::<f32>(&(0..m.test.len()).collect::<Vec<_>>()).map_err(err)?;
    let epochs = if ctx.quick { 20 } else { 25 };
    // nearest-class-mean classifier on the training digits
    let mut means = vec![vec![0.0f32; 784]; 10];
    let mut counts = [0usize; 10];
    for i in 0..m.train.len() {
        let (Some(img), Some(l)) = (m.train.image(i), m.train.label(i)) else { continue };
        counts[l as usize] += 1;
        means[l as usize].iter_mut().zip(img).for_each(|(a, b)| *a += b);
    }
    for (mu, &c) in means.iter_mut().zip(&counts) {
        mu.iter_mut().for_each(|v| *v /= c.max(1) as f32);
    }
    let labels: Vec<usize> = (0..test.n()).map(|i| m.test.label(i).unwrap_or(0) as usize).collect();
    let ncm_orig: Vec<usize> =
        (0..test.n()).map(|i| nearest_mean(&means, test.sample(i).unwrap_or_default())).collect();
    let ncm_acc = ncm_orig.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / test.n() as f64;
    ctx.metric("ncm_accuracy_on_originals", ncm_acc);
    let first5: Vec<usize> = (0..5).collect();
    ctx.metric("first5_labels", labels[..5].iter().map(|l| l.to_string()).collect::<Vec<_>>().join(" "));
    let mut tiles: Vec<Vec<f32>> = first5.iter().map(|&i| test.sample(i).unwrap_or_default().to_vec()).collect();
    let mut recon_rows: Vec<(usize, Vec<Vec<f32>>)> = Vec::new();
    let (mut float_pts, mut quant_pts, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for k in [2usize, 5, 10, 20, 40] {
        let spin = ctx.spinner(&format!("F10 k = {k}"));
        let fitted = fit_ae(
            MlpAeParams::new(vec![784, 256, 64, k])
                .code_activation(Activation::Identity)
                .lr(1e-3)
                .batch_size(128)
                .epochs(epochs),
            ctx.seed,
            &x,
        )?;
        spin.finish_and_clear();
        let model = &fitted.model;
        let s = model.encode(&test).map_err(err)?;
        let xh = model.decode(&s).map_err(err)?;
        // 8-bit uniform quantisation of each latent over its range on the training codes (the 2k range
        // values are shared by every image): k bytes per image
        let st = model.encode(&x).map_err(err)?;
        let mut range = vec![(f32::INFINITY, f32::NEG_INFINITY); k];
        for (i, v) in st.as_slice().iter().enumerate() {
            let r = &mut range[i % k];
            *r = (r.0.min(*v), r.1.max(*v));
        }
        let q: Vec<f32> = s
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (lo, hi) = range[i % k];
                let w = (hi - lo).max(1e-12);
                lo + (((v - lo) / w).clamp(0.0, 1.0) * 255.0).round() / 255.0 * w
            })
            .collect();
        let sq = Tensor4::from_vec(s.shape(), q).map_err(err)?;
        let xq = model.decode(&sq).map_err(err)?;
        let (mf, mq) = (mse(xh.as_slice(), test.as_slice()), mse(xq.as_slice(), test.as_slice()));
        let ncm_q: Vec<usize> = (0..test.n()).map(|i| nearest_mean(&means, xq.sample(i).unwrap_or_default())).collect();
        let changed = ncm_q.iter().zip(&ncm_orig).filter(|(a, b)| a != b).count() as f64 / test.n() as f64;
        let acc = ncm_q.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / test.n() as f64;
        ctx.metric(&format!("k{k}_test_mse"), mf);
        ctx.metric(&format!("k{k}_test_mse_8bit"), mq);
        ctx.metric(&format!("k{k}_ncm_class_changed_fraction"), changed);
        ctx.metric(&format!("k{k}_ncm_accuracy_on_reconstructions"), acc);
        float_pts.push((k as f64, mf));
        quant_pts.push((k as f64, mq));
        rows.push(vec![k as f64, k as f64, mf, mq, changed, acc]);
        if k == 10 || k == 20 {
            let five: Vec<Vec<f32>> = first5.iter().map(|&i| xq.sample(i).unwrap_or_default().to_vec()).collect();
            let classes: Vec<usize> = five.iter().map(|r| nearest_mean(&means, r)).collect();
            let wrong: Vec<String> = first5
                .iter()
                .zip(&classes)
                .filter(|(i, c)| labels[**i] != **c)
                .map(|(i, c)| format!("{}→{}", labels[*i], c))
                .collect();
            ctx.metric(
                &format!("k{k}_first5_ncm_classes"),
                classes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" "),
            );
            ctx.observation(&format!("k{k}_turns_a_first5_digit_into_another"), !wrong.is_empty());
            ctx.metric(&format!("k{k}_first5_changed_digits"), wrong.join(", "));
            recon_rows.push((k, five));
        }
    }
    let mse8: Vec<f64> = rows.iter().map(|r| r[3]).collect();
    ctx.claim(
        "distortion_falls_with_more_latents",
        mse8.windows(2).all(|w| w[1] < w[0]),
        "k2_test_mse_8bit > k5_test_mse_8bit > k10_test_mse_8bit > k20_test_mse_8bit > k40_test_mse_8bit",
    );
    ctx.check(
        "fewest_latents_change_most_classes",
        "k2_ncm_class_changed_fraction",
        Cmp::Gt,
        Rhs::Metric("k40_ncm_class_changed_fraction"),
    )?;
    recon_rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (_, r) in recon_rows {
        tiles.extend(r);
    }
    ctx.canvas(
        "digits.png",
        "First five test digits (top), their reconstructions from 20 latents (middle) and from 10 latents \
         (bottom), latents quantised to 8 bits (20 and 10 bytes per image vs 784 bytes raw).",
        &tile_sheet(&tiles, 28, 28, 5, 4, false),
    )?;
    ctx.chart(
        "distortion",
        "Test MSE per pixel vs the number of latent variables (float latents and 8-bit latents).",
        &Chart {
            title: "Distortion vs bottleneck size".into(),
            x_label: "latent variables k".into(),
            y_label: "test MSE per pixel".into(),
            series: vec![
                Series::new("float latents", float_pts, Kind::LinePoints, 0),
                Series::new("8-bit latents", quant_pts.clone(), Kind::LinePoints, 1),
            ],
            ..Chart::default()
        },
        (620, 400),
    )?;
    ctx.chart(
        "rate_distortion",
        "Rate–distortion: bytes per image (k latents × 8 bits) vs test MSE per pixel of the decoded digits.",
        &Chart {
            title: "Rate–distortion (8-bit latents)".into(),
            x_label: "bytes per image".into(),
            y_label: "test MSE per pixel".into(),
            series: vec![Series::new("", quant_pts, Kind::LinePoints, 1)],
            ..Chart::default()
        },
        (620, 400),
    )?;
    ctx.csv("rate_distortion", &["latents", "bytes", "mse_float", "mse_8bit", "ncm_changed", "ncm_accuracy"], &rows)?;
    ctx.config("model", "MLP 784-256-64-k (mirrored decoder), ReLU hidden, linear code, sigmoid output, MSE");
    ctx.config("training", format!("Adam lr 1e-3, batch 128, {epochs} epochs"));
    ctx.config("train_images", x.n() as u64);
    ctx.config("test_images", test.n() as u64);
    ctx.config("quantiser", "8-bit uniform per latent over its range on the training codes");
    ctx.config("classifier", "nearest class mean of the training digits");
    Ok(())
}
