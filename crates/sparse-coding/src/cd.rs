//! Coordinate descent for the lasso with a precomputed Gram matrix and an active set.

use crate::encoder::{CodeInfo, Encoder, Prepared, StopReason, axpy, dot, lasso_primal_dual};
use crate::error::{Result, invalid};
use latent_linalg::Real;

/// Lasso by cyclic coordinate descent in correlation space: `min ½‖x − Ws‖² + λ‖s‖₁`.
///
/// Keeps `r = Wᵀx − WᵀW s`, so one coordinate update costs O(h) and a zero coordinate that stays
/// zero costs O(1). Sweeps alternate between the active set (until it settles) and all atoms;
/// the solver stops when the duality gap falls below `tol · max(½‖x‖², tiny)`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `lambda` | — | ℓ1 weight λ | ≥ 0 |
/// | `tol` | 1e-10 | relative duality-gap tolerance | > 0 |
/// | `max_iter` | 1000 | full sweeps | ≥ 1 |
/// | `nonneg` | false | constrain s ≥ 0 | |
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_sparse_coding::{CoordinateDescent, Encoder};
/// let w = DMatrix::<f64>::identity(3, 3);
/// let (s, info) = CoordinateDescent::new(0.5).encode(&w, &[2.0, 0.2, -1.0], None).unwrap();
/// assert_eq!(s, vec![1.5, 0.0, -0.5]);
/// assert!(info.duality_gap.unwrap() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoordinateDescent<T> {
    /// ℓ1 weight λ.
    pub lambda: T,
    /// Relative duality-gap tolerance.
    pub tol: f64,
    /// Maximum number of full sweeps.
    pub max_iter: usize,
    /// Non-negative codes.
    pub nonneg: bool,
}

