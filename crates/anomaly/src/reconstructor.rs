//! The one seam every detector in this crate is built on: a [`Reconstructor`] maps a batch of
//! images `x` to reconstructions `x̂` of the same shape.
//!
//! Implementations shipped with the crate:
//!
//! | model | crate | failures come back as |
//! |---|---|---|
//! | [`latent_autoencoder::Autoencoder`], [`latent_autoencoder::Composed`] | `latent-autoencoder` | [`AnomalyError::Autoencoder`](crate::AnomalyError::Autoencoder) |
//! | [`crate::SsimAutoencoder`] | this crate | [`AnomalyError::ShapeMismatch`](crate::AnomalyError::ShapeMismatch), [`AnomalyError::NonFinite`](crate::AnomalyError::NonFinite), [`AnomalyError::Autoencoder`](crate::AnomalyError::Autoencoder) |
//! | [`crate::PatchDictionary`] | this crate (sparse coding) | this crate's variants, [`AnomalyError::SparseCoding`](crate::AnomalyError::SparseCoding) |
//! | [`crate::CscReconstructor`] | this crate (convolutional sparse coding) | this crate's variants, [`AnomalyError::ConvCoding`](crate::AnomalyError::ConvCoding) |
//! | `&R`, `Box<R>` for any reconstructor `R` | — | as `R` |
//!
//! A model defined anywhere else implements the one required method and reports its own
//! failures with [`AnomalyError::reconstructor`](crate::AnomalyError::reconstructor), which keeps the model's typed error as the
//! [`std::error::Error::source`] (downcastable), not as a string.
//!
//! # Why one error type and not an associated one
//! The detector, the evaluation and the validation functions need one error type anyway, and a
//! fixed one keeps the trait object-safe with no extra parameter: detectors over
//! `Box<dyn Reconstructor<f32>>` (a model chosen at run time, an ensemble of different models)
//! work as they are. Nothing is lost for a model with its own error type: it is boxed as the
//! source of [`AnomalyError::Reconstructor`](crate::AnomalyError::Reconstructor) and comes back out with `downcast_ref`.
//!
//! # Example: a model defined outside the crate
//! ```
//! use latent_anomaly::{AnomalyError, Detector, DetectorParams, ParamGuard, Reconstructor, Result};
//! use latent_linalg::Tensor4;
//!
//! /// The model's own error type.
//! #[derive(Debug, thiserror::Error)]
//! #[error("rows must be at least {0} wide")]
//! struct TooNarrow(usize);
//!
//! /// Reconstructs every row by its mean (exact on images with constant rows).
//! struct RowMean;
//! impl Reconstructor<f64> for RowMean {
//!     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
//!         let w = x.w();
//!         if w < 2 {
//!             return Err(AnomalyError::reconstructor("row mean", TooNarrow(2)));
//!         }
//!         let mut y = x.clone();
//!         for row in y.as_mut_slice().chunks_mut(w) {
//!             let m = row.iter().sum::<f64>() / w as f64;
//!             row.iter_mut().for_each(|v| *v = m);
//!         }
//!         Ok(y)
//!     }
//! }
//! let x = Tensor4::from_fn([2, 1, 4, 4], |[n, _, i, _]| (n + i) as f64)?;
//! assert_eq!(RowMean.reconstruction_errors(&x)?, vec![0.0, 0.0]);
//! let det = Detector::new(RowMean, DetectorParams::new().check()?);
//! let e = det.analyze(&Tensor4::zeros([1, 1, 4, 1])?).unwrap_err();
//! let AnomalyError::Reconstructor { model, source } = &e else { panic!("{e}") };
//! assert_eq!(*model, "row mean");
//! assert!(source.downcast_ref::<TooNarrow>().is_some());
//! # Ok::<(), AnomalyError>(())
//! ```

#[cfg(feature = "autoencoder")]
mod autoencoder;

use crate::error::{Result, shape_err};
use latent_linalg::{Real, Tensor4};

/// Anything that reconstructs a batch `x ↦ x̂` (autoencoders, sparse coding, a user's own model):
/// what anomaly detection needs. One required method.
pub trait Reconstructor<T: Real> {
    /// Reconstruction of a batch `(N, C, H, W)`, same shape as `x` (a reconstruction with the
    /// same number of elements is reshaped by the [`crate::Detector`]).
    ///
    /// # Errors
    /// A typed error when the batch does not fit the model; a model with its own error type
    /// returns [`crate::AnomalyError::reconstructor`] of it.
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>>;

