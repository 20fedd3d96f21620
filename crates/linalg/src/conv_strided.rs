//! Strided `f32` convolutions (stride > 1 in either direction) on the direct SIMD kernels of
//! [`crate::conv_direct`], through a polyphase ("space-to-depth") layout instead of im2col.
//!
//! With stride `(sh, sw)` the zero-padded input `xp` (`hp × wp`) is split into phase planes
//! `P_ab[m, n] = xp[m·sh + a, n·sw + b]` of `h2 × w2` (`h2 = ⌈hp / sh⌉`, `w2 = ⌈wp / sw⌉`), all with
//! the row length `w2`. Kernel tap `(u, v)` then reads phase `(u mod sh, v mod sw)` shifted by
//! `(u div sh, v div sw)`: `y[i, j] = Σ_c Σ_(u,v) w[u, v] · P_(u mod sh, v mod sw)[i + u div sh,
//! j + v div sw]`, a sum of shifted planes as in the stride-1 kernels, with one offset per tap and
//! no wasted multiply-adds. Small planes are stacked, several images one after another in each
//! phase plane, so that the kernels' 48-position blocks are not mostly padding.
//!
//! - forward: the forward kernel on the phase planes;
//! - weight gradient: the weight-gradient kernel on the phase planes and the output gradient
//!   laid out in rows of `w2`;
//! - input gradient: per input phase `(a, b)`, the forward kernel on the zero-padded output
//!   gradient with the flipped sub-kernel `w[s·sh + a, t·sw + b]` (the adjoint of a strided
//!   convolution is a sum of stride-1 convolutions, one per phase), whose results interleave into
//!   the input gradient. Every input position belongs to exactly one phase, so each element is
//!   written once.
//!
//! Every output element is a sum in a fixed order (channels, then taps) that does not depend on
//! the stacking or the thread count; weight gradients are summed over fixed groups of images.

use crate::conv::GROUP;
use crate::conv_direct::{
    CH, Isa, Kern, OB, WO, at_least, forward_weights, fwd_kernel, sum_groups, sum16, wgrad_kernel, with_scratch,
};
use rayon::prelude::*;

/// A strided convolution in the conv view: image `(c, h, w)`, kernel `(o, c, kh, kw)`, stride,
/// padding, output `(o, ho, wo)`, and the instruction set of the kernels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided {
    pub c: usize,
    pub o: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
    pub isa: Isa,
}

/// Positions a stacked task aims at (fewer images per task once a plane alone is this large).
const STACK_POSITIONS: usize = 1024;
/// Most images stacked into one task.
const STACK_MAX: usize = 8;

/// Images per stacked task for `n` images with planes of `ps` positions: a function of the shape
/// only, so results never depend on the thread count.
fn stack(ps: usize, n: usize) -> usize {
    let most = (STACK_POSITIONS / ps.max(1)).clamp(1, STACK_MAX);
    // as many tasks as `most` gives, of equal sizes
    n.div_ceil(n.div_ceil(most).max(1)).max(1)
}

