//! Proximal-gradient encoders (ISTA, FISTA with restart) over `latent-optim`'s solvers, iterative
//! hard thresholding, the one-shot threshold encoder, and feature-sign search.

use crate::encoder::{CodeInfo, Encoder, Prepared, StopReason, axpy, check_lambda, dot, lasso_primal_dual};
use crate::error::{Result, SparseCodingError, invalid};
use latent_linalg::Real;
use latent_optim::objective::Objective;
use latent_optim::prox::{L1, L1NonNeg, Prox};
use latent_optim::solver::{Criterion, ProxGradParams, fista, ista};

/// The smooth part `½‖x − Ws‖² = ½sᵀGs − cᵀs + ½‖x‖²` in correlation space.
#[derive(Debug)]
pub(crate) struct GramQuadratic<'a, T: Real> {
    pub p: &'a Prepared<T>,
    pub c: &'a [T],
    pub xx: T,
}

impl<T: Real> GramQuadratic<'_, T> {
    /// `grad = Gs − c`; returns the value.
    pub fn eval(&self, s: &[T], grad: &mut [T]) -> T {
        grad.iter_mut().zip(self.c).for_each(|(g, &c)| *g = -c);
        for (j, &v) in s.iter().enumerate() {
            if v != T::zero() {
                axpy(v, self.p.gram_col(j), grad);
            }
        }
        // value = ½ sᵀ(Gs) − cᵀs + ½xx, with Gs = grad + c
        let sgs = dot(s, grad) + dot(s, self.c);
        T::lit(0.5) * sgs - dot(self.c, s) + T::lit(0.5) * self.xx
    }
}

impl<T: Real> Objective<T> for GramQuadratic<'_, T> {
    fn dim(&self) -> usize {
        self.p.atoms()
    }
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T {
        self.eval(x, grad)
    }
}

fn residual_corr<T: Real>(p: &Prepared<T>, c: &[T], s: &[T]) -> Vec<T> {
    let mut r = c.to_vec();
    for (j, &v) in s.iter().enumerate() {
        if v != T::zero() {
            axpy(-v, p.gram_col(j), &mut r);
        }
    }
    r
}

fn l1_info<T: Real>(
    p: &Prepared<T>,
    x: &[T],
    c: &[T],
    s: &[T],
    lambda: T,
    nonneg: bool,
    iterations: usize,
    converged: bool,
) -> CodeInfo {
    let r = residual_corr(p, c, s);
    let (pr, du) = lasso_primal_dual(dot(x, x), c, &r, s, lambda, nonneg);
    CodeInfo {
        iterations,
        stop: if converged { StopReason::Converged } else { StopReason::MaxIterations },
        duality_gap: Some((pr - du).max(0.0)),
        objective: pr,
    }
}

/// Which proximal-gradient scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// ISTA: plain proximal gradient.
    Ista,
    /// FISTA with O'Donoghue–Candès adaptive restart.
    Fista,
}

/// Lasso by ISTA or FISTA (with adaptive restart), step `1/L` with `L = λ_max(WᵀW)`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `lambda` | — | ℓ1 weight λ | ≥ 0 |
/// | `scheme` | FISTA | ISTA or FISTA | |
/// | `tol` | 1e-9 | relative change of the iterate | > 0 |
/// | `max_iter` | 5000 | iteration cap | ≥ 1 |
/// | `nonneg` | false | s ≥ 0 | |
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_sparse_coding::{Encoder, ProxGradient};
/// let w = DMatrix::<f64>::identity(2, 2);
/// let (s, info) = ProxGradient::fista(0.5).encode(&w, &[2.0, 0.1], None).unwrap();
/// assert!((s[0] - 1.5).abs() < 1e-9 && s[1] == 0.0);
/// assert!(info.duality_gap.unwrap() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxGradient<T> {
    /// ℓ1 weight λ.
    pub lambda: T,
    /// ISTA or FISTA.
    pub scheme: Scheme,
    /// Tolerance on the relative change of the iterate.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Non-negative codes.
    pub nonneg: bool,
}

impl<T: Real> ProxGradient<T> {
    /// FISTA with restart.
    pub fn fista(lambda: T) -> Self {
        Self { lambda, scheme: Scheme::Fista, tol: 1e-9, max_iter: 5000, nonneg: false }
    }
    /// ISTA.
    pub fn ista(lambda: T) -> Self {
        Self { scheme: Scheme::Ista, ..Self::fista(lambda) }
    }
    /// Set the tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Set the iteration cap.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Constrain to s ≥ 0.
    pub fn nonneg(mut self, yes: bool) -> Self {
        self.nonneg = yes;
        self
    }
}

