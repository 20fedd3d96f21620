//! F6 "deep vs shallow": shallow and deep MLP autoencoders with the same code size, for several
//! code sizes.

use super::common::{err, fit_ae};
use super::plot::{Chart, Kind, Series, tile_sheet};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::{Activation, LrSchedule};
use latent_datasets::Mnist;

pub const FIGURE: Figure = Figure {
    id: "F6",
    title: "Deep vs shallow autoencoders",
    claim: "With the same code size, a deep autoencoder (several non-linear layers each way) reconstructs test \
            digits better than a shallow one (a single layer each way). Measured for code sizes 8, 16 and 32 on \
            the embedded 10k MNIST training digits, same optimiser and budget for both.",
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let m = if ctx.quick { Mnist::load_small() } else { Mnist::load_default() }.map_err(err)?;
    let x = m.train.to_tensor4::<f32>(&(0..m.train.len()).collect::<Vec<_>>()).map_err(err)?;
    let test = m.test.to_tensor4::<f32>(&(0..m.test.len()).collect::<Vec<_>>()).map_err(err)?;
    let epochs = if ctx.quick { 25 } else { 60 };
    let lr = 2e-3;
    let codes = [8usize, 16, 32];
    let shown_code = 16;
    let show = 10;
    let mut tiles: Vec<Vec<f32>> = (0..show).map(|i| test.sample(i).unwrap_or_default().to_vec()).collect();
    let mut pts: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    let mut rows = Vec::new();
    for &code in &codes {
        let mut row = vec![code as f64];
        for (k, (name, widths)) in
            [("shallow", vec![784, code]), ("deep", vec![784, 256, 64, code])].into_iter().enumerate()
        {
            let spin = ctx.spinner(&format!("F6 {name} code {code}"));
            let mut fitted = fit_ae(
                MlpAeParams::new(widths.clone())
                    .code_activation(Activation::Identity)
                    .lr(lr)
                    .schedule(LrSchedule::Cosine { min_lr: lr * 0.01 })
                    .batch_size(128)
                    .epochs(epochs),
                ctx.seed,
                &x,
            )?;
            spin.finish_and_clear();
            ctx.metric(&format!("{name}_code{code}_params"), fitted.model.num_params() as u64);
            let mean = |d| -> Result<f64, String> {
                let e = fitted.model.reconstruction_errors(d).map_err(err)?;
                Ok(e.iter().map(|&v| v as f64).sum::<f64>() / e.len() as f64)
            };
            let (mse, train_mse) = (mean(&test)?, mean(&x)?);
            ctx.metric(&format!("{name}_code{code}_test_mse_per_pixel"), mse);
            ctx.metric(&format!("{name}_code{code}_train_mse_per_pixel"), train_mse);
            pts[k].push((code as f64, mse));
            row.extend([mse, train_mse]);
            if code == shown_code {
                let mut mirrored: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
                mirrored.extend(widths.iter().rev().skip(1).map(|w| w.to_string()));
                ctx.config(&format!("{name}_widths"), mirrored.join("-"));
                let r = fitted.model.reconstruct(&test).map_err(err)?;
                tiles.extend((0..show).map(|i| r.sample(i).unwrap_or_default().to_vec()));
            }
        }
        let ratio = row[3] / row[1];
        ctx.metric(&format!("deep_over_shallow_test_mse_code{code}"), ratio);
        ctx.check(
            &format!("deep_better_code{code}"),
            &format!("deep_code{code}_test_mse_per_pixel"),
            Cmp::Lt,
            Rhs::Metric(&format!("shallow_code{code}_test_mse_per_pixel")),
        )?;
        rows.push(row);
    }
    let deep_wins = rows.iter().filter(|r| r[3] < r[1]).count();
    ctx.metric("code_sizes_where_deep_is_better", deep_wins as u64);
    let finding: Vec<String> = rows
        .iter()
        .map(|r| {
            let (better, gap) = if r[3] < r[1] { ("better", 1.0 - r[3] / r[1]) } else { ("worse", r[3] / r[1] - 1.0) };
            format!(
                "code {}: deep {better} by {:.0} % (test {:.4} vs {:.4}; deep train {:.4})",
                r[0],
                100.0 * gap,
                r[3],
                r[1],
                r[4]
            )
        })
        .collect();
    ctx.config("finding", finding.join("; "));
    ctx.canvas(
        "reconstructions.png",
        &format!(
            "Test digits (top), shallow 784-{shown_code}-784 reconstructions (middle), deep \
             784-256-64-{shown_code}-64-256-784 reconstructions (bottom)."
        ),
        &tile_sheet(&tiles, 28, 28, show, 3, false),
    )?;
    let [shallow, deep] = pts;
    ctx.chart(
        "test_mse",
        "Test MSE per pixel vs code size for the shallow and the deep autoencoder.",
        &Chart {
            title: "Deep vs shallow: test reconstruction error".into(),
            x_label: "code size".into(),
            y_label: "test MSE per pixel".into(),
            series: vec![
                Series::new("shallow 784-k-784", shallow, Kind::LinePoints, 0),
                Series::new("deep 784-256-64-k-64-256-784", deep, Kind::LinePoints, 1),
            ],
            ..Chart::default()
        },
        (620, 400),
    )?;
    ctx.csv("deep_vs_shallow", &["code", "shallow_test", "shallow_train", "deep_test", "deep_train"], &rows)?;
    ctx.config("code_sizes", format!("{codes:?}"));
    ctx.config(
        "training",
        format!(
            "Adam lr {lr} with cosine decay to {}, batch 128, {epochs} epochs, MSE, ReLU hidden, linear code, \
             sigmoid output; same for both models",
            lr * 0.01
        ),
    );
    ctx.config("train_images", x.n() as u64);
    ctx.config("test_images", test.n() as u64);
    Ok(())
}
