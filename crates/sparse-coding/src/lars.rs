//! LARS-lasso (Efron, Hastie, Johnstone & Tibshirani 2004): the exact piecewise-linear
//! regularisation path, computed with the Gram matrix and a Cholesky factor of the active block.

use crate::SparseCode;
use crate::cd::CoordinateDescent;
use crate::encoder::{CodeInfo, Encoder, Prepared, StopReason, axpy, check_lambda};
use crate::error::Result;
use latent_linalg::Real;

/// LARS with the lasso modification: follows the solution path from λ = ‖Wᵀx‖∞ down to `lambda`,
/// adding and dropping atoms at the path's breakpoints, then certifies the result with a few
/// coordinate-descent sweeps and the duality gap.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `lambda` | — | ℓ1 weight λ at which the path stops | ≥ 0 |
/// | `nonneg` | false | positive LARS (s ≥ 0) | |
/// | `max_steps` | 0 (= 8·min(d, h) + 16) | cap on path steps | |
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_sparse_coding::{Encoder, Lars};
/// let w = DMatrix::<f64>::identity(3, 3);
/// let (s, _) = Lars::new(0.5).encode(&w, &[2.0, 0.2, -1.0], None).unwrap();
/// assert!((s[0] - 1.5).abs() < 1e-12 && s[1] == 0.0 && (s[2] + 0.5).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lars<T> {
    /// ℓ1 weight λ.
    pub lambda: T,
    /// Non-negative codes.
    pub nonneg: bool,
    /// Cap on path steps (0 = automatic).
    pub max_steps: usize,
}

impl<T: Real> Lars<T> {
    /// LARS-lasso stopping at `lambda`.
    pub fn new(lambda: T) -> Self {
        Self { lambda, nonneg: false, max_steps: 0 }
    }
    /// Constrain to s ≥ 0.
    pub fn nonneg(mut self, yes: bool) -> Self {
        self.nonneg = yes;
        self
    }
}

/// One breakpoint of the lasso path: the code is exact for this λ.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPoint<T: Real> {
    /// The regularisation weight at the breakpoint.
    pub lambda: T,
    /// The lasso solution at `lambda`.
    pub code: SparseCode<T>,
}

/// Cholesky factor of the active Gram block, lower triangle packed by rows (row n starts at
/// n(n+1)/2), grown as atoms join.
struct Chol<T> {
    cap: usize,
    n: usize,
    l: Vec<T>,
}

impl<T: Real> Chol<T> {
    fn new(cap: usize) -> Self {
        Self { cap, n: 0, l: Vec::with_capacity(cap.min(32) * (cap.min(32) + 1) / 2) }
    }
    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> T {
        self.l[r * (r + 1) / 2 + c]
    }
    /// Append atom `j` given the active list (before adding j); false when j is (numerically) dependent.
    #[inline(always)]
    fn push(&mut self, p: &Prepared<T>, active: &[usize], j: usize, tmp: &mut [T]) -> bool {
        let n = self.n;
        if n >= self.cap {
            return false;
        }
        let gj = p.gram_col(j);
        for a in 0..n {
            let row = &self.l[a * (a + 1) / 2..a * (a + 1) / 2 + a + 1];
            let mut v = gj[active[a]];
            for b in 0..a {
                v -= row[b] * tmp[b];
            }
            tmp[a] = v / row[a];
        }
        let dd = gj[j] - tmp[..n].iter().fold(T::zero(), |acc, &v| acc + v * v);
        if dd <= T::lit(1e-11) * gj[j] {
            return false;
        }
        self.l.extend_from_slice(&tmp[..n]);
        self.l.push(dd.sqrt());
        self.n += 1;
        true
    }
    fn rebuild(&mut self, p: &Prepared<T>, active: &[usize], tmp: &mut [T]) -> bool {
        self.n = 0;
        self.l.clear();
        for i in 0..active.len() {
            if !self.push(p, &active[..i], active[i], tmp) {
                return false;
            }
        }
        true
    }
    /// Solve (L Lᵀ) x = b in place.
    #[inline(always)]
    fn solve(&self, b: &mut [T]) {
        let n = self.n;
        for a in 0..n {
            let base = a * (a + 1) / 2;
            let mut v = b[a];
            for c in 0..a {
                v -= self.l[base + c] * b[c];
            }
            b[a] = v / self.l[base + a];
        }
        for a in (0..n).rev() {
            let mut v = b[a];
            for c in a + 1..n {
                v -= self.at(c, a) * b[c];
            }
            b[a] = v / self.at(a, a);
        }
    }
}

