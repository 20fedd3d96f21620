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
    /// Atom selection rule.
    pub rule: OmpRule,
}

/// How OMP picks the next atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OmpRule {
    /// Classic OMP (Pati et al. 1993): the atom most correlated with the residual.
    #[default]
    Classic,
    /// Order-recursive matching pursuit / orthogonal least squares (Chen, Billings & Luo 1989):
    /// the atom whose addition most reduces the residual after re-fitting, i.e. the largest
    /// `αⱼ² / ‖P⊥ wⱼ‖²`. Same cost order, lower error for the same k.
    OrderRecursive,
}

impl Omp {
    /// Exactly-`k` OMP (fewer only if the residual vanishes).
    pub fn new(k: usize) -> Self {
        Self { k, tol: 0.0, rule: OmpRule::Classic }
    }
    /// Choose the selection rule.
    pub fn rule(mut self, rule: OmpRule) -> Self {
        self.rule = rule;
        self
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
                format!(
                    "must be in 1..={} (min of signal dimension {} and atoms {})",
                    p.dim().min(p.atoms()),
                    p.dim(),
                    p.atoms()
                ),
            ));
        }
        if !(self.tol >= 0.0) || !self.tol.is_finite() {
            return Err(invalid("tol", self.tol, "must be finite and >= 0"));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        #[cfg(target_arch = "x86_64")]
        {
            if latent_linalg::simd::max_isa() >= latent_linalg::simd::Isa::Avx2 {
                // SAFETY: `max_isa` is at most the level the CPU has, so it supports AVX2 and FMA.
                return unsafe { omp_encode_avx2(self, p, x, c, s) };
            }
        }
        omp_encode_impl::<T, false>(self, p, x, c, s)
    }
}

/// Atoms per block of the ORMP pass (accumulators kept in registers).
const OBLOCK: usize = 16;

/// ORMP's selection score of one atom: `α² / den` while the atom may still be chosen (its
/// residual norm `den` above `1e-10 ·` its norm `diag`; chosen atoms have `den = −∞`), else 0.
#[inline(always)]
fn ormp_score<T: Real>(alpha: T, den: T, diag: T) -> T {
    if den <= T::lit(1e-10) * diag { T::zero() } else { alpha * alpha / den }
}

/// Lanes of ORMP's selection scan.
const OLANES: usize = 8;

/// The next ORMP atom: the largest [`ormp_score`] (> 0; the first atom on ties) and its index,
/// `(0, usize::MAX)` when no atom scores. Per-lane maxima over groups of [`OLANES`] atoms, then
/// the lanes' winners and the tail; on the AVX2 path for `f64` the lanes are registers.
#[inline(always)]
fn ormp_select<T: Real, const SIMD: bool>(alpha: &[T], den: &[T], diag: &[T]) -> (T, usize) {
    let h = alpha.len();
    let fullv = h - h % OLANES;
    #[cfg(target_arch = "x86_64")]
    let fast = if SIMD
        && let (Some(a64), Some(d64), Some(g64)) =
            (crate::lars::as_f64(alpha), crate::lars::as_f64(den), crate::lars::as_f64(diag))
    {
        // SAFETY: SIMD is only set on the AVX2 + FMA path; the slices have h ≥ fullv entries.
        let (v, j) = unsafe { ormp_lanes_f64_avx2(a64, d64, g64, fullv) };
        Some((v.map(T::lit), j.map(T::lit)))
    } else {
        None
    };
    #[cfg(not(target_arch = "x86_64"))]
    let fast = None;
    let (bv, bj) = fast.unwrap_or_else(|| {
        let mut bv = [T::zero(); OLANES];
        let mut bj = [T::zero(); OLANES];
        for i0 in (0..fullv).step_by(OLANES) {
            let jf = T::from_count(i0);
            for l in 0..OLANES {
                let sc = ormp_score(alpha[i0 + l], den[i0 + l], diag[i0 + l]);
                let take = sc > bv[l];
                bv[l] = if take { sc } else { bv[l] };
                bj[l] = if take { jf } else { bj[l] };
            }
        }
        (bv, bj)
    });
    let (mut best, mut who) = (T::zero(), usize::MAX);
    for l in 0..OLANES {
        let i = bj[l].as_f64() as usize + l;
        if bv[l] > best || (bv[l] == best && bv[l] > T::zero() && i < who) {
            (best, who) = (bv[l], i);
        }
    }
    for i in fullv..h {
        let sc = ormp_score(alpha[i], den[i], diag[i]);
        if sc > best {
            (best, who) = (sc, i);
        }
    }
    (best, who)
}

