//! The narrow encoder trait and the batch driver shared by every encoder.

use crate::error::{Result, SparseCodingError, dim, finite, invalid};
use latent_linalg::{DMatrix, MatMut, MatRef, Real, gemm_view};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Why an iterative encoder stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The stopping criterion (duality gap, KKT residual, change) was met.
    Converged,
    /// The iteration cap was reached first; the code is the last iterate, not a certified optimum.
    MaxIterations,
    /// A direct method finished (path end, K atoms selected, residual below tolerance, one-shot encoder).
    Exact,
    /// The signal is explained as well as the dictionary allows (e.g. OMP ran out of independent atoms).
    Saturated,
}

/// Diagnostics of one encoded signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CodeInfo {
    /// Iterations (sweeps, path steps or atoms selected).
    pub iterations: usize,
    /// Why the encoder stopped.
    pub stop: StopReason,
    /// The lasso duality gap at the returned code (L1 encoders; `None` for L0 encoders).
    pub duality_gap: Option<f64>,
    /// The objective at the returned code: ½‖x − Ws‖² + λ‖s‖₁ (or + λ‖s‖₀, or ½‖x − Ws‖² for
    /// sparsity-constrained L0 encoders).
    pub objective: f64,
}

/// A dictionary made ready for coding: the atoms, their Gram matrix `G = WᵀW` and the Lipschitz
/// constant `L = λ_max(G)` of the smooth part's gradient.
#[derive(Debug, Clone)]
pub struct Prepared<T: Real> {
    w: DMatrix<T>,
    gram: DMatrix<T>,
    diag: Vec<T>,
    lipschitz: std::sync::OnceLock<T>,
}

impl<T: Real> Prepared<T> {
    /// Compute the Gram matrix and its largest eigenvalue (power iteration).
    ///
    /// # Errors
    /// [`SparseCodingError::Empty`] for an empty dictionary, [`SparseCodingError::NonFinite`] for NaN/Inf.
    pub fn new(w: &DMatrix<T>) -> Result<Self> {
        if w.nrows() == 0 || w.ncols() == 0 {
            return Err(SparseCodingError::Empty("dictionary"));
        }
        finite("dictionary", w.as_slice())?;
        let gram = latent_linalg::matmul(w, latent_linalg::Trans::T, w, latent_linalg::Trans::N)?;
        let diag = (0..gram.nrows()).map(|j| gram[(j, j)]).collect();
        Ok(Self { w: w.clone(), gram, diag, lipschitz: std::sync::OnceLock::new() })
    }
    /// Signal dimension d.
    pub fn dim(&self) -> usize {
        self.w.nrows()
    }
    /// Number of atoms h.
    pub fn atoms(&self) -> usize {
        self.w.ncols()
    }
    /// The dictionary (d × h, atoms as columns).
    pub fn dictionary(&self) -> &DMatrix<T> {
        &self.w
    }
    /// `G = WᵀW` (h × h).
    pub fn gram(&self) -> &DMatrix<T> {
        &self.gram
    }
    /// The diagonal of the Gram matrix: the atoms' squared norms.
    pub fn diag(&self) -> &[T] {
        &self.diag
    }
    /// Column `j` of the Gram matrix.
    #[inline]
    pub fn gram_col(&self, j: usize) -> &[T] {
        let h = self.atoms();
        &self.gram.as_slice()[j * h..(j + 1) * h]
    }
    /// λ_max(WᵀW), the Lipschitz constant of ∇½‖x − Ws‖² (computed on first use).
    pub fn lipschitz(&self) -> T {
        *self.lipschitz.get_or_init(|| power_iteration(&self.gram))
    }
}

