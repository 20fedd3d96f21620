//! 2-D real FFTs (realfft along rows, rustfft along columns) and FFT-based 2-D convolution and
//! correlation for large kernels, with the direct forms they are tested against.

use crate::error::{LinalgError, Result, mismatch};
use crate::real::Real;
use realfft::RealFftPlanner;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftNum, FftPlanner};
use std::sync::Arc;

/// Scalars the FFT accepts: `f32` and `f64`.
pub trait FftReal: Real + FftNum {}
impl FftReal for f32 {}
impl FftReal for f64 {}

/// A plan for 2-D real-to-complex FFTs of `h × w` row-major images. The spectrum has
/// `h × (w/2 + 1)` complex entries, row-major. The inverse is normalised (inverse of forward is
/// the identity).
pub struct Fft2<T: FftReal> {
    h: usize,
    w: usize,
    r2c: Arc<dyn realfft::RealToComplex<T>>,
    c2r: Arc<dyn realfft::ComplexToReal<T>>,
    col_fwd: Arc<dyn Fft<T>>,
    col_inv: Arc<dyn Fft<T>>,
}

impl<T: FftReal> std::fmt::Debug for Fft2<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fft2 {{ h: {}, w: {} }}", self.h, self.w)
    }
}

impl<T: FftReal> Fft2<T> {
    /// Plan transforms of `h × w` images.
    ///
    /// # Errors
    /// [`LinalgError::Empty`] when a dimension is zero.
    pub fn new(h: usize, w: usize) -> Result<Self> {
        if h == 0 || w == 0 {
            return Err(LinalgError::Empty { op: "Fft2::new", what: "image size" });
        }
        let mut rp = RealFftPlanner::<T>::new();
        let mut cp = FftPlanner::<T>::new();
        Ok(Self {
            h,
            w,
            r2c: rp.plan_fft_forward(w),
            c2r: rp.plan_fft_inverse(w),
            col_fwd: cp.plan_fft_forward(h),
            col_inv: cp.plan_fft_inverse(h),
        })
    }
    /// Image height.
    pub fn h(&self) -> usize {
        self.h
    }
    /// Image width.
    pub fn w(&self) -> usize {
        self.w
    }
    /// Columns of the half spectrum, `w/2 + 1`.
    pub fn wc(&self) -> usize {
        self.w / 2 + 1
    }

    /// Forward transform of a row-major `h × w` image into `h × (w/2+1)` complex values.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the image length is not `h·w`.
    pub fn forward(&self, img: &[T]) -> Result<Vec<Complex<T>>> {
        if img.len() != self.h * self.w {
            return Err(mismatch(
                "Fft2::forward",
                format!("image has {} elements, plan is {}x{}", img.len(), self.h, self.w),
            ));
        }
        let wc = self.wc();
        let mut spec = vec![Complex::new(T::zero(), T::zero()); self.h * wc];
        let mut row = vec![T::zero(); self.w];
        let mut scratch = self.r2c.make_scratch_vec();
        for (r, out) in img.chunks(self.w).zip(spec.chunks_mut(wc)) {
            row.copy_from_slice(r);
            self.r2c
                .process_with_scratch(&mut row, out, &mut scratch)
                .map_err(|e| mismatch("Fft2::forward", e.to_string()))?;
        }
        self.columns(&mut spec, &self.col_fwd);
        Ok(spec)
    }

    /// Inverse transform of a `h × (w/2+1)` half spectrum into a `h × w` image (normalised).
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the spectrum length is wrong.
    pub fn inverse(&self, spec: &[Complex<T>]) -> Result<Vec<T>> {
        let wc = self.wc();
        if spec.len() != self.h * wc {
            return Err(mismatch(
                "Fft2::inverse",
                format!("spectrum has {} entries, expected {}", spec.len(), self.h * wc),
            ));
        }
        let mut s = spec.to_vec();
        self.columns(&mut s, &self.col_inv);
        let mut img = vec![T::zero(); self.h * self.w];
        let mut scratch = self.c2r.make_scratch_vec();
        let norm = T::one() / T::from_count(self.h * self.w);
        for (row, out) in s.chunks_mut(wc).zip(img.chunks_mut(self.w)) {
            // The DC (and Nyquist) bins of a real signal's rows must be real; after the column
            // pass they are up to rounding, and realfft insists, so drop the imaginary parts.
            row[0].im = T::zero();
            if self.w.is_multiple_of(2) {
                row[wc - 1].im = T::zero();
            }
            self.c2r
                .process_with_scratch(row, out, &mut scratch)
                .map_err(|e| mismatch("Fft2::inverse", e.to_string()))?;
            out.iter_mut().for_each(|v| *v *= norm);
        }
        Ok(img)
    }

    fn columns(&self, spec: &mut [Complex<T>], fft: &Arc<dyn Fft<T>>) {
        let wc = self.wc();
        let mut col = vec![Complex::new(T::zero(), T::zero()); self.h];
        let mut scratch = vec![Complex::new(T::zero(), T::zero()); fft.get_inplace_scratch_len()];
        for j in 0..wc {
            for i in 0..self.h {
                col[i] = spec[i * wc + j];
            }
            fft.process_with_scratch(&mut col, &mut scratch);
            for i in 0..self.h {
                spec[i * wc + j] = col[i];
            }
        }
    }
}

