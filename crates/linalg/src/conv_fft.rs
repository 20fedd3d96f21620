//! Stride-1 convolutions through 2-D FFTs, used by [`crate::conv`] when a caller asks for
//! [`crate::conv::KernelChoice::Fft`]: the cost per image and channel pair is one spectrum product
//! of the padded plane instead of `kh·kw` multiply–adds per output, which wins for large kernels.
//!
//! On the zero-padded `hp × wp` plane a stride-1 cross-correlation is a circular correlation
//! without wrap-around for every valid output, so (spectra of real planes, `·̄` the conjugate):
//!
//! - forward: `Y_o = Σ_c X_c · W̄_oc`, outputs read at the top-left `ho × wo` corner;
//! - input gradient: `DX_c = Σ_o DY_o · W_oc` (a full convolution of the output gradient placed at
//!   the origin), read at the padding offset;
//! - weight gradient: `DW_oc = Σ_n X_nc · D̄Y_no`, read at lags `0..kh × 0..kw`.
//!
//! Each output plane is produced by one task with sums in a fixed order (channels, then images
//! in index order), so results do not depend on the number of threads; they differ from the
//! im2col + GEMM path by floating-point rounding only.

use crate::error::Result;
use crate::fft::{Fft2, FftReal};
use rayon::prelude::*;
use rustfft::num_complex::Complex;

/// A stride-1 convolution in the conv view: image `(c, h, w)`, kernel `(o, c, kh, kw)`, padding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub c: usize,
    pub o: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl Dims {
    fn hp(&self) -> usize {
        self.h + 2 * self.ph
    }
    fn wp(&self) -> usize {
        self.w + 2 * self.pw
    }
    fn ho(&self) -> usize {
        self.hp() + 1 - self.kh
    }
    fn wo(&self) -> usize {
        self.wp() + 1 - self.kw
    }
    fn taps(&self) -> usize {
        self.kh * self.kw
    }
    fn plan<F: FftReal>(&self) -> Result<Fft2<F>> {
        Fft2::new(self.hp(), self.wp())
    }
}

/// An `hp × wp` zero plane with the `h × w` plane `src` copied in at row `oy`, column `ox`.
fn padded<F: FftReal>(src: &[F], h: usize, w: usize, oy: usize, ox: usize, hp: usize, wp: usize) -> Vec<F> {
    let mut b = vec![F::zero(); hp * wp];
    for (i, row) in src.chunks_exact(w).take(h).enumerate() {
        b[(i + oy) * wp + ox..(i + oy) * wp + ox + w].copy_from_slice(row);
    }
    b
}

/// Spectra of the `o·c` kernel planes, conjugated when `conj`.
fn kernel_spectra<F: FftReal>(d: &Dims, plan: &Fft2<F>, w: &[F], conj: bool) -> Result<Vec<Vec<Complex<F>>>> {
    let (hp, wp, taps) = (d.hp(), d.wp(), d.taps());
    w.par_chunks_exact(taps)
        .map(|k| {
            let mut s = plan.forward(&padded(k, d.kh, d.kw, 0, 0, hp, wp))?;
            if conj {
                s.iter_mut().for_each(|z| *z = z.conj());
            }
            Ok(s)
        })
        .collect()
}

/// `acc += a · b` element-wise.
fn mul_acc<F: FftReal>(acc: &mut [Complex<F>], a: &[Complex<F>], b: &[Complex<F>]) {
    for (s, (&p, &q)) in acc.iter_mut().zip(a.iter().zip(b)) {
        *s += p * q;
    }
}

/// Forward convolution of `n` images: `y (n, o, ho, wo) = w ⋆ x + bias`.
pub(crate) fn forward<F: FftReal>(d: &Dims, x: &[F], w: &[F], bias: Option<&[F]>, y: &mut [F]) -> Result<()> {
    let plan = d.plan::<F>()?;
    let (hp, wp, ho, wo) = (d.hp(), d.wp(), d.ho(), d.wo());
    let wspec = kernel_spectra(d, &plan, w, true)?;
    let (il, ol) = (d.c * d.h * d.w, d.o * ho * wo);
    y.par_chunks_mut(ol).zip(x.par_chunks(il)).try_for_each(|(yi, xi)| -> Result<()> {
        let xs = xi
            .chunks_exact(d.h * d.w)
            .map(|p| plan.forward(&padded(p, d.h, d.w, d.ph, d.pw, hp, wp)))
            .collect::<Result<Vec<_>>>()?;
        let mut acc = vec![Complex::new(F::zero(), F::zero()); hp * plan.wc()];
        for (oi, yo) in yi.chunks_exact_mut(ho * wo).enumerate() {
            acc.iter_mut().for_each(|z| *z = Complex::new(F::zero(), F::zero()));
            for (ci, xc) in xs.iter().enumerate() {
                mul_acc(&mut acc, xc, &wspec[oi * d.c + ci]);
            }
            let full = plan.inverse(&acc)?;
            let b = bias.map_or(F::zero(), |b| b[oi]);
            for (i, row) in yo.chunks_exact_mut(wo).enumerate() {
                row.iter_mut().zip(&full[i * wp..i * wp + wo]).for_each(|(e, &v)| *e = b + v);
            }
        }
        Ok(())
    })
}

