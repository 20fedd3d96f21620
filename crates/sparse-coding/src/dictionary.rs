//! Dictionary updates from the sufficient statistics `A = Σ s sᵀ` (h × h) and `B = Σ x sᵀ` (d × h).
//!
//! Every rule minimises (or decreases) `½ Σ ‖x − Ws‖² = ½ tr(Wᵀ W A) − tr(Wᵀ B) + const` over `W`
//! under its own regulariser or constraint, so alternating it with coding never increases the
//! sparse-coding objective.

use crate::error::{Result, SparseCodingError, dim, finite, invalid};
use latent_linalg::{DMatrix, Real, Trans, gemm, matmul};
use serde::{Deserialize, Serialize};

/// Sufficient statistics of a set of (signal, code) pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Stats<T: Real> {
    /// `A = Σ s sᵀ` (h × h).
    pub a: DMatrix<T>,
    /// `B = Σ x sᵀ` (d × h).
    pub b: DMatrix<T>,
    /// Effective number of signals summed (after forgetting).
    pub count: f64,
}

impl<T: Real> Stats<T> {
    /// Zero statistics for signals of dimension `d` and `h` atoms.
    pub fn zeros(d: usize, h: usize) -> Self {
        Self { a: DMatrix::zeros(h, h), b: DMatrix::zeros(d, h), count: 0.0 }
    }

    /// `A ← β·A + S Sᵀ`, `B ← β·B + X Sᵀ` for signals `X` (d × n) and codes `S` (h × n).
    ///
    /// # Errors
    /// [`SparseCodingError::Dimension`] when the shapes disagree.
    pub fn accumulate(&mut self, x: &DMatrix<T>, s: &DMatrix<T>, beta: T) -> Result<()> {
        let (d, h) = self.b.shape();
        if x.nrows() != d || s.nrows() != h || x.ncols() != s.ncols() {
            return Err(dim(
                "Stats::accumulate",
                format!("X is {:?}, S is {:?}, statistics are for d = {d}, h = {h}", x.shape(), s.shape()),
            ));
        }
        let nnz = latent_linalg::ops::count_nonzero(s.as_slice());
        if nnz * 10 < s.len() {
            // sparse codes: sum outer products over the nonzeros only
            if beta != T::one() {
                self.a.iter_mut().for_each(|v| *v *= beta);
                self.b.iter_mut().for_each(|v| *v *= beta);
            }
            let mut idx: Vec<(usize, T)> = Vec::with_capacity(h);
            for (xi, si) in x.as_slice().chunks(d.max(1)).zip(s.as_slice().chunks(h.max(1))) {
                idx.clear();
                idx.extend(si.iter().enumerate().filter(|(_, v)| **v != T::zero()).map(|(j, v)| (j, *v)));
                for &(j, vj) in &idx {
                    let acol = &mut self.a.as_mut_slice()[j * h..(j + 1) * h];
                    for &(l, vl) in &idx {
                        acol[l] += vj * vl;
                    }
                    let bcol = &mut self.b.as_mut_slice()[j * d..(j + 1) * d];
                    for (bv, &xv) in bcol.iter_mut().zip(xi) {
                        *bv += vj * xv;
                    }
                }
            }
        } else {
            gemm(T::one(), s, Trans::N, s, Trans::T, beta, &mut self.a)?;
            gemm(T::one(), x, Trans::N, s, Trans::T, beta, &mut self.b)?;
        }
        self.count = beta.as_f64() * self.count + x.ncols() as f64;
        Ok(())
    }

    /// The statistics of one batch.
    ///
    /// # Errors
    /// As [`Stats::accumulate`].
    pub fn of(x: &DMatrix<T>, s: &DMatrix<T>) -> Result<Self> {
        let mut st = Self::zeros(x.nrows(), s.nrows());
        st.accumulate(x, s, T::zero())?;
        Ok(st)
    }
}

/// Diagnostics of one dictionary update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpdateInfo {
    /// Inner iterations (passes, Newton steps).
    pub iterations: usize,
    /// `½ tr(WᵀWA) − tr(WᵀB)` (+ the rule's penalty) after the update, per signal (NaN when the
    /// rule was asked not to compute it).
    pub objective: f64,
}

