//! The convolutional dictionary: a bank of `M` filters of `C` channels, `kh × kw` taps each.

use crate::error::{ConvCodingError, Result, finite, invalid, shape};
use latent_linalg::{Real, Tensor4};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A bank of `M` filters `d_m`, each with `C` channels of `kh × kw` taps, stored as a
/// [`Tensor4`] of shape `(M, C, kh, kw)`.
///
/// Filters of any size, odd or even, are allowed. The tap `d_m[c, u, v]` multiplies the map value
/// `u` rows above and `v` columns left of the pixel it contributes to: the filter's origin is its
/// top-left tap, as in SPORCO (see [`crate::Boundary`] for how the image border is handled).
///
/// # Example
/// ```
/// use latent_conv_coding::Filters;
/// let d = Filters::<f64>::random(8, 1, 5, 5, 0).unwrap();
/// assert_eq!((d.count(), d.channels(), d.kh(), d.kw()), (8, 1, 5, 5));
/// assert!(d.norms().iter().all(|n| (n - 1.0).abs() < 1e-12));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Filters<T: Real> {
    t: Tensor4<T>,
}

impl<T: Real> Filters<T> {
    /// Wrap a `(M, C, kh, kw)` tensor.
    ///
    /// # Errors
    /// [`ConvCodingError::Empty`] when a dimension is zero, [`ConvCodingError::NonFinite`] for NaN/Inf.
    pub fn new(t: Tensor4<T>) -> Result<Self> {
        if t.is_empty() {
            return Err(ConvCodingError::Empty("filters"));
        }
        finite("filters", t.as_slice())?;
        Ok(Self { t })
    }

    /// Filters from a flat `(M, C, kh, kw)` row-major vector.
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] when the length is wrong; as [`Filters::new`].
    pub fn from_vec(m: usize, c: usize, kh: usize, kw: usize, data: Vec<T>) -> Result<Self> {
        let n = m.checked_mul(c).and_then(|v| v.checked_mul(kh)).and_then(|v| v.checked_mul(kw));
        if n != Some(data.len()) {
            return Err(shape(
                "Filters::from_vec",
                format!("{m}x{c}x{kh}x{kw} filters need {n:?} values, got {}", data.len()),
            ));
        }
        Self::new(Tensor4::from_vec([m, c, kh, kw], data)?)
    }

    /// Single-channel filters from SPORCO's layout: a row-major `(kh, kw, M)` array (the filter `m`
    /// is `D[:, :, m]`), as stored in `csc_D0.npy`.
    ///
    /// # Errors
    /// As [`Filters::from_vec`].
    pub fn from_hwm(kh: usize, kw: usize, m: usize, data: &[T]) -> Result<Self> {
        if kh.checked_mul(kw).and_then(|v| v.checked_mul(m)) != Some(data.len()) {
            return Err(shape(
                "Filters::from_hwm",
                format!("({kh}, {kw}, {m}) needs {} values, got {}", kh * kw * m, data.len()),
            ));
        }
        let mut out = vec![T::zero(); data.len()];
        for u in 0..kh {
            for v in 0..kw {
                for j in 0..m {
                    out[(j * kh + u) * kw + v] = data[(u * kw + v) * m + j];
                }
            }
        }
        Self::from_vec(m, 1, kh, kw, out)
    }

    /// The filters in SPORCO's `(kh, kw, M)` row-major layout (single channel) or `(kh, kw, C, M)`.
    pub fn to_hwm(&self) -> Vec<T> {
        let [m, c, kh, kw] = self.t.shape();
        let s = self.t.as_slice();
        let mut out = vec![T::zero(); s.len()];
        for j in 0..m {
            for ch in 0..c {
                for u in 0..kh {
                    for v in 0..kw {
                        out[((u * kw + v) * c + ch) * m + j] = s[((j * c + ch) * kh + u) * kw + v];
                    }
                }
            }
        }
        out
    }

    /// `m` random unit-norm filters (i.i.d. Gaussian taps, then normalised), seeded.
    ///
    /// # Errors
    /// [`ConvCodingError::Empty`] when a dimension is zero.
    pub fn random(m: usize, c: usize, kh: usize, kw: usize, seed: u64) -> Result<Self> {
        if m == 0 || c == 0 || kh == 0 || kw == 0 {
            return Err(ConvCodingError::Empty("filters"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t = Tensor4::from_fn([m, c, kh, kw], |_| {
            let v: f64 = StandardNormal.sample(&mut rng);
            T::lit(v)
        })?;
        let mut f = Self::new(t)?;
        f.normalize();
        Ok(f)
    }

    /// Number of filters `M`.
    pub fn count(&self) -> usize {
        self.t.n()
    }
    /// Channels `C`.
    pub fn channels(&self) -> usize {
        self.t.c()
    }
    /// Filter height.
    pub fn kh(&self) -> usize {
        self.t.h()
    }
    /// Filter width.
    pub fn kw(&self) -> usize {
        self.t.w()
    }
    /// Taps of one filter (`C · kh · kw` values), or `None` past the end.
    pub fn filter(&self, m: usize) -> Option<&[T]> {
        self.t.sample(m)
    }
    /// The underlying `(M, C, kh, kw)` tensor.
    pub fn as_tensor(&self) -> &Tensor4<T> {
        &self.t
    }
    /// All taps, `(M, C, kh, kw)` row-major.
    pub fn as_slice(&self) -> &[T] {
        self.t.as_slice()
    }
    /// Mutable taps (the caller keeps them finite).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        self.t.as_mut_slice()
    }
    /// Unwrap the tensor.
    pub fn into_tensor(self) -> Tensor4<T> {
        self.t
    }
    /// Euclidean norm of each filter (over all its channels).
    pub fn norms(&self) -> Vec<T> {
        let len = self.t.sample_len();
        self.t.as_slice().chunks(len).map(|f| f.iter().fold(T::zero(), |a, &v| a + v * v).sqrt()).collect()
    }
    /// Scale every nonzero filter to unit norm (all-zero filters stay zero).
    pub fn normalize(&mut self) {
        let len = self.t.sample_len();
        for f in self.t.as_mut_slice().chunks_mut(len) {
            let n = f.iter().fold(T::zero(), |a, &v| a + v * v).sqrt();
            if n > T::zero() {
                f.iter_mut().for_each(|v| *v /= n);
            }
        }
    }
    /// The filters `range` (e.g. the first 16 of a bank).
    ///
    /// # Errors
    /// [`ConvCodingError::InvalidParameter`] for an empty or out-of-range selection.
    pub fn select(&self, range: std::ops::Range<usize>) -> Result<Self> {
        if range.start >= range.end || range.end > self.count() {
            return Err(invalid(
                "range",
                format!("{range:?}"),
                format!("must be a non-empty range within 0..{}", self.count()),
            ));
        }
        let len = self.t.sample_len();
        let data = self.t.as_slice()[range.start * len..range.end * len].to_vec();
        Self::from_vec(range.len(), self.channels(), self.kh(), self.kw(), data)
    }
    /// The same filters in another precision.
    ///
    /// # Errors
    /// [`ConvCodingError::NonFinite`] when a value overflows the target type.
    pub fn cast<U: Real>(&self) -> Result<Filters<U>> {
        let data: Vec<U> = self.t.as_slice().iter().map(|v| U::lit(v.as_f64())).collect();
        let [m, c, kh, kw] = self.t.shape();
        Filters::from_vec(m, c, kh, kw, data)
    }
}