/// [`ormp_select`]'s lanes for `f64` with AVX2 intrinsics: the same operations (the score
/// `α·α / den`, zero where `den ≤ 1e-10 · diag`, a strict `>` per lane).
///
/// # Safety
/// The CPU must have AVX2 and FMA; the slices must hold at least `fullv` entries, a multiple of
/// [`OLANES`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ormp_lanes_f64_avx2(
    alpha: &[f64],
    den: &[f64],
    diag: &[f64],
    fullv: usize,
) -> ([f64; OLANES], [f64; OLANES]) {
    use std::arch::x86_64::*;
    debug_assert!(fullv.is_multiple_of(OLANES) && alpha.len() >= fullv && den.len() >= fullv && diag.len() >= fullv);
    let eps = _mm256_set1_pd(1e-10);
    let (mut v0, mut v1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (mut j0v, mut j1v) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let score = |a: __m256d, d: __m256d, g: __m256d| {
        let ok = _mm256_cmp_pd::<_CMP_GT_OQ>(d, _mm256_mul_pd(eps, g));
        _mm256_and_pd(_mm256_div_pd(_mm256_mul_pd(a, a), d), ok)
    };
    let mut i0 = 0;
    while i0 < fullv {
        let jf = _mm256_set1_pd(i0 as f64);
        // SAFETY: i0 + 8 ≤ fullv ≤ the slices' lengths.
        let (s0, s1) = unsafe {
            (
                score(
                    _mm256_loadu_pd(alpha.as_ptr().add(i0)),
                    _mm256_loadu_pd(den.as_ptr().add(i0)),
                    _mm256_loadu_pd(diag.as_ptr().add(i0)),
                ),
                score(
                    _mm256_loadu_pd(alpha.as_ptr().add(i0 + 4)),
                    _mm256_loadu_pd(den.as_ptr().add(i0 + 4)),
                    _mm256_loadu_pd(diag.as_ptr().add(i0 + 4)),
                ),
            )
        };
        let t0 = _mm256_cmp_pd::<_CMP_GT_OQ>(s0, v0);
        v0 = _mm256_blendv_pd(v0, s0, t0);
        j0v = _mm256_blendv_pd(j0v, jf, t0);
        let t1 = _mm256_cmp_pd::<_CMP_GT_OQ>(s1, v1);
        v1 = _mm256_blendv_pd(v1, s1, t1);
        j1v = _mm256_blendv_pd(j1v, jf, t1);
        i0 += OLANES;
    }
    let mut out = ([0.0; OLANES], [0.0; OLANES]);
    // SAFETY: each array holds 8 f64, two unaligned stores of 4.
    unsafe {
        _mm256_storeu_pd(out.0.as_mut_ptr(), v0);
        _mm256_storeu_pd(out.0.as_mut_ptr().add(4), v1);
        _mm256_storeu_pd(out.1.as_mut_ptr(), j0v);
        _mm256_storeu_pd(out.1.as_mut_ptr().add(4), j1v);
    }
    out
}

/// ORMP with the projections of every atom onto the selected ones kept up to date: `proj[b][i]`
/// is the b-th coordinate of atom i in the orthonormal basis of the selected atoms (so the
/// selected atoms' entries are exactly the rows of the Cholesky factor).
///
/// Each selection step is one blocked pass over the atoms that builds the new basis row and
/// updates the residual norms and correlations, then one per-lane scan ([`ormp_select`]) for the
/// next atom. `SIMD`: the AVX2 + FMA path (intrinsics for `f64`).
#[inline(always)]
fn ormp<T: Real, const SIMD: bool>(
    k: usize,
    tol: f64,
    p: &Prepared<T>,
    x: &[T],
    c: &[T],
    s: &mut [T],
) -> Result<CodeInfo> {
    let h = p.atoms();
    s.iter_mut().for_each(|v| *v = T::zero());
    let xx = dot(x, x).as_f64();
    let diag = p.diag();
    let gram = p.gram().as_slice();
    let mut proj: Vec<T> = Vec::with_capacity(k * h);
    let mut den: Vec<T> = diag.to_vec();
    // z[b] = coordinate of x in the orthonormal basis; alpha = residual correlations
    let mut z = vec![T::zero(); k];
    let mut alpha = c.to_vec();
    let mut neg = vec![T::zero(); k];
    let mut sel: Vec<usize> = Vec::with_capacity(k);
    let mut stop = StopReason::Exact;
    let mut energy = xx;
    let full = h - h % OBLOCK;
    // the first selection: scores of the correlations themselves
    let (mut best, mut j) = ormp_select::<T, SIMD>(&alpha, &den, diag);
    for n in 0..k {
        if energy <= tol {
            break;
        }
        if j == usize::MAX || best.as_f64() <= 1e-28 * xx.max(1e-300) {
            stop = StopReason::Saturated;
            break;
        }
        let ljj = den[j].sqrt();
        let inv = T::one() / ljj;
        z[n] = alpha[j] / ljj;
        let mz = -z[n];
        for b in 0..n {
            neg[b] = -proj[b * h + j];
        }
        // chosen atoms never score again
        den[j] = T::lit(f64::NEG_INFINITY);
        let gj = &gram[j * h..(j + 1) * h];
        proj.resize((n + 1) * h, T::zero());
        let (done, row) = proj.split_at_mut(n * h);
        // new basis row: proj[n][i] = (G[i, j] − Σ_b proj[b][i]·proj[b][j]) / ljj, then
        // den[i] −= proj[n][i]² and α[i] −= z_n·proj[n][i]
        for i0 in (0..full).step_by(OBLOCK) {
            let mut acc: [T; OBLOCK] = gj[i0..i0 + OBLOCK].try_into().expect("block");
            for (b, &nb) in neg[..n].iter().enumerate() {
                let pb: &[T; OBLOCK] = done[b * h + i0..b * h + i0 + OBLOCK].try_into().expect("block");
                for l in 0..OBLOCK {
                    acc[l] += nb * pb[l];
                }
            }
            for v in acc.iter_mut() {
                *v *= inv;
            }
            row[i0..i0 + OBLOCK].copy_from_slice(&acc);
            let db: &mut [T; OBLOCK] = (&mut den[i0..i0 + OBLOCK]).try_into().expect("block");
            let ab: &mut [T; OBLOCK] = (&mut alpha[i0..i0 + OBLOCK]).try_into().expect("block");
            for l in 0..OBLOCK {
                db[l] -= acc[l] * acc[l];
                ab[l] += mz * acc[l];
            }
        }
        for i in full..h {
            let mut v = gj[i];
            for (b, &nb) in neg[..n].iter().enumerate() {
                v += nb * done[b * h + i];
            }
            v *= inv;
            row[i] = v;
            den[i] -= v * v;
            alpha[i] += mz * v;
        }
        sel.push(j);
        energy = (energy - z[n].as_f64() * z[n].as_f64()).max(0.0);
        if n + 1 < k {
            (best, j) = ormp_select::<T, SIMD>(&alpha, &den, diag);
        }
    }
    // coefficients: solve Lᵀ γ = z with L[a][b] = proj[b][sel[a]]
    let m = sel.len();
    let mut gamma = vec![T::zero(); m];
    for a in (0..m).rev() {
        let mut v = z[a];
        for b in a + 1..m {
            v -= proj[a * h + sel[b]] * gamma[b];
        }
        gamma[a] = v / proj[a * h + sel[a]];
    }
    for (a, &j) in sel.iter().enumerate() {
        s[j] = gamma[a];
    }
    Ok(CodeInfo { iterations: m, stop, duality_gap: None, objective: 0.5 * energy })
}

/// [`Encoder::encode_prepared`] compiled for AVX2 + FMA (chosen at run time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn omp_encode_avx2<T: Real>(this: &Omp, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
    omp_encode_impl::<T, true>(this, p, x, c, s)
}

