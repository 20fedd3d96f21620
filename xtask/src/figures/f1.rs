//! F1 "toy example": the effect of λ on 2-D sparse coding with 3 atoms.

use super::plot::{Chart, Kind, Series};
use super::{Ctx, Figure};
use latent_datasets::toy::sparse_directions;
use latent_linalg::{DMatrix, Trans, matmul};
use latent_sparse_coding::{BatchParams, ParamGuard};
use serde_json::json;

pub const FIGURE: Figure = Figure {
    id: "F1",
    title: "Toy example: the sparsity parameter λ",
    claim: "A low λ reconstructs the data but does not produce a sparse representation; a high λ is very sparse \
            but does not reconstruct the data; an intermediate λ gives the trade-off (error rises and ‖s‖₀ falls \
            monotonically with λ).",
    run,
};

/// The lecture's λ values, for its objective ‖x − Ws‖² + λ‖s‖₁ (we minimise ½‖x − Ws‖² + (λ/2)‖s‖₁).
const LAMBDAS: [f64; 5] = [0.2, 0.6, 2.0, 6.0, 20.0];

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let n = if ctx.quick { 300 } else { 1000 };
    let toy = sparse_directions(n, &[15.0, 80.0, 140.0], 3.0, 0.3, ctx.seed).map_err(|e| e.to_string())?;
    let x: DMatrix<f64> = toy.points_matrix();
    ctx.config("points", n as u64);
    ctx.config("directions_deg", json!([15.0, 80.0, 140.0]));
    ctx.config("objective", "mean ‖x − Ws‖² + λ‖s‖₁ with unit-norm atoms (lecture's form)");
    let bar = ctx.progress(LAMBDAS.len() as u64, "F1 λ sweep");
    let mut rows = Vec::new();
    let mut errs = Vec::new();
    let mut nnzs = Vec::new();
    for (k, &lam) in LAMBDAS.iter().enumerate() {
        bar.set_message(format!("λ = {lam}"));
        let p = BatchParams::new(3, lam / 2.0).max_iter(if ctx.quick { 15 } else { 40 }).seed(ctx.seed);
        let fit = p.check().map_err(|e| e.to_string())?.fit(&x).map_err(|e| e.to_string())?;
        let codes = latent_sparse_coding::Encoder::encode_batch(
            &latent_sparse_coding::Lars::new(lam / 2.0),
            &fit.dictionary,
            &x,
            None,
        )
        .map_err(|e| e.to_string())?;
        let rec = matmul(&fit.dictionary, Trans::N, &codes.codes, Trans::N).map_err(|e| e.to_string())?;
        let err = (&x - &rec).iter().map(|v| v * v).sum::<f64>() / n as f64;
        let nnz = codes.mean_nnz();
        errs.push(err);
        nnzs.push(nnz);
        rows.push(vec![lam, err, nnz]);
        // panel: data, reconstructions, atoms
        let pts: Vec<(f64, f64)> = (0..n).map(|j| (x[(0, j)], x[(1, j)])).collect();
        let recs: Vec<(f64, f64)> = (0..n).map(|j| (rec[(0, j)], rec[(1, j)])).collect();
        let reach = pts.iter().map(|p| (p.0 * p.0 + p.1 * p.1).sqrt()).fold(0.0, f64::max) * 0.6;
        let atoms: Vec<(f64, f64)> = (0..3)
            .flat_map(|a| [(0.0, 0.0), (reach * fit.dictionary[(0, a)], reach * fit.dictionary[(1, a)])])
            .collect();
        let chart = Chart {
            title: format!("λ = {lam}: error {err:.3}, mean ‖s‖₀ {nnz:.2}"),
            x_label: "x₁".into(),
            y_label: "x₂".into(),
            series: vec![
                Series::new("data", pts, Kind::Points, 6),
                Series::new("reconstruction Ws", recs, Kind::Points, 0),
                Series::new("atoms (scaled)", atoms, Kind::Arrows, 3),
            ],
            equal_aspect: true,
            ..Chart::default()
        };
        ctx.chart(
            &format!("lambda_{k}"),
            &format!("λ = {lam}: data (gray), reconstructions (blue), learned atoms (red)."),
            &chart,
            (520, 480),
        )?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let logl: Vec<f64> = LAMBDAS.iter().map(|l| l.log10()).collect();
    let chart = Chart {
        title: "Reconstruction error and sparsity against λ".into(),
        x_label: "log₁₀ λ".into(),
        y_label: "value".into(),
        series: vec![
            Series::new(
                "mean ‖x − Ws‖²",
                logl.iter().copied().zip(errs.iter().copied()).collect(),
                Kind::LinePoints,
                3,
            ),
            Series::new("mean ‖s‖₀", logl.iter().copied().zip(nnzs.iter().copied()).collect(), Kind::LinePoints, 0),
        ],
        ..Chart::default()
    };
    ctx.chart("tradeoff", "Mean reconstruction error rises and mean ‖s‖₀ falls as λ grows.", &chart, (620, 420))?;
    ctx.csv("lambda_sweep", &["lambda", "mean_reconstruction_error", "mean_l0"], &rows)?;
    ctx.metric("lambda", json!(LAMBDAS));
    ctx.metric("mean_reconstruction_error", json!(errs));
    ctx.metric("mean_l0", json!(nnzs));
    let err_up = errs.windows(2).all(|w| w[1] >= w[0]);
    let nnz_down = nnzs.windows(2).all(|w| w[1] <= w[0]);
    ctx.claim("error_rises_monotonically", err_up, "mean_reconstruction_error never falls from one λ to the next");
    ctx.claim("l0_falls_monotonically", nnz_down, "mean_l0 never rises from one λ to the next");
    if !(err_up && nnz_down) {
        return Err(format!("the λ sweep is not monotone: errors {errs:?}, ‖s‖₀ {nnzs:?}"));
    }
    Ok(())
}