/// Atoms per block of [`direction_pass`]: the accumulators of one block stay in registers while
/// the active Gram columns stream past.
const BLOCK: usize = 16;

/// `a < b ? a : b` (one `minpd`; the operands are never NaN here).
#[inline(always)]
fn fmin<T: Real>(a: T, b: T) -> T {
    if a < b { a } else { b }
}

/// The step to the next breakpoint at which inactive atom j would join, from its current
/// correlation `cj` and its correlation `uj` with the equiangular direction:
/// min((C − c_j)/(1 − u_j), (C + c_j)/(1 + u_j)) over the positive denominators (only the first
/// for non-negative codes), +∞ when neither applies, raised to `maskj` (+∞ for atoms that may not
/// join).
#[inline(always)]
fn join_step<T: Real>(big_c: T, cj: T, uj: T, maskj: T, nonneg: bool) -> T {
    let tiny = T::lit(1e-12);
    let inf = T::lit(f64::INFINITY);
    let d1 = T::one() - uj;
    let g1 = if d1 > tiny { (big_c - cj).max(T::zero()) / d1 } else { inf };
    let d2 = T::one() + uj;
    let g2 = if !nonneg && d2 > tiny { (big_c + cj).max(T::zero()) / d2 } else { inf };
    let g = g1.min(g2);
    if maskj > g { maskj } else { g }
}

/// One LARS step's pass over the h atoms: `u = G_A w` (written to `u`, summed over the active
/// columns in order, as repeated `axpy`s would) and, when `joins`, the smallest join step and its
/// atom (the first one on ties), or `None` when no atom can join. `gam` is scratch (length h).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn direction_pass<T: Real>(
    gram: &[T],
    h: usize,
    active: &[usize],
    w: &[T],
    big_c: T,
    c: &[T],
    mask: &[T],
    nonneg: bool,
    joins: bool,
    u: &mut [T],
    gam: &mut [T],
) -> Option<(T, usize)> {
    let inf = T::lit(f64::INFINITY);
    let (mut best, mut best_block) = (inf, usize::MAX);
    let full = h - h % BLOCK;
    let mut j0 = 0;
    while j0 < full {
        let mut acc = [T::zero(); BLOCK];
        for (&a, &wa) in active.iter().zip(w) {
            let col: &[T; BLOCK] = gram[a * h + j0..a * h + j0 + BLOCK].try_into().expect("block");
            for l in 0..BLOCK {
                acc[l] += wa * col[l];
            }
        }
        u[j0..j0 + BLOCK].copy_from_slice(&acc);
        if joins {
            let cb: &[T; BLOCK] = c[j0..j0 + BLOCK].try_into().expect("block");
            let mb: &[T; BLOCK] = mask[j0..j0 + BLOCK].try_into().expect("block");
            let mut g = [T::zero(); BLOCK];
            for l in 0..BLOCK {
                g[l] = join_step(big_c, cb[l], acc[l], mb[l], nonneg);
            }
            gam[j0..j0 + BLOCK].copy_from_slice(&g);
            // the block's minimum by a tree of vector minima
            let mut m = [T::zero(); BLOCK / 2];
            for l in 0..BLOCK / 2 {
                m[l] = fmin(g[l], g[l + BLOCK / 2]);
            }
            let mut q = [T::zero(); BLOCK / 4];
            for l in 0..BLOCK / 4 {
                q[l] = fmin(m[l], m[l + BLOCK / 4]);
            }
            let mb = q.iter().fold(inf, |a, &v| fmin(a, v));
            if mb < best {
                best = mb;
                best_block = j0;
            }
        }
        j0 += BLOCK;
    }
    let mut who = usize::MAX;
    if best_block != usize::MAX {
        who = (best_block..best_block + BLOCK).find(|&j| gam[j] == best).expect("the block holds its minimum");
    }
    for j in full..h {
        let mut uj = T::zero();
        for (&a, &wa) in active.iter().zip(w) {
            uj += wa * gram[a * h + j];
        }
        u[j] = uj;
        if joins {
            let g = join_step(big_c, c[j], uj, mask[j], nonneg);
            if g < best {
                best = g;
                who = j;
            }
        }
    }
    if who == usize::MAX { None } else { Some((best, who)) }
}

