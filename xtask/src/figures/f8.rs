//! F8 "local invariance": a denoising autoencoder on a 2-D circle learns a vector field pointing to it.

use super::common::{err, fit_ae};
use super::plot::{Chart, Kind, Series};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::{Activation, NoiseModel};
use latent_datasets::toy::{Manifold2d, manifold_2d};
use latent_linalg::Tensor4;

pub const FIGURE: Figure = Figure {
    id: "F8",
    title: "Local invariance of a denoising autoencoder",
    claim: "A denoising autoencoder trained to map corrupted points back to the data manifold learns a vector \
            field x̃ → f(x̃) − x̃ that points towards the manifold: it contracts the directions orthogonal to the \
            manifold (local invariance) and keeps the directions along it.",
    run,
};

fn to_tensor(p: &[[f64; 2]]) -> Result<Tensor4<f32>, String> {
    Tensor4::from_fn([p.len(), 2, 1, 1], |[i, d, ..]| p[i][d] as f32).map_err(err)
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let radius = 1.0;
    let sigma = 0.25;
    let (n, epochs) = if ctx.quick { (1000, 60) } else { (4000, 150) };
    let sample = manifold_2d(Manifold2d::Circle { radius }, n, sigma, ctx.seed).map_err(err)?;
    let x = to_tensor(&sample.clean)?;
    let spin = ctx.spinner("F8 DAE");
    let fitted = fit_ae(
        MlpAeParams::new(vec![2, 64, 64])
            .output_activation(Activation::Identity)
            .denoising(NoiseModel::Gaussian { std: sigma })
            .lr(3e-3)
            .batch_size(64)
            .epochs(epochs),
        ctx.seed,
        &x,
    )?;
    spin.finish_and_clear();
    let model = &fitted.model;
    let dist = |p: [f64; 2]| ((p[0] * p[0] + p[1] * p[1]).sqrt() - radius).abs();
    // held-out noisy points: distance to the circle before and after
    let held = manifold_2d(Manifold2d::Circle { radius }, 2000, sigma, ctx.seed + 1).map_err(err)?;
    let out = model.reconstruct(&to_tensor(&held.noisy)?).map_err(err)?;
    let o = out.as_slice();
    let before = held.noisy.iter().map(|&p| dist(p)).sum::<f64>() / held.noisy.len() as f64;
    let after = (0..held.noisy.len()).map(|i| dist([o[2 * i] as f64, o[2 * i + 1] as f64])).sum::<f64>()
        / held.noisy.len() as f64;
    ctx.metric("heldout_mean_distance_noisy", before);
    ctx.metric("heldout_mean_distance_denoised", after);
    // vector field on a grid
    let g = 15;
    let scale = 0.5; // arrows drawn at half length for legibility
    let lim = 1.8;
    let grid: Vec<[f64; 2]> = (0..g * g)
        .map(|k| {
            let (i, j) = (k % g, k / g);
            [-lim + 2.0 * lim * i as f64 / (g - 1) as f64, -lim + 2.0 * lim * j as f64 / (g - 1) as f64]
        })
        .collect();
    let f = model.reconstruct(&to_tensor(&grid)?).map_err(err)?;
    let fs = f.as_slice();
    let (mut towards, mut counted, mut towards_far, mut counted_far) = (0usize, 0usize, 0usize, 0usize);
    let mut arrows = Vec::new();
    let mut csv = Vec::new();
    for (k, p) in grid.iter().enumerate() {
        let q = [fs[2 * k] as f64, fs[2 * k + 1] as f64];
        let a = [q[0] - p[0], q[1] - p[1]];
        let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
        if r < 1e-9 {
            continue; // the centre is equidistant from every circle point
        }
        let d = [p[0] / r * radius - p[0], p[1] / r * radius - p[1]];
        let dn = (d[0] * d[0] + d[1] * d[1]).sqrt();
        let an = (a[0] * a[0] + a[1] * a[1]).sqrt();
        let cos = if dn > 1e-12 && an > 1e-12 { (a[0] * d[0] + a[1] * d[1]) / (an * dn) } else { 0.0 };
        counted += 1;
        towards += usize::from(cos > 0.0);
        if dn > 0.1 {
            counted_far += 1;
            towards_far += usize::from(cos > 0.0);
        }
        arrows.push((p[0], p[1]));
        arrows.push((p[0] + scale * a[0], p[1] + scale * a[1]));
        csv.push(vec![p[0], p[1], q[0], q[1], cos]);
    }
    ctx.metric("fraction_arrows_towards_manifold", towards as f64 / counted.max(1) as f64);
    ctx.metric("fraction_arrows_towards_manifold_dist_gt_0_1", towards_far as f64 / counted_far.max(1) as f64);
    ctx.metric("grid_arrows", counted as u64);
    ctx.check(
        "denoised_points_closer_to_manifold",
        "heldout_mean_distance_denoised",
        Cmp::Lt,
        Rhs::Metric("heldout_mean_distance_noisy"),
    )?;
    ctx.check(
        "arrows_point_to_manifold_at_least_90_percent",
        "fraction_arrows_towards_manifold",
        Cmp::Ge,
        Rhs::Value(0.9),
    )?;
    let circle: Vec<(f64, f64)> = (0..=200)
        .map(|t| {
            let th = std::f64::consts::TAU * t as f64 / 200.0;
            (radius * th.cos(), radius * th.sin())
        })
        .collect();
    let pts: Vec<(f64, f64)> = sample.noisy.iter().take(300).map(|p| (p[0], p[1])).collect();
    ctx.chart(
        "vector_field",
        "Vector field x̃ → f(x̃) − x̃ of the denoising autoencoder on a grid (arrows drawn at half length), the circle \
         (data manifold) and some noisy points.",
        &Chart {
            title: "DAE vector field around a circle".into(),
            x_label: "x₁".into(),
            y_label: "x₂".into(),
            series: vec![
                Series::new("noisy points", pts, Kind::Points, 6),
                Series::new("manifold", circle, Kind::Line, 0),
                Series::new("f(x̃) − x̃", arrows, Kind::Arrows, 3),
            ],
            x_range: Some((-lim - 0.2, lim + 0.2)),
            y_range: Some((-lim - 0.2, lim + 0.2)),
            equal_aspect: true,
        },
        (620, 620),
    )?;
    ctx.csv("vector_field", &["x", "y", "fx", "fy", "cos_to_manifold"], &csv)?;
    ctx.config("manifold", format!("circle of radius {radius}, {n} training points"));
    ctx.config("noise", format!("Gaussian σ = {sigma} (training corruption)"));
    ctx.config("model", "MLP 2-64-64-64-2, ReLU, linear output, MSE against the clean point");
    ctx.config("training", format!("Adam lr 3e-3, batch 64, {epochs} epochs"));
    Ok(())
}
