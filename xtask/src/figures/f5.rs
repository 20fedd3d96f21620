//! F5 "sparse ReLU autoencoder": filters, code histogram and dead units with / without the KL term.

use super::common::{err, fit_ae};
use super::plot::{Chart, Kind, Series, tile_sheet};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_autoencoder::Encoder;
use latent_autoencoder::models::SparseReluAeParams;
use latent_datasets::Mnist;

pub const FIGURE: Figure = Figure {
    id: "F5",
    title: "Sparse ReLU autoencoder",
    claim: "A ReLU autoencoder s = max(0, Vx) with an L1 code penalty learns localised stroke-like filters and sparse \
            codes; without an entropy (KL firing-rate) term many units die (never fire), the KL term keeps every unit \
            active on some inputs. The KL term compares ρ with each unit's smooth firing rate, the batch mean of \
            σ(z/(τ·sd)) of its pre-activation z, at the library's default temperature τ (0.1; see the config) (at τ = 0.25 inputs \
            that the L1 term piles up just below zero counted as firing, and units died while reading ρ̂ ≈ ρ). The \
            KL weight is swept (0, 0.5, 1, 2); the figure's with-KL model is the one with the smallest weight that \
            leaves no unit dead on the training images, else the largest (chosen on training images, checked on the \
            test images). The dead-units chart shows the dead units for every weight.",
    run,
};

