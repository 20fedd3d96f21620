//! Separable filters of 2-D planes: the one Gaussian blur of the workspace (synthetic cell
//! images, blob-noise fills and feathering, anomaly-map smoothing) and the box and Gaussian local
//! means of SSIM.
//!
//! A [`Kernel1d`] is a symmetric, odd-length, normalised set of taps applied along the rows and
//! then along the columns of each `h × w` plane. What the filter sees beyond the edge of the
//! plane is a [`Border`] mode. Arithmetic is in `f64` for `f32` and `f64` planes alike (an `f32`
//! plane is widened on reading and rounded once on writing), and every output element is a sum
//! over the taps in ascending order, so results are deterministic and do not depend on threads.
//!
//! | border | beyond the edge |
//! |---|---|
//! | [`Border::Zero`] | zeros |
//! | [`Border::Replicate`] | the nearest edge pixel |
//! | [`Border::Mirror`] | the plane reflected about its edge pixels (`… 2 1 | 0 1 2 … n−1 | n−2 …`) |
//! | [`Border::Renormalize`] | nothing: taps outside are dropped and the rest rescaled to sum to 1 |
//!
//! # Example
//! ```
//! use latent_linalg::filter::{Border, Kernel1d, blur_planes};
//! use latent_linalg::Tensor4;
//! let k = Kernel1d::gaussian_truncated(1.0, 3.0)?; // radius ⌈3σ⌉ = 3, 7 taps
//! assert_eq!((k.radius(), k.taps().len()), (3, 7));
//! let mut x = Tensor4::<f32>::zeros([1, 2, 9, 9])?;
//! *x.get_mut([0, 1, 4, 4]).unwrap() = 1.0;
//! let y = blur_planes(&x, &k, Border::Zero)?;
//! assert!((y.as_slice().iter().sum::<f32>() - 1.0).abs() < 1e-6); // the spread stays inside
//! assert_eq!(y.get([0, 0, 4, 4]), Some(0.0)); // planes are blurred separately
//! # Ok::<(), latent_linalg::LinalgError>(())
//! ```

use crate::error::{LinalgError, Result, mismatch};
use crate::real::Real;
use crate::tensor::Tensor4;
use rayon::prelude::*;

/// What a filter sees beyond the edge of a plane (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Border {
    /// Zeros outside.
    Zero,
    /// The nearest edge pixel.
    Replicate,
    /// The plane reflected about its first and last pixels (periodic with period `2(n − 1)`,
    /// so any offset is defined; a plane of length 1 repeats its pixel).
    Mirror,
    /// Taps outside the plane are dropped and the remaining weights rescaled to sum to 1, so a
    /// constant plane stays constant and no values are invented.
    #[default]
    Renormalize,
}

/// Largest kernel radius accepted (a kernel of `2·2²⁰ + 1` taps).
pub const MAX_RADIUS: usize = 1 << 20;

/// A symmetric 1-D kernel of `2r + 1` taps summing to 1, applied along rows and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel1d {
    taps: Vec<f64>,
}

fn invalid(name: &'static str, value: impl std::fmt::Debug, reason: &'static str) -> LinalgError {
    LinalgError::InvalidParameter { op: "Kernel1d", name, value: format!("{value:?}"), reason }
}