fn power_iteration<T: Real>(g: &DMatrix<T>) -> T {
    let h = g.nrows();
    if h <= 1024 {
        // exact (a symmetric eigen-solve costs less than coding a handful of signals)
        let top = g.clone().symmetric_eigenvalues().iter().fold(T::zero(), |a, &v| a.max(v));
        return top * T::lit(1.0 + 1e-9);
    }
    let mut v = vec![T::one() / T::from_count(h).sqrt(); h];
    let mut gv = vec![T::zero(); h];
    let mut lam = T::zero();
    for _ in 0..100 {
        for (i, e) in gv.iter_mut().enumerate() {
            *e = (0..h).fold(T::zero(), |a, j| a + g[(i, j)] * v[j]);
        }
        let n = gv.iter().fold(T::zero(), |a, &x| a + x * x).sqrt();
        if n == T::zero() {
            return T::zero();
        }
        let new = n;
        v.iter_mut().zip(&gv).for_each(|(a, &b)| *a = b / n);
        if (new - lam).abs() <= T::lit(1e-10) * new {
            lam = new;
            break;
        }
        lam = new;
    }
    // A small safety margin: a step of 1/L must not overshoot.
    // power iteration approaches λ_max from below: leave a margin
    lam * T::lit(1.05)
}

/// An encoder: anything that turns a signal into a code given a prepared dictionary.
///
/// Implementors provide [`Encoder::encode_prepared`]; [`Encoder::encode`] and
/// [`Encoder::encode_batch`] (validation, Gram matrix, `WᵀX` as one product, rayon across signals)
/// come for free.
pub trait Encoder<T: Real>: Send + Sync {
    /// Code one signal. `x` is the signal (length d), `c = Wᵀx` its correlations (length h), and
    /// `s` holds the warm start on entry (zeros for a cold start) and the code on return.
    ///
    /// # Errors
    /// Encoder-specific: invalid parameters for this dictionary, numerical breakdown.
    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo>;

    /// Check the encoder's parameters against a dictionary before any signal is coded
    /// (e.g. `k ≤ d`). The default accepts everything.
    ///
    /// # Errors
    /// [`SparseCodingError::InvalidParameter`] naming the parameter.
    fn check(&self, _p: &Prepared<T>) -> Result<()> {
        Ok(())
    }

    /// Code one signal against a dictionary `w` (d × h), optionally from a warm start.
    ///
    /// # Errors
    /// Wrong lengths, NaN/Inf, or the encoder's own errors.
    fn encode(&self, w: &DMatrix<T>, x: &[T], warm: Option<&[T]>) -> Result<(Vec<T>, CodeInfo)> {
        let p = Prepared::new(w)?;
        self.check(&p)?;
        if x.len() != p.dim() {
            return Err(dim("encode", format!("signal has length {}, dictionary atoms have {}", x.len(), p.dim())));
        }
        finite("signal", x)?;
        let mut s = start(warm, p.atoms(), 0)?;
        let c: Vec<T> = (0..p.atoms()).map(|j| dot(&w.as_slice()[j * p.dim()..(j + 1) * p.dim()], x)).collect();
        let info = self.encode_prepared(&p, x, &c, &mut s)?;
        Ok((s, info))
    }

    /// Code every column of `x` (d × n) against `w` (d × h); codes are the columns of an h × n
    /// matrix. Runs in parallel over signals; the result does not depend on the thread count.
    ///
    /// # Errors
    /// Wrong shapes, NaN/Inf, empty data, or the encoder's own errors (the first one, by column).
    fn encode_batch(&self, w: &DMatrix<T>, x: &DMatrix<T>, warm: Option<&DMatrix<T>>) -> Result<Codes<T>> {
        let p = Prepared::new(w)?;
        self.encode_batch_prepared(&p, x, warm)
    }

