//! Sparse-coding workloads: lasso_encode, omp_encode (and dictionary learning once it lands).

use latent_datasets::npy::{NpyArray, read_npy, write_npy};
use latent_linalg::{DMatrix, Real, Trans, matmul};
use latent_sparse_coding::{Encoder, Lars, Omp};
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

pub fn lasso_encode(data: &Path, save_dir: Option<&Path>) -> Result<Vec<Value>, String> {
    let (d, x) = lasso_inputs(data)?;
    let lambda = 0.1;
    let enc = Lars::new(lambda);
    let t = Instant::now();
    let codes = enc.encode_batch(&d, &x, None).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let (obj, _, nnz) = objective(&d, &x, &codes.codes, lambda)?;
    save(save_dir, "lasso_encode_codes.npy", &codes.codes)?;
    Ok(vec![json!({
        "solver": "lars-gram+cd-certify", "seconds": secs, "objective": obj, "mean_nnz": nnz,
        "max_duality_gap": codes.max_duality_gap(), "not_converged": codes.not_converged(), "dtype": "float64",
    })])
}

pub fn omp_encode(data: &Path, save_dir: Option<&Path>) -> Result<Vec<Value>, String> {
    let (d, x) = lasso_inputs(data)?;
    let t = Instant::now();
    let codes = Omp::new(10).encode_batch(&d, &x, None).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let (_, mse, nnz) = objective(&d, &x, &codes.codes, 0.0)?;
    save(save_dir, "omp_encode_codes.npy", &codes.codes)?;
    Ok(vec![json!({"solver": "batch-omp", "seconds": secs, "mse": mse, "mean_nnz": nnz, "dtype": "float64"})])
}
