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
/// n(n+1)/2), grown as atoms join, with the reciprocals of its diagonal (the solves multiply).
struct Chol<T> {
    cap: usize,
    n: usize,
    l: Vec<T>,
    inv: Vec<T>,
}

impl<T: Real> Chol<T> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            n: 0,
            l: Vec::with_capacity(cap.min(32) * (cap.min(32) + 1) / 2),
            inv: Vec::with_capacity(cap.min(32)),
        }
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
            let row = &self.l[a * (a + 1) / 2..a * (a + 1) / 2 + a];
            let mut v = gj[active[a]];
            for b in 0..a {
                v -= row[b] * tmp[b];
            }
            tmp[a] = v * self.inv[a];
        }
        let dd = gj[j] - tmp[..n].iter().fold(T::zero(), |acc, &v| acc + v * v);
        if dd <= T::lit(1e-11) * gj[j] {
            return false;
        }
        self.l.extend_from_slice(&tmp[..n]);
        let ljj = dd.sqrt();
        self.l.push(ljj);
        self.inv.push(T::one() / ljj);
        self.n += 1;
        true
    }
    fn rebuild(&mut self, p: &Prepared<T>, active: &[usize], tmp: &mut [T]) -> bool {
        self.n = 0;
        self.l.clear();
        self.inv.clear();
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
            b[a] = v * self.inv[a];
        }
        // back substitution by columns of Lᵀ (rows of L): once b[a] is final, remove its share
        // from the entries above it
        for a in (0..n).rev() {
            let base = a * (a + 1) / 2;
            let v = b[a] * self.inv[a];
            b[a] = v;
            for c in 0..a {
                b[c] -= self.l[base + c] * v;
            }
        }
    }
}

/// Atoms per block of [`direction_pass`]: the accumulators of one block stay in registers while
/// the active Gram columns stream past.
const BLOCK: usize = 16;

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

/// The join step of [`join_step`] as a fraction `num / den` with `den ≥ 0` (`(1, 0)` stands for
/// +∞), chosen between the two candidates by cross-multiplication: no division.
#[inline(always)]
fn join_fraction<T: Real>(big_c: T, cj: T, uj: T, maskj: T, nonneg: bool) -> (T, T) {
    let tiny = T::lit(1e-12);
    let d1 = T::one() - uj;
    let (n1, e1) = if d1 > tiny { ((big_c - cj).max(T::zero()), d1) } else { (T::one(), T::zero()) };
    let d2 = T::one() + uj;
    let (n2, e2) = if !nonneg && d2 > tiny { ((big_c + cj).max(T::zero()), d2) } else { (T::one(), T::zero()) };
    let take2 = n2 * e1 < n1 * e2;
    let (n, e) = if take2 { (n2, e2) } else { (n1, e1) };
    if maskj > T::zero() { (T::one(), T::zero()) } else { (n, e) }
}

