//! F2 "dictionary of natural images": 256 atoms learned online on whitened 12×12 patches.

use super::common::{batch_progress, columns_f32, energy_concentration, err, natural_images, whitened_patches};
use super::plot::{Chart, Kind, Series, tile_sheet};
use super::{Ctx, Figure};
use latent_linalg::DMatrix;
use latent_sparse_coding::{Encoder, Lars, OnlineLearner, OnlineParams, ParamGuard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

pub const FIGURE: Figure = Figure {
    id: "F2",
    title: "Sparse coding of natural images",
    claim: "Sparse coding of natural image patches learns localised, oriented, band-pass (Gabor-like) atoms \
            (Olshausen & Field 1996); sources correspond to spatially well-defined visual patterns.",
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let (p, atoms) = (12, 256);
    let count = if ctx.quick { 8000 } else { 60000 };
    let epochs = if ctx.quick { 1 } else { 3 };
    let lambda = 0.8;
    let imgs: Vec<_> = natural_images()?.into_iter().map(|(_, i)| i).collect();
    let spin = ctx.spinner("F2 patches");
    let x = whitened_patches(&imgs, p, count, ctx.seed)?;
    spin.finish_and_clear();
    let params = OnlineParams::new(atoms, lambda).epochs(epochs).seed(ctx.seed);
    let mut learner = OnlineLearner::from(params.check().map_err(err)?);
    let bar = ctx.progress((epochs * count.div_ceil(256)) as u64, "F2 online learning");
    let fit = learner.fit(&x, Some(batch_progress(&bar))).map_err(err)?;
    bar.finish_and_clear();
    // held-out evaluation on fresh patches
    let held = whitened_patches(&imgs, p, 2000, ctx.seed + 99)?;
    let codes = Lars::new(lambda).encode_batch(&fit.dictionary, &held, None).map_err(err)?;
    // order atoms by usage for display
    let mut usage: Vec<(usize, f64)> =
        (0..atoms).map(|j| (j, codes.codes.row(j).iter().map(|v| v.abs()).sum::<f64>())).collect();
    usage.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ordered = DMatrix::from_fn(p * p, atoms, |i, k| fit.dictionary[(i, usage[k].0)]);
    ctx.canvas(
        "atoms.png",
        "The 256 learned atoms (12×12), most used first; each scaled to its own range, gray = 0.",
        &tile_sheet(&columns_f32(&ordered), p, p, 16, 4, true),
    )?;
    // localisation: energy concentration vs random Gaussian atoms
    let conc: Vec<f64> = (0..atoms).map(|j| energy_concentration(fit.dictionary.column(j).as_slice())).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let rand_conc: Vec<f64> = (0..atoms)
        .map(|_| {
            let v: Vec<f64> = (0..p * p).map(|_| rng.random::<f64>() - 0.5).collect();
            energy_concentration(&v)
        })
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let hist = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut h = [0.0; 20];
        for &c in v {
            h[((c * 20.0) as usize).min(19)] += 1.0;
        }
        h.iter().enumerate().map(|(i, &n)| (i as f64 / 20.0 + 0.025, n)).collect()
    };
    let chart = Chart {
        title: "Spatial localisation of atoms".into(),
        x_label: "energy fraction in the 20 % strongest pixels".into(),
        y_label: "atoms".into(),
        series: vec![
            Series::new("learned atoms", hist(&conc), Kind::Bars(0.045), 0),
            Series::new("random atoms", hist(&rand_conc), Kind::Bars(0.045), 1),
        ],
        ..Chart::default()
    };
    ctx.chart(
        "localisation",
        "Learned atoms concentrate their energy in few pixels (localised); random atoms do not.",
        &chart,
        (620, 400),
    )?;
    let hist_obj: Vec<(f64, f64)> = fit.history.iter().enumerate().map(|(i, &o)| (i as f64, o)).collect();
    ctx.chart(
        "objective",
        "Mini-batch objective ½‖x − Ws‖² + λ‖s‖₁ during online learning.",
        &Chart {
            title: "Online learning".into(),
            x_label: "mini-batch".into(),
            y_label: "objective per patch".into(),
            series: vec![Series::new("", hist_obj, Kind::Line, 0)],
            ..Chart::default()
        },
        (620, 380),
    )?;
    ctx.metric("heldout_objective", codes.mean_objective());
    ctx.metric("heldout_mean_nnz", codes.mean_nnz());
    ctx.metric("heldout_nnz_fraction", codes.mean_nnz() / atoms as f64);
    ctx.metric("mean_energy_concentration_learned", mean(&conc));
    ctx.metric("mean_energy_concentration_random", mean(&rand_conc));
    ctx.metric("resampled_atoms", fit.resampled as u64);
    ctx.config("patch", format!("{p}x{p}, 1/f-whitened (f0 = 0.4 cycles/pixel), mean removed, unit variance"));
    ctx.config("atoms", atoms as u64);
    ctx.config("lambda", lambda);
    ctx.config("patches", count as u64);
    ctx.config("epochs", epochs as u64);
    ctx.raw("history", &json!(fit.history))?;
    fit.save(ctx.dir.join("dictionary.bin")).map_err(err)?;
    Ok(())
}