impl Kernel1d {
    /// Gaussian taps `exp(−d²/2σ²)` for `d = −radius..=radius`, divided by their sum.
    ///
    /// | parameter | meaning | range |
    /// |---|---|---|
    /// | `sigma` | standard deviation (pixels) | finite, `> 0` |
    /// | `radius` | taps on each side of the centre | `≤` [`MAX_RADIUS`] |
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] for a `sigma` or `radius` out of range.
    pub fn gaussian(sigma: f64, radius: usize) -> Result<Self> {
        if !(sigma > 0.0) || !sigma.is_finite() {
            return Err(invalid("sigma", sigma, "must be finite and > 0"));
        }
        if radius > MAX_RADIUS {
            return Err(invalid("radius", radius, "must be at most MAX_RADIUS"));
        }
        let r = radius as i64;
        let taps: Vec<f64> = (-r..=r).map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp()).collect();
        Ok(Self::normalised(taps))
    }

    /// Gaussian taps truncated at `truncate` standard deviations: radius `⌈truncate·σ⌉`.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] for `sigma` or `truncate` not finite and positive, or a
    /// radius above [`MAX_RADIUS`].
    pub fn gaussian_truncated(sigma: f64, truncate: f64) -> Result<Self> {
        if !(truncate > 0.0) || !truncate.is_finite() {
            return Err(invalid("truncate", truncate, "must be finite and > 0"));
        }
        if !(sigma > 0.0) || !sigma.is_finite() {
            return Err(invalid("sigma", sigma, "must be finite and > 0"));
        }
        let r = (truncate * sigma).ceil();
        if r > MAX_RADIUS as f64 {
            return Err(invalid("truncate·sigma", r, "the radius must be at most MAX_RADIUS"));
        }
        Self::gaussian(sigma, r as usize)
    }

    /// `size` equal taps (a box filter); `size` must be odd.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] for an even `size` or one above `2·MAX_RADIUS + 1`.
    pub fn uniform(size: usize) -> Result<Self> {
        if size.is_multiple_of(2) || size > 2 * MAX_RADIUS + 1 {
            return Err(invalid("size", size, "must be odd and at most 2·MAX_RADIUS + 1"));
        }
        Ok(Self::normalised(vec![1.0; size]))
    }

    fn normalised(k: Vec<f64>) -> Self {
        let s: f64 = k.iter().sum();
        Self { taps: k.into_iter().map(|v| v / s).collect() }
    }

    /// The taps, `2r + 1` values summing to 1 (up to rounding).
    pub fn taps(&self) -> &[f64] {
        &self.taps
    }

    /// Taps on each side of the centre.
    pub fn radius(&self) -> usize {
        self.taps.len() / 2
    }

    /// Filter one row-major `h × w` plane (rows first, then columns).
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when `src.len() != h·w`; [`LinalgError::Empty`] for an
    /// empty plane.
    pub fn apply<T: Real>(&self, src: &[T], h: usize, w: usize, border: Border) -> Result<Vec<T>> {
        check_plane("Kernel1d::apply", src.len(), h, w)?;
        Ok(self.plane(src, h, w, border))
    }

    /// The adjoint (transpose) of [`Kernel1d::apply`] as a linear map of the plane, for
    /// gradients: `⟨apply(a), b⟩ = ⟨a, apply_adjoint(b)⟩`.
    ///
    /// # Errors
    /// As [`Kernel1d::apply`].
    pub fn apply_adjoint<T: Real>(&self, src: &[T], h: usize, w: usize, border: Border) -> Result<Vec<T>> {
        check_plane("Kernel1d::apply_adjoint", src.len(), h, w)?;
        Ok(self.plane_adjoint(src, h, w, border))
    }

    /// Sum of the taps that fall inside `0..n` around each position ([`Border::Renormalize`]).
    fn norms(&self, n: usize) -> Vec<f64> {
        let r = self.radius();
        (0..n)
            .map(|i| {
                let (lo, hi) = (i.saturating_sub(r), (i + r).min(n - 1));
                (lo..=hi).map(|j| self.taps[j + r - i]).sum()
            })
            .collect()
    }

    /// Forward filter of a checked plane.
    fn plane<T: Real>(&self, src: &[T], h: usize, w: usize, border: Border) -> Vec<T> {
        let (k, r) = (&self.taps, self.radius() as isize);
        let renorm = border == Border::Renormalize;
        let (zr, zc) = if renorm { (self.norms(h), self.norms(w)) } else { (Vec::new(), Vec::new()) };
        // rows: tmp[y, x] = Σ_j k_j · src[y, x + j − r] (taps beyond the edge mapped or dropped)
        let mut tmp = vec![0.0f64; h * w];
        for (row, out) in src.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
            for (x, o) in out.iter_mut().enumerate() {
                let mut s = -0.0f64;
                for (j, &kj) in k.iter().enumerate() {
                    if let Some(m) = border.index(x as isize + j as isize - r, w) {
                        s += kj * row[m].as_f64();
                    }
                }
                *o = if renorm { s / zc[x] } else { s };
            }
        }
        // columns, a row of outputs at a time (the same per-element order as one tap at a time)
        let mut out = vec![T::zero(); h * w];
        let mut acc = vec![-0.0f64; w];
        for (y, o) in out.chunks_exact_mut(w).enumerate() {
            acc.iter_mut().for_each(|a| *a = -0.0);
            for (j, &kj) in k.iter().enumerate() {
                if let Some(m) = border.index(y as isize + j as isize - r, h) {
                    acc.iter_mut().zip(&tmp[m * w..(m + 1) * w]).for_each(|(a, &b)| *a += kj * b);
                }
            }
            if renorm {
                let z = zr[y];
                acc.iter_mut().for_each(|a| *a /= z);
            }
            o.iter_mut().zip(&acc).for_each(|(d, &a)| *d = T::lit(a));
        }
        out
    }

    /// Adjoint filter of a checked plane (columns first, then rows — the reverse of [`Self::plane`]
    /// in the transposed order the renormalised form needs: each pass divides by the norm of the
    /// position it reads).
    fn plane_adjoint<T: Real>(&self, src: &[T], h: usize, w: usize, border: Border) -> Vec<T> {
        let (k, r) = (&self.taps, self.radius());
        match border {
            Border::Zero | Border::Renormalize => {
                // the taps are symmetric, so the adjoint gathers with the same taps; with
                // renormalisation each read is divided by the norm of the position it came from
                let renorm = border == Border::Renormalize;
                let ones = |n: usize| vec![1.0f64; n];
                let (zr, zc) = if renorm { (self.norms(h), self.norms(w)) } else { (ones(h), ones(w)) };
                let mut tmp = vec![0.0f64; h * w];
                for (row, out) in src.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
                    for (x, o) in out.iter_mut().enumerate() {
                        let (lo, hi) = (x.saturating_sub(r), (x + r).min(w - 1));
                        let mut s = -0.0f64;
                        for m in lo..=hi {
                            s += k[m + r - x] * row[m].as_f64() / zc[m];
                        }
                        *o = s;
                    }
                }
                let mut out = vec![T::zero(); h * w];
                let mut acc = vec![-0.0f64; w];
                for (y, o) in out.chunks_exact_mut(w).enumerate() {
                    acc.iter_mut().for_each(|a| *a = -0.0);
                    let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
                    for j in lo..=hi {
                        let c = k[j + r - y] / zr[j];
                        acc.iter_mut().zip(&tmp[j * w..(j + 1) * w]).for_each(|(a, &b)| *a += c * b);
                    }
                    o.iter_mut().zip(&acc).for_each(|(d, &a)| *d = T::lit(a));
                }
                out
            }
            Border::Replicate | Border::Mirror => {
                // several taps read the same edge pixel: scatter each output back to its sources
                let ri = r as isize;
                let mut tmp = vec![0.0f64; h * w];
                for y in 0..h {
                    for x in 0..w {
                        let g = src[y * w + x].as_f64();
                        for (j, &kj) in k.iter().enumerate() {
                            if let Some(m) = border.index(y as isize + j as isize - ri, h) {
                                tmp[m * w + x] += kj * g;
                            }
                        }
                    }
                }
                let mut out = vec![0.0f64; h * w];
                for (row, o) in tmp.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
                    for (x, &g) in row.iter().enumerate() {
                        for (j, &kj) in k.iter().enumerate() {
                            if let Some(m) = border.index(x as isize + j as isize - ri, w) {
                                o[m] += kj * g;
                            }
                        }
                    }
                }
                out.into_iter().map(T::lit).collect()
            }
        }
    }
}

