//! Convolutional sparse coding workloads: csc_encode and csc_dl, with the algorithm settings of
//! the SPORCO peer (`peers/bench_sporco.py`) so objectives and iteration counts compare one to one.
//!
//! * `csc_encode`: SPORCO `ConvBPDN` defaults — ρ = 50λ + 1, over-relaxation α = 1.8, residual
//!   balancing at every iteration (τ ≤ 1000, μ = 1.2, ξ = 1 + 18.3^(log₁₀λ + 1)), 50 iterations, no
//!   early stop. `objective` is evaluated as SPORCO's `ObjFun` (at the ADMM x-iterate);
//!   `objective_sparse_maps` is the objective of the sparse maps actually returned.
//! * `csc_dl`: SPORCO `ConvBPDNDictLearn` with the consensus dictionary update (`dmethod="cns"`)
//!   — one coding and one dictionary ADMM iteration per outer iteration, coding ρ = 50λ + 0.5,
//!   dictionary ρ = 10, α = 1.8 for both, their interleaved residual balancing, `AccurateDFid`
//!   objective (projected filters, sparse maps). A second line runs our FISTA dictionary update.

use latent_conv_coding::{
    AdmmParams, AutoRho, CdlLearner, CdlParams, Csc, CscCodes, CscParams, DictSolver, FftReal, Filters, FistaParams,
    ParamGuard, Tensor4,
};
use latent_datasets::npy::read_npy;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

const LAMBDA: f64 = 0.05;