/// `x` rounded up to a multiple of `m`.
fn round(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// `dst[k] = src[idx[k]]` for every `k`.
fn gather(src: &[f32], idx: &[usize], dst: &mut [f32]) {
    for (d, &i) in dst.iter_mut().zip(idx) {
        *d = src[i];
    }
}

/// The lanes of an `l`-lane vector starting at column `start` whose column lies in `0..w`.
fn lanes(start: isize, w: isize, l: isize) -> u16 {
    let lo = (-start).clamp(0, l);
    let hi = (w - start).clamp(0, l);
    if hi <= lo { 0 } else { (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16 }
}

/// The masks of the stride-2 column kernels with `l`-lane vectors for rows of `w` values with `pw`
/// zeros on the left and `w2` columns per phase: per block of `l` phase columns `n0`, the image
/// lanes of the two `l`-lane halves of padded columns `2·n0 − pw ..` and the phase lanes
/// `n0 .. min(n0 + l, w2)`.
fn masks2(w: usize, pw: usize, w2: usize, l: usize) -> Vec<(isize, u16, u16, u16)> {
    (0..w2)
        .step_by(l)
        .map(|n0| {
            let x0 = (2 * n0) as isize - pw as isize;
            let keep = (w2 - n0).min(l);
            let (wi, li) = (w as isize, l as isize);
            (x0, lanes(x0, wi, li), lanes(x0 + li, wi, li), ((1u32 << keep) - 1) as u16)
        })
        .collect()
}

/// Lanes of [`deal2`] and [`merge2`] for `isa`.
fn lanes_of(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
    }
}

/// Row `at .. at + len` of the phase planes `(a, 0)` and `(a, 1)` of one image, whose phase planes
/// start `stride` values apart in `d` (phase `a·2 + b` at `(a·2 + b)·stride`).
fn phase_rows(d: &mut [f32], stride: usize, a: usize, at: usize, len: usize) -> (&mut [f32], &mut [f32]) {
    let (p0, p1) = d[2 * a * stride..].split_at_mut(stride);
    (&mut p0[at..at + len], &mut p1[at..at + len])
}

/// [`deal2_avx512`] or [`deal2_avx2`] by `isa`, after checking their slice bounds.
fn deal2(
    isa: Isa,
    src: &[f32],
    hwp: (usize, usize, usize),
    hwn: (usize, usize, usize),
    masks: &[(isize, u16, u16, u16)],
    (d, stride): (&mut [f32], usize),
) {
    let ((h, w, _), (h2, w2, nah)) = (hwp, hwn);
    assert!(src.len() == h * w && h2 * w2 <= stride && d.len() >= (2 * nah - 1) * stride + h2 * w2);
    assert!(masks.iter().map(|m| m.3.count_ones() as usize).sum::<usize>() == w2);
    debug_assert!(isa.level().on_cpu());
    match isa {
        // SAFETY: `isa` is an instruction set the CPU has (a `Strided` is built only with one that
        // `conv_direct::supports` admitted); the slice bounds were checked above, and the masks
        // (built by `masks2` for this row geometry) admit only columns inside each row.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { deal2_avx512(src, hwp, hwn, masks, (d, stride)) },
        // SAFETY: as above, for AVX2.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { deal2_avx2(src, hwp, hwn, masks, (d, stride)) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("no `Strided` exists off x86-64"),
    }
}

/// [`merge2_avx512`] or [`merge2_avx2`] by `isa`, after checking their slice bounds.
fn merge2(
    isa: Isa,
    s: [&[f32]; 4],
    wd: usize,
    hwp: (usize, usize, usize),
    masks: &[(isize, u16, u16, u16)],
    dst: &mut [f32],
) {
    let (h, w, ph) = hwp;
    let w2: usize = masks.iter().map(|m| m.3.count_ones() as usize).sum();
    let rows = (h + ph).div_ceil(2);
    assert!(dst.len() == h * w && s.iter().all(|p| p.len() >= rows.saturating_sub(1) * wd + w2));
    debug_assert!(isa.level().on_cpu());
    match isa {
        // SAFETY: as in `deal2`: the CPU has `isa`, the bounds were checked above, and the masks
        // admit only columns inside each row.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { merge2_avx512(s, wd, hwp, masks, dst) },
        // SAFETY: as above, for AVX2.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { merge2_avx2(s, wd, hwp, masks, dst) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("no `Strided` exists off x86-64"),
    }
}

/// An AVX2 lane mask (all ones in the lanes of `bits`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mask8(bits: u16) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let b = _mm256_and_si256(_mm256_set1_epi32(bits as i32), lane);
    _mm256_cmpeq_epi32(b, lane)
}

/// Store the lanes of `v` whose bit is set in `bits` at `p + lane`: one plain store when all
/// eight are, else lane by lane from a copy (AVX2's masked store, `vmaskmovps`, is microcoded and
/// slow on AMD's cores, which made the AVX2 split 2.5–3× slower than the AVX-512 one).
///
/// # Safety
/// The CPU must support AVX; `p + lane` must be valid for writes for every set bit (the pointer
/// may point outside the destination where no bit is set: it is formed with wrapping arithmetic).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store_lanes(p: *mut f32, bits: u16, v: std::arch::x86_64::__m256) {
    use std::arch::x86_64::*;
    if bits & 0xff == 0xff {
        // SAFETY: all eight lanes p .. p + 8 are valid for writes (every bit is set).
        unsafe { _mm256_storeu_ps(p, v) };
        return;
    }
    let mut t = [0.0f32; 8];
    // SAFETY: `t` holds eight values.
    unsafe { _mm256_storeu_ps(t.as_mut_ptr(), v) };
    for (lane, &x) in t.iter().enumerate() {
        if bits >> lane & 1 == 1 {
            // SAFETY: the lane's bit is set, so p + lane is valid for writes (the caller's bound).
            unsafe { *p.wrapping_add(lane) = x };
        }
    }
}