impl<T: Real> Encoder<T> for ProxGradient<T> {
    fn check(&self, p: &Prepared<T>) -> Result<()> {
        crate::encoder::check_iterative(self.lambda, self.tol, self.max_iter)?;
        if p.lipschitz() <= T::zero() {
            return Err(invalid("dictionary", "all-zero", "has no nonzero atom"));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        let f = GramQuadratic { p, c, xx: dot(x, x) };
        let params = ProxGradParams::new()
            .step(1.0 / p.lipschitz().as_f64())
            .tol(self.tol)
            .criterion(Criterion::RelativeChangeX)
            .max_iter(self.max_iter)
            .restart(true);
        let lam = self.lambda.as_f64();
        let g: Box<dyn Prox<T> + Sync> =
            if self.nonneg { Box::new(L1NonNeg::new(lam)?) } else { Box::new(L1::new(lam)?) };
        let res = match self.scheme {
            Scheme::Ista => ista(&f, g.as_ref(), s, &params)?,
            Scheme::Fista => fista(&f, g.as_ref(), s, &params)?,
        };
        s.copy_from_slice(&res.x);
        Ok(l1_info(p, x, c, s, self.lambda, self.nonneg, res.iterations, res.converged()))
    }
}

impl From<latent_optim::OptimError> for SparseCodingError {
    fn from(e: latent_optim::OptimError) -> Self {
        SparseCodingError::Numerical { op: "proximal solver", detail: e.to_string() }
    }
}

/// What the plain threshold encoder computes from the correlations `c = Wᵀx`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdRule<T> {
    /// `s = soft(c, t)`.
    Soft(T),
    /// `s = max(c − t, 0)`.
    SoftNonNeg(T),
    /// `s = c·[|c| > t]`.
    Hard(T),
    /// Keep the `k` largest `|c_j|`.
    TopK(usize),
}

/// The plain threshold encoder: one thresholding of `Wᵀx`, no iterations. Exact for an
/// orthonormal dictionary; a fast feed-forward approximation otherwise.
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_sparse_coding::{Encoder, Threshold, ThresholdRule};
/// let w = DMatrix::<f64>::identity(3, 3);
/// let (s, _) = Threshold(ThresholdRule::Soft(0.5)).encode(&w, &[2.0, 0.2, -1.0], None).unwrap();
/// assert_eq!(s, vec![1.5, 0.0, -0.5]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold<T>(pub ThresholdRule<T>);

impl<T: Real> Encoder<T> for Threshold<T> {
    fn check(&self, p: &Prepared<T>) -> Result<()> {
        match self.0 {
            ThresholdRule::Soft(t) | ThresholdRule::SoftNonNeg(t) | ThresholdRule::Hard(t) => {
                if !t.finite() || t < T::zero() {
                    return Err(invalid("threshold", t, "must be finite and >= 0"));
                }
            }
            ThresholdRule::TopK(k) => {
                if k == 0 || k > p.atoms() {
                    return Err(invalid("k", k, format!("must be in 1..={}", p.atoms())));
                }
            }
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        s.copy_from_slice(c);
        let (lambda, l0) = match self.0 {
            ThresholdRule::Soft(t) => {
                latent_linalg::ops::soft_threshold(s, t)?;
                (t, false)
            }
            ThresholdRule::SoftNonNeg(t) => {
                latent_linalg::ops::soft_threshold_nonneg(s, t)?;
                (t, false)
            }
            ThresholdRule::Hard(t) => {
                latent_linalg::ops::hard_threshold(s, t)?;
                (T::zero(), true)
            }
            ThresholdRule::TopK(k) => {
                keep_top_k(s, k);
                (T::zero(), true)
            }
        };
        let r = residual_corr(p, c, s);
        let (pr, du) = lasso_primal_dual(dot(x, x), c, &r, s, lambda, false);
        Ok(CodeInfo {
            iterations: 1,
            stop: StopReason::Exact,
            duality_gap: (!l0).then_some((pr - du).max(0.0)),
            objective: pr,
        })
    }
}

/// Zero all but the `k` entries of largest magnitude (ties: lower index first).
pub(crate) fn keep_top_k<T: Real>(s: &mut [T], k: usize) {
    if k >= s.len() {
        return;
    }
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.select_nth_unstable_by(k, |&a, &b| {
        s[b].abs().partial_cmp(&s[a].abs()).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
    });
    for &i in &idx[k..] {
        s[i] = T::zero();
    }
}

/// What iterative hard thresholding constrains or penalises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum L0Rule<T> {
    /// `min ½‖x − Ws‖² + λ‖s‖₀` (threshold √(2λ/L)).
    Penalty(T),
    /// `min ½‖x − Ws‖²` s.t. `‖s‖₀ ≤ k` (keep the k largest).
    Sparsity(usize),
}