/// A dictionary update rule.
pub trait DictionaryUpdate<T: Real>: Send + Sync {
    /// Update `w` (d × h) in place from the statistics.
    ///
    /// # Errors
    /// Shape mismatches, NaN, numerical failure.
    fn update(&self, w: &mut DMatrix<T>, stats: &Stats<T>) -> Result<UpdateInfo>;
}

fn check<T: Real>(w: &DMatrix<T>, st: &Stats<T>) -> Result<()> {
    let (d, h) = w.shape();
    if st.a.shape() != (h, h) || st.b.shape() != (d, h) {
        return Err(dim(
            "dictionary update",
            format!("W is {:?}, A is {:?}, B is {:?}", w.shape(), st.a.shape(), st.b.shape()),
        ));
    }
    finite("dictionary", w.as_slice())?;
    finite("statistic A", st.a.as_slice())?;
    finite("statistic B", st.b.as_slice())
}

/// `½ tr(WᵀWA) − tr(WᵀB)` per signal.
///
/// # Errors
/// [`crate::SparseCodingError`] from the product `WA` when the shapes of `W` and `A` do not fit.
pub fn quadratic_objective<T: Real>(w: &DMatrix<T>, st: &Stats<T>) -> Result<f64> {
    let wa = matmul(w, Trans::N, &st.a, Trans::N)?;
    let q: f64 = w.iter().zip(wa.iter()).map(|(a, b)| a.as_f64() * b.as_f64()).sum::<f64>() * 0.5
        - w.iter().zip(st.b.iter()).map(|(a, b)| a.as_f64() * b.as_f64()).sum::<f64>();
    Ok(q / st.count.max(1.0))
}

/// Mairal et al. (2009) block-coordinate descent under `‖wⱼ‖ ≤ 1`: for each atom,
/// `uⱼ = wⱼ + (bⱼ − W aⱼ)/A_jj`, `wⱼ = uⱼ / max(‖uⱼ‖, 1)`; atoms with `A_jj = 0` are left as they are.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `passes` | 1 | sweeps over the atoms | ≥ 1 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockCoordinate {
    /// Sweeps over the atoms.
    pub passes: usize,
    /// Compute the objective after the update (costs one W·A product; the online learner skips it).
    pub report_objective: bool,
}

impl Default for BlockCoordinate {
    fn default() -> Self {
        Self { passes: 1, report_objective: true }
    }
}

impl<T: Real> DictionaryUpdate<T> for BlockCoordinate {
    fn update(&self, w: &mut DMatrix<T>, st: &Stats<T>) -> Result<UpdateInfo> {
        check(w, st)?;
        if self.passes == 0 {
            return Err(invalid("passes", 0, "must be >= 1"));
        }
        let (d, h) = w.shape();
        let mut u = vec![T::zero(); d];
        for _ in 0..self.passes {
            for j in 0..h {
                let ajj = st.a[(j, j)];
                if ajj <= T::zero() {
                    continue;
                }
                // u = b_j − W a_j
                u.copy_from_slice(&st.b.as_slice()[j * d..(j + 1) * d]);
                let aj = &st.a.as_slice()[j * h..(j + 1) * h];
                let ws = w.as_slice();
                for (l, &a) in aj.iter().enumerate() {
                    if a != T::zero() {
                        let col = &ws[l * d..(l + 1) * d];
                        for (ui, &wi) in u.iter_mut().zip(col) {
                            *ui -= a * wi;
                        }
                    }
                }
                let inv = T::one() / ajj;
                let wj = &mut w.as_mut_slice()[j * d..(j + 1) * d];
                for (wi, &ui) in wj.iter_mut().zip(&u) {
                    *wi += ui * inv;
                }
                let n = latent_linalg::ops::norm2(wj);
                if n > T::one() {
                    let s = T::one() / n;
                    wj.iter_mut().for_each(|v| *v *= s);
                }
            }
        }
        let objective = if self.report_objective { quadratic_objective(w, st)? } else { f64::NAN };
        Ok(UpdateInfo { iterations: self.passes, objective })
    }
}

/// Projected gradient under unit-norm columns: `W ← Π(W − (WA − B)/L)` with `L = λ_max(A)` and Π
/// the projection of each column onto the unit ball (`‖wⱼ‖ ≤ 1`).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `steps` | 10 | projected-gradient steps | ≥ 1 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitNormProjected {
    /// Projected-gradient steps per update.
    pub steps: usize,
}

