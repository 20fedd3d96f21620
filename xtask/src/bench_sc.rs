//! Sparse-coding workloads: lasso_encode, omp_encode (and dictionary learning once it lands).

use latent_datasets::npy::{NpyArray, read_npy, write_npy};
use latent_linalg::{DMatrix, Real, Trans, matmul};
use latent_sparse_coding::{BatchParams, Encoder, Lars, Omp, OmpRule, OnlineParams, ParamGuard};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

fn load<T: Real>(dir: &Path, name: &str) -> Result<DMatrix<T>, String> {
    let p = dir.join(name);
    read_npy(&p).and_then(|a| a.to_dmatrix::<T>()).map_err(|e| format!("{}: {e}", p.display()))
}

/// The dictionary (d × h, atoms as columns) and the signals as columns (d × n).
fn lasso_inputs(dir: &Path) -> Result<(DMatrix<f64>, DMatrix<f64>), String> {
    let d = load::<f64>(dir, "lasso_D.npy")?;
    let x = load::<f64>(dir, "lasso_X.npy")?.transpose();
    if x.nrows() != d.nrows() {
        return Err(format!("lasso_X rows have {} features, lasso_D atoms have {}", x.nrows(), d.nrows()));
    }
    Ok((d, x))
}

/// Mean over signals of ½‖x − Ds‖² + λ‖s‖₁, and ‖x − Ds‖², computed from scratch.
fn objective(d: &DMatrix<f64>, x: &DMatrix<f64>, s: &DMatrix<f64>, lambda: f64) -> Result<(f64, f64, f64), String> {
    let r = x - matmul(d, Trans::N, s, Trans::N).map_err(|e| e.to_string())?;
    let n = x.ncols() as f64;
    let sq: f64 = r.iter().map(|v| v * v).sum();
    let l1: f64 = s.iter().map(|v| v.abs()).sum();
    let nnz = s.iter().filter(|v| **v != 0.0).count() as f64;
    Ok(((0.5 * sq + lambda * l1) / n, sq / n, nnz / n))
}