/// Iterative hard thresholding (Blumensath & Davies 2008): `s ← H(s + (1/L)·Wᵀ(x − Ws))`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `rule` | — | λ‖s‖₀ penalty or ‖s‖₀ ≤ k | λ ≥ 0; 1 ≤ k ≤ min(d, h) |
/// | `tol` | 1e-9 | relative change of the iterate | > 0 |
/// | `max_iter` | 1000 | iteration cap | ≥ 1 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iht<T> {
    /// Penalty or constraint.
    pub rule: L0Rule<T>,
    /// Relative-change tolerance.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
}

impl<T: Real> Iht<T> {
    /// IHT with the given rule and defaults.
    pub fn new(rule: L0Rule<T>) -> Self {
        Self { rule, tol: 1e-9, max_iter: 1000 }
    }
}

impl<T: Real> Encoder<T> for Iht<T> {
    fn check(&self, p: &Prepared<T>) -> Result<()> {
        match self.rule {
            L0Rule::Penalty(l) => check_lambda(l)?,
            L0Rule::Sparsity(k) => {
                if k == 0 || k > p.dim().min(p.atoms()) {
                    return Err(invalid("k", k, format!("must be in 1..={}", p.dim().min(p.atoms()))));
                }
            }
        }
        if self.max_iter == 0 || !(self.tol > 0.0) {
            return Err(invalid(
                "max_iter/tol",
                format!("{}/{}", self.max_iter, self.tol),
                "need max_iter >= 1 and tol > 0",
            ));
        }
        if p.lipschitz() <= T::zero() {
            return Err(invalid("dictionary", "all-zero", "has no nonzero atom"));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        let h = p.atoms();
        let step = T::one() / p.lipschitz();
        let f = GramQuadratic { p, c, xx: dot(x, x) };
        let mut grad = vec![T::zero(); h];
        let mut prev = s.to_vec();
        let mut converged = false;
        let mut it = 0;
        let obj = |s: &[T], grad: &mut [T]| -> f64 {
            let v = f.eval(s, grad).as_f64();
            match self.rule {
                L0Rule::Penalty(l) => v + l.as_f64() * latent_linalg::ops::count_nonzero(s) as f64,
                L0Rule::Sparsity(_) => v,
            }
        };
        let mut fval = obj(s, &mut grad);
        while it < self.max_iter {
            it += 1;
            prev.copy_from_slice(s);
            for (sj, &g) in s.iter_mut().zip(&grad) {
                *sj -= step * g;
            }
            match self.rule {
                L0Rule::Penalty(l) => latent_linalg::ops::hard_threshold(s, (T::lit(2.0) * l * step).sqrt())?,
                L0Rule::Sparsity(k) => keep_top_k(s, k),
            }
            let new = obj(s, &mut grad);
            if new > fval * (1.0 + 1e-12) + 1e-300 {
                // a monotone safeguard: IHT with step 1/L never increases the objective in exact
                // arithmetic; if rounding says otherwise we are at a fixed point
                s.copy_from_slice(&prev);
                fval = obj(s, &mut grad);
                converged = true;
                break;
            }
            fval = new;
            let num: f64 = s.iter().zip(&prev).map(|(a, b)| (*a - *b).as_f64().powi(2)).sum::<f64>().sqrt();
            let den = latent_linalg::ops::norm2(s).as_f64().max(latent_linalg::ops::norm2(&prev).as_f64());
            if num == 0.0 || num <= self.tol * den {
                converged = true;
                break;
            }
        }
        Ok(CodeInfo {
            iterations: it,
            stop: if converged { StopReason::Converged } else { StopReason::MaxIterations },
            duality_gap: None,
            objective: fval,
        })
    }
}

/// Feature-sign search (Lee, Battle, Raina & Ng 2006): guesses the signs of the nonzeros, solves
/// the resulting unconstrained quadratic on the active set exactly, and line-searches over sign
/// changes; exact for the lasso in finitely many steps.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `lambda` | — | ℓ1 weight λ | ≥ 0 |
/// | `max_iter` | 1000 | feature-sign steps | ≥ 1 |
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_sparse_coding::{Encoder, FeatureSign};
/// let w = DMatrix::<f64>::identity(3, 3);
/// let (s, _) = FeatureSign::new(0.5).encode(&w, &[2.0, 0.2, -1.0], None).unwrap();
/// assert!((s[0] - 1.5).abs() < 1e-12 && s[1] == 0.0 && (s[2] + 0.5).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureSign<T> {
    /// ℓ1 weight λ.
    pub lambda: T,
    /// Step cap.
    pub max_iter: usize,
}