    /// Per-sample mean squared reconstruction error `‖xₙ − x̂ₙ‖² / D` (accumulated in `f64`).
    ///
    /// # Errors
    /// As [`Reconstructor::reconstruct`], and [`crate::AnomalyError::ShapeMismatch`] when the
    /// reconstruction does not have the input's size.
    fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        let xh = self.reconstruct(x)?;
        if xh.len() != x.len() {
            return Err(shape_err("reconstruction_errors", x.shape(), xh.shape()));
        }
        Ok(x.per_sample_mse(&xh)?)
    }
}

impl<T: Real, R: Reconstructor<T> + ?Sized> Reconstructor<T> for &R {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        (**self).reconstruct(x)
    }
    fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        (**self).reconstruction_errors(x)
    }
}

impl<T: Real, R: Reconstructor<T> + ?Sized> Reconstructor<T> for Box<R> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        (**self).reconstruct(x)
    }
    fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        (**self).reconstruction_errors(x)
    }
}

/// An ensemble of reconstructors whose reconstruction is the mean of its members'
/// reconstructions (summed in member order, then divided: deterministic). Typical use: the same
/// architecture trained with several seeds, whose mean restoration varies less than any one.
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `members` | the reconstructors | at least one |
///
/// # Example
/// ```
/// use latent_anomaly::{MeanEnsemble, Reconstructor, Result};
/// use latent_linalg::Tensor4;
/// struct Scale(f64);
/// impl Reconstructor<f64> for Scale {
///     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
///         let mut y = x.clone();
///         y.as_mut_slice().iter_mut().for_each(|v| *v *= self.0);
///         Ok(y)
///     }
/// }
/// let e = MeanEnsemble::new(vec![Scale(1.0), Scale(3.0)])?;
/// let x = Tensor4::from_fn([1, 1, 2, 2], |_| 1.0)?;
/// assert_eq!(e.reconstruct(&x)?.as_slice(), &[2.0; 4]);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MeanEnsemble<R> {
    members: Vec<R>,
}

impl<R> MeanEnsemble<R> {
    /// An ensemble of `members`.
    ///
    /// # Errors
    /// [`crate::AnomalyError::Empty`] for no members.
    pub fn new(members: Vec<R>) -> Result<Self> {
        if members.is_empty() {
            return Err(crate::AnomalyError::Empty { what: "ensemble members" });
        }
        Ok(Self { members })
    }

    /// The members, in order.
    pub fn members(&self) -> &[R] {
        &self.members
    }
}

impl<T: Real, R: Reconstructor<T>> Reconstructor<T> for MeanEnsemble<R> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let mut acc = self.members[0].reconstruct(x)?;
        for m in &self.members[1..] {
            let y = m.reconstruct(x)?;
            if y.len() != acc.len() {
                return Err(shape_err("MeanEnsemble::reconstruct", acc.shape(), y.shape()));
            }
            acc.as_mut_slice().iter_mut().zip(y.as_slice()).for_each(|(a, &b)| *a += b);
        }
        let k = T::from_usize(self.members.len()).expect("member count fits the scalar type");
        acc.as_mut_slice().iter_mut().for_each(|a| *a /= k);
        Ok(acc)
    }
}

/// Which symmetries of the image plane [`SymmetryAverage`] averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Symmetries {
    /// The four mirrorings: identity, left–right, up–down and both (a half-turn).
    Mirrors,
    /// All eight symmetries of the square: the four mirrorings, each also after a transpose.
    /// Needs square planes (`H = W`).
    Dihedral,
}

impl Symmetries {
    /// The number of transforms averaged.
    pub fn count(self) -> usize {
        match self {
            Symmetries::Mirrors => 4,
            Symmetries::Dihedral => 8,
        }
    }
}

/// Test-time symmetry averaging: the reconstruction of `x` is the mean over a set of symmetries
/// `M` of the plane (see [`Symmetries`]) of `M⁻¹ f(M x)`, `f` the wrapped reconstructor. For a
/// texture whose statistics do not change under those symmetries, the mean keeps what `f`
/// restores consistently and averages out part of what it invents; an `f` that commutes with the
/// symmetries is returned unchanged. Costs one reconstruction per symmetry; summed in a fixed
/// order, then divided (deterministic).
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `inner` | the reconstructor | any |
/// | `symmetries` | the transforms averaged | [`Symmetries::Mirrors`] (4), [`Symmetries::Dihedral`] (8, square planes) |
///
/// # Errors
/// [`Reconstructor::reconstruct`] returns [`crate::AnomalyError::ShapeMismatch`] for
/// [`Symmetries::Dihedral`] on non-square planes or when `f` returns another shape, and `f`'s own
/// errors.
///
/// # Example
/// ```
/// use latent_anomaly::{Reconstructor, Result, Symmetries, SymmetryAverage};
/// use latent_linalg::Tensor4;
/// /// Shifts every row one pixel to the right (not mirror-symmetric).
/// struct ShiftRight;
/// impl Reconstructor<f64> for ShiftRight {
///     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
///         let w = x.shape()[3];
///         let v = x.as_slice();
///         Ok(Tensor4::from_fn(x.shape(), |[n, c, i, j]| if j == 0 { 0.0 } else { v[((n * x.shape()[1] + c) * x.shape()[2] + i) * w + j - 1] })?)
///     }
/// }
/// let x = Tensor4::from_vec([1, 1, 1, 3], vec![1.0, 2.0, 3.0])?;
/// let avg = SymmetryAverage::new(ShiftRight, Symmetries::Mirrors);
/// // left–right mirroring turns the shift right into a shift left; the mean of the two:
/// assert_eq!(avg.reconstruct(&x)?.as_slice(), &[1.0, 2.0, 1.0]);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SymmetryAverage<R> {
    inner: R,
    symmetries: Symmetries,
}