/// [`deal2_avx512`] with 8-lane AVX2 vectors: per 16 padded columns, two masked loads, two
/// in-lane shuffles and two cross-lane permutes.
///
/// # Safety
/// The CPU must support AVX2; the bounds that [`deal2`] checks must hold, with `masks` from
/// `masks2(w, pw, w2, 8)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn deal2_avx2(
    src: &[f32],
    (h, w, ph): (usize, usize, usize),
    (h2, w2, nah): (usize, usize, usize),
    masks: &[(isize, u16, u16, u16)],
    (d, stride): (&mut [f32], usize),
) {
    use std::arch::x86_64::*;
    let vm: Vec<[__m256i; 3]> = masks.iter().map(|&(_, m0, m1, mk)| [mask8(m0), mask8(m1), mask8(mk)]).collect();
    for m in 0..h2 {
        for a in 0..nah {
            let y = (2 * m + a) as isize - ph as isize;
            let (r0, r1) = phase_rows(d, stride, a, m * w2, w2);
            if y < 0 || y >= h as isize {
                r0.fill(0.0);
                r1.fill(0.0);
                continue;
            }
            let row = src[y as usize * w..].as_ptr();
            for (k, (&(x0, m0, m1, mk), v)) in masks.iter().zip(&vm).enumerate() {
                // SAFETY: unmasked lanes read columns x0 + lane in 0..w of image row y, inside
                // `src`; masked-off lanes are not read and raise no fault (all-masked loads are
                // skipped). The pointers are formed with wrapping arithmetic.
                let (lo, hi) = unsafe {
                    (
                        if m0 == 0 { _mm256_setzero_ps() } else { _mm256_maskload_ps(row.wrapping_offset(x0), v[0]) },
                        if m1 == 0 {
                            _mm256_setzero_ps()
                        } else {
                            _mm256_maskload_ps(row.wrapping_offset(x0 + 8), v[1])
                        },
                    )
                };
                let ev = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
                let od = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
                let ev = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(ev)));
                let od = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(od)));
                // SAFETY: lanes 0..keep at 8k are written, 8k + keep <= w2 = r0.len() = r1.len().
                unsafe {
                    store_lanes(r0.as_mut_ptr().add(8 * k), mk, ev);
                    store_lanes(r1.as_mut_ptr().add(8 * k), mk, od);
                }
            }
        }
    }
}

/// [`merge2_avx512`] with 8-lane AVX2 vectors (unpack and cross-lane permute).
///
/// # Safety
/// The CPU must support AVX2; the bounds that [`merge2`] checks must hold, with `masks` from
/// `masks2(w, pw, (w + pw).div_ceil(2), 8)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn merge2_avx2(
    s: [&[f32]; 4],
    wd: usize,
    (_h, w, ph): (usize, usize, usize),
    masks: &[(isize, u16, u16, u16)],
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    let vm: Vec<[__m256i; 3]> = masks.iter().map(|&(_, m0, m1, mk)| [mask8(m0), mask8(m1), mask8(mk)]).collect();
    for (y, out) in dst.chunks_exact_mut(w).enumerate() {
        let (a, m) = ((y + ph) % 2, (y + ph) / 2);
        let (p0, p1) = (s[a * 2][m * wd..].as_ptr(), s[a * 2 + 1][m * wd..].as_ptr());
        let o = out.as_mut_ptr();
        for (k, (&(x0, m0, m1, _), v)) in masks.iter().zip(&vm).enumerate() {
            // SAFETY: lanes 0..keep at 8k of phase row m are read, inside both slices (checked by
            // `merge2`).
            let (e, f) = unsafe { (_mm256_maskload_ps(p0.add(8 * k), v[2]), _mm256_maskload_ps(p1.add(8 * k), v[2])) };
            let lo = _mm256_unpacklo_ps(e, f);
            let hi = _mm256_unpackhi_ps(e, f);
            // SAFETY: only lanes whose column x0 + lane lies in 0..w are written, inside `out`;
            // the pointers are formed with wrapping arithmetic as they may point outside it.
            unsafe {
                if m0 != 0 {
                    store_lanes(o.wrapping_offset(x0), m0, _mm256_permute2f128_ps::<0x20>(lo, hi));
                }
                if m1 != 0 {
                    store_lanes(o.wrapping_offset(x0 + 8), m1, _mm256_permute2f128_ps::<0x31>(lo, hi));
                }
            }
        }
    }
}