/// Output extent of a 2-D convolution or correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvMode {
    /// Every position where image and kernel overlap: `(h + kh − 1) × (w + kw − 1)`.
    #[default]
    Full,
    /// Same size as the image, centered (as `scipy.signal.convolve(..., mode="same")`).
    Same,
    /// Only positions where the kernel lies inside the image: `(h − kh + 1) × (w − kw + 1)`.
    Valid,
}

/// A row-major 2-D array (image or kernel).
#[derive(Debug, Clone, PartialEq)]
pub struct Plane<T> {
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `h·w` values, row-major.
    pub data: Vec<T>,
}

impl<T: Real> Plane<T> {
    /// Wrap `data` as an `h × w` plane.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when `data.len() != h·w`; [`LinalgError::Empty`] for an empty plane.
    pub fn new(h: usize, w: usize, data: Vec<T>) -> Result<Self> {
        if h == 0 || w == 0 {
            return Err(LinalgError::Empty { op: "Plane::new", what: "plane" });
        }
        if data.len() != h * w {
            return Err(mismatch("Plane::new", format!("{h}x{w} needs {} values, got {}", h * w, data.len())));
        }
        Ok(Self { h, w, data })
    }
}

fn crop_full<T: Real>(
    full: Vec<T>,
    fh: usize,
    fw: usize,
    kh: usize,
    kw: usize,
    h: usize,
    w: usize,
    mode: ConvMode,
) -> Result<Plane<T>> {
    let (oy, ox, oh, ow) = match mode {
        ConvMode::Full => (0, 0, fh, fw),
        ConvMode::Same => ((kh - 1) / 2 + (kh - 1) % 2, (kw - 1) / 2 + (kw - 1) % 2, h, w),
        ConvMode::Valid => {
            if kh > h || kw > w {
                return Err(mismatch(
                    "convolve2d",
                    format!("valid mode needs the kernel {kh}x{kw} within the image {h}x{w}"),
                ));
            }
            (kh - 1, kw - 1, h - kh + 1, w - kw + 1)
        }
    };
    let mut out = Vec::with_capacity(oh * ow);
    for i in 0..oh {
        out.extend_from_slice(&full[(oy + i) * fw + ox..(oy + i) * fw + ox + ow]);
    }
    Plane::new(oh, ow, out)
}

/// Direct 2-D convolution `(x * k)[i, j] = Σ x[i−u, j−v]·k[u, v]`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] in valid mode when the kernel is larger than the image.
pub fn convolve2d_direct<T: Real>(x: &Plane<T>, k: &Plane<T>, mode: ConvMode) -> Result<Plane<T>> {
    let (fh, fw) = (x.h + k.h - 1, x.w + k.w - 1);
    let mut full = vec![T::zero(); fh * fw];
    for i in 0..x.h {
        for j in 0..x.w {
            let a = x.data[i * x.w + j];
            for u in 0..k.h {
                let row = &mut full[(i + u) * fw + j..(i + u) * fw + j + k.w];
                for (e, &b) in row.iter_mut().zip(&k.data[u * k.w..(u + 1) * k.w]) {
                    *e += a * b;
                }
            }
        }
    }
    crop_full(full, fh, fw, k.h, k.w, x.h, x.w, mode)
}

/// 2-D convolution through the FFT (zero-padded to the full size, so no wrap-around).
///
/// # Errors
/// As [`convolve2d_direct`].
pub fn convolve2d_fft<T: FftReal>(x: &Plane<T>, k: &Plane<T>, mode: ConvMode) -> Result<Plane<T>> {
    let (fh, fw) = (x.h + k.h - 1, x.w + k.w - 1);
    let plan = Fft2::<T>::new(fh, fw)?;
    let pad = |p: &Plane<T>| {
        let mut b = vec![T::zero(); fh * fw];
        for i in 0..p.h {
            b[i * fw..i * fw + p.w].copy_from_slice(&p.data[i * p.w..(i + 1) * p.w]);
        }
        b
    };
    let mut fx = plan.forward(&pad(x))?;
    let fk = plan.forward(&pad(k))?;
    fx.iter_mut().zip(&fk).for_each(|(a, b)| *a *= *b);
    let full = plan.inverse(&fx)?;
    crop_full(full, fh, fw, k.h, k.w, x.h, x.w, mode)
}

fn flip<T: Real>(k: &Plane<T>) -> Plane<T> {
    Plane { h: k.h, w: k.w, data: k.data.iter().rev().copied().collect() }
}

/// 2-D cross-correlation `Σ x[i+u, j+v]·k[u, v]` (what [`crate::conv::conv2d`] computes), by the
/// FFT when the kernel is large and directly otherwise.
///
/// # Errors
/// As [`convolve2d_direct`].
pub fn correlate2d<T: FftReal>(x: &Plane<T>, k: &Plane<T>, mode: ConvMode) -> Result<Plane<T>> {
    convolve2d(x, &flip(k), mode)
}

/// 2-D convolution choosing the FFT for kernels of more than 64 taps on images of more than
/// 4096 pixels, direct summation otherwise.
///
/// # Errors
/// As [`convolve2d_direct`].
pub fn convolve2d<T: FftReal>(x: &Plane<T>, k: &Plane<T>, mode: ConvMode) -> Result<Plane<T>> {
    if k.h * k.w > 64 && x.h * x.w > 4096 { convolve2d_fft(x, k, mode) } else { convolve2d_direct(x, k, mode) }
}