impl<R> SymmetryAverage<R> {
    /// Average `inner` over `symmetries`.
    pub fn new(inner: R, symmetries: Symmetries) -> Self {
        Self { inner, symmetries }
    }
    /// The wrapped reconstructor.
    pub fn inner(&self) -> &R {
        &self.inner
    }
    /// The symmetries averaged over.
    pub fn symmetries(&self) -> Symmetries {
        self.symmetries
    }
}

/// `x` under symmetry `k` (bit 0: left–right, bit 1: up–down, bit 2: transpose first), or its
/// inverse with `inverse`. Planes must be square when bit 2 is set.
fn transform<T: Real>(x: &Tensor4<T>, k: usize, inverse: bool) -> Result<Tensor4<T>> {
    let [n, c, h, w] = x.shape();
    let (lr, ud, tr) = (k & 1 != 0, k & 2 != 0, k & 4 != 0);
    let v = x.as_slice();
    // forward: y = mirror(transpose(x)); inverse: x = transpose(mirror(y)) — mirrors are their own
    // inverses, and the transpose is applied on the other side
    let out = Tensor4::from_fn([n, c, h, w], |[ni, ci, i, j]| {
        let base = (ni * c + ci) * h * w;
        let (mut si, mut sj) = (i, j);
        if inverse && tr {
            (si, sj) = (sj, si);
        }
        if lr {
            sj = w - 1 - sj;
        }
        if ud {
            si = h - 1 - si;
        }
        if !inverse && tr {
            (si, sj) = (sj, si);
        }
        v[base + si * w + sj]
    })?;
    Ok(out)
}

impl<T: Real, R: Reconstructor<T>> Reconstructor<T> for SymmetryAverage<R> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let [n, c, h, w] = x.shape();
        if self.symmetries == Symmetries::Dihedral && h != w {
            return Err(shape_err("SymmetryAverage (dihedral needs square planes)", [n, c, w, w], x.shape()));
        }
        let mut acc: Option<Tensor4<T>> = None;
        for k in 0..self.symmetries.count() {
            let y =
                if k == 0 { self.inner.reconstruct(x)? } else { self.inner.reconstruct(&transform(x, k, false)?)? };
            if y.len() != x.len() {
                return Err(shape_err("SymmetryAverage::reconstruct", x.shape(), y.shape()));
            }
            let y = Tensor4::from_vec(x.shape(), y.into_vec())?;
            let y = if k == 0 { y } else { transform(&y, k, true)? };
            match acc.as_mut() {
                None => acc = Some(y),
                Some(a) => a.as_mut_slice().iter_mut().zip(y.as_slice()).for_each(|(a, &b)| *a += b),
            }
        }
        let mut acc = acc.expect("at least one symmetry");
        let k = T::from_usize(self.symmetries.count()).expect("symmetry count fits the scalar type");
        acc.as_mut_slice().iter_mut().for_each(|a| *a /= k);
        Ok(acc)
    }
}

#[cfg(test)]
mod symmetry_tests {
    use super::*;