/// The per-lane search of [`direction_pass`] for `f64` with AVX2 intrinsics: the same operations
/// as the portable loop (so the same lanes win), with the lanes' state in registers.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `c`, `u` and `mask` must hold at least `fullv` entries, a
/// multiple of [`LANES`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lane_search_f64_avx2(
    c: &[f64],
    u: &[f64],
    mask: &[f64],
    big_c: f64,
    nonneg: bool,
    fullv: usize,
) -> ([f64; LANES], [f64; LANES], [f64; LANES]) {
    use std::arch::x86_64::*;
    debug_assert!(fullv.is_multiple_of(LANES) && c.len() >= fullv && u.len() >= fullv && mask.len() >= fullv);
    let zero = _mm256_setzero_pd();
    let one = _mm256_set1_pd(1.0);
    let tiny = _mm256_set1_pd(1e-12);
    let cc = _mm256_set1_pd(big_c);
    let allow2 = if nonneg { zero } else { _mm256_castsi256_pd(_mm256_set1_epi64x(-1)) };
    let (mut bn0, mut bn1) = (one, one);
    let (mut be0, mut be1) = (zero, zero);
    let (mut bj0, mut bj1) = (zero, zero);
    let fraction = |cj: __m256d, uj: __m256d, mj: __m256d| {
        let d1 = _mm256_sub_pd(one, uj);
        let ok1 = _mm256_cmp_pd::<_CMP_GT_OQ>(d1, tiny);
        let n1 = _mm256_blendv_pd(one, _mm256_max_pd(_mm256_sub_pd(cc, cj), zero), ok1);
        let e1 = _mm256_blendv_pd(zero, d1, ok1);
        let d2 = _mm256_add_pd(one, uj);
        let ok2 = _mm256_and_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(d2, tiny), allow2);
        let n2 = _mm256_blendv_pd(one, _mm256_max_pd(_mm256_add_pd(cc, cj), zero), ok2);
        let e2 = _mm256_blendv_pd(zero, d2, ok2);
        let take2 = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_mul_pd(n2, e1), _mm256_mul_pd(n1, e2));
        let n = _mm256_blendv_pd(n1, n2, take2);
        let e = _mm256_blendv_pd(e1, e2, take2);
        let blocked = _mm256_cmp_pd::<_CMP_GT_OQ>(mj, zero);
        (_mm256_blendv_pd(n, one, blocked), _mm256_blendv_pd(e, zero, blocked))
    };
    let mut j0 = 0;
    while j0 < fullv {
        let jf = _mm256_set1_pd(j0 as f64);
        // SAFETY: j0 + 8 ≤ fullv ≤ the slices' lengths.
        let (n, e) = unsafe {
            fraction(
                _mm256_loadu_pd(c.as_ptr().add(j0)),
                _mm256_loadu_pd(u.as_ptr().add(j0)),
                _mm256_loadu_pd(mask.as_ptr().add(j0)),
            )
        };
        let take = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_mul_pd(n, be0), _mm256_mul_pd(bn0, e));
        bn0 = _mm256_blendv_pd(bn0, n, take);
        be0 = _mm256_blendv_pd(be0, e, take);
        bj0 = _mm256_blendv_pd(bj0, jf, take);
        // SAFETY: as above.
        let (n, e) = unsafe {
            fraction(
                _mm256_loadu_pd(c.as_ptr().add(j0 + 4)),
                _mm256_loadu_pd(u.as_ptr().add(j0 + 4)),
                _mm256_loadu_pd(mask.as_ptr().add(j0 + 4)),
            )
        };
        let take = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_mul_pd(n, be1), _mm256_mul_pd(bn1, e));
        bn1 = _mm256_blendv_pd(bn1, n, take);
        be1 = _mm256_blendv_pd(be1, e, take);
        bj1 = _mm256_blendv_pd(bj1, jf, take);
        j0 += LANES;
    }
    let mut out = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
    // SAFETY: each array holds 8 f64, two unaligned stores of 4.
    unsafe {
        _mm256_storeu_pd(out.0.as_mut_ptr(), bn0);
        _mm256_storeu_pd(out.0.as_mut_ptr().add(4), bn1);
        _mm256_storeu_pd(out.1.as_mut_ptr(), be0);
        _mm256_storeu_pd(out.1.as_mut_ptr().add(4), be1);
        _mm256_storeu_pd(out.2.as_mut_ptr(), bj0);
        _mm256_storeu_pd(out.2.as_mut_ptr().add(4), bj1);
    }
    out
}

/// `xs` as `&[f64]` when `T` is `f64`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn as_f64<T: Real>(xs: &[T]) -> Option<&[f64]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() {
        // SAFETY: T is f64 (same type, same layout).
        Some(unsafe { std::slice::from_raw_parts(xs.as_ptr().cast::<f64>(), xs.len()) })
    } else {
        None
    }
}

/// The per-lane search of [`direction_pass`] over the first `fullv` atoms (a multiple of
/// [`LANES`]): for each lane, the smallest join step as a fraction (1/0 = +∞, compared by
/// cross-multiplication) and the start of the group of lanes it was found in.
#[inline(always)]
fn lane_search<T: Real>(
    c: &[T],
    u: &[T],
    mask: &[T],
    big_c: T,
    nonneg: bool,
    fullv: usize,
) -> ([T; LANES], [T; LANES], [T; LANES]) {
    let mut bn = [T::one(); LANES];
    let mut be = [T::zero(); LANES];
    let mut bj = [T::zero(); LANES];
    for j0 in (0..fullv).step_by(LANES) {
        let jf = T::from_count(j0);
        for l in 0..LANES {
            let (n, e) = join_fraction(big_c, c[j0 + l], u[j0 + l], mask[j0 + l], nonneg);
            let take = n * be[l] < bn[l] * e;
            bn[l] = if take { n } else { bn[l] };
            be[l] = if take { e } else { be[l] };
            bj[l] = if take { jf } else { bj[l] };
        }
    }
    (bn, be, bj)
}

