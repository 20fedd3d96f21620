//! Direct SIMD kernels for stride-1 `f32` convolutions (any kernel size, any padding), used by
//! [`crate::conv`] instead of im2col + GEMM on x86-64 CPUs with AVX-512F (16 lanes) or AVX2 + FMA
//! (8 lanes, half-size register blocks), chosen at run time.
//!
//! The input is zero-padded into planes of row length `Wp = W + 2p_w` and the output is computed
//! in the same row length ("padded-width" layout: `kw − 1` unused columns per row). In that layout
//! the input seen by kernel tap `(u, v)` is the padded plane shifted by `u·Wp + v`, so an output
//! vector of 16 consecutive positions is a sum of `C·kh·kw` broadcast-weight × shifted-input
//! products with no index arithmetic inside the loop and no im2col matrix:
//!
//! - forward: a register block of 8 output channels × 48 positions (24 accumulators; AVX2: 4 × 24)
//!   is filled
//!   by loading 3 input vectors and broadcasting 8 weights per `(c, tap)`;
//! - input gradient: the forward kernel on the zero-padded output gradient with the flipped,
//!   transposed weight (a stride-1 convolution's adjoint is a stride-1 convolution);
//! - weight gradient: a register block of 4 (AVX2: 2) output channels × 6 `(c, tap)` pairs accumulates dot
//!   products over all positions of a group of images, reduced once at the end.
//!
//! Every output element is produced by one task in a fixed order, and weight gradients are summed
//! over fixed groups of images in a fixed order, so results do not depend on the thread count.

use crate::conv::{GROUP, Stride1};
use rayon::prelude::*;
use std::any::TypeId;
use std::cell::RefCell;
use std::mem::MaybeUninit;

thread_local! {
    /// Two scratch buffers per thread, kept between calls: the padded copies and padded-width
    /// outputs are hundreds of kilobytes, and allocating them afresh on every call costs page
    /// faults (large blocks are mapped and unmapped by the allocator).
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Run `f` with this thread's scratch buffers (fresh ones if they are in use further up the stack).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut (Vec<f32>, Vec<f32>)) -> R) -> R {
    let mut bufs = SCRATCH.with(|s| s.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default());
    let r = f(&mut bufs);
    SCRATCH.with(|s| {
        if let Ok(mut b) = s.try_borrow_mut() {
            *b = bufs;
        }
    });
    r
}

/// `n` elements of a scratch vector starting at its first 64-byte boundary (a cache line), the
/// vector grown (zero-filled) only when it is shorter: the callers overwrite every element they
/// use, and never shrinking means that alternating layer sizes do not re-zero the tail on every
/// call. The alignment makes the kernels' vector loads split cache lines in the same pattern in
/// every process, whatever address the allocator returned.
pub(crate) fn at_least(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    const LINE: usize = 64 / std::mem::size_of::<f32>();
    if v.len() < n + LINE - 1 {
        v.resize(n + LINE - 1, 0.0);
    }
    let skip = v.as_ptr().align_offset(64).min(LINE - 1);
    &mut v[skip..skip + n]
}

/// Output positions per forward register block (3 vectors of 16).
pub(crate) const CH: usize = 48;
/// Output channels per forward register block.
pub(crate) const OB: usize = 8;
/// Output channels × (channel, tap) pairs per weight-gradient register block.
pub(crate) const WO: usize = 4;
const WK: usize = 6;

/// A stride-1 convolution in the conv view ([`Stride1`]: image `(c, h, w)`, kernel `(o, c, kh, kw)`,
/// padding; its fields and sizes read through `Deref`) and the instruction set to run it with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Direct {
    pub g: Stride1,
    /// The instruction set the kernels run with (one the CPU has: see [`supports`]).
    pub isa: Isa,
}

impl std::ops::Deref for Direct {
    type Target = Stride1;
    fn deref(&self) -> &Stride1 {
        &self.g
    }
}