/// One image plane `src` (`h` rows of `w`) split into the four phase planes of stride 2 × 2:
/// `d[(a·2 + b)·stride + m·w2 + n] = xpad[2m + a, 2n + b]` for `m < h2`, `n < w2`, rows `a < nah`
/// (AVX-512: per 32 padded columns, two masked loads and two permutes).
///
/// # Safety
/// The CPU must support AVX-512F; `src.len() == h·w`, `masks == masks2(w, pw, w2, 16)`, and `d`
/// holds the `2·nah` phase planes of `h2·w2 <= stride` values each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn deal2_avx512(
    src: &[f32],
    (h, w, ph): (usize, usize, usize),
    (h2, w2, nah): (usize, usize, usize),
    masks: &[(isize, u16, u16, u16)],
    (d, stride): (&mut [f32], usize),
) {
    use std::arch::x86_64::*;
    assert!(src.len() == h * w && h2 * w2 <= stride && d.len() >= (2 * nah - 1) * stride + h2 * w2);
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for m in 0..h2 {
        for a in 0..nah {
            let y = (2 * m + a) as isize - ph as isize;
            let (r0, r1) = phase_rows(d, stride, a, m * w2, w2);
            if y < 0 || y >= h as isize {
                r0.fill(0.0);
                r1.fill(0.0);
                continue;
            }
            let row = src[y as usize * w..].as_ptr();
            for (k, &(x0, m0, m1, mk)) in masks.iter().enumerate() {
                // SAFETY: unmasked lanes read columns x0 + lane in 0..w of image row y, inside
                // `src`; masked-off lanes are not read and raise no fault. The pointers are formed
                // with wrapping arithmetic, as they may point outside the row where masked.
                // (an all-masked load is skipped: masked-off lanes on another page cost an assist)
                let (lo, hi) = unsafe {
                    (
                        if m0 == 0 { _mm512_setzero_ps() } else { _mm512_maskz_loadu_ps(m0, row.wrapping_offset(x0)) },
                        if m1 == 0 {
                            _mm512_setzero_ps()
                        } else {
                            _mm512_maskz_loadu_ps(m1, row.wrapping_offset(x0 + 16))
                        },
                    )
                };
                // SAFETY: lanes 0..keep at 16k are written, 16k + keep <= w2 = r0.len() = r1.len().
                unsafe {
                    _mm512_mask_storeu_ps(r0.as_mut_ptr().add(16 * k), mk, _mm512_permutex2var_ps(lo, evens, hi));
                    _mm512_mask_storeu_ps(r1.as_mut_ptr().add(16 * k), mk, _mm512_permutex2var_ps(lo, odds, hi));
                }
            }
        }
    }
}

/// The inverse of [`deal2_avx512`] for the input gradient: image row `y` of `dst` (`h` rows of `w`)
/// from the phase rows `s[a·2 + b][m·wd ..]` with `2m + a = y + ph`, column `x` from phase
/// `(x + pw) mod 2`, position `(x + pw) div 2` (AVX-512).
///
/// # Safety
/// The CPU must support AVX-512F; `dst.len() == h·w`, `masks == masks2(w, pw, w2)` with
/// `w2 = (w + pw).div_ceil(2)`, and every row `m = (y + ph) div 2` of every phase has `w2` values:
/// `s[i].len() >= m·wd + w2`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn merge2_avx512(
    s: [&[f32]; 4],
    wd: usize,
    (h, w, ph): (usize, usize, usize),
    masks: &[(isize, u16, u16, u16)],
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    let w2: usize = masks.iter().map(|m| m.3.count_ones() as usize).sum();
    let rows = (h + ph).div_ceil(2);
    assert!(dst.len() == h * w && s.iter().all(|p| p.len() >= rows.saturating_sub(1) * wd + w2));
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (y, out) in dst.chunks_exact_mut(w).enumerate() {
        let (a, m) = ((y + ph) % 2, (y + ph) / 2);
        let (p0, p1) = (s[a * 2][m * wd..].as_ptr(), s[a * 2 + 1][m * wd..].as_ptr());
        let o = out.as_mut_ptr();
        for (k, &(x0, m0, m1, mk)) in masks.iter().enumerate() {
            // SAFETY: lanes 0..keep at 16k of phase row m are read, inside both slices (asserted).
            let (u, v) =
                unsafe { (_mm512_maskz_loadu_ps(mk, p0.add(16 * k)), _mm512_maskz_loadu_ps(mk, p1.add(16 * k))) };
            // SAFETY: only lanes whose column x0 + lane lies in 0..w are written, inside `out`;
            // the pointers are formed with wrapping arithmetic as they may point outside it.
            unsafe {
                if m0 != 0 {
                    _mm512_mask_storeu_ps(o.wrapping_offset(x0), m0, _mm512_permutex2var_ps(u, lo_idx, v));
                }
                if m1 != 0 {
                    _mm512_mask_storeu_ps(o.wrapping_offset(x0 + 16), m1, _mm512_permutex2var_ps(u, hi_idx, v));
                }
            }
        }
    }
}