    /// [`Encoder::encode_batch`] with a dictionary prepared once (dictionary learning reuses it).
    ///
    /// # Errors
    /// As [`Encoder::encode_batch`].
    fn encode_batch_prepared(&self, p: &Prepared<T>, x: &DMatrix<T>, warm: Option<&DMatrix<T>>) -> Result<Codes<T>> {
        self.check(p)?;
        let (d, h, n) = (p.dim(), p.atoms(), x.ncols());
        if x.nrows() != d {
            return Err(dim("encode_batch", format!("signals have {} rows, dictionary atoms have {d}", x.nrows())));
        }
        if n == 0 {
            return Err(SparseCodingError::Empty("signals"));
        }
        finite("signals", x.as_slice())?;
        let mut s = match warm {
            Some(s0) => {
                if s0.shape() != (h, n) {
                    return Err(dim("encode_batch", format!("warm start is {:?}, expected ({h}, {n})", s0.shape())));
                }
                finite("warm start", s0.as_slice())?;
                s0.clone()
            }
            None => DMatrix::zeros(h, n),
        };
        let mut c = DMatrix::<T>::zeros(h, n);
        gemm_view(
            T::one(),
            MatRef::from_dmatrix(&p.w).t(),
            MatRef::from_dmatrix(x),
            T::zero(),
            MatMut::from_dmatrix(&mut c),
        )?;
        let info: Vec<CodeInfo> = s
            .as_mut_slice()
            .par_chunks_mut(h)
            .zip(c.as_slice().par_chunks(h))
            .zip(x.as_slice().par_chunks(d))
            .map(|((si, ci), xi)| self.encode_prepared(p, xi, ci, si))
            .collect::<Result<_>>()?;
        Ok(Codes { codes: s, info })
    }
}

fn start<T: Real>(warm: Option<&[T]>, h: usize, _n: usize) -> Result<Vec<T>> {
    match warm {
        Some(w0) if w0.len() != h => Err(dim("encode", format!("warm start has length {}, expected {h}", w0.len()))),
        Some(w0) => {
            finite("warm start", w0)?;
            Ok(w0.to_vec())
        }
        None => Ok(vec![T::zero(); h]),
    }
}

/// Codes of a batch (h × n, one code per column) with per-signal diagnostics.
#[derive(Debug, Clone)]
pub struct Codes<T: Real> {
    /// The codes, one column per signal.
    pub codes: DMatrix<T>,
    /// Diagnostics per signal.
    pub info: Vec<CodeInfo>,
}

impl<T: Real> Codes<T> {
    /// Mean objective over the batch.
    pub fn mean_objective(&self) -> f64 {
        self.info.iter().map(|i| i.objective).sum::<f64>() / self.info.len().max(1) as f64
    }
    /// Mean number of nonzeros per code.
    pub fn mean_nnz(&self) -> f64 {
        let h = self.codes.nrows().max(1);
        self.codes.as_slice().chunks(h).map(latent_linalg::ops::count_nonzero).sum::<usize>() as f64
            / self.codes.ncols().max(1) as f64
    }
    /// Largest duality gap over the batch (L1 encoders).
    pub fn max_duality_gap(&self) -> Option<f64> {
        self.info.iter().filter_map(|i| i.duality_gap).reduce(f64::max)
    }
    /// Signals whose encoder stopped at its iteration cap.
    pub fn not_converged(&self) -> usize {
        self.info.iter().filter(|i| i.stop == StopReason::MaxIterations).count()
    }
    /// The codes as index→value pairs.
    pub fn sparse(&self) -> Vec<crate::SparseCode<T>> {
        let h = self.codes.nrows().max(1);
        self.codes.as_slice().chunks(h).map(crate::SparseCode::from_dense).collect()
    }
}

#[inline]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    latent_linalg::ops::dot_unchecked(a, b)
}