impl Direct {
    /// Row stride of the kernels' padded layout: the image's `w` columns and **one shared gap**
    /// of `pw` zeros between consecutive rows (a row's right padding is the next row's left
    /// padding: the taps reach at most `pw` columns past either edge), not `w + 2·pw`. Output
    /// positions are computed at this width and the columns past `wo` dropped, so the narrower
    /// row wastes fewer of the kernels' multiply–adds (on 16² planes with 3×3 kernels 1/17
    /// instead of 2/18). At least `wo`, so that an output row fits in a layout row.
    fn wr(&self) -> usize {
        (self.w + self.pw).max(self.wo())
    }
    /// Flat output positions in the padded-width layout.
    fn pq(&self) -> usize {
        self.ho() * self.wr()
    }
    /// `pq` rounded up to whole forward blocks.
    fn pq_round(&self) -> usize {
        self.pq().div_ceil(CH) * CH
    }
    /// Plane stride of the padded input: room for the last block's overreach, a multiple of 16.
    fn s_in(&self) -> usize {
        (self.hp() * self.wr() + CH + self.kw + 16).div_ceil(16) * 16
    }
    /// The kernels' view of this layout with `pqr` output positions per plane.
    fn kern(&self, pqr: usize) -> Kern {
        Kern { c: self.c, s: self.s_in(), pqr, isa: self.isa }
    }
    fn tap_offsets(&self) -> Vec<usize> {
        let wr = self.wr();
        (0..self.kh).flat_map(|u| (0..self.kw).map(move |v| u * wr + v)).collect()
    }
}

/// What the shifted-sum kernels need to know of a layout: `c` input planes of stride `s`, and
/// `pqr` output positions (a multiple of the kernel's block) per output plane; every tap offset
/// plus `pqr` is at most `s`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kern {
    pub c: usize,
    pub s: usize,
    pub pqr: usize,
    pub isa: Isa,
}

/// Instruction set of the direct kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 16 lanes, 32 registers.
    Avx512,
    /// 8 lanes, 16 registers (AVX2 + FMA).
    Avx2,
}

/// `true` when `T` is `f32` (the kernels' type) and the instruction set `isa` may be used: the CPU
/// has it and it is within the cap of [`crate::simd::max_isa`] (so `LATENT_ISA=avx2` makes an
/// AVX-512 machine run the AVX2 kernels, as a machine without AVX-512 would).
pub(crate) fn supports<T: 'static>(isa: Isa) -> bool {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return false;
    }
    cfg!(target_arch = "x86_64") && isa.level() <= crate::simd::max_isa()
}

impl Isa {
    /// The level of [`crate::simd`] this instruction set is.
    pub(crate) fn level(self) -> crate::simd::Isa {
        match self {
            Isa::Avx512 => crate::simd::Isa::Avx512,
            Isa::Avx2 => crate::simd::Isa::Avx2,
        }
    }
}

/// The best instruction set of the direct kernels for `T` on this CPU, if any.
pub(crate) fn best<T: 'static>() -> Option<Isa> {
    [Isa::Avx512, Isa::Avx2].into_iter().find(|&isa| supports::<T>(isa))
}

/// View a `T` slice as `f32` when `T` is `f32`.
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (same type id), so the layout is identical.
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
    } else {
        None
    }
}

/// Mutable view of a `T` slice as `f32` when `T` is `f32`.
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (same type id), so the layout is identical.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
    } else {
        None
    }
}

/// Zero-pad one image `(c, h, w)` into `xp` (`c` planes of stride `s_in`), writing every element once.
fn pad_image(d: &Direct, x: &[f32], xp: &mut [f32]) {
    let (hp, wr, s) = (d.hp(), d.wr(), d.s_in());
    debug_assert_eq!(xp.len(), d.c * s);
    for c in 0..d.c {
        let plane = &mut xp[c * s..(c + 1) * s];
        plane[..d.ph * wr].fill(0.0);
        for i in 0..d.h {
            let src = &x[(c * d.h + i) * d.w..(c * d.h + i + 1) * d.w];
            let row = &mut plane[(i + d.ph) * wr..(i + d.ph + 1) * wr];
            row[..d.pw].fill(0.0);
            row[d.pw..d.pw + d.w].copy_from_slice(src);
            row[d.pw + d.w..].fill(0.0);
        }
        plane[(d.ph + d.h) * wr..].fill(0.0);
    }
    debug_assert_eq!(hp * wr, (d.ph + d.h) * wr + d.ph * wr);
}

/// Copy `dy_i (o, ho, wo)` into the padded-width layout `dyp` (`rows` planes of stride `pqr`,
/// zeros in the unused columns and the tail), writing every element once.
fn widen_grad(d: &Direct, dyi: &[f32], rows: usize, pqr: usize, dyp: &mut [f32]) {
    let (ho, wo, wr) = (d.ho(), d.wo(), d.wr());
    debug_assert_eq!(dyp.len(), rows * pqr);
    for o in 0..rows {
        let plane = &mut dyp[o * pqr..(o + 1) * pqr];
        if o >= d.o {
            plane.fill(0.0);
            continue;
        }
        for r in 0..ho {
            let row = &mut plane[r * wr..(r + 1) * wr];
            row[..wo].copy_from_slice(&dyi[(o * ho + r) * wo..(o * ho + r + 1) * wo]);
            row[wo..].fill(0.0);
        }
        plane[ho * wr..].fill(0.0);
    }
}