/// The layout of `g` images of one convolution in phase planes: per channel, phase after phase,
/// and within a phase image after image (`ps` positions each).
struct Layout {
    /// Images stacked.
    g: usize,
    /// Channel-plane stride (a multiple of 16, with room for the last block's overreach).
    s: usize,
    /// Output positions per plane, rounded up to the kernel's block.
    pqr: usize,
    /// Offset of each kernel tap `(u, v)`, in the order `u·kw + v`.
    offs: Vec<usize>,
}

impl Strided {
    /// Row phases any tap uses.
    fn nah(&self) -> usize {
        self.sh.min(self.kh)
    }
    /// Column phases any tap uses.
    fn naw(&self) -> usize {
        self.sw.min(self.kw)
    }
    fn h2(&self) -> usize {
        (self.h + 2 * self.ph).div_ceil(self.sh)
    }
    fn w2(&self) -> usize {
        (self.w + 2 * self.pw).div_ceil(self.sw)
    }
    /// Positions of one phase plane of one image.
    fn ps(&self) -> usize {
        self.h2() * self.w2()
    }
    fn taps(&self) -> usize {
        self.kh * self.kw
    }
    fn kern(&self, c: usize, l: &Layout) -> Kern {
        Kern { c, s: l.s, pqr: l.pqr, isa: self.isa }
    }

    /// The phase-plane layout of `g` stacked images whose outputs are read in blocks of `block`.
    fn layout(&self, g: usize, block: usize) -> Layout {
        let (w2, ps, naw) = (self.w2(), self.ps(), self.naw());
        let offs: Vec<usize> = (0..self.kh)
            .flat_map(|u| {
                (0..self.kw)
                    .map(move |v| ((u % self.sh) * naw + v % self.sw) * g * ps + (u / self.sh) * w2 + v / self.sw)
            })
            .collect();
        let pq = (g - 1) * ps + self.ho * w2;
        let pqr = round(pq, block);
        let max_off = offs.iter().copied().max().unwrap_or(0);
        let s = round((self.nah() * naw * g * ps).max(pqr + max_off), 16);
        Layout { g, s, pqr, offs }
    }

    /// `true` when the split deals image rows to column phases with permutes (stride 2 × 2 and a
    /// kernel at least 2 wide), instead of gathering through [`Strided::split_table`].
    fn split_by_pairs(&self) -> bool {
        self.sh == 2 && self.sw == 2 && self.naw() == 2
    }

    /// Where each element of one image's phase planes comes from: `tab[phase·ps + m·w2 + n]` is
    /// the index into the image plane (`h·w`) of `xp[m·sh + a, n·sw + b]`, or `h·w` (a zero) in
    /// the padding (empty when [`Strided::split_by_pairs`]).
    fn split_table(&self) -> Vec<usize> {
        let (w2, naw, hw) = (self.w2(), self.naw(), self.h * self.w);
        if self.split_by_pairs() {
            return Vec::new(); // the stride-2 × 2 split reads rows, not a table
        }
        let mut tab = Vec::with_capacity(self.nah() * naw * self.ps());
        for a in 0..self.nah() {
            for b in 0..naw {
                for m in 0..self.h2() {
                    for n in 0..w2 {
                        let y = (m * self.sh + a) as isize - self.ph as isize;
                        let x = (n * self.sw + b) as isize - self.pw as isize;
                        let inside = y >= 0 && x >= 0 && (y as usize) < self.h && (x as usize) < self.w;
                        tab.push(if inside { y as usize * self.w + x as usize } else { hw });
                    }
                }
            }
        }
        tab
    }

