//! Separable, border-normalised window filters: the local means of SSIM and the Gaussian
//! smoothing of anomaly maps.
//!
//! At a pixel whose window leaves the image the weights are restricted to the pixels inside and
//! renormalised to sum to 1, so the output has the input's size, constant images stay constant
//! and no padding values are invented.

use crate::error::{Result, check_finite, check_pos, invalid, shape_err};
use latent_linalg::filter::{Border, Kernel1d, blur_planes};
use latent_linalg::{Real, Tensor4};

/// A symmetric 1-D kernel of odd length applied along rows and columns with border
/// renormalisation: `latent_linalg::filter`'s [`Kernel1d`] under [`Border::Renormalize`], for
/// the local means of SSIM (whose parameters are validated before a filter is built).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeparableFilter {
    k: Kernel1d,
}

impl SeparableFilter {
    /// Normalised Gaussian taps `exp(−d²/2σ²)` for `d = −r..=r`, `size = 2r + 1`; `size` odd and
    /// at most 255, `sigma` finite and positive (as `SsimParams::check` ensures).
    pub(crate) fn gaussian(size: usize, sigma: f64) -> Self {
        Self { k: Kernel1d::gaussian(sigma, size / 2).expect("SSIM window and sigma are validated by check()") }
    }

    /// `size` equal taps; `size` odd and at most 255 (as `SsimParams::check` ensures).
    pub(crate) fn uniform(size: usize) -> Self {
        Self { k: Kernel1d::uniform(size).expect("SSIM window is validated by check()") }
    }

    /// Filter an `h × w` plane (`transpose = false`) or apply the adjoint of that linear map
    /// (`transpose = true`, used for gradients); `src` holds `h·w > 0` values.
    pub(crate) fn apply(&self, src: &[f64], h: usize, w: usize, transpose: bool) -> Vec<f64> {
        let r = if transpose {
            self.k.apply_adjoint(src, h, w, Border::Renormalize)
        } else {
            self.k.apply(src, h, w, Border::Renormalize)
        };
        r.expect("SSIM planes are non-empty h × w planes (checked by the callers)")
    }
}

/// Kernel size used for a Gaussian of standard deviation `sigma`: `2·⌈4σ⌉ + 1` (truncated at
/// four standard deviations).
pub fn gaussian_kernel_size(sigma: f64) -> usize {
    2 * (4.0 * sigma).ceil().max(1.0) as usize + 1
}

/// Gaussian smoothing of every `(H, W)` plane of `x` with standard deviation `sigma` pixels
/// (kernel truncated at 4σ, border-renormalised, so the output has the input's shape).
///
/// # Errors
/// [`crate::AnomalyError::InvalidParameter`] for `sigma` not finite or `<= 0` or above 1000,
/// [`crate::AnomalyError::Empty`] for an empty tensor, [`crate::AnomalyError::NonFinite`] for
/// NaN/Inf input.
///
/// # Example
/// ```
/// use latent_anomaly::filter::gaussian_blur;
/// use latent_linalg::Tensor4;
/// let mut x = Tensor4::<f64>::zeros([1, 1, 21, 21])?;
/// *x.get_mut([0, 0, 10, 10]).unwrap() = 1.0;
/// let y = gaussian_blur(&x, 1.0)?;
/// assert!((y.as_slice().iter().sum::<f64>() - 1.0).abs() < 1e-9); // mass is kept away from borders
/// assert!(y.get([0, 0, 10, 10]).unwrap() > y.get([0, 0, 10, 11]).unwrap());
/// // near borders the window is renormalised: constant images stay constant
/// let c = gaussian_blur(&Tensor4::<f64>::full([1, 1, 5, 5], 0.3)?, 2.0)?;
/// assert!(c.as_slice().iter().all(|v| (v - 0.3).abs() < 1e-12));
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn gaussian_blur<T: Real>(x: &Tensor4<T>, sigma: f64) -> Result<Tensor4<T>> {
    check_pos("sigma", sigma)?;
    if sigma > 1000.0 {
        return Err(invalid("sigma", sigma, "must be at most 1000 pixels"));
    }
    if x.is_empty() {
        return Err(crate::AnomalyError::Empty { what: "tensor to smooth" });
    }
    check_finite("tensor to smooth", x.as_slice())?;
    let k = Kernel1d::gaussian(sigma, gaussian_kernel_size(sigma) / 2)?;
    Ok(blur_planes(x, &k, Border::Renormalize)?)
}