/// Input gradient: `dx (n, c, h, w)` from `dy (n, o, ho, wo)` (overwritten).
pub(crate) fn backward_input<F: FftReal>(d: &Dims, dy: &[F], w: &[F], dx: &mut [F]) -> Result<()> {
    let plan = d.plan::<F>()?;
    let (hp, wp, ho, wo) = (d.hp(), d.wp(), d.ho(), d.wo());
    let wspec = kernel_spectra(d, &plan, w, false)?;
    let (il, ol) = (d.c * d.h * d.w, d.o * ho * wo);
    dx.par_chunks_mut(il).zip(dy.par_chunks(ol)).try_for_each(|(dxi, dyi)| -> Result<()> {
        let ds = dyi
            .chunks_exact(ho * wo)
            .map(|p| plan.forward(&padded(p, ho, wo, 0, 0, hp, wp)))
            .collect::<Result<Vec<_>>>()?;
        let mut acc = vec![Complex::new(F::zero(), F::zero()); hp * plan.wc()];
        for (ci, dxc) in dxi.chunks_exact_mut(d.h * d.w).enumerate() {
            acc.iter_mut().for_each(|z| *z = Complex::new(F::zero(), F::zero()));
            for (oi, dso) in ds.iter().enumerate() {
                mul_acc(&mut acc, dso, &wspec[oi * d.c + ci]);
            }
            let full = plan.inverse(&acc)?;
            for (i, row) in dxc.chunks_exact_mut(d.w).enumerate() {
                let r = (i + d.ph) * wp + d.pw;
                row.copy_from_slice(&full[r..r + d.w]);
            }
        }
        Ok(())
    })
}

/// Weight gradient: `dw (o, c, kh, kw) = Σ_n dy_n ⋆ x_n` (overwritten), images summed in order.
pub(crate) fn backward_weight<F: FftReal>(d: &Dims, n: usize, x: &[F], dy: &[F], dw: &mut [F]) -> Result<()> {
    let plan = d.plan::<F>()?;
    let (hp, wp, ho, wo) = (d.hp(), d.wp(), d.ho(), d.wo());
    let sl = hp * plan.wc();
    let (il, ol) = (d.c * d.h * d.w, d.o * ho * wo);
    let mut acc = vec![Complex::new(F::zero(), F::zero()); d.o * d.c * sl];
    for i in 0..n {
        let xs = x[i * il..(i + 1) * il]
            .par_chunks_exact(d.h * d.w)
            .map(|p| plan.forward(&padded(p, d.h, d.w, d.ph, d.pw, hp, wp)))
            .collect::<Result<Vec<_>>>()?;
        let ds = dy[i * ol..(i + 1) * ol]
            .par_chunks_exact(ho * wo)
            .map(|p| {
                let mut s = plan.forward(&padded(p, ho, wo, 0, 0, hp, wp))?;
                s.iter_mut().for_each(|z| *z = z.conj());
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        acc.par_chunks_mut(sl).enumerate().for_each(|(oc, a)| mul_acc(a, &xs[oc % d.c], &ds[oc / d.c]));
    }
    dw.par_chunks_mut(d.taps()).zip(acc.par_chunks(sl)).try_for_each(|(dwp, a)| -> Result<()> {
        let full = plan.inverse(a)?;
        for (u, row) in dwp.chunks_exact_mut(d.kw).enumerate() {
            row.copy_from_slice(&full[u * wp..u * wp + d.kw]);
        }
        Ok(())
    })
}

/// View a `T` slice as `F` when they are the same type.
pub(crate) fn cast<T: 'static, F: 'static>(s: &[T]) -> Option<&[F]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<F>() {
        // SAFETY: `T` and `F` are the same type (equal type ids), so the pointer, length and
        // lifetime describe the same valid, initialised elements.
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<F>(), s.len()) })
    } else {
        None
    }
}

/// Mutable view of a `T` slice as `F` when they are the same type.
pub(crate) fn cast_mut<T: 'static, F: 'static>(s: &mut [T]) -> Option<&mut [F]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<F>() {
        // SAFETY: `T` and `F` are the same type (equal type ids); the unique borrow of `s` moves
        // into the returned slice, so there is still exactly one mutable view.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<F>(), s.len()) })
    } else {
        None
    }
}

/// `true` when `T` is a type the FFT path runs on (`f32` or `f64`).
pub(crate) fn supports<T: 'static>() -> bool {
    use std::any::TypeId;
    TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>()
}
