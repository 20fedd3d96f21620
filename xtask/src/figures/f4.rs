//! F4 "topographic map": atoms on a torus grid, ordered by the overlapping group penalty.

use super::common::{columns_f32, err, natural_images, whitened_patches};
use super::plot::tile_sheet;
use super::{Cmp, Ctx, Figure, Rhs};
use latent_sparse_coding::{OnlineParams, ParamGuard, TopographicParams, Torus, grid_smoothness};

pub const FIGURE: Figure = Figure {
    id: "F4",
    title: "Topographic sparse coding",
    claim: "With sources that must correlate on a predefined 2-D grid (a penalty on the L2 norm of overlapping \
            grid neighbourhoods), the learned filters vary smoothly across the grid (Kavukcuoglu et al. 2009).",
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let (p, side) = (8, 12);
    let count = if ctx.quick { 3000 } else { 20000 };
    let epochs = if ctx.quick { 1 } else { 3 };
    let lambda = 0.5;
    let imgs: Vec<_> = natural_images()?.into_iter().map(|(_, i)| i).collect();
    let x = whitened_patches(&imgs, p, count, ctx.seed)?;
    let torus = Torus::new(side, side, 3).map_err(err)?;
    let tp = TopographicParams::new(torus.clone(), lambda).epochs(epochs).seed(ctx.seed);
    let clock = std::time::Instant::now();
    let spin = ctx.spinner("F4 topographic learning");
    let fit = tp.check().map_err(err)?.fit(&x).map_err(err)?;
    spin.finish_and_clear();
    ctx.metric("topographic_learning_seconds", clock.elapsed().as_secs_f64());
    let (nb, other) = grid_smoothness(&fit.dictionary, &torus).map_err(err)?;
    // the same number for an ordinary (non-topographic) dictionary of the same size
    let clock = std::time::Instant::now();
    let spin = ctx.spinner("F4 plain baseline");
    let op = OnlineParams::new(side * side, lambda).epochs(epochs).seed(ctx.seed);
    let plain = op.check().map_err(err)?.fit(&x).map_err(err)?;
    spin.finish_and_clear();
    ctx.metric("plain_learning_seconds", clock.elapsed().as_secs_f64());
    let (nb0, other0) = grid_smoothness(&plain.dictionary, &torus).map_err(err)?;
    ctx.canvas(
        "topographic_atoms.png",
        &format!("{side}×{side} atoms on a torus (3×3 neighbourhoods): neighbours look alike, orientation and position drift smoothly."),
        &tile_sheet(&columns_f32(&fit.dictionary), p, p, side, 4, true),
    )?;
    ctx.canvas(
        "plain_atoms.png",
        "Plain sparse coding, same size and data: no order on the grid.",
        &tile_sheet(&columns_f32(&plain.dictionary), p, p, side, 4, true),
    )?;
    ctx.metric("neighbour_similarity_topographic", nb);
    ctx.metric("other_pair_similarity_topographic", other);
    ctx.metric("smoothness_ratio_topographic", nb / other);
    ctx.metric("neighbour_similarity_plain", nb0);
    ctx.metric("other_pair_similarity_plain", other0);
    ctx.metric("smoothness_ratio_plain", nb0 / other0);
    ctx.check(
        "topographic_neighbours_more_alike_than_other_pairs",
        "neighbour_similarity_topographic",
        Cmp::Gt,
        Rhs::Metric("other_pair_similarity_topographic"),
    )?;
    ctx.check(
        "topographic_smoother_than_plain",
        "smoothness_ratio_topographic",
        Cmp::Gt,
        Rhs::Metric("smoothness_ratio_plain"),
    )?;
    ctx.config("grid", format!("{side}x{side} torus, 3x3 neighbourhoods"));
    ctx.config("penalty", "λ Σᵢ √(‖s_{Pᵢ}‖² + ε), λ = 0.5, ε = 0.01");
    ctx.config("patches", count as u64);
    ctx.config("similarity", "mean |cosine| of atom pairs: grid 4-neighbours vs all other pairs");
    if nb <= other {
        return Err(format!("no topographic order: neighbours {nb:.3} vs other pairs {other:.3}"));
    }
    Ok(())
}