/// Run the homotopy from s = 0 down to `lambda`. Returns the number of steps and whether the
/// path reached `lambda` (false: ran out of independent atoms or steps).
fn lars_core<T: Real>(
    p: &Prepared<T>,
    c0: &[T],
    lambda: T,
    nonneg: bool,
    max_steps: usize,
    s: &mut [T],
    path: Option<&mut Vec<PathPoint<T>>>,
) -> (usize, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if latent_linalg::simd::max_isa() >= latent_linalg::simd::Isa::Avx2 {
            // SAFETY: `max_isa` is at most the level the CPU has, so it supports AVX2 and FMA.
            return unsafe { lars_core_avx2(p, c0, lambda, nonneg, max_steps, s, path) };
        }
    }
    lars_core_impl(p, c0, lambda, nonneg, max_steps, s, path)
}

/// The same code compiled for AVX2 + FMA (selected at run time; no `target-cpu` needed).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lars_core_avx2<T: Real>(
    p: &Prepared<T>,
    c0: &[T],
    lambda: T,
    nonneg: bool,
    max_steps: usize,
    s: &mut [T],
    path: Option<&mut Vec<PathPoint<T>>>,
) -> (usize, bool) {
    lars_core_impl(p, c0, lambda, nonneg, max_steps, s, path)
}

#[inline(always)]
fn lars_core_impl<T: Real>(
    p: &Prepared<T>,
    c0: &[T],
    lambda: T,
    nonneg: bool,
    max_steps: usize,
    s: &mut [T],
    mut path: Option<&mut Vec<PathPoint<T>>>,
) -> (usize, bool) {
    let h = p.atoms();
    let cap = p.dim().min(h);
    s.iter_mut().for_each(|v| *v = T::zero());
    let mut c = c0.to_vec();
    let score = |v: T| if nonneg { v } else { v.abs() };
    let (mut j0, mut big_c) = (usize::MAX, T::zero());
    for (j, &v) in c.iter().enumerate() {
        if score(v) > big_c {
            big_c = score(v);
            j0 = j;
        }
    }
    if let Some(pth) = path.as_deref_mut() {
        pth.push(PathPoint { lambda: big_c.max(lambda), code: SparseCode::from_dense(s) });
    }
    if j0 == usize::MAX || big_c <= lambda {
        return (0, true);
    }
    let mut active: Vec<usize> = Vec::with_capacity(cap);
    let mut chol = Chol::new(cap);
    let mut tmp = vec![T::zero(); cap];
    let mut wdir = vec![T::zero(); cap];
    let mut u = vec![T::zero(); h];
    let mut gam = vec![T::zero(); h];
    // +∞ for the atoms that may not join this step (active, or just dropped), 0 for the others
    let inf = T::lit(f64::INFINITY);
    let mut mask = vec![T::zero(); h];
    let mut banned = usize::MAX;
    if !chol.push(p, &active, j0, &mut tmp) {
        return (0, false);
    }
    active.push(j0);
    mask[j0] = inf;
    let gram = p.gram().as_slice();
    let mut steps = 0;
    while steps < max_steps {
        steps += 1;
        let k = active.len();
        // direction: G_AA w = sign(c_A)
        for a in 0..k {
            wdir[a] = if c[active[a]] >= T::zero() { T::one() } else { -T::one() };
        }
        chol.solve(&mut wdir[..k]);
        let mut gamma = big_c - lambda;
        let mut event = 0u8; // 0 = reach λ, 1 = join, 2 = drop
        let mut who = usize::MAX;
        // one pass over the atoms: u = G_A w (every atom's correlation with the equiangular
        // direction) and, while joins are possible, each inactive atom's step to a breakpoint
        let joins = k < cap;
        if banned != usize::MAX {
            mask[banned] = inf;
        }
        if let Some((g, j)) =
            direction_pass(gram, h, &active, &wdir[..k], big_c, &c, &mask, nonneg, joins, &mut u, &mut gam)
            && g < gamma
        {
            gamma = g;
            event = 1;
            who = j;
        }
        if banned != usize::MAX {
            mask[banned] = T::zero();
        }
        for a in 0..k {
            let j = active[a];
            if wdir[a] != T::zero() {
                let g = -s[j] / wdir[a];
                if g > T::zero() && g < gamma {
                    gamma = g;
                    event = 2;
                    who = a;
                }
            }
        }
        for a in 0..k {
            s[active[a]] += gamma * wdir[a];
        }
        axpy(-gamma, &u, &mut c);
        big_c -= gamma;
        banned = usize::MAX;
        match event {
            0 => {
                if let Some(pth) = path.as_deref_mut() {
                    pth.push(PathPoint { lambda, code: SparseCode::from_dense(s) });
                }
                return (steps, true);
            }
            1 => {
                if !chol.push(p, &active, who, &mut tmp) {
                    // dependent atom: cannot extend the active set; the path cannot go on exactly
                    return (steps, false);
                }
                active.push(who);
                mask[who] = inf;
            }
            _ => {
                let j = active.remove(who);
                mask[j] = T::zero();
                s[j] = T::zero();
                banned = j;
                if !chol.rebuild(p, &active, &mut tmp) {
                    return (steps, false);
                }
                if active.is_empty() {
                    return (steps, false);
                }
            }
        }
        if let Some(pth) = path.as_deref_mut() {
            pth.push(PathPoint { lambda: big_c, code: SparseCode::from_dense(s) });
        }
    }
    (steps, false)
}