impl<T: Real> CoordinateDescent<T> {
    /// Defaults for everything but λ.
    pub fn new(lambda: T) -> Self {
        Self { lambda, tol: 1e-10, max_iter: 1000, nonneg: false }
    }
    /// Set the tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Set the sweep cap.
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

impl<T: Real> Encoder<T> for CoordinateDescent<T> {
    fn check(&self, p: &Prepared<T>) -> Result<()> {
        crate::encoder::check_iterative(self.lambda, self.tol, self.max_iter)?;
        if let Some(j) = (0..p.atoms()).find(|&j| p.gram_col(j)[j] <= T::zero()) {
            return Err(invalid("dictionary", format!("atom {j}"), "is zero; coordinate descent needs nonzero atoms"));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        #[cfg(target_arch = "x86_64")]
        {
            if latent_linalg::simd::max_isa() >= latent_linalg::simd::Isa::Avx2 {
                // SAFETY: `max_isa` is at most the level the CPU has, so it supports AVX2 and FMA.
                return unsafe { cd_encode_avx2(self, p, x, c, s) };
            }
        }
        cd_encode_impl(self, p, x, c, s)
    }
}

/// [`Encoder::encode_prepared`] compiled for AVX2 + FMA (chosen at run time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cd_encode_avx2<T: Real>(
    this: &CoordinateDescent<T>,
    p: &Prepared<T>,
    x: &[T],
    c: &[T],
    s: &mut [T],
) -> Result<CodeInfo> {
    cd_encode_impl(this, p, x, c, s)
}

#[inline(always)]
fn cd_encode_impl<T: Real>(
    this: &CoordinateDescent<T>,
    p: &Prepared<T>,
    x: &[T],
    c: &[T],
    s: &mut [T],
) -> Result<CodeInfo> {
    let h = p.atoms();
    let lam = this.lambda;
    let xx = dot(x, x);
    // r = c − G s
    let mut r = c.to_vec();
    for j in 0..h {
        if s[j] != T::zero() {
            axpy(-s[j], p.gram_col(j), &mut r);
        }
    }
    // a tolerance below what the scalar type can resolve would never be met
    let tol = this.tol.max(10.0 * T::EPS.as_f64());
    let threshold = tol * (0.5 * xx.as_f64()).max(1e-300);
    let mut active: Vec<usize> = Vec::with_capacity(64);
    let mut sweeps = 0;
    let mut gap = f64::INFINITY;
    let mut objective = 0.0;
    let update = |j: usize, s: &mut [T], r: &mut [T]| -> T {
        let g = p.gram_col(j);
        let a = g[j];
        let z = s[j] + r[j] / a;
        let t = lam / a;
        let new = if this.nonneg {
            (z - t).max(T::zero())
        } else if z > t {
            z - t
        } else if z < -t {
            z + t
        } else {
            T::zero()
        };
        let delta = new - s[j];
        if delta != T::zero() {
            s[j] = new;
            axpy(-delta, g, r);
        }
        delta
    };
    while sweeps < this.max_iter {
        sweeps += 1;
        // full sweep
        active.clear();
        for j in 0..h {
            let skip = s[j] == T::zero() && if this.nonneg { r[j] <= lam } else { r[j].abs() <= lam };
            if !skip {
                update(j, s, &mut r);
            }
            if s[j] != T::zero() {
                active.push(j);
            }
        }
        let (pr, du) = lasso_primal_dual(xx, c, &r, s, lam, this.nonneg);
        gap = pr - du;
        objective = pr;
        if gap <= threshold {
            break;
        }
        // sweeps over the active set until it settles
        for _ in 0..this.max_iter {
            let mut max_delta = T::zero();
            let mut max_s = T::zero();
            for &j in &active {
                let d = update(j, s, &mut r);
                max_delta = max_delta.max(d.abs());
                max_s = max_s.max(s[j].abs());
            }
            if max_delta <= T::lit(1e-3 * tol.sqrt()) * max_s.max(T::EPS) {
                break;
            }
        }
    }
    // recompute r exactly from scratch to report an honest gap (no drift)
    r.copy_from_slice(c);
    for j in 0..h {
        if s[j] != T::zero() {
            axpy(-s[j], p.gram_col(j), &mut r);
        }
    }
    let (pr, du) = lasso_primal_dual(xx, c, &r, s, lam, this.nonneg);
    if pr.is_finite() {
        gap = pr - du;
        objective = pr;
    }
    let stop =
        if gap <= threshold.max(1e-12 * objective.abs()) { StopReason::Converged } else { StopReason::MaxIterations };
    Ok(CodeInfo { iterations: sweeps, stop, duality_gap: Some(gap.max(0.0)), objective })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod isa_tests {
    use super::*;
    use crate::encoder::isa_test_support::{assert_close, problem};
    use latent_linalg::simd::Isa;

    /// The AVX2 + FMA path of coordinate descent (AVX2 and AVX-512 CPUs) and the portable path
    /// (`LATENT_ISA=scalar`) give codes within rounding (1e-4 in `f32`, 1e-9 in `f64`: the sweeps
    /// stop on a duality-gap test whose rounding may end them one sweep apart).
    fn agree<T: Real>(tol: f64) {
        if !Isa::Avx2.on_cpu() {
            return;
        }
        let (p, signals) = problem::<T>(24, 64, 20, 13);
        for nonneg in [false, true] {
            let cd = CoordinateDescent::new(T::lit(0.05)).nonneg(nonneg);
            for (x, c) in &signals {
                let (mut s_fast, mut s_port) = (vec![T::zero(); 64], vec![T::zero(); 64]);
                // SAFETY: AVX2 and FMA are on this CPU (checked above).
                let fast = unsafe { cd_encode_avx2(&cd, &p, x, c, &mut s_fast) }.unwrap();
                let port = cd_encode_impl(&cd, &p, x, c, &mut s_port).unwrap();
                assert_eq!(fast.stop, port.stop, "nonneg {nonneg} {}", T::NAME);
                assert_close(&format!("cd nonneg {nonneg} {}", T::NAME), &s_fast, &s_port, tol);
            }
        }
    }

    #[test]
    fn avx2_and_portable_paths_agree() {
        agree::<f32>(1e-4);
        agree::<f64>(1e-9);
    }
}