/// Lanes of the vertical minimum search of [`direction_pass`].
const LANES: usize = 8;

/// One LARS step's pass over the h atoms: `u = G_A w` (written to `u`, summed over the active
/// columns in order, as repeated `axpy`s would) and, when `joins`, the smallest join step and its
/// atom (the first one on ties), or `None` when no atom can join.
///
/// `u` is accumulated in register blocks while the active Gram columns stream past. The search
/// keeps, per lane, the smallest join step as a fraction compared by cross-multiplication (no
/// division); the lanes' winners are then divided out exactly and the smallest taken.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn direction_pass<T: Real, const SIMD: bool>(
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
) -> Option<(T, usize)> {
    let full = h - h % BLOCK;
    for j0 in (0..full).step_by(BLOCK) {
        let mut acc = [T::zero(); BLOCK];
        for (&a, &wa) in active.iter().zip(w) {
            let col: &[T; BLOCK] = gram[a * h + j0..a * h + j0 + BLOCK].try_into().expect("block");
            for l in 0..BLOCK {
                acc[l] += wa * col[l];
            }
        }
        u[j0..j0 + BLOCK].copy_from_slice(&acc);
    }
    for j in full..h {
        let mut uj = T::zero();
        for (&a, &wa) in active.iter().zip(w) {
            uj += wa * gram[a * h + j];
        }
        u[j] = uj;
    }
    if !joins {
        return None;
    }
    let fullv = h - h % LANES;
    #[cfg(target_arch = "x86_64")]
    let fast = if SIMD && let (Some(c64), Some(u64), Some(m64)) = (as_f64(c), as_f64(u), as_f64(mask)) {
        // SAFETY: SIMD is only set on the AVX2 + FMA path; the slices have h ≥ fullv entries.
        let (n, e, j) = unsafe { lane_search_f64_avx2(c64, u64, m64, big_c.as_f64(), nonneg, fullv) };
        Some((n.map(T::lit), e.map(T::lit), j.map(T::lit)))
    } else {
        None
    };
    #[cfg(not(target_arch = "x86_64"))]
    let fast = None;
    let (_bn, be, bj) = fast.unwrap_or_else(|| lane_search(c, u, mask, big_c, nonneg, fullv));
    let (mut best, mut who) = (T::lit(f64::INFINITY), usize::MAX);
    let mut consider = |j: usize| {
        let g = join_step(big_c, c[j], u[j], mask[j], nonneg);
        if g < best || (g == best && j < who) {
            (best, who) = (g, j);
        }
    };
    for l in 0..LANES {
        if be[l] > T::zero() {
            consider(bj[l].as_f64() as usize + l);
        }
    }
    for j in fullv..h {
        consider(j);
    }
    if who == usize::MAX || best == T::lit(f64::INFINITY) { None } else { Some((best, who)) }
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
    lars_core_impl::<T, false>(p, c0, lambda, nonneg, max_steps, s, path)
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
    lars_core_impl::<T, true>(p, c0, lambda, nonneg, max_steps, s, path)
}