impl<T: Real> Lars<T> {
    fn steps(&self, p: &Prepared<T>) -> usize {
        if self.max_steps > 0 { self.max_steps } else { 8 * p.dim().min(p.atoms()) + 16 }
    }

    /// The whole lasso path for one signal, from the largest useful λ down to `self.lambda`:
    /// every breakpoint with its exact code.
    ///
    /// # Errors
    /// Wrong signal length, NaN/Inf, λ < 0.
    pub fn path(&self, w: &latent_linalg::DMatrix<T>, x: &[T]) -> Result<Vec<PathPoint<T>>> {
        let p = Prepared::new(w)?;
        Encoder::<T>::check(self, &p)?;
        if x.len() != p.dim() {
            return Err(crate::error::dim(
                "Lars::path",
                format!("signal has length {}, atoms have {}", x.len(), p.dim()),
            ));
        }
        crate::error::finite("signal", x)?;
        let d = p.dim();
        let c: Vec<T> = (0..p.atoms()).map(|j| crate::encoder::dot(&w.as_slice()[j * d..(j + 1) * d], x)).collect();
        let mut s = vec![T::zero(); p.atoms()];
        let mut out = Vec::new();
        lars_core(&p, &c, self.lambda, self.nonneg, self.steps(&p), &mut s, Some(&mut out));
        Ok(out)
    }
}

impl<T: Real> Encoder<T> for Lars<T> {
    fn check(&self, _p: &Prepared<T>) -> Result<()> {
        check_lambda(self.lambda)
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        #[cfg(target_arch = "x86_64")]
        {
            if latent_linalg::simd::max_isa() >= latent_linalg::simd::Isa::Avx2 {
                // SAFETY: `max_isa` is at most the level the CPU has, so it supports AVX2 and FMA.
                return unsafe { lars_encode_avx2(self, p, x, c, s) };
            }
        }
        lars_encode_impl(self, p, x, c, s)
    }
}

#[inline(always)]
fn gap_only<T: Real>(p: &Prepared<T>, x: &[T], c: &[T], s: &[T], lambda: T, nonneg: bool) -> (f64, f64) {
    let mut r = c.to_vec();
    for (j, &v) in s.iter().enumerate() {
        if v != T::zero() {
            axpy(-v, p.gram_col(j), &mut r);
        }
    }
    crate::encoder::lasso_primal_dual(crate::encoder::dot(x, x), c, &r, s, lambda, nonneg)
}