/// `(shape, values)` of a `.npy` file, C order, as f64.
fn load(dir: &Path, name: &str) -> Result<(Vec<usize>, Vec<f64>), String> {
    let p = dir.join(name);
    let a = read_npy(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok((a.shape().to_vec(), a.to_f64_vec_c_order()))
}

/// The 256×256 image and the `(8, 8, 32)` filters (SPORCO layout: filter m is `D[:, :, m]`).
fn inputs<T: FftReal>(dir: &Path) -> Result<(Tensor4<T>, Filters<T>), String> {
    let (ishape, img) = load(dir, "csc_image.npy")?;
    let (dshape, d) = load(dir, "csc_D0.npy")?;
    if ishape.len() != 2 || dshape.len() != 3 {
        return Err(format!("csc_image is {ishape:?} (want 2-D), csc_D0 is {dshape:?} (want (kh, kw, M))"));
    }
    let x = Tensor4::from_vec([1, 1, ishape[0], ishape[1]], img.iter().map(|&v| T::lit(v)).collect())
        .map_err(|e| e.to_string())?;
    let dv: Vec<T> = d.iter().map(|&v| T::lit(v)).collect();
    let f = Filters::from_hwm(dshape[0], dshape[1], dshape[2], &dv).map_err(|e| e.to_string())?;
    Ok((x, f))
}

/// Flop of one ADMM (or FISTA) iteration of DFT-domain convolutional coding of `k` images of
/// `pixels` pixels with `m` filters: a forward and an inverse real 2-D FFT per map per image,
/// 2.5·N·log₂N each (half the usual 5·N·log₂N of a complex FFT), and per map, image and of the
/// N/2 (Hermitian half) frequencies two complex multiply-adds (8 flops each: the Sherman–Morrison
/// solve's `Dᴴ(D b)`, or FISTA's `D x` and `Dᴴ r`). Not counted: the soft-thresholding, the dual
/// update and the residual-balancing norms (O(m·N) each), objective evaluations.
fn coding_iter_flop(k: usize, m: usize, pixels: usize) -> f64 {
    let n = pixels as f64;
    (k * m) as f64 * (2.0 * 2.5 * n * n.log2() + 2.0 * 8.0 * n / 2.0)
}

/// Flop of one outer iteration of convolutional dictionary learning (see [`csc_dl`]).
fn dl_iter_flop(k: usize, m: usize, pixels: usize) -> f64 {
    let n = pixels as f64;
    2.0 * coding_iter_flop(k, m, pixels) + m as f64 * 2.0 * 2.5 * n * n.log2()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One warm-up run (page faults, FFT plans), then the median time of three; the last codes.
fn timed_encode<T: FftReal>(coder: &Csc<T>, f: &Filters<T>, x: &Tensor4<T>) -> Result<(CscCodes<T>, f64), String> {
    let mut codes = coder.encode(f, x).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        codes = coder.encode(f, x).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((codes, median(times)))
}

fn encode_one<T: FftReal>(data: &Path) -> Result<Value, String> {
    let (x, f) = inputs::<T>(data)?;
    let iters = 50;
    let coder = CscParams::new(T::lit(LAMBDA))
        .admm(AdmmParams::default().rho(50.0 * LAMBDA + 1.0).relax(1.8).auto_rho(Some(AutoRho::every_iteration())))
        .max_iter(iters)
        .tol(0.0)
        .history(true)
        .check()
        .map(Csc::from)
        .map_err(|e| e.to_string())?;
    let (codes, secs) = timed_encode(&coder, &f, &x)?;
    let info = &codes.info[0];
    let at_x = info.history.last().map_or(f64::NAN, |s| s.objective);
    Ok(json!({
        "solver": "admm-sherman-morrison", "dtype": if T::NAME == "f32" { "float32" } else { "float64" },
        "seconds": secs, "iterations": info.iterations, "s_per_iter": secs / info.iterations as f64,
        "objective": at_x, "objective_sparse_maps": info.objective, "nnz_fraction": codes.nnz_fraction(),
        "final_rho": info.rho, "image": [x.h(), x.w()], "filters": [f.kh(), f.kw(), f.count()],
        "flop": info.iterations as f64 * coding_iter_flop(1, f.count(), x.h() * x.w()),
    }))
}

/// The same problem by FISTA (`FistaParams` defaults: backtracking with η = 2 from 1/L, restart;
/// 50 iterations, no early stop): the coding path of
/// `FistaParams`, which SPORCO's `ConvBPDN` peer does not run (a regression guard, no peer figure).
fn encode_fista<T: FftReal>(data: &Path) -> Result<Value, String> {
    let (x, f) = inputs::<T>(data)?;
    let coder = CscParams::new(T::lit(LAMBDA))
        .fista(FistaParams::default())
        .max_iter(50)
        .tol(0.0)
        .check()
        .map(Csc::from)
        .map_err(|e| e.to_string())?;
    let (codes, secs) = timed_encode(&coder, &f, &x)?;
    let info = &codes.info[0];
    Ok(json!({
        "solver": "fista", "dtype": if T::NAME == "f32" { "float32" } else { "float64" },
        "seconds": secs, "iterations": info.iterations, "s_per_iter": secs / info.iterations as f64,
        "objective": info.objective, "nnz_fraction": codes.nnz_fraction(),
        "image": [x.h(), x.w()], "filters": [f.kh(), f.kw(), f.count()],
        "flop": info.iterations as f64 * coding_iter_flop(1, f.count(), x.h() * x.w()),
    }))
}

/// `csc_encode`: 32 filters 8×8 on the 256×256 image, λ = 0.05, 50 ADMM iterations. `flop`:
/// iterations × [`coding_iter_flop`] (one image, 32 maps, 256² pixels); the FISTA line the same
/// per iteration (its backtracking's extra evaluations are not counted).
pub fn csc_encode(data: &Path) -> Result<Vec<Value>, String> {
    Ok(vec![encode_one::<f64>(data)?, encode_one::<f32>(data)?, encode_fista::<f64>(data)?])
}

fn dl_one<T: FftReal>(data: &Path, solver: DictSolver, name: &str) -> Result<Value, String> {
    let (x, f) = inputs::<T>(data)?;
    let (h, w) = (x.h(), x.w());
    let (ch, cw) = (h / 2, w / 2);
    // the four quadrants as a batch of 4 images
    let crops = Tensor4::from_fn([4, 1, ch, cw], |[k, _, i, j]| {
        let (oy, ox) = ((k / 2) * ch, (k % 2) * cw);
        x.as_slice()[(oy + i) * w + ox + j]
    })
    .map_err(|e| e.to_string())?;
    let f16 = f.select(0..16).map_err(|e| e.to_string())?;
    let mut p = CdlParams::new(16, (f.kh(), f.kw()), T::lit(LAMBDA));
    p.iterations = 20;
    p.coding = AdmmParams::default().rho(50.0 * LAMBDA + 0.5).relax(1.8).auto_rho(Some(AutoRho::interleaved()));
    p.dict_solver = solver;
    let learner = CdlLearner::from(p.check().map_err(|e| e.to_string())?);
    learner.fit_with(&crops, Some(&f16), None).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    let mut fit = None;
    for _ in 0..3 {
        let t = Instant::now();
        fit = Some(learner.fit_with(&crops, Some(&f16), None).map_err(|e| e.to_string())?);
        times.push(t.elapsed().as_secs_f64());
    }
    let fit = fit.ok_or("no run")?;
    let last = fit.history.last().ok_or("empty history")?;
    Ok(json!({
        "solver": name, "dtype": if T::NAME == "f32" { "float32" } else { "float64" },
        "seconds": median(times), "iterations": fit.iterations, "objective": last.objective,
        "nnz_fraction": last.nnz_fraction, "images": [4, ch, cw], "filters": [f.kh(), f.kw(), 16],
        "flop": fit.iterations as f64 * dl_iter_flop(4, 16, ch * cw),
    }))
}

/// `csc_dl`: 16 filters 8×8 learned on the four 128×128 quadrants, λ = 0.05, 20 iterations.
/// `flop` per outer iteration (approximate): the coding iteration over the 4 images
/// ([`coding_iter_flop`]), the dictionary iteration counted the same (the images' spectra against
/// the filters), plus the forward and inverse FFTs of the 16 filters ([`dl_iter_flop`]). Not
/// counted: projections onto unit-norm filters, thresholding, dual updates and residual balancing.
pub fn csc_dl(data: &Path) -> Result<Vec<Value>, String> {
    let cns = DictSolver::Consensus { rho: Some(10.0), relax: 1.8, auto_rho: Some(AutoRho::interleaved()) };
    Ok(vec![
        dl_one::<f64>(data, cns, "admm-interleaved, consensus dictionary update")?,
        dl_one::<f32>(data, cns, "admm-interleaved, consensus dictionary update")?,
        dl_one::<f64>(data, DictSolver::Fista { eta: 2.0 }, "admm-interleaved, FISTA dictionary update")?,
    ])
}