/// Forward convolution of `n` images: `y (n, o, ho, wo) = w ⋆ x + bias`, `w` as `(o, c, kh, kw)`.
///
/// The output's storage comes from the buffer cache and is not zeroed first: the kernel writes
/// every element (one write pass over the output instead of two).
pub(crate) fn forward(d: &Direct, n: usize, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    // the callers check that this count does not overflow before calling
    let len = n * d.o * d.ho() * d.wo();
    let mut y: Vec<f32> = crate::buffers::take(len);
    forward_into(d, n, x, w, bias, &mut y.spare_capacity_mut()[..len]);
    // SAFETY: `forward_into` initialises every element of `y[..len]`: the output is split into
    // `n` chunks of `o·ho·wo` elements, one per image, and each chunk is written row by row, all
    // `o·ho` rows of `wo` elements (see the copy at its end); the capacity is at least `len`.
    unsafe { y.set_len(len) };
    y
}

/// The forward kernels' operands from a weight `(o, c, taps)` and an optional bias: `opad` (`o`
/// rounded up to whole blocks of [`OB`]), the weights as `[c][tap][o]` and the bias, both padded
/// with zeros to `opad` outputs.
pub(crate) fn forward_weights(
    c: usize,
    o: usize,
    taps: usize,
    w: &[f32],
    bias: Option<&[f32]>,
) -> (usize, Vec<f32>, Vec<f32>) {
    let opad = o.div_ceil(OB) * OB;
    let mut wt = vec![0.0f32; c * taps * opad];
    for oo in 0..o {
        for cc in 0..c {
            for t in 0..taps {
                wt[(cc * taps + t) * opad + oo] = w[(oo * c + cc) * taps + t];
            }
        }
    }
    let mut b = vec![0.0f32; opad];
    if let Some(bias) = bias {
        b[..o].copy_from_slice(bias);
    }
    (opad, wt, b)
}

/// [`forward`] into storage that may be uninitialised; writes every element of `y`.
fn forward_into(d: &Direct, n: usize, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [MaybeUninit<f32>]) {
    assert_eq!(y.len(), n * d.o * d.ho() * d.wo());
    let (opad, wt, b) = forward_weights(d.c, d.o, d.taps(), w, bias);
    let offs = d.tap_offsets();
    let (il, ol) = (d.c * d.h * d.w, d.o * d.ho() * d.wo());
    let one = |xi: &[f32], yi: &mut [MaybeUninit<f32>], bufs: &mut (Vec<f32>, Vec<f32>)| {
        let pqr = d.pq_round();
        let xp = at_least(&mut bufs.0, d.c * d.s_in());
        pad_image(d, xi, xp);
        let yp = at_least(&mut bufs.1, opad * pqr);
        fwd_kernel(&d.kern(pqr), xp, &wt, &b, opad, &offs, yp);
        let (ho, wo, wr) = (d.ho(), d.wo(), d.wr());
        for o in 0..d.o {
            for i in 0..ho {
                let src = &yp[o * pqr + i * wr..o * pqr + i * wr + wo];
                for (dst, &v) in yi[(o * ho + i) * wo..(o * ho + i + 1) * wo].iter_mut().zip(src) {
                    dst.write(v);
                }
            }
        }
    };
    if n >= 2 {
        crate::product::keep_warm();
        y.par_chunks_mut(ol).zip(x.par_chunks(il)).for_each(|(yi, xi)| with_scratch(|bufs| one(xi, yi, bufs)));
    } else {
        with_scratch(|bufs| {
            for (yi, xi) in y.chunks_mut(ol).zip(x.chunks(il)) {
                one(xi, yi, bufs);
            }
        });
    }
}

/// Input gradient of a stride-1 convolution: `dx (n, c, h, w)` from `dy (n, o, ho, wo)`; this is
/// the forward convolution of `dy` with the flipped, transposed kernel and padding `k − 1 − p`.
/// Requires `ph < kh` and `pw < kw` (see [`input_grad_supported`]).
pub(crate) fn backward_input(d: &Direct, n: usize, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (kh, kw, taps) = (d.kh, d.kw, d.taps());
    let mut wf = vec![0.0f32; w.len()];
    for o in 0..d.o {
        for c in 0..d.c {
            for u in 0..kh {
                for v in 0..kw {
                    wf[((c * d.o + o) * kh + u) * kw + v] = w[(o * d.c + c) * taps + (kh - 1 - u) * kw + (kw - 1 - v)];
                }
            }
        }
    }
    let g = Stride1 { c: d.o, o: d.c, h: d.ho(), w: d.wo(), kh, kw, ph: kh - 1 - d.ph, pw: kw - 1 - d.pw };
    let t = Direct { g, isa: d.isa };
    debug_assert_eq!((t.ho(), t.wo()), (d.h, d.w));
    forward(&t, n, dy, &wf, None)
}