/// `y += a·x`.
#[inline(always)]
pub(crate) fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Lasso quantities in correlation space. With `c = Wᵀx`, `r = c − Gs` (the residual's
/// correlations) and `xx = ‖x‖²`: `‖x − Ws‖² = xx − cᵀs − rᵀs`.
#[inline(always)]
pub(crate) fn lasso_primal_dual<T: Real>(xx: T, c: &[T], r: &[T], s: &[T], lambda: T, nonneg: bool) -> (f64, f64) {
    let cs = dot(c, s).as_f64();
    let rs = dot(r, s).as_f64();
    let l1 = s.iter().fold(0.0, |a, v| a + v.as_f64().abs());
    let rmax = if nonneg {
        r.iter().fold(0.0f64, |a, v| a.max(v.as_f64()))
    } else {
        r.iter().fold(0.0f64, |a, v| a.max(v.as_f64().abs()))
    };
    lasso_primal_dual_parts(xx.as_f64(), cs, rs, l1, rmax, lambda.as_f64())
}

/// [`lasso_primal_dual`] from its ingredients: `xx = ‖x‖²`, `cs = cᵀs`, `rs = rᵀs`, `l1 = ‖s‖₁`
/// and `rmax = ‖r‖∞` (the largest `r_j` for non-negative codes, floored at 0).
#[inline(always)]
pub(crate) fn lasso_primal_dual_parts(xx: f64, cs: f64, rs: f64, l1: f64, rmax: f64, lam: f64) -> (f64, f64) {
    let rho2 = (xx - cs - rs).max(0.0);
    let primal = 0.5 * rho2 + lam * l1;
    let alpha = if rmax > lam { lam / rmax } else { 1.0 };
    // dual value at θ = α·(x − Ws): α·xᵀρ − ½α²‖ρ‖², with xᵀρ = xx − cᵀs
    let dual = alpha * (xx - cs) - 0.5 * alpha * alpha * rho2;
    (primal, dual)
}

pub(crate) fn check_lambda<T: Real>(lambda: T) -> Result<()> {
    if !lambda.finite() || lambda < T::zero() {
        return Err(invalid("lambda", lambda, "must be finite and >= 0"));
    }
    Ok(())
}

/// The checks every iterative L1 encoder shares: λ, tolerance and iteration cap.
pub(crate) fn check_iterative<T: Real>(lambda: T, tol: f64, max_iter: usize) -> Result<()> {
    check_lambda(lambda)?;
    if !(tol > 0.0) {
        return Err(invalid("tol", tol, "must be > 0"));
    }
    if max_iter == 0 {
        return Err(invalid("max_iter", 0, "must be >= 1"));
    }
    Ok(())
}

/// Test support for the instruction-set tests of the encoders (each encoder compares its AVX2 +
/// FMA path with its portable path on the same problems).
#[cfg(test)]
pub(crate) mod isa_test_support {
    use super::Prepared;
    use latent_linalg::{DMatrix, Real};
    use rand::{Rng, SeedableRng};

    /// A signal `x` and its correlations `c = Wᵀx`.
    pub(crate) type Signal<T> = (Vec<T>, Vec<T>);

    /// A dictionary of `h` unit-norm random atoms in dimension `d`, and `n` signals that are
    /// sparse combinations of 5 atoms plus noise, with their correlations `c = Wᵀx`.
    pub(crate) fn problem<T: Real>(d: usize, h: usize, n: usize, seed: u64) -> (Prepared<T>, Vec<Signal<T>>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut w = DMatrix::<f64>::from_fn(d, h, |_, _| rng.random::<f64>() - 0.5);
        for mut col in w.column_iter_mut() {
            let nrm = col.norm();
            col /= nrm;
        }
        let wt = w.map(T::lit);
        let p = Prepared::new(&wt).unwrap();
        let signals = (0..n)
            .map(|_| {
                let mut x = vec![0.0f64; d];
                for _ in 0..5 {
                    let j = rng.random_range(0..h);
                    let a = rng.random::<f64>() * 2.0 - 1.0;
                    x.iter_mut().zip(w.column(j).iter()).for_each(|(xi, wi)| *xi += a * wi);
                }
                x.iter_mut().for_each(|xi| *xi += 0.01 * (rng.random::<f64>() - 0.5));
                let x: Vec<T> = x.into_iter().map(T::lit).collect();
                let c: Vec<T> = (0..h).map(|j| super::dot(&wt.as_slice()[j * d..(j + 1) * d], &x)).collect();
                (x, c)
            })
            .collect();
        (p, signals)
    }

    /// Codes of the two paths agree within `tol` (absolute, on codes of O(1) entries).
    pub(crate) fn assert_close<T: Real>(what: &str, a: &[T], b: &[T], tol: f64) {
        let err = a.iter().zip(b).map(|(x, y)| (x.as_f64() - y.as_f64()).abs()).fold(0.0, f64::max);
        assert!(err <= tol, "{what}: AVX2 and portable codes differ by {err} (> {tol})");
        assert!(a.iter().any(|v| v.as_f64() != 0.0), "{what}: the code is all zeros");
    }
}