impl Border {
    /// The index read for position `i` along an axis of length `n`, `None` when it is dropped.
    #[inline]
    fn index(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        match self {
            Border::Zero | Border::Renormalize => (i >= 0 && i < n).then_some(i as usize),
            Border::Replicate => Some(i.clamp(0, n - 1) as usize),
            Border::Mirror => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                Some((if m < n { m } else { period - m }) as usize)
            }
        }
    }
}

fn check_plane(op: &'static str, len: usize, h: usize, w: usize) -> Result<()> {
    if h == 0 || w == 0 {
        return Err(LinalgError::Empty { op, what: "plane" });
    }
    if h.checked_mul(w) != Some(len) {
        return Err(mismatch(op, format!("a {h}x{w} plane needs {} values, got {len}", h.saturating_mul(w))));
    }
    Ok(())
}

/// Filter every `(H, W)` plane of `x` with `kernel` (rows, then columns) under `border`, planes
/// in parallel. The output has the input's shape.
///
/// # Errors
/// [`LinalgError::Empty`] for a tensor without elements.
///
/// # Example
/// ```
/// use latent_linalg::filter::{Border, Kernel1d, blur_planes};
/// use latent_linalg::Tensor4;
/// let c = Tensor4::<f64>::full([2, 1, 5, 5], 0.3)?;
/// let y = blur_planes(&c, &Kernel1d::gaussian(2.0, 8)?, Border::Renormalize)?;
/// assert!(y.as_slice().iter().all(|v| (v - 0.3).abs() < 1e-12)); // constant planes stay constant
/// # Ok::<(), latent_linalg::LinalgError>(())
/// ```
pub fn blur_planes<T: Real>(x: &Tensor4<T>, kernel: &Kernel1d, border: Border) -> Result<Tensor4<T>> {
    if x.is_empty() {
        return Err(LinalgError::Empty { op: "blur_planes", what: "tensor" });
    }
    let (h, w) = (x.h(), x.w());
    let plane = h * w;
    let mut out = x.clone();
    out.as_mut_slice().par_chunks_mut(plane).zip(x.as_slice().par_chunks(plane)).for_each(|(o, s)| {
        o.copy_from_slice(&kernel.plane(s, h, w, border));
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(h: usize, w: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..h * w)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.3
            })
            .collect()
    }

    #[test]
    fn adjoint_is_the_transpose_for_every_border() {
        for border in [Border::Zero, Border::Replicate, Border::Mirror, Border::Renormalize] {
            for (h, w, k) in [(6, 4, Kernel1d::gaussian(1.1, 2).unwrap()), (3, 9, Kernel1d::uniform(7).unwrap())] {
                let (a, b) = (plane(h, w, 1), plane(h, w, 2));
                let fa = k.apply(&a, h, w, border).unwrap();
                let ftb = k.apply_adjoint(&b, h, w, border).unwrap();
                let l: f64 = fa.iter().zip(&b).map(|(x, y)| x * y).sum();
                let r: f64 = a.iter().zip(&ftb).map(|(x, y)| x * y).sum();
                assert!((l - r).abs() < 1e-12, "{border:?}: {l} vs {r}");
            }
        }
    }

    #[test]
    fn constants_stay_constant_except_with_zero_border() {
        let k = Kernel1d::gaussian_truncated(1.5, 3.0).unwrap();
        for border in [Border::Replicate, Border::Mirror, Border::Renormalize] {
            let out = k.apply(&[0.7f64; 12], 3, 4, border).unwrap();
            assert!(out.iter().all(|v: &f64| (v - 0.7).abs() < 1e-12), "{border:?}");
        }
        let out = k.apply(&[0.7f64; 12], 3, 4, Border::Zero).unwrap();
        assert!(out.iter().all(|&v| v < 0.7 && v > 0.0));
    }

    #[test]
    fn mirror_reflects_about_the_edge_pixel() {
        let idx: Vec<_> = (-4..8).map(|i| Border::Mirror.index(i, 4).unwrap()).collect();
        assert_eq!(idx, [2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]);
        assert_eq!(Border::Mirror.index(-5, 1), Some(0));
        assert_eq!(Border::Replicate.index(-5, 3), Some(0));
        assert_eq!(Border::Zero.index(3, 3), None);
    }

    #[test]
    fn f32_planes_are_filtered_in_f64_and_rounded_once() {
        let k = Kernel1d::gaussian(0.8, 3).unwrap();
        let a = plane(5, 7, 3);
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let wide: Vec<f64> = a32.iter().map(|&v| v as f64).collect();
        let want: Vec<f32> = k.apply(&wide, 5, 7, Border::Mirror).unwrap().iter().map(|&v| v as f32).collect();
        assert_eq!(k.apply(&a32, 5, 7, Border::Mirror).unwrap(), want);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Kernel1d::gaussian(0.0, 2).is_err());
        assert!(Kernel1d::gaussian(f64::NAN, 2).is_err());
        assert!(Kernel1d::gaussian(1.0, MAX_RADIUS + 1).is_err());
        assert!(Kernel1d::gaussian_truncated(1e300, 3.0).is_err());
        assert!(Kernel1d::gaussian_truncated(1.0, -1.0).is_err());
        assert!(Kernel1d::uniform(4).is_err());
        let k = Kernel1d::uniform(3).unwrap();
        assert!(k.apply(&[1.0; 5], 2, 3, Border::Zero).is_err());
        assert!(k.apply::<f64>(&[], 0, 3, Border::Zero).is_err());
        assert!(blur_planes(&Tensor4::<f32>::zeros([0, 1, 2, 2]).unwrap(), &k, Border::Zero).is_err());
    }
}