/// A `Vec<f32>` as a `Vec<T>` when `T` is `f32` (the same allocation), else `None`.
pub(crate) fn vec_as<T: 'static>(v: Vec<f32>) -> Option<Vec<T>> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
    // SAFETY: T is f32 (same type id): the allocation, length and capacity are those of a valid
    // Vec<T>, and `v` is not dropped (ManuallyDrop), so ownership moves to the new vector.
    Some(unsafe { Vec::from_raw_parts(ptr.cast::<T>(), len, cap) })
}

/// `true` when [`backward_input`] applies (padding smaller than the kernel).
pub(crate) fn input_grad_supported(d: &Direct) -> bool {
    d.ph < d.kh && d.pw < d.kw
}

/// Weight gradient: `dw (o, c, kh, kw) = Σ_n dy_n ⋆ x_n` (overwritten), and with `db` the bias
/// gradient `db[o] = Σ_n Σ_p dy_n[o, p]` (overwritten), summed from the widened copies of `dy` the
/// weight gradient makes anyway (so `dy` is read from memory once, not twice).
pub(crate) fn backward_weight(d: &Direct, n: usize, x: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>) {
    let (taps, k) = (d.taps(), d.c * d.taps());
    let (il, ol) = (d.c * d.h * d.w, d.o * d.ho() * d.wo());
    let pqr = d.pq().div_ceil(16) * 16;
    let opad = d.o.div_ceil(WO) * WO;
    let offs = d.tap_offsets();
    let groups = n.div_ceil(GROUP);
    let with_bias = db.is_some();
    // per group: the weight-gradient partial (opad × k), then with `db` the bias partial (d.o)
    let group = |gi: usize, bufs: &mut (Vec<f32>, Vec<f32>)| -> Vec<f32> {
        let (lo, hi) = (gi * GROUP, ((gi + 1) * GROUP).min(n));
        let (xs, ds) = (d.c * d.s_in(), opad * pqr);
        let xp = at_least(&mut bufs.0, (hi - lo) * xs);
        let dyp = at_least(&mut bufs.1, (hi - lo) * ds);
        for i in lo..hi {
            pad_image(d, &x[i * il..(i + 1) * il], &mut xp[(i - lo) * xs..(i - lo + 1) * xs]);
            widen_grad(d, &dy[i * ol..(i + 1) * ol], opad, pqr, &mut dyp[(i - lo) * ds..(i - lo + 1) * ds]);
        }
        let mut part = vec![0.0f32; opad * k + if with_bias { d.o } else { 0 }];
        let (wpart, bpart) = part.split_at_mut(opad * k);
        wgrad_kernel(&d.kern(pqr), hi - lo, xp, dyp, opad, taps, &offs, wpart);
        // the widened planes hold dy's values and zeros, so their sums are dy's plane sums
        for img in dyp.chunks_exact(ds) {
            for (b, plane) in bpart.iter_mut().zip(img.chunks_exact(pqr)) {
                *b += sum16(plane);
            }
        }
        part
    };
    sum_groups(groups, group, d.o * k, opad * k, dw, db);
}

/// Run the weight-gradient closure `group` over `groups` fixed groups of images (in parallel when
/// there are two or more, each with this thread's scratch buffers) and sum the partials it returns
/// — `[weight partial: the first `wlen` of `opad_k` values][bias partial]` — into `dw` and `db`, in
/// group order (so the sums do not depend on the thread count). Both are overwritten.
pub(crate) fn sum_groups(
    groups: usize,
    group: impl Fn(usize, &mut (Vec<f32>, Vec<f32>)) -> Vec<f32> + Sync,
    wlen: usize,
    opad_k: usize,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    let parts: Vec<Vec<f32>> = if groups >= 2 {
        crate::product::keep_warm();
        (0..groups).into_par_iter().map(|gi| with_scratch(|b| group(gi, b))).collect()
    } else {
        with_scratch(|b| (0..groups).map(|gi| group(gi, b)).collect())
    };
    dw.iter_mut().for_each(|e| *e = 0.0);
    for part in &parts {
        for (a, &b) in dw.iter_mut().zip(&part[..wlen]) {
            *a += b;
        }
    }
    if let Some(db) = db {
        db.iter_mut().for_each(|e| *e = 0.0);
        for part in &parts {
            for (a, &b) in db.iter_mut().zip(&part[opad_k..]) {
                *a += b;
            }
        }
    }
}