    /// Shifts every row one pixel right (zero in the first column): not mirror-symmetric.
    struct ShiftRight;
    impl Reconstructor<f64> for ShiftRight {
        fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
            let [_, c, h, w] = x.shape();
            let v = x.as_slice();
            Ok(Tensor4::from_fn(
                x.shape(),
                |[n, ci, i, j]| if j == 0 { 0.0 } else { v[((n * c + ci) * h + i) * w + j - 1] },
            )?)
        }
    }
    /// Squares every pixel: commutes with every symmetry.
    struct Square;
    impl Reconstructor<f64> for Square {
        fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
            let mut y = x.clone();
            y.as_mut_slice().iter_mut().for_each(|v| *v *= *v);
            Ok(y)
        }
    }
    struct Wrong;
    impl Reconstructor<f64> for Wrong {
        fn reconstruct(&self, _x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
            Ok(Tensor4::zeros([1, 1, 1, 1])?)
        }
    }

    fn sample(shape: [usize; 4]) -> Tensor4<f64> {
        Tensor4::from_fn(shape, |[n, c, i, j]| (n * 1000 + c * 100 + i * 10 + j) as f64 * 0.37 + 1.0).unwrap()
    }

    type Grid = Vec<Vec<f64>>;
    fn rot90(g: &Grid) -> Grid {
        let (h, w) = (g.len(), g[0].len());
        (0..w).map(|i| (0..h).map(|j| g[h - 1 - j][i]).collect()).collect()
    }
    fn flip_lr(g: &Grid) -> Grid {
        g.iter().map(|r| r.iter().rev().copied().collect()).collect()
    }
    fn shift_right(g: &Grid) -> Grid {
        g.iter().map(|r| (0..r.len()).map(|j| if j == 0 { 0.0 } else { r[j - 1] }).collect()).collect()
    }

    #[test]
    fn transforms_invert() {
        for shape in [[2, 3, 4, 4], [1, 2, 3, 5]] {
            let x = sample(shape);
            let ks = if shape[2] == shape[3] { 8 } else { 4 };
            let mut seen = Vec::new();
            for k in 0..ks {
                let y = transform(&x, k, false).unwrap();
                assert_eq!(transform(&y, k, true).unwrap().as_slice(), x.as_slice(), "k = {k}");
                seen.push(y.into_vec());
            }
            // the transforms are distinct
            for a in 0..ks {
                for b in a + 1..ks {
                    assert_ne!(seen[a], seen[b], "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn equivariant_reconstructor_is_unchanged() {
        let x = sample([2, 1, 5, 5]);
        for s in [Symmetries::Mirrors, Symmetries::Dihedral] {
            let got = SymmetryAverage::new(Square, s).reconstruct(&x).unwrap();
            let want = Square.reconstruct(&x).unwrap();
            for (a, b) in got.as_slice().iter().zip(want.as_slice()) {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} {b}");
            }
        }
    }

    #[test]
    fn dihedral_average_matches_rotations_done_by_hand() {
        // the 8 symmetries are {rot^r, rot^r ∘ flip}; average rot^-r(f(rot^r g)) etc. by hand
        let n = 4;
        let x = sample([1, 1, n, n]);
        let g: Grid = (0..n).map(|i| x.as_slice()[i * n..(i + 1) * n].to_vec()).collect();
        let mut want = vec![vec![0.0; n]; n];
        for flip in [false, true] {
            for r in 0..4 {
                let mut t = if flip { flip_lr(&g) } else { g.clone() };
                for _ in 0..r {
                    t = rot90(&t);
                }
                let mut y = shift_right(&t);
                for _ in 0..(4 - r) % 4 {
                    y = rot90(&y);
                }
                if flip {
                    y = flip_lr(&y);
                }
                for i in 0..n {
                    for j in 0..n {
                        want[i][j] += y[i][j] / 8.0;
                    }
                }
            }
        }
        let got = SymmetryAverage::new(ShiftRight, Symmetries::Dihedral).reconstruct(&x).unwrap();
        for i in 0..n {
            for j in 0..n {
                assert!((got.as_slice()[i * n + j] - want[i][j]).abs() < 1e-12, "({i},{j})");
            }
        }
        // mirrors only: the mean of the four mirrored shifts, by hand for one row pair
        let m = SymmetryAverage::new(ShiftRight, Symmetries::Mirrors).reconstruct(&x).unwrap();
        let lr = flip_lr(&shift_right(&flip_lr(&g)));
        let plain = shift_right(&g);
        for i in 0..n {
            for j in 0..n {
                // up–down mirroring commutes with a horizontal shift: two copies of each
                let w = (plain[i][j] + lr[i][j]) / 2.0;
                assert!((m.as_slice()[i * n + j] - w).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn shape_errors() {
        let x = sample([1, 1, 3, 4]);
        assert!(matches!(
            SymmetryAverage::new(Square, Symmetries::Dihedral).reconstruct(&x),
            Err(crate::AnomalyError::ShapeMismatch { .. })
        ));
        assert!(SymmetryAverage::new(Square, Symmetries::Mirrors).reconstruct(&x).is_ok());
        assert!(matches!(
            SymmetryAverage::new(Wrong, Symmetries::Mirrors).reconstruct(&x),
            Err(crate::AnomalyError::ShapeMismatch { .. })
        ));
        assert_eq!(Symmetries::Dihedral.count(), 8);
    }
}