#[inline(always)]
fn omp_encode_impl<T: Real, const SIMD: bool>(
    this: &Omp,
    p: &Prepared<T>,
    x: &[T],
    c: &[T],
    s: &mut [T],
) -> Result<CodeInfo> {
    if this.rule == OmpRule::OrderRecursive {
        return ormp::<T, SIMD>(this.k, this.tol, p, x, c, s);
    }
    let h = p.atoms();
    let k = this.k;
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
        if energy <= this.tol {
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

/// ORMP as it was before the blocked pass (scalar scoring scan, `axpy` round trips), kept to
/// check that the current one selects the same atoms and computes bit-identical codes.
#[cfg(test)]
mod reference {
    use super::*;
    use crate::encoder::axpy;

    fn ref_ormp<T: Real>(k: usize, tol: f64, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        let h = p.atoms();
        s.iter_mut().for_each(|v| *v = T::zero());
        let xx = dot(x, x).as_f64();
        let mut proj = vec![T::zero(); k * h];
        let mut den: Vec<T> = (0..h).map(|j| p.gram_col(j)[j]).collect();
        let den0 = den.clone();
        // z[b] = coordinate of x in the orthonormal basis; alpha = residual correlations
        let mut z = vec![T::zero(); k];
        let mut alpha = c.to_vec();
        let mut sel: Vec<usize> = Vec::with_capacity(k);
        let mut chosen = vec![false; h];
        let mut stop = StopReason::Exact;
        let mut energy = xx;
        for n in 0..k {
            if energy <= tol {
                break;
            }
            let mut j = usize::MAX;
            let mut best = T::zero();
            for i in 0..h {
                if chosen[i] || den[i] <= T::lit(1e-10) * den0[i] {
                    continue;
                }
                let score = alpha[i] * alpha[i] / den[i];
                if score > best {
                    best = score;
                    j = i;
                }
            }
            if j == usize::MAX || best.as_f64() <= 1e-28 * xx.max(1e-300) {
                stop = StopReason::Saturated;
                break;
            }
            let ljj = den[j].sqrt();
            let gj = p.gram_col(j);
            // new basis row: proj[n][i] = (G[i, j] − Σ_b proj[b][i]·proj[b][j]) / ljj
            let (done, rest) = proj.split_at_mut(n * h);
            let row = &mut rest[..h];
            row.copy_from_slice(gj);
            for b in 0..n {
                let pb = &done[b * h..(b + 1) * h];
                axpy(-pb[j], pb, row);
            }
            let inv = T::one() / ljj;
            row.iter_mut().for_each(|v| *v *= inv);
            for i in 0..h {
                den[i] -= row[i] * row[i];
            }
            z[n] = alpha[j] / ljj;
            // residual correlations drop by z_n · (atom correlations with the new basis vector)
            axpy(-z[n], row, &mut alpha);
            sel.push(j);
            chosen[j] = true;
            energy = (energy - z[n].as_f64() * z[n].as_f64()).max(0.0);
        }
        // coefficients: solve Lᵀ γ = z with L[a][b] = proj[b][sel[a]]
        let m = sel.len();
        let mut gamma = vec![T::zero(); m];
        for a in (0..m).rev() {
            let mut v = z[a];
            for b in a + 1..m {
                v -= proj[a * h + sel[b]] * gamma[b];
            }
            gamma[a] = v / proj[a * h + sel[a]];
        }
        for (a, &j) in sel.iter().enumerate() {
            s[j] = gamma[a];
        }
        Ok(CodeInfo { iterations: m, stop, duality_gap: None, objective: 0.5 * energy })
    }

    /// Same atoms, same codes to the last bit, same residual energy and stop reason, on random
    /// problems whose atom counts fall on and between the pass's blocks (and with a dependent atom
    /// pair, so that the saturation checks are exercised).
    #[test]
    fn bit_identical_to_reference() {
        use crate::encoder::isa_test_support::problem;
        for (d, h, seed) in [(24, 64, 1u64), (20, 37, 2), (64, 256, 3), (12, 16, 4), (30, 100, 5), (8, 5, 6)] {
            let (p, signals) = problem::<f64>(d, h, 16, seed);
            for k in [1, 3, d.min(h).min(10), d.min(h)] {
                for (x, c) in &signals {
                    let (mut s_new, mut s_ref) = (vec![0.0; h], vec![0.0; h]);
                    let a = ormp::<f64, true>(k, 0.0, &p, x, c, &mut s_new).unwrap();
                    let mut s_port = vec![0.0; h];
                    let port = ormp::<f64, false>(k, 0.0, &p, x, c, &mut s_port).unwrap();
                    assert_eq!((a, &s_port), (port, &s_new), "d {d} h {h} k {k}: portable");
                    let b = ref_ormp(k, 0.0, &p, x, c, &mut s_ref).unwrap();
                    assert_eq!(a, b, "d {d} h {h} k {k}");
                    assert_eq!(s_new, s_ref, "d {d} h {h} k {k}");
                }
            }
        }
        // an atom repeated: the copy must never be selected after the original
        let mut w = latent_linalg::DMatrix::<f64>::from_fn(6, 20, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        for mut col in w.column_iter_mut() {
            let n = col.norm();
            col /= n;
        }
        let c3 = w.column(3).into_owned();
        w.set_column(17, &c3);
        let p = Prepared::new(&w).unwrap();
        let x: Vec<f64> = (0..6).map(|i| w[(i, 3)] * 2.0 + w[(i, 5)] - 0.3 * w[(i, 9)]).collect();
        let c: Vec<f64> = (0..20).map(|j| (0..6).map(|i| w[(i, j)] * x[i]).sum()).collect();
        for k in 1..=6 {
            let (mut s_new, mut s_ref) = (vec![0.0; 20], vec![0.0; 20]);
            let a = ormp::<f64, false>(k, 0.0, &p, &x, &c, &mut s_new).unwrap();
            let b = ref_ormp(k, 0.0, &p, &x, &c, &mut s_ref).unwrap();
            assert_eq!(a, b, "k {k}");
            assert_eq!(s_new, s_ref, "k {k}");
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod isa_tests {
    use super::*;
    use crate::encoder::isa_test_support::{assert_close, problem};
    use latent_linalg::simd::Isa;

    /// The AVX2 + FMA path (what `encode_prepared` runs on AVX2 and AVX-512 CPUs) selects the same
    /// atoms as the portable path (what it runs under `LATENT_ISA=scalar`) and gives codes within
    /// rounding: 1e-4 in `f32`, 1e-10 in `f64`, for both selection rules.
    fn agree<T: Real>(tol: f64) {
        if !Isa::Avx2.on_cpu() {
            return;
        }
        let (p, signals) = problem::<T>(24, 64, 20, 7);
        for rule in [OmpRule::Classic, OmpRule::OrderRecursive] {
            let omp = Omp::new(8).rule(rule);
            for (x, c) in &signals {
                let (mut s_fast, mut s_port) = (vec![T::zero(); 64], vec![T::zero(); 64]);
                // SAFETY: AVX2 and FMA are on this CPU (checked above).
                let fast = unsafe { omp_encode_avx2(&omp, &p, x, c, &mut s_fast) }.unwrap();
                let port = omp_encode_impl::<T, false>(&omp, &p, x, c, &mut s_port).unwrap();
                assert_eq!(fast.iterations, port.iterations, "{rule:?} {}", T::NAME);
                let support = |s: &[T]| s.iter().map(|v| *v != T::zero()).collect::<Vec<_>>();
                assert_eq!(support(&s_fast), support(&s_port), "{rule:?} {}: supports", T::NAME);
                assert_close(&format!("omp {rule:?} {}", T::NAME), &s_fast, &s_port, tol);
            }
        }
    }

    #[test]
    fn avx2_and_portable_paths_agree() {
        agree::<f32>(1e-4);
        agree::<f64>(1e-10);
    }
}