impl Default for UnitNormProjected {
    fn default() -> Self {
        Self { steps: 10 }
    }
}

impl<T: Real> DictionaryUpdate<T> for UnitNormProjected {
    fn update(&self, w: &mut DMatrix<T>, st: &Stats<T>) -> Result<UpdateInfo> {
        check(w, st)?;
        if self.steps == 0 {
            return Err(invalid("steps", 0, "must be >= 1"));
        }
        let l = st.a.clone().symmetric_eigenvalues().iter().fold(T::zero(), |a, &v| a.max(v));
        if l <= T::zero() {
            return Ok(UpdateInfo { iterations: 0, objective: quadratic_objective(w, st)? });
        }
        let step = T::one() / (l * T::lit(1.0 + 1e-9));
        for _ in 0..self.steps {
            let mut g = st.b.clone();
            gemm(T::one(), w, Trans::N, &st.a, Trans::N, -T::one(), &mut g)?; // g = WA − B
            *w -= g * step;
            latent_optim::prox::project_columns_l2_ball(w, T::one())
                .map_err(|e| SparseCodingError::Numerical { op: "unit-norm projection", detail: e.to_string() })?;
        }
        Ok(UpdateInfo { iterations: self.steps, objective: quadratic_objective(w, st)? })
    }
}

/// The lecture's Frobenius penalty: `min_W (1/N)Σ ½‖x − Ws‖² + η‖W‖²_F`, in closed form
/// `W = B (A + 2ηN·I)⁻¹`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `eta` | — | weight η of ‖W‖²_F | > 0 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frobenius {
    /// Penalty weight η.
    pub eta: f64,
}

impl Frobenius {
    /// The penalty's value `η‖W‖²_F` and gradient `2ηW` (for gradient checks and custom solvers).
    pub fn value_grad<T: Real>(&self, w: &[T], grad: &mut [T]) -> T {
        let eta = T::lit(self.eta);
        for (g, &v) in grad.iter_mut().zip(w) {
            *g = T::lit(2.0) * eta * v;
        }
        eta * w.iter().fold(T::zero(), |a, &v| a + v * v)
    }
}

impl<T: Real> DictionaryUpdate<T> for Frobenius {
    fn update(&self, w: &mut DMatrix<T>, st: &Stats<T>) -> Result<UpdateInfo> {
        check(w, st)?;
        if !(self.eta > 0.0) || !self.eta.is_finite() {
            return Err(invalid("eta", self.eta, "must be finite and > 0"));
        }
        let h = st.a.nrows();
        let mut m = st.a.clone();
        let ridge = T::lit(2.0 * self.eta * st.count.max(1.0));
        for j in 0..h {
            m[(j, j)] += ridge;
        }
        let chol = m.cholesky().ok_or(SparseCodingError::Numerical {
            op: "Frobenius update",
            detail: "A + 2ηN·I is not positive definite".into(),
        })?;
        // W = B M⁻¹  ⇔  M Wᵀ = Bᵀ
        let wt = chol.solve(&st.b.transpose());
        w.copy_from(&wt.transpose());
        let pen = self.eta * w.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>();
        Ok(UpdateInfo { iterations: 1, objective: quadratic_objective(w, st)? + pen })
    }
}

/// Lee, Battle, Raina & Ng (2006): the Lagrange dual of `min ½Σ‖x − Ws‖²` s.t. `‖wⱼ‖² ≤ c`,
/// maximised over the multipliers `Λ ≥ 0` by projected Newton steps; then `W = B (A + Λ)⁻¹`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `c` | 1 | bound on ‖wⱼ‖² | > 0 |
/// | `max_newton` | 50 | Newton steps | ≥ 1 |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagrangeDual {
    /// Squared-norm bound.
    pub c: f64,
    /// Newton step cap.
    pub max_newton: usize,
}

impl Default for LagrangeDual {
    fn default() -> Self {
        Self { c: 1.0, max_newton: 50 }
    }
}