/// Sum of a slice whose length is a multiple of 16, in 16 interleaved partial sums (vectorises;
/// fixed order, so deterministic).
pub(crate) fn sum16(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    for c in v.chunks_exact(16) {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a += b;
        }
    }
    debug_assert!(v.len().is_multiple_of(16));
    acc.iter().sum()
}

/// AVX-512 forward: blocks of 8 output channels × 48 positions (24 accumulators).
///
/// # Safety
/// The CPU must support AVX-512F, and the slices must satisfy the bounds that [`fwd_kernel`]
/// asserts before calling.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fwd_avx512(kn: &Kern, xp: &[f32], wt: &[f32], b: &[f32], opad: usize, offs: &[usize], yp: &mut [f32]) {
    use std::arch::x86_64::*;
    // bounds are asserted by the caller, `fwd_kernel`
    let (taps, s, pqr) = (offs.len(), kn.s, kn.pqr);
    let xptr = xp.as_ptr();
    let wptr = wt.as_ptr();
    let yptr = yp.as_mut_ptr();
    let mut q0 = 0;
    while q0 < pqr {
        let mut o0 = 0;
        while o0 < opad {
            let mut acc = [[_mm512_setzero_ps(); 3]; OB];
            for (oo, a) in acc.iter_mut().enumerate() {
                let bv = _mm512_set1_ps(b[o0 + oo]);
                *a = [bv; 3];
            }
            for c in 0..kn.c {
                // SAFETY: c < kn.c and q0 < pqr <= s, so c·s + q0 < kn.c·s <= xp.len() (asserted by
                // `fwd_kernel`): the pointer stays inside `xp`.
                let xc = unsafe { xptr.add(c * s + q0) };
                // SAFETY: c·taps·opad + o0 < kn.c·taps·opad <= wt.len() (asserted): inside `wt`.
                let wc = unsafe { wptr.add(c * taps * opad + o0) };
                for (t, &off) in offs.iter().enumerate() {
                    // SAFETY: q0 + 48 <= pqr (pqr is a multiple of CH = 48) and pqr + off <= s
                    // (asserted), so the three 16-lane loads read c·s + q0 + off .. c·s + q0 + off
                    // + 48 <= (c + 1)·s <= xp.len(); unaligned loads accept any address.
                    let xv = unsafe {
                        [
                            _mm512_loadu_ps(xc.add(off)),
                            _mm512_loadu_ps(xc.add(off + 16)),
                            _mm512_loadu_ps(xc.add(off + 32)),
                        ]
                    };
                    // SAFETY: t < taps, so c·taps·opad + t·opad + o0 < kn.c·taps·opad: inside `wt`.
                    let wrow = unsafe { wc.add(t * opad) };
                    for oo in 0..OB {
                        // SAFETY: o0 + oo < opad (opad is a multiple of OB), so the read is at
                        // (c·taps + t)·opad + o0 + oo < wt.len().
                        let wv = _mm512_set1_ps(unsafe { *wrow.add(oo) });
                        acc[oo][0] = _mm512_fmadd_ps(wv, xv[0], acc[oo][0]);
                        acc[oo][1] = _mm512_fmadd_ps(wv, xv[1], acc[oo][1]);
                        acc[oo][2] = _mm512_fmadd_ps(wv, xv[2], acc[oo][2]);
                    }
                }
            }
            for (oo, a) in acc.iter().enumerate() {
                // SAFETY: (o0 + oo)·pqr + q0 + 48 <= opad·pqr <= yp.len() (asserted), so the three
                // 16-lane unaligned stores write inside `yp`, which is borrowed mutably.
                unsafe {
                    let dst = yptr.add((o0 + oo) * pqr + q0);
                    _mm512_storeu_ps(dst, a[0]);
                    _mm512_storeu_ps(dst.add(16), a[1]);
                    _mm512_storeu_ps(dst.add(32), a[2]);
                }
            }
            o0 += OB;
        }
        q0 += CH;
    }
}

