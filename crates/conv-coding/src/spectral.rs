//! Batched 2-D real FFTs laid out for pointwise work in the DFT domain.
//!
//! A real `h × w` plane has `h × (w/2 + 1)` independent DFT coefficients. We keep them
//! **column-major** (`f = j·h + i` for half-spectrum column `j` and row frequency `i`): realfft
//! transforms the rows, a blocked transpose turns the half spectrum around, and rustfft then runs
//! all `w/2 + 1` column transforms as one contiguous batch. Every solver only ever multiplies
//! spectra pointwise, so the layout is invisible to them; it just keeps every FFT pass contiguous.
//! The inverse is normalised and lets the caller consume each real output row as it is produced,
//! so element-wise updates fuse with the transform.

use crate::error::{Result, fft_err};
use latent_linalg::fft::FftReal;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Transpose tile size.
const TILE: usize = 16;

/// Plans for `h × w` planes.
pub(crate) struct Spectral<T: FftReal> {
    pub h: usize,
    pub w: usize,
    pub wc: usize,
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    col_fwd: Arc<dyn Fft<T>>,
    col_inv: Arc<dyn Fft<T>>,
    rs_len: usize,
    cs_len: usize,
}

impl<T: FftReal> std::fmt::Debug for Spectral<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spectral {{ h: {}, w: {} }}", self.h, self.w)
    }
}

/// Per-thread scratch for one transform at a time.
pub(crate) struct Work<T> {
    rows: Vec<Complex<T>>,
    cols: Vec<Complex<T>>,
    row: Vec<T>,
    rs: Vec<Complex<T>>,
    cs: Vec<Complex<T>>,
}

#[inline]
pub(crate) fn cz<T: FftReal>() -> Complex<T> {
    Complex::new(T::zero(), T::zero())
}

impl<T: FftReal> Spectral<T> {
    /// Plan transforms of `h × w` planes (both dimensions ≥ 1).
    pub fn new(h: usize, w: usize) -> Self {
        let mut rp = RealFftPlanner::<T>::new();
        let mut cp = FftPlanner::<T>::new();
        let r2c = rp.plan_fft_forward(w);
        let c2r = rp.plan_fft_inverse(w);
        let col_fwd = cp.plan_fft_forward(h);
        let col_inv = cp.plan_fft_inverse(h);
        let rs_len = r2c.get_scratch_len().max(c2r.get_scratch_len());
        let cs_len = col_fwd.get_inplace_scratch_len().max(col_inv.get_inplace_scratch_len());
        Self { h, w, wc: w / 2 + 1, r2c, c2r, col_fwd, col_inv, rs_len, cs_len }
    }

    /// Number of stored coefficients `h · (w/2 + 1)`.
    pub fn len(&self) -> usize {
        self.h * self.wc
    }

    /// Scratch for one thread.
    pub fn work(&self) -> Work<T> {
        Work {
            rows: vec![cz(); self.len()],
            cols: vec![cz(); self.len()],
            row: vec![T::zero(); self.w],
            rs: vec![cz(); self.rs_len],
            cs: vec![cz(); self.cs_len],
        }
    }

    /// Parseval weight of half-spectrum column `j`: 1 for the DC (and, for even `w`, the
    /// Nyquist) column, 2 for the others, whose mirror images are not stored.
    #[inline]
    pub fn col_weight(&self, j: usize) -> T {
        if j == 0 || (self.w.is_multiple_of(2) && j == self.wc - 1) { T::one() } else { T::lit(2.0) }
    }

    /// `Σ_f weight_f · |X_f|² / (h·w)`: the squared norm of the real plane(s) whose spectra are
    /// `spec` (one or more planes back to back; Parseval), computed in `f64`.
    pub fn norm_sq(&self, spec: &[Complex<T>]) -> f64 {
        let mut acc = 0.0;
        for (j, col) in spec.chunks(self.h).enumerate() {
            let s: f64 = col.iter().map(|c| c.re.as_f64() * c.re.as_f64() + c.im.as_f64() * c.im.as_f64()).sum();
            acc += self.col_weight(j % self.wc).as_f64() * s;
        }
        acc / (self.h * self.w) as f64
    }

    /// Forward transform. `fill(i, row)` writes real row `i` (length `w`); `out` (length
    /// [`Spectral::len`]) receives the column-major half spectrum.
    pub fn forward(
        &self,
        work: &mut Work<T>,
        mut fill: impl FnMut(usize, &mut [T]),
        out: &mut [Complex<T>],
    ) -> Result<()> {
        let (h, wc) = (self.h, self.wc);
        for i in 0..h {
            fill(i, &mut work.row);
            self.r2c
                .process_with_scratch(&mut work.row, &mut work.rows[i * wc..(i + 1) * wc], &mut work.rs)
                .map_err(|e| fft_err("forward FFT (rows)", e))?;
        }
        // rows [h][wc] → cols [wc][h] in cache-resident scratch, column FFTs there, then one
        // sequential copy out (transposing straight into a large output is several times slower)
        let cols = &mut work.cols;
        for jb in (0..wc).step_by(TILE) {
            let je = (jb + TILE).min(wc);
            for ib in (0..h).step_by(TILE) {
                let ie = (ib + TILE).min(h);
                for j in jb..je {
                    let dst = &mut cols[j * h..(j + 1) * h];
                    for i in ib..ie {
                        dst[i] = work.rows[i * wc + j];
                    }
                }
            }
        }
        self.col_fwd.process_with_scratch(cols, &mut work.cs);
        out.copy_from_slice(cols);
        Ok(())
    }