impl<T: Real> DictionaryUpdate<T> for LagrangeDual {
    fn update(&self, w: &mut DMatrix<T>, st: &Stats<T>) -> Result<UpdateInfo> {
        check(w, st)?;
        if !(self.c > 0.0) || self.max_newton == 0 {
            return Err(invalid(
                "c/max_newton",
                format!("{}/{}", self.c, self.max_newton),
                "need c > 0 and max_newton >= 1",
            ));
        }
        let h = st.a.nrows();
        // work in f64 on the small h × h system
        let a = st.a.map(|v| v.as_f64());
        let b = st.b.map(|v| v.as_f64());
        let btb = b.transpose() * &b;
        // dual (up to constants): D(λ) = −½ tr(B (A+Λ)⁻¹ Bᵀ) − ½ c Σλ
        let dual = |lam: &[f64]| -> Option<(f64, latent_linalg::nalgebra::DMatrix<f64>)> {
            let mut m = a.clone();
            for j in 0..h {
                m[(j, j)] += lam[j];
            }
            let inv = m.cholesky()?.inverse();
            let v = -0.5 * (&inv * &btb).trace() - 0.5 * self.c * lam.iter().sum::<f64>();
            Some((v, inv))
        };
        // start from multipliers that make A + Λ positive definite
        let scale = (0..h).map(|j| a[(j, j)]).fold(0.0f64, f64::max).max(1e-12);
        let mut lam: Vec<f64> = (0..h).map(|j| if a[(j, j)] > 0.0 { 0.0 } else { 1e-6 * scale }).collect();
        let mut cur = match dual(&lam) {
            Some(v) => v,
            None => {
                lam.iter_mut().for_each(|l| *l += 1e-6 * scale);
                dual(&lam)
                    .ok_or(SparseCodingError::Numerical { op: "Lagrange dual", detail: "A + Λ singular".into() })?
            }
        };
        let mut it = 0;
        while it < self.max_newton {
            it += 1;
            let inv = cur.1.clone();
            let y = &inv * &btb * &inv; // (A+Λ)⁻¹ BᵀB (A+Λ)⁻¹
            // gradient of D: ½ (diag(Y) − c); Hessian: −(Y ∘ (A+Λ)⁻¹)
            let grad: Vec<f64> = (0..h).map(|j| 0.5 * (y[(j, j)] - self.c)).collect();
            // projected: only free variables (λ > 0 or ascent direction positive)
            let free: Vec<usize> = (0..h).filter(|&j| lam[j] > 0.0 || grad[j] > 0.0).collect();
            let kkt = (0..h).map(|j| if free.contains(&j) { grad[j].abs() } else { 0.0 }).fold(0.0, f64::max);
            if kkt <= 1e-10 * (1.0 + self.c) {
                break;
            }
            let nf = free.len();
            let mut hm = latent_linalg::nalgebra::DMatrix::<f64>::zeros(nf, nf);
            for (p, &i) in free.iter().enumerate() {
                for (q, &j) in free.iter().enumerate() {
                    hm[(p, q)] = y[(i, j)] * inv[(i, j)];
                }
            }
            let g: latent_linalg::nalgebra::DVector<f64> =
                latent_linalg::nalgebra::DVector::from_iterator(nf, free.iter().map(|&j| grad[j]));
            // Newton ascent direction: (−H)⁻¹ g with −H = Y ∘ inv (positive semidefinite)
            let dir = match hm.clone().cholesky() {
                Some(ch) => ch.solve(&g),
                None => g.clone(),
            };
            let mut t = 1.0;
            let mut improved = false;
            for _ in 0..40 {
                let mut trial = lam.clone();
                for (p, &j) in free.iter().enumerate() {
                    trial[j] = (lam[j] + t * dir[p]).max(0.0);
                }
                if let Some(next) = dual(&trial)
                    && next.0 >= cur.0 - 1e-14 * cur.0.abs()
                {
                    improved = next.0 > cur.0;
                    lam = trial;
                    cur = next;
                    break;
                }
                t *= 0.5;
            }
            if !improved {
                break;
            }
        }
        // W = B (A + Λ)⁻¹
        let wnew = &b * &cur.1;
        for (dst, &v) in w.iter_mut().zip(wnew.iter()) {
            *dst = T::lit(v);
        }
        // rounding can leave a column a hair above the bound
        let bound = T::lit(self.c.sqrt());
        latent_optim::prox::project_columns_l2_ball(w, bound)
            .map_err(|e| SparseCodingError::Numerical { op: "Lagrange dual", detail: e.to_string() })?;
        Ok(UpdateInfo { iterations: it, objective: quadratic_objective(w, st)? })
    }
}