/// AVX-512 weight gradient: blocks of 4 output channels × 6 (channel, tap) pairs.
///
/// # Safety
/// The CPU must support AVX-512F, and the slices must satisfy the bounds that [`wgrad_kernel`]
/// asserts before calling.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wgrad_avx512(
    kn: &Kern,
    imgs: usize,
    xp: &[f32],
    dyp: &[f32],
    opad: usize,
    taps: usize,
    offs: &[usize],
    part: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (s, k, pqr) = (kn.s, kn.c * taps, kn.pqr);
    // bounds are asserted by the caller, `wgrad_kernel`
    let (xs, ds) = (kn.c * s, opad * pqr);
    let pair = pair_offsets(kn, taps, offs);
    let kpad = pair.len();
    let xptr = xp.as_ptr();
    let dptr = dyp.as_ptr();
    let mut o0 = 0;
    while o0 < opad {
        let mut k0 = 0;
        while k0 < kpad {
            let mut acc = [[_mm512_setzero_ps(); WK]; WO];
            // SAFETY: every pair offset is channel·s + tap offset with channel < kn.c, so it is
            // below kn.c·s = xs <= xp.len() (asserted by `wgrad_kernel`): inside `xp`.
            let xptrs: [*const f32; WK] = std::array::from_fn(|j| unsafe { xptr.add(pair[k0 + j]) });
            // SAFETY: o0 + i < opad, so (o0 + i)·pqr < opad·pqr = ds <= dyp.len(): inside `dyp`.
            let dptrs: [*const f32; WO] = std::array::from_fn(|i| unsafe { dptr.add((o0 + i) * pqr) });
            for img in 0..imgs {
                // SAFETY: img < imgs and xp.len() >= imgs·xs (asserted): image `img` of `xp` starts
                // at img·xs, and the offset within it is below xs.
                let xi: [*const f32; WK] = std::array::from_fn(|j| unsafe { xptrs[j].add(img * xs) });
                // SAFETY: likewise img·ds plus an offset below ds, and dyp.len() >= imgs·ds.
                let di: [*const f32; WO] = std::array::from_fn(|i| unsafe { dptrs[i].add(img * ds) });
                let mut q = 0;
                while q < pqr {
                    // SAFETY: q + 16 <= pqr (a multiple of 16) and pair offset + pqr <= channel·s +
                    // s <= xs (asserted: pqr + tap offset <= s), so each 16-lane load stays inside
                    // image `img` of `xp`.
                    let xv: [__m512; WK] = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(xi[j].add(q)) });
                    for i in 0..WO {
                        // SAFETY: (o0 + i)·pqr + q + 16 <= opad·pqr = ds: inside image `img` of `dyp`.
                        let dv = unsafe { _mm512_loadu_ps(di[i].add(q)) };
                        for j in 0..WK {
                            acc[i][j] = _mm512_fmadd_ps(dv, xv[j], acc[i][j]);
                        }
                    }
                    q += 16;
                }
            }
            for i in 0..WO {
                for j in 0..WK {
                    if k0 + j < k {
                        part[(o0 + i) * k + k0 + j] += _mm512_reduce_add_ps(acc[i][j]);
                    }
                }
            }
            k0 += WK;
        }
        o0 += WO;
    }
}

/// Forward register blocks over all positions and output channels (see [`fwd_avx512`]).
pub(crate) fn fwd_kernel(kn: &Kern, xp: &[f32], wt: &[f32], b: &[f32], opad: usize, offs: &[usize], yp: &mut [f32]) {
    let (taps, s, pqr) = (offs.len(), kn.s, kn.pqr);
    assert!(xp.len() >= kn.c * s && yp.len() >= opad * pqr && wt.len() >= kn.c * taps * opad && b.len() >= opad);
    assert!(offs.iter().all(|&o| pqr + o <= s) && opad.is_multiple_of(OB) && pqr.is_multiple_of(CH));
    debug_assert!(kn.isa.level().on_cpu());
    match kn.isa {
        // SAFETY: `kn.isa` is only ever an instruction set the CPU has (`Geom::with` resolves it
        // through `supports`, which admits only levels up to `simd::max_isa`, itself at most the
        // level `simd::detected` found on this CPU), so the `target_feature`
        // function may be called; its pointer reads and writes stay within the slices by the
        // bounds asserted above (see the kernel's comments).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { fwd_avx512(kn, xp, wt, b, opad, offs, yp) },
        // SAFETY: as above, for AVX2 + FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { fwd_avx2(kn, xp, wt, b, opad, offs, yp) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("`supports` finds no instruction set off x86-64, so no `Direct` exists"),
    }
}