/// [`Encoder::encode_prepared`] compiled for AVX2 + FMA (chosen at run time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lars_encode_avx2<T: Real>(
    this: &Lars<T>,
    p: &Prepared<T>,
    x: &[T],
    c: &[T],
    s: &mut [T],
) -> Result<CodeInfo> {
    lars_encode_impl(this, p, x, c, s)
}

#[inline(always)]
fn lars_encode_impl<T: Real>(this: &Lars<T>, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
    let (steps, reached) = lars_core(p, c, this.lambda, this.nonneg, this.steps(p), s, None);
    let xx = crate::encoder::dot(x, x);
    if reached {
        // certify: the duality gap at the LARS point
        let (primal, dual) = gap_only(p, x, c, s, this.lambda, this.nonneg);
        let gap = (primal - dual).max(0.0);
        // relative gap a working precision can certify: 1e-11 in f64, ~1e-5 in f32
        let rel = 1e-11f64.max(100.0 * T::EPS.as_f64());
        if gap <= rel * (0.5 * xx.as_f64()).max(1e-300) {
            return Ok(CodeInfo {
                iterations: steps,
                stop: StopReason::Exact,
                duality_gap: Some(gap),
                objective: primal,
            });
        }
    }
    // the path broke off (dependent atoms) or rounding left a gap: finish with coordinate descent
    let polish = CoordinateDescent {
        lambda: this.lambda,
        tol: 1e-12f64.max(10.0 * T::EPS.as_f64()),
        max_iter: 1000,
        nonneg: this.nonneg,
    };
    let mut info = if (0..p.atoms()).all(|j| p.gram_col(j)[j] > T::zero()) {
        polish.encode_prepared(p, x, c, s)?
    } else {
        let (primal, dual) = gap_only(p, x, c, s, this.lambda, this.nonneg);
        CodeInfo {
            iterations: 0,
            stop: StopReason::MaxIterations,
            duality_gap: Some((primal - dual).max(0.0)),
            objective: primal,
        }
    };
    info.iterations += steps;
    if reached && info.stop == StopReason::Converged {
        info.stop = StopReason::Exact;
    }
    Ok(info)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod isa_tests {
    use super::*;
    use crate::encoder::isa_test_support::{assert_close, problem};
    use latent_linalg::simd::Isa;

    /// The AVX2 + FMA path of LARS-lasso (what `encode_prepared` and the homotopy run on AVX2 and
    /// AVX-512 CPUs) and the portable path (`LATENT_ISA=scalar`) give codes within rounding
    /// (1e-4 in `f32`, 1e-10 in `f64`), signed and non-negative, and the same path steps.
    fn agree<T: Real>(tol: f64) {
        if !Isa::Avx2.on_cpu() {
            return;
        }
        let (p, signals) = problem::<T>(24, 64, 20, 11);
        for nonneg in [false, true] {
            let lars = Lars::new(T::lit(0.05)).nonneg(nonneg);
            for (x, c) in &signals {
                let (mut s_fast, mut s_port) = (vec![T::zero(); 64], vec![T::zero(); 64]);
                // SAFETY: AVX2 and FMA are on this CPU (checked above).
                let fast = unsafe { lars_encode_avx2(&lars, &p, x, c, &mut s_fast) }.unwrap();
                let port = lars_encode_impl(&lars, &p, x, c, &mut s_port).unwrap();
                assert_eq!(fast.iterations, port.iterations, "nonneg {nonneg} {}", T::NAME);
                assert_close(&format!("lars nonneg {nonneg} {}", T::NAME), &s_fast, &s_port, tol);
                let steps = lars.steps(&p);
                let (mut h_fast, mut h_port) = (vec![T::zero(); 64], vec![T::zero(); 64]);
                // SAFETY: as above.
                let a = unsafe { lars_core_avx2(&p, c, lars.lambda, nonneg, steps, &mut h_fast, None) };
                let b = lars_core_impl(&p, c, lars.lambda, nonneg, steps, &mut h_port, None);
                assert_eq!(a, b, "homotopy steps, nonneg {nonneg} {}", T::NAME);
                assert_close(&format!("lars homotopy nonneg {nonneg} {}", T::NAME), &h_fast, &h_port, tol);
            }
        }
    }

    #[test]
    fn avx2_and_portable_paths_agree() {
        agree::<f32>(1e-4);
        agree::<f64>(1e-10);
    }
}