    /// Split `l.g` images `x` (each `(c, h, w)`) into zero-padded phase planes `xp` (`c` planes of
    /// stride `l.s`) through the table of [`Strided::split_table`], writing every element of `xp`
    /// once (one flat loop per image plane: the planes are small, and a loop per row would cost
    /// more than its few elements).
    fn split(&self, l: &Layout, tab: &[usize], x: &[f32], xp: &mut [f32]) {
        let (ps, hw) = (self.ps(), self.h * self.w);
        let phases = self.nah() * self.naw();
        debug_assert_eq!(xp.len(), self.c * l.s);
        debug_assert_eq!(x.len(), l.g * self.c * hw);
        if self.split_by_pairs() {
            let (w2, h2, nah) = (self.w2(), self.h2(), self.nah());
            let masks = masks2(self.w, self.pw, w2, lanes_of(self.isa));
            for (c, plane) in xp.chunks_exact_mut(l.s).enumerate() {
                let (used, tail) = plane.split_at_mut(phases * l.g * ps);
                tail.fill(0.0);
                for img in 0..l.g {
                    let xc = &x[(img * self.c + c) * hw..(img * self.c + c + 1) * hw];
                    // this image's phase planes: phase-major, then image, so l.g · ps apart
                    let d = (&mut used[img * ps..], l.g * ps);
                    deal2(self.isa, xc, (self.h, self.w, self.ph), (h2, w2, nah), &masks, d);
                }
            }
            return;
        }
        assert_eq!(tab.len(), phases * ps);
        let mut ext = vec![0.0f32; hw + 1];
        for (c, plane) in xp.chunks_exact_mut(l.s).enumerate() {
            let (used, tail) = plane.split_at_mut(phases * l.g * ps);
            tail.fill(0.0);
            for img in 0..l.g {
                ext[..hw].copy_from_slice(&x[(img * self.c + c) * hw..(img * self.c + c + 1) * hw]);
                for (phase, t) in tab.chunks_exact(ps).enumerate() {
                    gather(&ext, t, &mut used[(phase * l.g + img) * ps..(phase * l.g + img + 1) * ps]);
                }
            }
        }
    }
}

/// `true` when the forward kernels' blocks of [`OB`] output channels are mostly used: with fewer
/// than 6 output channels in a block of 8 the im2col + GEMM path does less wasted work.
pub(crate) fn forward_fits(st: &Strided) -> bool {
    3 * st.o >= 2 * st.o.div_ceil(OB) * OB
}

/// `true` when the input gradient's blocks of [`OB`] image channels are mostly used (see
/// [`forward_fits`]).
pub(crate) fn input_grad_fits(st: &Strided) -> bool {
    3 * st.c >= 2 * st.c.div_ceil(OB) * OB
}

/// Forward convolution of `n` images: `y (n, o, ho, wo) = w ⋆ x + bias` with `w` as `(o, c, kh, kw)`.
pub(crate) fn forward(st: &Strided, n: usize, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (opad, wt, b) = forward_weights(st.c, st.o, st.taps(), w, bias);
    let g = stack(st.ps(), n);
    let tab = st.split_table();
    let (il, ol, hw) = (st.c * st.h * st.w, st.o * st.ho * st.wo, st.ho * st.wo);
    let mut y = crate::buffers::zeros::<f32>(n * ol);
    let one = |xs: &[f32], ys: &mut [f32], bufs: &mut (Vec<f32>, Vec<f32>)| {
        let l = st.layout(xs.len() / il, CH);
        let xp = at_least(&mut bufs.0, st.c * l.s);
        st.split(&l, &tab, xs, xp);
        let yp = at_least(&mut bufs.1, opad * l.pqr);
        fwd_kernel(&st.kern(st.c, &l), xp, &wt, &b, opad, &l.offs, yp);
        let ps = st.ps();
        for (img, yi) in ys.chunks_exact_mut(ol).enumerate() {
            for (o, plane) in yi.chunks_exact_mut(hw).enumerate() {
                for (i, row) in plane.chunks_exact_mut(st.wo).enumerate() {
                    let at = o * l.pqr + img * ps + i * st.w2();
                    row.copy_from_slice(&yp[at..at + st.wo]);
                }
            }
        }
    };
    if n > g {
        crate::product::keep_warm();
        y.par_chunks_mut(g * ol).zip(x.par_chunks(g * il)).for_each(|(ys, xs)| with_scratch(|bufs| one(xs, ys, bufs)));
    } else if n > 0 {
        with_scratch(|bufs| one(x, &mut y, bufs));
    }
    y
}