impl<T: Real> FeatureSign<T> {
    /// Feature-sign search at λ.
    pub fn new(lambda: T) -> Self {
        Self { lambda, max_iter: 1000 }
    }
}

/// Solve the symmetric positive definite system `A z = b` (small, dense, row-major) by Cholesky;
/// `None` when `A` is not numerically positive definite.
fn spd_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<()> {
    for i in 0..n {
        for j in 0..=i {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            if i == j {
                if v <= 1e-12 * a[i * n + i].abs().max(1e-300) {
                    return None;
                }
                a[i * n + i] = v.sqrt();
            } else {
                a[i * n + j] = v / a[j * n + j];
            }
        }
    }
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= a[i * n + k] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= a[k * n + i] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    Some(())
}

impl<T: Real> Encoder<T> for FeatureSign<T> {
    fn check(&self, _p: &Prepared<T>) -> Result<()> {
        check_lambda(self.lambda)?;
        if self.max_iter == 0 {
            return Err(invalid("max_iter", 0, "must be >= 1"));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        let h = p.atoms();
        let lam = self.lambda.as_f64();
        let g = |i: usize, j: usize| p.gram_col(j)[i].as_f64();
        let cf: Vec<f64> = c.iter().map(|v| v.as_f64()).collect();
        let mut sf: Vec<f64> = s.iter().map(|v| v.as_f64()).collect();
        // objective in correlation space (up to ½‖x‖²): ½ sᵀGs − cᵀs + λ‖s‖₁
        let obj = |s: &[f64], act: &[usize]| -> f64 {
            let mut v = 0.0;
            for (a, &i) in act.iter().enumerate() {
                let mut gi = 0.0;
                for &j in act {
                    gi += g(i, j) * s[j];
                }
                v += 0.5 * s[i] * gi - cf[i] * s[i] + lam * s[i].abs();
                let _ = a;
            }
            v
        };
        // gradient of the smooth part: Gs − c
        let grad_of = |s: &[f64]| -> Vec<f64> {
            let mut gr: Vec<f64> = cf.iter().map(|v| -v).collect();
            for (j, &v) in s.iter().enumerate() {
                if v != 0.0 {
                    for (i, e) in gr.iter_mut().enumerate() {
                        *e += g(i, j) * v;
                    }
                }
            }
            gr
        };
        let tol = 1e-10 * (1.0 + cf.iter().fold(0.0f64, |a, v| a.max(v.abs())));
        let mut steps = 0;
        let mut converged = false;
        'outer: while steps < self.max_iter {
            let grad = grad_of(&sf);
            // step 2: activate the zero coefficient with the most violated optimality condition
            let mut best = (usize::MAX, lam + tol);
            for i in 0..h {
                if sf[i] == 0.0 && grad[i].abs() > best.1 {
                    best = (i, grad[i].abs());
                }
            }
            let mut theta: Vec<f64> = sf.iter().map(|v| v.signum() * (*v != 0.0) as i32 as f64).collect();
            if best.0 != usize::MAX {
                theta[best.0] = -grad[best.0].signum();
            } else {
                // all zero coefficients are optimal; check the nonzero ones
                let ok = (0..h).filter(|&i| sf[i] != 0.0).all(|i| (grad[i] + lam * sf[i].signum()).abs() <= tol);
                if ok {
                    converged = true;
                    break;
                }
            }
            // step 3: feature-sign steps until the nonzero coefficients are optimal
            loop {
                steps += 1;
                if steps > self.max_iter {
                    break 'outer;
                }
                let act: Vec<usize> = (0..h).filter(|&i| theta[i] != 0.0).collect();
                let n = act.len();
                let mut a = vec![0.0; n * n];
                let mut b = vec![0.0; n];
                for (u, &i) in act.iter().enumerate() {
                    for (v, &j) in act.iter().enumerate() {
                        a[u * n + v] = g(i, j);
                    }
                    b[u] = cf[i] - lam * theta[i];
                }
                let a0 = a.clone();
                let b0 = b.clone();
                if spd_solve(&mut a, &mut b, n).is_none() {
                    // more active atoms than dimensions (or collinear atoms): a tiny ridge keeps
                    // the step defined; the line search and the final certification do the rest
                    let ridge = 1e-10 * (0..n).map(|u| a0[u * n + u]).sum::<f64>().max(1e-300) / n as f64;
                    a.copy_from_slice(&a0);
                    b.copy_from_slice(&b0);
                    (0..n).for_each(|u| a[u * n + u] += ridge);
                    if spd_solve(&mut a, &mut b, n).is_none() {
                        return Err(SparseCodingError::Numerical {
                            op: "feature-sign search",
                            detail: format!("active set of {n} atoms is singular even with a ridge"),
                        });
                    }
                }
                // line search from the current point to the new solution over sign changes
                let cur: Vec<f64> = act.iter().map(|&i| sf[i]).collect();
                // candidates: the new solution (t = 1) and each point where a coefficient crosses 0
                let mut cands: Vec<(f64, usize)> = vec![(1.0, usize::MAX)];
                for u in 0..n {
                    if cur[u] != 0.0 && b[u].signum() != cur[u].signum() {
                        let t = cur[u] / (cur[u] - b[u]);
                        if t > 0.0 && t < 1.0 {
                            cands.push((t, u));
                        }
                    }
                }
                let mut best = (1.0, usize::MAX);
                let mut best_v = f64::INFINITY;
                let mut trial = sf.clone();
                for &(t, u0) in &cands {
                    for (u, &i) in act.iter().enumerate() {
                        trial[i] = if u == u0 { 0.0 } else { cur[u] + t * (b[u] - cur[u]) };
                    }
                    let v = obj(&trial, &act);
                    if v < best_v {
                        best_v = v;
                        best = (t, u0);
                    }
                }
                for (u, &i) in act.iter().enumerate() {
                    sf[i] = if u == best.1 { 0.0 } else { cur[u] + best.0 * (b[u] - cur[u]) };
                    theta[i] = if sf[i] == 0.0 { 0.0 } else { sf[i].signum() };
                }
                let grad = grad_of(&sf);
                let ok = (0..h).filter(|&i| sf[i] != 0.0).all(|i| (grad[i] + lam * sf[i].signum()).abs() <= tol);
                if ok {
                    break;
                }
            }
        }
        for (a, &b) in s.iter_mut().zip(&sf) {
            *a = T::lit(b);
        }
        if !converged && (0..h).all(|j| p.gram_col(j)[j] > T::zero()) {
            // degenerate active sets can stall the sign search: finish with coordinate descent
            let mut info = crate::CoordinateDescent::new(self.lambda).encode_prepared(p, x, c, s)?;
            info.iterations += steps;
            return Ok(info);
        }
        Ok(l1_info(p, x, c, s, self.lambda, false, steps, converged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_linalg::DMatrix;
    use latent_optim::gradcheck::{GradCheck, check_objective};

    #[test]
    fn gram_quadratic_gradient_checks_and_matches_the_residual() {
        let w = DMatrix::<f64>::from_fn(5, 7, |i, j| ((i * 7 + j * 3) % 5) as f64 - 2.0 + 0.1 * j as f64);
        let p = Prepared::new(&w).unwrap();
        let x = [0.3, -1.0, 2.0, 0.5, -0.7];
        let c: Vec<f64> = (0..7).map(|j| dot(w.column(j).as_slice(), &x)).collect();
        let f = GramQuadratic { p: &p, c: &c, xx: dot(&x, &x) };
        let s = [0.2, 0.0, -1.1, 0.4, 0.0, 0.9, -0.3];
        let rep = check_objective(&f, &s, &GradCheck::default()).unwrap();
        assert!(rep.passes(1e-7), "{rep}");
        // value = ½‖x − Ws‖²
        let r: Vec<f64> = (0..5).map(|i| x[i] - (0..7).map(|j| w[(i, j)] * s[j]).sum::<f64>()).collect();
        let mut g = vec![0.0; 7];
        assert!((f.eval(&s, &mut g) - 0.5 * dot(&r, &r)).abs() < 1e-12);
    }
}