/// The KL weights swept.
const KL_WEIGHTS: [f64; 4] = [0.0, 0.5, 1.0, 2.0];

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let m = if ctx.quick { Mnist::load_small() } else { Mnist::load_default() }.map_err(err)?;
    let (n_train, n_test) = if ctx.quick { (2000, 1000) } else { (10000, 5000) };
    let (n_train, n_test) = (n_train.min(m.train.len()), n_test.min(m.test.len()));
    let epochs = if ctx.quick { 4 } else { 8 };
    let (code, lambda, rho) = (128, 0.05, 0.05);
    let tau = SparseReluAeParams::new(784, code).kl_temperature;
    let x = m.train.to_tensor4::<f32>(&(0..n_train).collect::<Vec<_>>()).map_err(err)?;
    let test = m.test.to_tensor4::<f32>(&(0..n_test).collect::<Vec<_>>()).map_err(err)?;
    let mut series = Vec::new();
    // dead units (test, training images) per KL weight, for the sweep chart
    let mut sweep: Vec<(f64, usize, usize)> = Vec::new();
    let mut chosen: Option<f64> = None;
    for (i, kl_weight) in KL_WEIGHTS.into_iter().enumerate() {
        let name = if kl_weight == 0.0 {
            "without_kl".to_string()
        } else {
            format!("kl_{}", format!("{kl_weight}").replace('.', "p"))
        };
        let spin = ctx.spinner(&format!("F5 {name}"));
        let fitted = fit_ae(
            SparseReluAeParams::new(784, code)
                .lambda(lambda)
                .kl(rho, kl_weight)
                .bias(true)
                .epochs(epochs)
                .batch_size(100)
                .lr(2e-3),
            ctx.seed,
            &x,
        )?;
        spin.finish_and_clear();
        let model = &fitted.model;
        let s = model.encode(&test).map_err(err)?;
        let vals = s.as_slice();
        let active = vals.iter().filter(|v| **v > 0.0).count() as f64 / vals.len() as f64;
        let counter = model.dead_units(&test, 500, 0.0).map_err(err)?;
        let dead = counter.num_dead();
        let min_rate = counter.counts().iter().copied().min().unwrap_or(0) as f64 / counter.samples().max(1) as f64;
        let dead_train = model.dead_units(&x, 500, 0.0).map_err(err)?.num_dead();
        sweep.push((kl_weight, dead, dead_train));
        // the "with KL" model: the smallest weight with no dead unit on the training images,
        // else the largest weight swept
        let is_chosen =
            kl_weight > 0.0 && chosen.is_none() && (dead_train == 0 || kl_weight == KL_WEIGHTS[KL_WEIGHTS.len() - 1]);
        if is_chosen {
            chosen = Some(kl_weight);
        }
        let mse =
            model.reconstruction_errors(&test).map_err(err)?.iter().map(|&v| v as f64).sum::<f64>() / test.n() as f64;
        let mut names = vec![name.clone()];
        if is_chosen {
            names.push("with_kl".to_string());
        }
        for name in &names {
            ctx.metric(&format!("{name}_dead_units"), dead as u64);
            ctx.metric(&format!("{name}_dead_fraction"), dead as f64 / code as f64);
            ctx.metric(&format!("{name}_dead_units_on_training_images"), dead_train as u64);
            ctx.metric(&format!("{name}_least_active_unit_firing_fraction"), min_rate);
            ctx.metric(&format!("{name}_active_code_fraction"), active);
            ctx.metric(&format!("{name}_test_mse_per_pixel"), mse);
        }
        if is_chosen {
            ctx.metric("with_kl_weight", kl_weight);
        }
        // the histogram and the filter sheets: without KL and the chosen model
        if kl_weight != 0.0 && !is_chosen {
            continue;
        }
        let name = if is_chosen { "with_kl" } else { "without_kl" };
        // histogram of the positive code values (zeros reported separately as the active fraction)
        let pos: Vec<f32> = vals.iter().copied().filter(|v| *v > 0.0).collect();
        let hi = pos.iter().fold(0.0f32, |a, &b| a.max(b)).max(1e-6);
        let bins = 30;
        let mut h = vec![0.0f64; bins];
        for &v in &pos {
            h[((v / hi * bins as f32) as usize).min(bins - 1)] += 1.0;
        }
        let w = hi as f64 / bins as f64;
        let pts: Vec<(f64, f64)> =
            h.iter().enumerate().map(|(b, &c)| ((b as f64 + 0.5) * w, c / vals.len() as f64)).collect();
        series.push(Series::new(
            format!("KL weight {kl_weight} ({:.1} % of codes > 0)", 100.0 * active),
            pts,
            Kind::Bars(w * 0.8),
            i,
        ));
        let v = model.encoder().layers().iter().find_map(|l| l.weight_values()).ok_or("no encoder weight")?;
        // order units by how often they fire on the test set
        let counts: Vec<usize> = (0..code).map(|j| (0..s.n()).filter(|&n| vals[n * code + j] > 0.0).count()).collect();
        let mut order: Vec<usize> = (0..code).collect();
        order.sort_by(|a, b| counts[*b].cmp(&counts[*a]));
        let tiles: Vec<Vec<f32>> = order.iter().map(|&j| v[j * 784..(j + 1) * 784].to_vec()).collect();
        ctx.canvas(
            &format!("filters_{name}.png"),
            &format!(
                "Rows of V (28×28) of the sparse ReLU AE, KL weight {kl_weight}, most active unit first; \
                 {dead} of {code} units never fire on the test set (the last ones). Gray = 0."
            ),
            &tile_sheet(&tiles, 28, 28, 16, 2, true),
        )?;
    }
    ctx.chart(
        "code_histogram",
        "Histogram of the positive code values s_j = max(0, (Vx)_j) on test digits (fraction of all code entries).",
        &Chart {
            title: "Code values of the sparse ReLU AE".into(),
            x_label: "code value (> 0)".into(),
            y_label: "fraction of code entries".into(),
            series,
            ..Chart::default()
        },
        (640, 400),
    )?;
    let pts = |f: fn(&(f64, usize, usize)) -> f64| sweep.iter().map(|t| (t.0, f(t))).collect::<Vec<_>>();
    ctx.chart(
        "dead_units_by_kl_weight",
        "Dead code units (never positive) of the sparse ReLU AE against the weight of the KL firing-rate term, \
         on the test images and on the training images (same seed, same training otherwise).",
        &Chart {
            title: "Dead units against the KL weight".into(),
            x_label: "KL weight β".into(),
            y_label: "dead units (of 128)".into(),
            series: vec![
                Series::new("test images", pts(|t| t.1 as f64), Kind::LinePoints, 0),
                Series::new("training images", pts(|t| t.2 as f64), Kind::LinePoints, 1),
            ],
            ..Chart::default()
        },
        (640, 400),
    )?;
    ctx.check("kl_keeps_every_unit_active", "with_kl_dead_units", Cmp::Eq, Rhs::Value(0.0))?;
    ctx.check("units_die_without_kl", "without_kl_dead_units", Cmp::Gt, Rhs::Metric("with_kl_dead_units"))?;
    ctx.config(
        "dead_unit",
        "a code unit that is 0 on every test image (dead_units); also counted on the training images",
    );
    ctx.config(
        "model",
        format!(
            "784-{code} ReLU code, linear decoder, bias, L1 λ = {lambda}, KL ρ = {rho}, KL temperature τ = {tau} \
             (soft firing rate = batch mean of σ(z/(τ·sd)) of the pre-activation z)"
        ),
    );
    ctx.config(
        "kl_weights",
        format!(
            "{} (with_kl: the smallest positive weight with no dead unit on the training images, else the largest)",
            KL_WEIGHTS.map(|w| w.to_string()).join(", ")
        ),
    );
    ctx.config("train_images", n_train as u64);
    ctx.config("test_images", n_test as u64);
    ctx.config("epochs", epochs as u64);
    Ok(())
}