/// Weight gradient: `dw (o, c, kh, kw) = Σ_n dy_n ⋆ x_n` (overwritten), and with `db` the bias
/// gradient `db[o] = Σ_n Σ_p dy_n[o, p]` (overwritten).
pub(crate) fn backward_weight(st: &Strided, n: usize, x: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>) {
    let (taps, k) = (st.taps(), st.c * st.taps());
    let (il, ol, w2) = (st.c * st.h * st.w, st.o * st.ho * st.wo, st.w2());
    let l = st.layout(1, 16);
    let tab = st.split_table();
    let opad = st.o.div_ceil(WO) * WO;
    // images per group: enough positions that the register blocks' final reductions are a small
    // part of the work (a function of the shape only, so the sums do not depend on threads)
    let per = (STACK_POSITIONS / l.pqr).clamp(GROUP, 4 * GROUP);
    let groups = n.div_ceil(per);
    let with_bias = db.is_some();
    let group = |gi: usize, bufs: &mut (Vec<f32>, Vec<f32>)| -> Vec<f32> {
        let (lo, hi) = (gi * per, ((gi + 1) * per).min(n));
        let (xs, ds) = (st.c * l.s, opad * l.pqr);
        let xp = at_least(&mut bufs.0, (hi - lo) * xs);
        let dyp = at_least(&mut bufs.1, (hi - lo) * ds);
        for i in lo..hi {
            st.split(&l, &tab, &x[i * il..(i + 1) * il], &mut xp[(i - lo) * xs..(i - lo + 1) * xs]);
            // dy_i in rows of w2, zeros in the unused columns, the tail and the padded channels
            for (o, plane) in dyp[(i - lo) * ds..(i - lo + 1) * ds].chunks_exact_mut(l.pqr).enumerate() {
                if o >= st.o {
                    plane.fill(0.0);
                    continue;
                }
                let src = &dy[i * ol + o * st.ho * st.wo..i * ol + (o + 1) * st.ho * st.wo];
                // one fill per plane, then the rows (many short fills cost more than the zeros)
                plane.fill(0.0);
                for (row, s) in plane.chunks_exact_mut(w2).zip(src.chunks_exact(st.wo)) {
                    row[..st.wo].copy_from_slice(s);
                }
            }
        }
        let mut part = vec![0.0f32; opad * k + if with_bias { st.o } else { 0 }];
        let (wpart, bpart) = part.split_at_mut(opad * k);
        wgrad_kernel(&st.kern(st.c, &l), hi - lo, xp, dyp, opad, taps, &l.offs, wpart);
        for img in dyp.chunks_exact(ds) {
            for (b, plane) in bpart.iter_mut().zip(img.chunks_exact(l.pqr)) {
                *b += sum16(plane);
            }
        }
        part
    };
    sum_groups(groups, group, st.o * k, opad * k, dw, db);
}

/// One input phase of the input gradient: its flipped sub-kernel as `[o][tap][c]` (`c`
/// padded to whole blocks) and the offsets of its taps into the padded output gradient.
struct Phase {
    wt: Vec<f32>,
    offs: Vec<usize>,
}