    /// Normalised inverse transform of the column-major half spectrum `spec` (overwritten).
    /// `sink(i, row)` receives real output row `i` (length `w`) in order.
    pub fn inverse(
        &self,
        work: &mut Work<T>,
        spec: &mut [Complex<T>],
        mut sink: impl FnMut(usize, &[T]),
    ) -> Result<()> {
        let (h, wc) = (self.h, self.wc);
        self.col_inv.process_with_scratch(spec, &mut work.cs);
        let scale = T::one() / T::from_count(h * self.w);
        for jb in (0..wc).step_by(TILE) {
            let je = (jb + TILE).min(wc);
            for ib in (0..h).step_by(TILE) {
                let ie = (ib + TILE).min(h);
                for j in jb..je {
                    let src = &spec[j * h..];
                    for i in ib..ie {
                        work.rows[i * wc + j] = src[i] * scale;
                    }
                }
            }
        }
        let nyq = self.w.is_multiple_of(2);
        for i in 0..h {
            let r = &mut work.rows[i * wc..(i + 1) * wc];
            // a real plane's DC and Nyquist columns are real after the column pass, up to rounding
            r[0].im = T::zero();
            if nyq {
                r[wc - 1].im = T::zero();
            }
            self.c2r
                .process_with_scratch(r, &mut work.row, &mut work.rs)
                .map_err(|e| fft_err("inverse FFT (rows)", e))?;
            sink(i, &work.row);
        }
        Ok(())
    }

    /// Forward transform of a real plane (`h·w` values, row-major).
    pub fn forward_plane(&self, work: &mut Work<T>, plane: &[T], out: &mut [Complex<T>]) -> Result<()> {
        let w = self.w;
        self.forward(work, |i, row| row.copy_from_slice(&plane[i * w..(i + 1) * w]), out)
    }

    /// Inverse transform into a real plane (`h·w` values, row-major).
    pub fn inverse_plane(&self, work: &mut Work<T>, spec: &mut [Complex<T>], plane: &mut [T]) -> Result<()> {
        let w = self.w;
        self.inverse(work, spec, |i, row| plane[i * w..(i + 1) * w].copy_from_slice(row))
    }

    /// Spectrum of a small `kh × kw` kernel placed at the origin of the `h × w` plane.
    pub fn kernel(&self, work: &mut Work<T>, k: &[T], kh: usize, kw: usize, out: &mut [Complex<T>]) -> Result<()> {
        self.forward(
            work,
            |i, row| {
                row.iter_mut().for_each(|v| *v = T::zero());
                if i < kh {
                    row[..kw].copy_from_slice(&k[i * kw..(i + 1) * kw]);
                }
            },
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(h: usize, w: usize) -> Vec<f64> {
        (0..h * w).map(|k| ((k * 37 + 11) % 17) as f64 / 17.0 - 0.4).collect()
    }

    #[test]
    fn round_trip_and_parseval() {
        for (h, w) in [(8, 8), (5, 7), (6, 9), (1, 4), (3, 1), (12, 10)] {
            let s = Spectral::<f64>::new(h, w);
            let mut work = s.work();
            let x = plane(h, w);
            let mut spec = vec![cz(); s.len()];
            s.forward_plane(&mut work, &x, &mut spec).unwrap();
            let e: f64 = x.iter().map(|v| v * v).sum();
            assert!((s.norm_sq(&spec) - e).abs() < 1e-10 * e.max(1.0), "{h}x{w}");
            let mut back = vec![0.0; h * w];
            s.inverse_plane(&mut work, &mut spec, &mut back).unwrap();
            for (a, b) in back.iter().zip(&x) {
                assert!((a - b).abs() < 1e-12, "{h}x{w}");
            }
        }
    }

    #[test]
    fn matches_the_direct_dft() {
        let (h, w) = (5, 6);
        let s = Spectral::<f64>::new(h, w);
        let mut work = s.work();
        let x = plane(h, w);
        let mut spec = vec![cz(); s.len()];
        s.forward_plane(&mut work, &x, &mut spec).unwrap();
        for j in 0..s.wc {
            for i in 0..h {
                let mut acc = Complex::new(0.0, 0.0);
                for a in 0..h {
                    for b in 0..w {
                        let ph = -2.0 * std::f64::consts::PI * ((i * a) as f64 / h as f64 + (j * b) as f64 / w as f64);
                        acc += Complex::new(ph.cos(), ph.sin()) * x[a * w + b];
                    }
                }
                assert!((acc - spec[j * h + i]).norm() < 1e-10);
            }
        }
    }
}
