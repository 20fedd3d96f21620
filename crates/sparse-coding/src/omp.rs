//! Orthogonal matching pursuit (batch OMP of Rubinstein, Zibulevsky & Elad 2008): a precomputed
//! Gram matrix and a progressive Cholesky factor of the selected atoms' Gram block.

use crate::encoder::{CodeInfo, Encoder, Prepared, StopReason, dot};
use crate::error::{Result, invalid};
use latent_linalg::Real;

/// OMP: greedily select up to `k` atoms, re-fitting all selected coefficients by least squares at
/// each step (`min ½‖x − Ws‖²` s.t. `‖s‖₀ ≤ k`), stopping early when the residual energy falls to
/// `tol`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `k` | — | nonzeros per code | 1 ≤ k ≤ min(d, h) |
/// | `tol` | 0 | stop when ‖x − Ws‖² ≤ tol | ≥ 0 |
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_sparse_coding::{Encoder, Omp};
/// let w = DMatrix::<f64>::identity(4, 4);
/// let (s, _) = Omp::new(2).encode(&w, &[0.1, 3.0, 0.0, -2.0], None).unwrap();
/// assert_eq!(s, vec![0.0, 3.0, 0.0, -2.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Omp {
    /// Nonzeros per code.
    pub k: usize,
    /// Residual-energy tolerance.
    pub tol: f64,
}

impl Omp {
    /// Exactly-`k` OMP (fewer only if the residual vanishes).
    pub fn new(k: usize) -> Self {
        Self { k, tol: 0.0 }
    }
    /// Stop once ‖x − Ws‖² ≤ `tol`.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
}

impl<T: Real> Encoder<T> for Omp {
    fn check(&self, p: &Prepared<T>) -> Result<()> {
        if self.k == 0 || self.k > p.dim() || self.k > p.atoms() {
            return Err(invalid(
                "k",
                self.k,
                format!("must be in 1..={} (min of signal dimension {} and atoms {})", p.dim().min(p.atoms()), p.dim(), p.atoms()),
            ));
        }
        if !(self.tol >= 0.0) || !self.tol.is_finite() {
            return Err(invalid("tol", self.tol, "must be finite and >= 0"));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        let h = p.atoms();
        let k = self.k;
        s.iter_mut().for_each(|v| *v = T::zero());
        let xx = dot(x, x).as_f64();
        let mut alpha = c.to_vec();
        let mut sel: Vec<usize> = Vec::with_capacity(k);
        let mut chosen = vec![false; h];
        // lower-triangular Cholesky factor of G[sel, sel], row-major k × k
        let mut l = vec![T::zero(); k * k];
        let mut gamma = vec![T::zero(); k];
        let mut tmp = vec![T::zero(); k];
        let mut stop = StopReason::Exact;
        let mut energy = xx;
        for it in 0..k {
            if energy <= self.tol {
                break;
            }
            // atom most correlated with the residual
            let mut j = usize::MAX;
            let mut best = T::zero();
            for (i, &a) in alpha.iter().enumerate() {
                if !chosen[i] && a.abs() > best {
                    best = a.abs();
                    j = i;
                }
            }
            if j == usize::MAX || best <= T::EPS * T::lit(xx.sqrt().max(1e-300)) {
                stop = StopReason::Saturated;
                break;
            }
            let gj = p.gram_col(j);
            // new Cholesky row: solve L w = G[sel, j]; diag = sqrt(G_jj − wᵀw)
            let n = sel.len();
            for a in 0..n {
                let mut v = gj[sel[a]];
                for b in 0..a {
                    v -= l[a * k + b] * tmp[b];
                }
                tmp[a] = v / l[a * k + a];
            }
            let ww = dot(&tmp[..n], &tmp[..n]);
            let dd = gj[j] - ww;
            if dd <= T::lit(1e-10) * gj[j] {
                // the atom is (numerically) in the span of the selected ones
                stop = StopReason::Saturated;
                break;
            }
            l[n * k..n * k + n].copy_from_slice(&tmp[..n]);
            l[n * k + n] = dd.sqrt();
            sel.push(j);
            chosen[j] = true;
            let n = n + 1;
            // γ = (L Lᵀ)⁻¹ c[sel]
            for a in 0..n {
                let mut v = c[sel[a]];
                for b in 0..a {
                    v -= l[a * k + b] * tmp[b];
                }
                tmp[a] = v / l[a * k + a];
            }
            for a in (0..n).rev() {
                let mut v = tmp[a];
                for b in a + 1..n {
                    v -= l[b * k + a] * gamma[b];
                }
                gamma[a] = v / l[a * k + a];
            }
            // α = c − G[:, sel] γ
            alpha.copy_from_slice(c);
            for a in 0..n {
                crate::encoder::axpy(-gamma[a], p.gram_col(sel[a]), &mut alpha);
            }
            // ‖x − Ws‖² = ‖x‖² − c[sel]ᵀγ at the least-squares fit
            let fit = (0..n).fold(0.0, |acc, a| acc + c[sel[a]].as_f64() * gamma[a].as_f64());
            energy = (xx - fit).max(0.0);
            let _ = it;
        }
        for (a, &j) in sel.iter().enumerate() {
            s[j] = gamma[a];
        }
        Ok(CodeInfo { iterations: sel.len(), stop, duality_gap: None, objective: 0.5 * energy })
    }
}