/// Input gradient: `dx (n, c, h, w)` from `dy (n, o, ho, wo)`.
pub(crate) fn backward_input(st: &Strided, n: usize, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (h2, w2) = (st.h2(), st.w2());
    // dy zero-padded by (pt, pl) on top and left into planes of rd × wd
    let (pt, pl) = (st.kh.div_ceil(st.sh) - 1, st.kw.div_ceil(st.sw) - 1);
    let wd = w2.max(st.wo) + pl;
    let rd = h2.max(st.ho) + pt;
    let psd = rd * wd;
    let cpad = st.c.div_ceil(OB) * OB;
    let phases: Vec<Phase> = (0..st.sh)
        .flat_map(|a| (0..st.sw).map(move |b| (a, b)))
        .map(|(a, b)| {
            let ka = if a < st.kh { (st.kh - a).div_ceil(st.sh) } else { 0 };
            let kb = if b < st.kw { (st.kw - b).div_ceil(st.sw) } else { 0 };
            let taps = ka * kb;
            let mut wt = vec![0.0f32; st.o * taps * cpad];
            let mut offs = Vec::with_capacity(taps);
            for s in 0..ka {
                for t in 0..kb {
                    let tap = s * kb + t;
                    offs.push((pt - s) * wd + pl - t);
                    let (u, v) = (s * st.sh + a, t * st.sw + b);
                    for o in 0..st.o {
                        for c in 0..st.c {
                            wt[(o * taps + tap) * cpad + c] = w[((o * st.c + c) * st.kh + u) * st.kw + v];
                        }
                    }
                }
            }
            Phase { wt, offs }
        })
        .collect();
    let zero_bias = vec![0.0f32; cpad];
    let g = stack(psd, n);
    // stride 2 × 2 interleaves phase rows with permutes
    let masks = (st.sh == 2 && st.sw == 2).then(|| masks2(st.w, st.pw, (st.w + st.pw).div_ceil(2), lanes_of(st.isa)));
    // dx[y, x] sits in phase ((y + ph) mod sh, (x + pw) mod sw) at row (y + ph) div sh, column
    // (x + pw) div sw of its plane: its offset from the start of channel c of image img
    let gl = g.min(n).max(1);
    let pqr = round((gl - 1) * psd + h2 * wd, CH);
    let s = round((gl * psd).max(pqr + pt * wd + pl), 16);
    let kern = Kern { c: st.o, s, pqr, isa: st.isa };
    let from: Vec<usize> = if masks.is_some() {
        Vec::new() // stride 2 × 2 interleaves rows instead
    } else {
        (0..st.h)
            .flat_map(|y| (0..st.w).map(move |x| (y + st.ph, x + st.pw)))
            .map(|(yy, xx)| ((yy % st.sh) * st.sw + xx % st.sw) * cpad * pqr + (yy / st.sh) * wd + xx / st.sw)
            .collect()
    };
    let (il, ol) = (st.c * st.h * st.w, st.o * st.ho * st.wo);
    let mut dx = crate::buffers::zeros::<f32>(n * il);
    let one = |dys: &[f32], dxs: &mut [f32], bufs: &mut (Vec<f32>, Vec<f32>)| {
        let imgs = dys.len() / ol;
        let dp = at_least(&mut bufs.0, st.o * s);
        for (o, plane) in dp.chunks_exact_mut(s).enumerate() {
            let (used, tail) = plane.split_at_mut(imgs * psd);
            tail.fill(0.0);
            // one fill per channel plane, then the rows (many short fills cost more than the zeros)
            used.fill(0.0);
            for (img, p) in used.chunks_exact_mut(psd).enumerate() {
                let src = &dys[img * ol + o * st.ho * st.wo..img * ol + (o + 1) * st.ho * st.wo];
                for (row, s) in p[pt * wd..].chunks_exact_mut(wd).zip(src.chunks_exact(st.wo)) {
                    row[pl..pl + st.wo].copy_from_slice(s);
                }
            }
        }
        // every phase's result, [phase][c][position]; zeros for phases no tap reaches
        let yp = at_least(&mut bufs.1, phases.len() * cpad * pqr);
        for (ph, yph) in phases.iter().zip(yp.chunks_exact_mut(cpad * pqr)) {
            if ph.offs.is_empty() {
                yph.fill(0.0);
            } else {
                fwd_kernel(&kern, dp, &ph.wt, &zero_bias, cpad, &ph.offs, yph);
            }
        }
        for (img, dxi) in dxs.chunks_exact_mut(il).enumerate() {
            for (c, plane) in dxi.chunks_exact_mut(st.h * st.w).enumerate() {
                let base = c * pqr + img * psd;
                if let Some(masks) = &masks {
                    let ph_at = |k: usize| &yp[k * cpad * pqr + base..];
                    merge2(st.isa, [ph_at(0), ph_at(1), ph_at(2), ph_at(3)], wd, (st.h, st.w, st.ph), masks, plane);
                    continue;
                }
                gather(&yp[base..], &from, plane);
            }
        }
    };
    if n > g {
        crate::product::keep_warm();
        dx.par_chunks_mut(g * il)
            .zip(dy.par_chunks(g * ol))
            .for_each(|(dxs, dys)| with_scratch(|bufs| one(dys, dxs, bufs)));
    } else if n > 0 {
        with_scratch(|bufs| one(dy, &mut dx, bufs));
    }
    dx
}