#[inline(always)]
fn lars_core_impl<T: Real, const SIMD: bool>(
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
            direction_pass::<T, SIMD>(gram, h, &active, &wdir[..k], big_c, &c, &mask, nonneg, joins, &mut u)
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

/// The homotopy as it was before the blocked pass (per-atom divisions, `axpy` round trips, a
/// scalar minimum scan), kept to check that the current one follows the same path.
#[cfg(test)]
mod reference {
    use super::*;

    #[allow(dead_code)]
    struct RefChol<T> {
        cap: usize,
        n: usize,
        l: Vec<T>,
    }

    impl<T: Real> RefChol<T> {
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

    fn ref_lars_core<T: Real>(
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
        let mut chol = RefChol::new(cap);
        let mut tmp = vec![T::zero(); cap];
        let mut wdir = vec![T::zero(); cap];
        let mut u = vec![T::zero(); h];
        let mut gam = vec![T::zero(); h];
        let mut blocked = vec![false; h];
        let mut banned = usize::MAX;
        if !chol.push(p, &active, j0, &mut tmp) {
            return (0, false);
        }
        active.push(j0);
        blocked[j0] = true;
        let tiny = T::lit(1e-12);
        let mut steps = 0;
        while steps < max_steps {
            steps += 1;
            let k = active.len();
            // direction: G_AA w = sign(c_A)
            for a in 0..k {
                wdir[a] = if c[active[a]] >= T::zero() { T::one() } else { -T::one() };
            }
            chol.solve(&mut wdir[..k]);
            u.iter_mut().for_each(|v| *v = T::zero());
            for a in 0..k {
                axpy(wdir[a], p.gram_col(active[a]), &mut u);
            }
            let mut gamma = big_c - lambda;
            let mut event = 0u8; // 0 = reach λ, 1 = join, 2 = drop
            let mut who = usize::MAX;
            if k < cap {
                // γ_j = (C − c_j)/(1 − u_j) and (C + c_j)/(1 + u_j) for every inactive atom, in a
                // branch-free pass the compiler vectorises; then one scan for the smallest
                let inf = T::lit(f64::INFINITY);
                for j in 0..h {
                    let (cj, uj) = (c[j], u[j]);
                    let d1 = T::one() - uj;
                    let g1 = if d1 > tiny { (big_c - cj).max(T::zero()) / d1 } else { inf };
                    let d2 = T::one() + uj;
                    let g2 = if !nonneg && d2 > tiny { (big_c + cj).max(T::zero()) / d2 } else { inf };
                    gam[j] = if blocked[j] { inf } else { g1.min(g2) };
                }
                if banned != usize::MAX {
                    gam[banned] = inf;
                }
                for (j, &g) in gam.iter().enumerate() {
                    if g < gamma {
                        gamma = g;
                        event = 1;
                        who = j;
                    }
                }
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
                    blocked[who] = true;
                }
                _ => {
                    let j = active.remove(who);
                    blocked[j] = false;
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

    /// On random problems (sizes around and between the blocks of the pass, signed and
    /// non-negative), the current homotopy takes the same number of steps to the same code as the
    /// reference, and the certified result satisfies the KKT conditions.
    #[test]
    fn same_path_as_reference_and_kkt() {
        use crate::encoder::isa_test_support::problem;
        for (d, h, seed) in [(24, 64, 1u64), (20, 37, 2), (40, 200, 3), (12, 16, 4), (30, 100, 5), (8, 5, 6)] {
            let (p, signals) = problem::<f64>(d, h, 12, seed);
            for nonneg in [false, true] {
                for lambda in [0.002, 0.02, 0.2] {
                    let lars = Lars::new(lambda).nonneg(nonneg);
                    for (x, c) in &signals {
                        let steps = lars.steps(&p);
                        let (mut s_new, mut s_ref) = (vec![0.0; h], vec![0.0; h]);
                        let a = lars_core(&p, c, lambda, nonneg, steps, &mut s_new, None);
                        let b = ref_lars_core(&p, c, lambda, nonneg, steps, &mut s_ref, None);
                        assert_eq!(a, b, "d {d} h {h} nonneg {nonneg} lambda {lambda}: steps");
                        let err = s_new.iter().zip(&s_ref).map(|(u, v)| (u - v).abs()).fold(0.0, f64::max);
                        assert!(err <= 1e-10, "d {d} h {h} nonneg {nonneg} lambda {lambda}: codes differ by {err}");
                        let mut s = vec![0.0; h];
                        let info = lars.encode_prepared(&p, x, c, &mut s).unwrap();
                        assert!(info.duality_gap.unwrap() <= 1e-9 * (0.5 * crate::encoder::dot(x, x)).max(1e-300));
                        // KKT: |(c − G s)_j| ≤ λ off the support, = λ·sign(s_j) on it
                        let mut r = c.clone();
                        for (j, &v) in s.iter().enumerate() {
                            if v != 0.0 {
                                axpy(-v, p.gram_col(j), &mut r);
                            }
                        }
                        for j in 0..h {
                            let viol = if s[j] != 0.0 {
                                (r[j] - lambda * s[j].signum()).abs()
                            } else if nonneg {
                                (r[j] - lambda).max(0.0)
                            } else {
                                (r[j].abs() - lambda).max(0.0)
                            };
                            assert!(
                                viol <= 1e-9,
                                "d {d} h {h} nonneg {nonneg} lambda {lambda}: KKT violated by {viol} at {j}"
                            );
                            assert!(!nonneg || s[j] >= 0.0);
                        }
                    }
                }
            }
        }
    }
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
                let b = lars_core_impl::<T, false>(&p, c, lars.lambda, nonneg, steps, &mut h_port, None);
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