/// Weight-gradient register blocks over all output channels and (channel, tap) pairs.
pub(crate) fn wgrad_kernel(
    kn: &Kern,
    imgs: usize,
    xp: &[f32],
    dyp: &[f32],
    opad: usize,
    taps: usize,
    offs: &[usize],
    part: &mut [f32],
) {
    let (s, k, pqr) = (kn.s, kn.c * taps, kn.pqr);
    let (xs, ds) = (kn.c * s, opad * pqr);
    assert!(xp.len() >= imgs * xs && dyp.len() >= imgs * ds && part.len() >= opad * k && pqr.is_multiple_of(16));
    assert!(offs.iter().all(|&o| pqr + o <= s) && opad.is_multiple_of(WO) && k > 0);
    debug_assert!(kn.isa.level().on_cpu());
    match kn.isa {
        // SAFETY: `kn.isa` is only ever an instruction set the CPU has (`Geom::with` resolves it
        // through `supports`, which admits only levels up to `simd::max_isa`, itself at most the
        // level `simd::detected` found on this CPU), so the `target_feature`
        // function may be called; its pointer reads stay within the slices by the bounds asserted
        // above (see the kernel's comments) and `part` is written through safe indexing.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { wgrad_avx512(kn, imgs, xp, dyp, opad, taps, offs, part) },
        // SAFETY: as above, for AVX2 + FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { wgrad_avx2(kn, imgs, xp, dyp, opad, taps, offs, part) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("`supports` finds no instruction set off x86-64, so no `Direct` exists"),
    }
}

/// (channel, tap) pairs as offsets into one padded image, padded to whole blocks of `WK` by
/// repeating the last pair (whose sums are discarded).
fn pair_offsets(kn: &Kern, taps: usize, offs: &[usize]) -> Vec<usize> {
    let (s, k) = (kn.s, kn.c * taps);
    (0..k.div_ceil(WK) * WK)
        .map(|kk| {
            let kk = kk.min(k - 1);
            (kk / taps) * s + offs[kk % taps]
        })
        .collect()
}

/// AVX2 forward: blocks of 6 output channels × 16 positions (12 accumulators of 8 lanes, two
/// input vectors and one broadcast weight: 15 of the 16 registers; 4 × 24 would need all 16 and
/// spills), the last block of an 8-channel multiple 4 or 2 channels wide.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the slices must satisfy the bounds that [`fwd_kernel`]
/// asserts before calling.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fwd_avx2(kn: &Kern, xp: &[f32], wt: &[f32], b: &[f32], opad: usize, offs: &[usize], yp: &mut [f32]) {
    let pqr = kn.pqr;
    let mut q0 = 0;
    while q0 < pqr {
        // blocks of 6 output channels (12 accumulators, 2 inputs and 1 weight: 15 of the 16
        // registers), then one of 4 or 2 for the rest of `opad` (a multiple of 8)
        let mut o0 = 0;
        while o0 + 6 <= opad {
            // SAFETY: the caller's bounds (see `fwd_avx2_block`), o0 + 6 <= opad.
            unsafe { fwd_avx2_block::<6>(kn, xp, wt, b, opad, offs, yp, o0, q0) };
            o0 += 6;
        }
        match opad - o0 {
            // SAFETY: as above, o0 + 4 <= opad.
            4 => unsafe { fwd_avx2_block::<4>(kn, xp, wt, b, opad, offs, yp, o0, q0) },
            // SAFETY: as above, o0 + 2 <= opad.
            2 => unsafe { fwd_avx2_block::<2>(kn, xp, wt, b, opad, offs, yp, o0, q0) },
            _ => {}
        }
        q0 += 16;
    }
}