fn save(dir: Option<&Path>, name: &str, m: &DMatrix<f64>) -> Result<(), String> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // one code per row, as the peers store them
        write_npy(dir.join(name), &NpyArray::from_dmatrix(&m.transpose(), false)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `lasso_encode`: LARS-lasso on the Gram matrix, then a coordinate-descent certificate.
///
/// `flop` (of the timed batch): the Gram matrix `DᵀD` (2·d·h²), the correlations `Dᵀx` of every
/// signal (2·d·h per signal), and per LARS step t of a signal the equiangular direction's
/// correlations over all h atoms, `u = G_A w_A` and `c −= γu`, with the active-set size taken as
/// t (exact without drops): 2·h·(t + 1). Not counted: the Cholesky updates (O(t²) per step), the
/// step-length scan, the certificate's gap evaluation, the objective.
pub fn lasso_encode(data: &Path, save_dir: Option<&Path>) -> Result<Vec<Value>, String> {
    let (d, x) = lasso_inputs(data)?;
    let lambda = 0.1;
    let enc = Lars::new(lambda);
    let t = Instant::now();
    let codes = enc.encode_batch(&d, &x, None).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let (obj, _, nnz) = objective(&d, &x, &codes.codes, lambda)?;
    save(save_dir, "lasso_encode_codes.npy", &codes.codes)?;
    let (dd, h) = (d.nrows() as f64, d.ncols() as f64);
    let steps: f64 = codes.info.iter().map(|i| (1..=i.iterations).map(|t| 2.0 * h * (t + 1) as f64).sum::<f64>()).sum();
    let flop = 2.0 * dd * h * h + 2.0 * dd * h * x.ncols() as f64 + steps;
    Ok(vec![json!({
        "flop": flop,
        "solver": "lars-gram+cd-certify", "seconds": secs, "objective": obj, "mean_nnz": nnz,
        "max_duality_gap": codes.max_duality_gap(), "not_converged": codes.not_converged(), "dtype": "float64",
    })])
}

/// `omp_encode`: ORMP and batch-OMP (Gram-based) with 10 atoms per signal.
///
/// `flop` (of one batch): the Gram matrix (2·d·h²), the correlations `Dᵀx` (2·d·h per signal),
/// and per selection step b = 1..k the update over all h atoms of their projections on the new
/// basis vector (ORMP) or of the residual correlations `G_{:,I} γ` (batch-OMP), b multiply-adds per
/// atom: Σ_b 2·h·b = h·k(k+1) per signal. Not counted: the argmax scans, the small Cholesky and
/// triangular solves (O(k²) per step), the mse evaluation.
pub fn omp_encode(data: &Path, save_dir: Option<&Path>) -> Result<Vec<Value>, String> {
    let (d, x) = lasso_inputs(data)?;
    let mut out = Vec::new();
    for (name, rule) in [("ormp", OmpRule::OrderRecursive), ("batch-omp", OmpRule::Classic)] {
        let t = Instant::now();
        let codes = Omp::new(10).rule(rule).encode_batch(&d, &x, None).map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        let (_, mse, nnz) = objective(&d, &x, &codes.codes, 0.0)?;
        if rule == OmpRule::OrderRecursive {
            save(save_dir, "omp_encode_codes.npy", &codes.codes)?;
        }
        let (dd, h, n) = (d.nrows() as f64, d.ncols() as f64, x.ncols() as f64);
        let steps: f64 = codes.info.iter().map(|i| h * (i.iterations * (i.iterations + 1)) as f64).sum();
        let flop = 2.0 * dd * h * h + 2.0 * dd * h * n + steps;
        out.push(
            json!({"solver": name, "seconds": secs, "mse": mse, "mean_nnz": nnz, "dtype": "float64", "flop": flop}),
        );
    }
    Ok(out)
}

/// `dl_patches_u8.npy` preprocessed as WORKLOADS.md says: /255, remove each patch's mean, divide
/// everything by the global standard deviation. One patch per column.
fn dl_patches(dir: &Path) -> Result<DMatrix<f64>, String> {
    let raw = load::<f64>(dir, "dl_patches_u8.npy")?.transpose();
    let mut p = raw / 255.0;
    for mut col in p.column_iter_mut() {
        let m = col.mean();
        col.add_scalar_mut(-m);
    }
    let n = p.len() as f64;
    let mean = p.iter().sum::<f64>() / n;
    let std = (p.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    if !(std > 0.0) {
        return Err("dl_patches_u8.npy: all patches are flat".into());
    }
    Ok(p / std)
}

fn eval_objective(w: &DMatrix<f64>, xeval: &DMatrix<f64>, lambda: f64) -> Result<(f64, f64), String> {
    let codes = Lars::new(lambda).encode_batch(w, xeval, None).map_err(|e| e.to_string())?;
    let (obj, _, nnz) = objective(w, xeval, &codes.codes, lambda)?;
    Ok((obj, nnz))
}

/// `dl_online`: one pass of online dictionary learning, batch 256.
///
/// `flop` (of the learning; a lower bound): per mini-batch of B signals, the dictionary's Gram
/// matrix (2·d·h²), the correlations `Wᵀx` (2·d·h·B) and one block-coordinate pass of the
/// dictionary update, `W A[:, j]` for every atom (2·d·h²). Not counted: the LARS path steps of
/// the coding (their number per signal is not reported), the sufficient statistics
/// `A += S Sᵀ`, `B += X Sᵀ` (sparse codes), atom resampling, the evaluation after learning.
pub fn dl_online(data: &Path, save_dir: Option<&Path>) -> Result<Vec<Value>, String> {
    let p = dl_patches(data)?;
    let xeval = p.columns(0, 5000.min(p.ncols())).into_owned();
    let lambda = 1.0;
    let learner = OnlineParams::new(256, lambda).check().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let fit = learner.fit(&p).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let (obj, nnz) = eval_objective(&fit.dictionary, &xeval, lambda)?;
    if let Some(dir) = save_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_npy(dir.join("dl_online_dictionary.npy"), &NpyArray::from_dmatrix(&fit.dictionary, false))
            .map_err(|e| e.to_string())?;
    }
    let (dd, h) = (p.nrows() as f64, fit.dictionary.ncols() as f64);
    let flop = fit.iterations as f64 * 4.0 * dd * h * h + 2.0 * dd * h * p.ncols() as f64;
    Ok(vec![json!({
        "flop": flop,
        "seconds": secs, "eval_objective": obj, "eval_mean_nnz": nnz, "n_samples": p.ncols(), "epochs": 1,
        "batches": fit.iterations, "resampled_atoms": fit.resampled, "dtype": "float64",
    })])
}

/// `dl_batch`: 20 alternating iterations on 5000 patches.
///
/// `flop` (of the learning; a lower bound): per iteration, the Gram matrix (2·d·h²), the
/// correlations of all n signals (2·d·h·n), the statistics `B = X Sᵀ` and `A = S Sᵀ` counted dense
/// (2·d·h·n + 2·h²·n) and one block-coordinate pass of the dictionary update (2·d·h²). Not
/// counted: the LARS path steps of the coding, further dictionary passes, the evaluation.
pub fn dl_batch(data: &Path, save_dir: Option<&Path>) -> Result<Vec<Value>, String> {
    let p = dl_patches(data)?;
    let x = p.columns(0, 5000.min(p.ncols())).into_owned();
    let lambda = 1.0;
    let learner = BatchParams::new(64, lambda).check().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let fit = learner.fit(&x).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let (obj, nnz) = eval_objective(&fit.dictionary, &x, lambda)?;
    if let Some(dir) = save_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_npy(dir.join("dl_batch_dictionary.npy"), &NpyArray::from_dmatrix(&fit.dictionary, false))
            .map_err(|e| e.to_string())?;
    }
    let (dd, h, n) = (x.nrows() as f64, fit.dictionary.ncols() as f64, x.ncols() as f64);
    let flop = fit.iterations as f64 * (4.0 * dd * h * h + 4.0 * dd * h * n + 2.0 * h * h * n);
    Ok(vec![json!({
        "flop": flop,
        "seconds": secs, "eval_objective": obj, "eval_mean_nnz": nnz, "n_samples": x.ncols(), "iterations": fit.iterations,
        "dtype": "float64",
    })])
}