/// Error unless `a` and `b` have the same shape.
pub(crate) fn same_shape<T: Real>(op: &'static str, a: &Tensor4<T>, b: &Tensor4<T>) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(shape_err(op, a.shape(), b.shape()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter as it was before it moved to `latent_linalg::filter` (reference for the test).
    #[derive(Debug, Clone, PartialEq)]
    struct FilterBefore {
        k: Vec<f64>,
    }

    impl FilterBefore {
        /// Normalised Gaussian taps `exp(−d²/2σ²)` for `d = −r..=r`, `size = 2r + 1`.
        fn gaussian(size: usize, sigma: f64) -> Self {
            let r = (size / 2) as f64;
            let k: Vec<f64> = (0..size).map(|i| (-(i as f64 - r).powi(2) / (2.0 * sigma * sigma)).exp()).collect();
            Self::normalised(k)
        }

        /// `size` equal taps.
        fn uniform(size: usize) -> Self {
            Self::normalised(vec![1.0; size])
        }

        fn normalised(k: Vec<f64>) -> Self {
            let s: f64 = k.iter().sum();
            Self { k: k.into_iter().map(|v| v / s).collect() }
        }

        /// Sum of the taps that fall inside `0..n` around each position.
        fn norms(&self, n: usize) -> Vec<f64> {
            let r = self.k.len() / 2;
            (0..n)
                .map(|i| {
                    let (lo, hi) = (i.saturating_sub(r), (i + r).min(n - 1));
                    (lo..=hi).map(|j| self.k[j + r - i]).sum()
                })
                .collect()
        }

        /// Filter an `h × w` plane (`transpose = false`) or apply the adjoint of that linear map
        /// (`transpose = true`, used for gradients).
        fn apply(&self, src: &[f64], h: usize, w: usize, transpose: bool) -> Vec<f64> {
            let r = self.k.len() / 2;
            let (zr, zc) = (self.norms(h), self.norms(w));
            let mut tmp = vec![0.0; h * w];
            for y in 0..h {
                let row = &src[y * w..(y + 1) * w];
                for x in 0..w {
                    let (lo, hi) = (x.saturating_sub(r), (x + r).min(w - 1));
                    let mut s = 0.0;
                    if transpose {
                        for m in lo..=hi {
                            s += self.k[m + r - x] * row[m] / zc[m];
                        }
                        tmp[y * w + x] = s;
                    } else {
                        for m in lo..=hi {
                            s += self.k[m + r - x] * row[m];
                        }
                        tmp[y * w + x] = s / zc[x];
                    }
                }
            }
            let mut out = vec![0.0; h * w];
            for y in 0..h {
                let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
                let o = &mut out[y * w..(y + 1) * w];
                for j in lo..=hi {
                    let kk = self.k[j + r - y];
                    let row = &tmp[j * w..(j + 1) * w];
                    if transpose {
                        let c = kk / zr[j];
                        o.iter_mut().zip(row).for_each(|(a, &b)| *a += c * b);
                    } else {
                        o.iter_mut().zip(row).for_each(|(a, &b)| *a += kk * b);
                    }
                }
                if !transpose {
                    let z = zr[y];
                    o.iter_mut().for_each(|a| *a /= z);
                }
            }
            out
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn linalg_filter_is_bit_identical_to_the_old_one() {
        let mut s = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for (h, w, size, sigma) in
            [(21, 21, 9, 1.0), (7, 13, 11, 1.5), (1, 6, 3, 0.4), (40, 3, 17, 2.0), (5, 5, 7, 1.2)]
        {
            let a: Vec<f64> = (0..h * w).map(|_| next() * 3.0 - 1.0).collect();
            for transpose in [false, true] {
                let (new, old) = (SeparableFilter::gaussian(size, sigma), FilterBefore::gaussian(size, sigma));
                assert_eq!(bits(&new.apply(&a, h, w, transpose)), bits(&old.apply(&a, h, w, transpose)));
                let (new, old) = (SeparableFilter::uniform(size), FilterBefore::uniform(size));
                assert_eq!(bits(&new.apply(&a, h, w, transpose)), bits(&old.apply(&a, h, w, transpose)));
            }
            // the Tensor4 blur, f64 and f32 (computed in f64, rounded once, as before)
            let x = Tensor4::from_vec([1, 1, h, w], a.clone()).unwrap();
            let want = FilterBefore::gaussian(gaussian_kernel_size(sigma), sigma).apply(&a, h, w, false);
            assert_eq!(bits(gaussian_blur(&x, sigma).unwrap().as_slice()), bits(&want));
            let x32 = Tensor4::from_vec([1, 1, h, w], a.iter().map(|&v| v as f32).collect()).unwrap();
            let wide: Vec<f64> = x32.as_slice().iter().map(|&v| v as f64).collect();
            let want32: Vec<u32> = FilterBefore::gaussian(gaussian_kernel_size(sigma), sigma)
                .apply(&wide, h, w, false)
                .iter()
                .map(|&v| (v as f32).to_bits())
                .collect();
            let got32: Vec<u32> = gaussian_blur(&x32, sigma).unwrap().as_slice().iter().map(|v| v.to_bits()).collect();
            assert_eq!(got32, want32);
        }
    }

    #[test]
    fn transpose_is_the_adjoint() {
        let f = SeparableFilter::gaussian(5, 1.1);
        let (h, w) = (6, 4);
        let a: Vec<f64> = (0..h * w).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let b: Vec<f64> = (0..h * w).map(|i| ((i * 3) % 7) as f64 * 0.3).collect();
        let fa = f.apply(&a, h, w, false);
        let ftb = f.apply(&b, h, w, true);
        let l: f64 = fa.iter().zip(&b).map(|(x, y)| x * y).sum();
        let r: f64 = a.iter().zip(&ftb).map(|(x, y)| x * y).sum();
        assert!((l - r).abs() < 1e-12, "{l} vs {r}");
    }

    #[test]
    fn constant_planes_stay_constant() {
        let f = SeparableFilter::uniform(11);
        let out = f.apply(&[0.7; 12], 3, 4, false);
        assert!(out.iter().all(|v| (v - 0.7).abs() < 1e-12));
    }
}