/// One AVX2 forward register block: output channels `o0 .. o0 + O2` × positions `q0 .. q0 + 16`.
///
/// # Safety
/// As [`fwd_avx2`], and `o0 + O2 <= opad`, `q0 + 16 <= pqr`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn fwd_avx2_block<const O2: usize>(
    kn: &Kern,
    xp: &[f32],
    wt: &[f32],
    b: &[f32],
    opad: usize,
    offs: &[usize],
    yp: &mut [f32],
    o0: usize,
    q0: usize,
) {
    use std::arch::x86_64::*;
    let (taps, s, pqr) = (offs.len(), kn.s, kn.pqr);
    let xptr = xp.as_ptr();
    let wptr = wt.as_ptr();
    let yptr = yp.as_mut_ptr();
    let mut acc = [[_mm256_setzero_ps(); 2]; O2];
    for (oo, a) in acc.iter_mut().enumerate() {
        *a = [_mm256_set1_ps(b[o0 + oo]); 2];
    }
    for c in 0..kn.c {
        // SAFETY: c < kn.c and q0 < pqr <= s, so c·s + q0 < kn.c·s <= xp.len() (asserted by
        // `fwd_kernel`): the pointer stays inside `xp`.
        let xc = unsafe { xptr.add(c * s + q0) };
        // SAFETY: c·taps·opad + o0 < kn.c·taps·opad <= wt.len() (asserted): inside `wt`.
        let wc = unsafe { wptr.add(c * taps * opad + o0) };
        for (t, &off) in offs.iter().enumerate() {
            // SAFETY: q0 + 16 <= pqr (a multiple of 48) and pqr + off <= s (asserted), so
            // both 8-lane loads read below c·s + q0 + off + 16 <= (c + 1)·s <= xp.len().
            let xv = unsafe { [_mm256_loadu_ps(xc.add(off)), _mm256_loadu_ps(xc.add(off + 8))] };
            // SAFETY: t < taps, so c·taps·opad + t·opad + o0 < kn.c·taps·opad: inside `wt`.
            let wrow = unsafe { wc.add(t * opad) };
            for oo in 0..O2 {
                // SAFETY: o0 + oo < opad (the caller's bound o0 + O2 <= opad), so the read is at
                // (c·taps + t)·opad + o0 + oo < wt.len().
                let wv = _mm256_set1_ps(unsafe { *wrow.add(oo) });
                acc[oo][0] = _mm256_fmadd_ps(wv, xv[0], acc[oo][0]);
                acc[oo][1] = _mm256_fmadd_ps(wv, xv[1], acc[oo][1]);
            }
        }
    }
    for (oo, a) in acc.iter().enumerate() {
        // SAFETY: (o0 + oo)·pqr + q0 + 16 <= opad·pqr <= yp.len() (asserted), so both 8-lane
        // unaligned stores write inside `yp`, which is borrowed mutably.
        unsafe {
            let dst = yptr.add((o0 + oo) * pqr + q0);
            _mm256_storeu_ps(dst, a[0]);
            _mm256_storeu_ps(dst.add(8), a[1]);
        }
    }
}

/// AVX2 weight gradient: blocks of 2 output channels × 6 (channel, tap) pairs.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the slices must satisfy the bounds that [`wgrad_kernel`]
/// asserts before calling.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn wgrad_avx2(
    kn: &Kern,
    imgs: usize,
    xp: &[f32],
    dyp: &[f32],
    opad: usize,
    taps: usize,
    offs: &[usize],
    part: &mut [f32],
) {
    use std::arch::x86_64::*;
    const O2: usize = 2;
    let (s, k, pqr) = (kn.s, kn.c * taps, kn.pqr);
    let (xs, ds) = (kn.c * s, opad * pqr);
    let pair = pair_offsets(kn, taps, offs);
    let xptr = xp.as_ptr();
    let dptr = dyp.as_ptr();
    let mut o0 = 0;
    while o0 < opad {
        let mut k0 = 0;
        while k0 < pair.len() {
            let mut acc = [[_mm256_setzero_ps(); WK]; O2];
            for img in 0..imgs {
                // SAFETY: img < imgs, xp.len() >= imgs·xs (asserted by `wgrad_kernel`) and every
                // pair offset is below xs = kn.c·s: the pointer stays inside image `img` of `xp`.
                let xi: [*const f32; WK] = std::array::from_fn(|j| unsafe { xptr.add(img * xs + pair[k0 + j]) });
                // SAFETY: (o0 + i)·pqr < opad·pqr = ds and dyp.len() >= imgs·ds: inside `dyp`.
                let di: [*const f32; O2] = std::array::from_fn(|i| unsafe { dptr.add(img * ds + (o0 + i) * pqr) });
                let mut q = 0;
                while q < pqr {
                    // SAFETY: q + 8 <= pqr (a multiple of 16), so each 8-lane load ends at most at
                    // img·ds + (o0 + i + 1)·pqr <= (img + 1)·ds.
                    let dv: [__m256; O2] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(di[i].add(q)) });
                    for j in 0..WK {
                        // SAFETY: pair offset + q + 8 <= channel·s + pqr + tap offset <= (channel +
                        // 1)·s <= xs (asserted: pqr + tap offset <= s): inside image `img` of `xp`.
                        let xv = unsafe { _mm256_loadu_ps(xi[j].add(q)) };
                        for i in 0..O2 {
                            acc[i][j] = _mm256_fmadd_ps(dv[i], xv, acc[i][j]);
                        }
                    }
                    q += 8;
                }
            }
            for i in 0..O2 {
                for j in 0..WK {
                    if k0 + j < k {
                        part[(o0 + i) * k + k0 + j] += hsum256(acc[i][j]);
                    }
                }
            }
            k0 += WK;
        }
        o0 += O2;
    }
}

/// Horizontal sum of 8 lanes (fixed order).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}
