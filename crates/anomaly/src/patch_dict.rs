//! Sparse-coding detectors: a patch dictionary learned on normal images as a [`Reconstructor`].
//!
//! Reconstruction of an image: extract every `p × p` patch on a grid with the given stride
//! (the last row and column of patches end at the border, so every pixel is covered), remove
//! each patch's mean (optional), code it with OMP (`‖s‖₀ ≤ k`) or LARS-lasso against the learned
//! dictionary, rebuild `Ws` (+ the mean), and average the overlapping patches. A dictionary
//! learned on normal patches reconstructs normal structure well and anomalous structure poorly,
//! so the reconstruction error localises defects, with the same API as an autoencoder.

use crate::error::{AnomalyError, Result, check_finite, check_pos, invalid};
use crate::reconstructor::Reconstructor;
use latent_linalg::{DMatrix, Real, Tensor4, Trans, matmul};
use latent_optim::fit::{Checked, Fit, ParamGuard};
use latent_sparse_coding::{Encoder, FittedDictionary, Lars, Omp, OnlineParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How patches are coded at reconstruction time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PatchCoder {
    /// Orthogonal matching pursuit with `k` atoms per patch.
    Omp {
        /// Nonzeros per code (`1..=min(p², atoms)`).
        k: usize,
    },
    /// LARS-lasso with ℓ1 weight `lambda` (`½‖x − Ws‖² + λ‖s‖₁`).
    Lars {
        /// ℓ1 weight (finite, `>= 0`).
        lambda: f64,
    },
}

/// Patch-dictionary detector settings (builder; [`ParamGuard::check`] validates them, and
/// `Checked::fit` on normal images learns the [`PatchDictionary`]).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `patch` | `8` | patch side `p` | `1..=64` |
/// | `stride` | `2` | step of the reconstruction grid | `1..=patch` |
/// | `atoms` | `128` | dictionary size | `>= 1` |
/// | `lambda` | `0.05` | ℓ1 weight of online dictionary learning (Mairal et al. 2009, LARS codes) | finite, `>= 0` |
/// | `coder` | `Omp { k: 4 }` | coding at reconstruction time, see [`PatchCoder`] | `k <= min(p², atoms)` |
/// | `remove_mean` | `true` | code mean-free patches and add the mean back | — |
/// | `train_patches` | `20000` | random training patches drawn from the normal images | `>= 1` |
/// | `epochs` | `1` | passes of online learning over them | `>= 1` |
/// | `batch_size` | `256` | mini-batch of online learning | `>= 1` |
/// | `seed` | `0` | patch sampling and learning | any |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatchDictionaryParams {
    /// Patch side.
    pub patch: usize,
    /// Reconstruction stride.
    pub stride: usize,
    /// Dictionary size.
    pub atoms: usize,
    /// ℓ1 weight for learning.
    pub lambda: f64,
    /// Reconstruction coder.
    pub coder: PatchCoder,
    /// Remove patch means.
    pub remove_mean: bool,
    /// Training patches.
    pub train_patches: usize,
    /// Learning epochs.
    pub epochs: usize,
    /// Learning mini-batch size.
    pub batch_size: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for PatchDictionaryParams {
    fn default() -> Self {
        Self {
            patch: 8,
            stride: 2,
            atoms: 128,
            lambda: 0.05,
            coder: PatchCoder::Omp { k: 4 },
            remove_mean: true,
            train_patches: 20000,
            epochs: 1,
            batch_size: 256,
            seed: 0,
        }
    }
}

impl PatchDictionaryParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters!(
        /// Set the patch side.
        patch: usize,
        /// Set the reconstruction stride.
        stride: usize,
        /// Set the dictionary size.
        atoms: usize,
        /// Set the ℓ1 weight of dictionary learning.
        lambda: f64,
        /// Set the reconstruction coder.
        coder: PatchCoder,
        /// Remove patch means or not.
        remove_mean: bool,
        /// Set the number of training patches.
        train_patches: usize,
        /// Set the number of learning epochs.
        epochs: usize,
        /// Set the learning mini-batch size.
        batch_size: usize,
        /// Set the seed.
        seed: u64,
    );
}

impl ParamGuard for PatchDictionaryParams {
    type Error = AnomalyError;

    /// # Errors
    /// [`AnomalyError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        if self.patch == 0 || self.patch > 64 {
            return Err(invalid("patch", self.patch, "must be in 1..=64"));
        }
        if self.stride == 0 || self.stride > self.patch {
            return Err(invalid("stride", self.stride, "must be in 1..=patch"));
        }
        if self.atoms == 0 {
            return Err(invalid("atoms", 0, "must be >= 1"));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(invalid("lambda", self.lambda, "must be finite and >= 0"));
        }
        match self.coder {
            PatchCoder::Omp { k } => {
                let max = (self.patch * self.patch).min(self.atoms);
                if k == 0 || k > max {
                    return Err(invalid("coder.k", k, format!("must be in 1..={max} (min of patch² and atoms)")));
                }
            }
            PatchCoder::Lars { lambda } => {
                if lambda != 0.0 {
                    check_pos("coder.lambda", lambda)?;
                }
            }
        }
        if self.train_patches == 0 {
            return Err(invalid("train_patches", 0, "must be >= 1"));
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", 0, "must be >= 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be >= 1"));
        }
        Ok(())
    }
}

/// A learned patch dictionary: a [`Reconstructor`] for images of any size `>= patch`.
///
/// # Example
/// ```
/// use latent_anomaly::{ParamGuard, PatchCoder, PatchDictionaryParams, Reconstructor};
/// use latent_linalg::Tensor4;
/// // normal images: vertical stripes of random phase; the anomaly is a horizontal bar
/// let stripes = |n: usize| Tensor4::<f64>::from_fn([n, 1, 16, 16], |[i, _, _, x]| ((x + i) % 4 < 2) as u8 as f64);
/// let dict = PatchDictionaryParams::new().patch(4).stride(1).atoms(8).coder(PatchCoder::Omp { k: 2 })
///     .train_patches(500).check()?.fit(&stripes(8)?)?;
/// let normal = stripes(1)?;
/// let mut odd = normal.clone();
/// for x in 0..16 { *odd.get_mut([0, 0, 8, x]).unwrap() = 0.5; }
/// let e = |t: &Tensor4<f64>| dict.reconstruction_errors(t).unwrap()[0];
/// assert!(e(&normal) < 1e-6 && e(&odd) > 10.0 * e(&normal));
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PatchDictionary<T: Real> {
    /// The dictionary (`p² × atoms`, unit-norm atoms as columns).
    pub dictionary: DMatrix<T>,
    /// Settings it was learned with.
    pub params: PatchDictionaryParams,
    /// Objective per mini-batch of online learning.
    pub history: Vec<f64>,
}

/// Top-left offsets covering an axis of length `len` with windows of `p` every `stride`.
fn offsets(len: usize, p: usize, stride: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..=len - p).step_by(stride).collect();
    if v.last() != Some(&(len - p)) {
        v.push(len - p);
    }
    v
}

/// Subtract each column's mean, returning the means.
fn center_columns<T: Real>(m: &mut DMatrix<T>) -> Vec<T> {
    let d = T::from_count(m.nrows());
    m.column_iter_mut()
        .map(|mut c| {
            let mean = c.iter().fold(T::zero(), |a, &v| a + v) / d;
            c.iter_mut().for_each(|v| *v -= mean);
            mean
        })
        .collect()
}

impl<T: Real> Fit<Tensor4<T>> for PatchDictionaryParams {
    type Fitted = PatchDictionary<T>;

    /// Learn a dictionary on random patches of the normal images `(N, C, H, W)` (every channel
    /// plane is a gray image).
    ///
    /// # Errors
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::ShapeMismatch`]
    /// for images smaller than a patch, and dictionary-learning errors.
    fn fit_checked(params: &Checked<Self>, images: &Tensor4<T>) -> Result<PatchDictionary<T>> {
        let p = **params;
        if images.is_empty() {
            return Err(AnomalyError::Empty { what: "training images" });
        }
        check_finite("training images", images.as_slice())?;
        let [n, c, h, w] = images.shape();
        if h < p.patch || w < p.patch {
            return Err(crate::error::shape_err(
                "patch dictionary training",
                format!("images of at least {0}x{0}", p.patch),
                images.shape(),
            ));
        }
        let d = p.patch * p.patch;
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let src = images.as_slice();
        // learned in f64 whatever T is: the f32 LARS path of online learning is far slower
        let mut x = DMatrix::<f64>::zeros(d, p.train_patches);
        for j in 0..p.train_patches {
            let plane = rng.random_range(0..n * c);
            let y0 = rng.random_range(0..=h - p.patch);
            let x0 = rng.random_range(0..=w - p.patch);
            let col = x.column_mut(j);
            for (k, v) in col.into_iter().enumerate() {
                let (dy, dx) = (k / p.patch, k % p.patch);
                *v = src[(plane * h + y0 + dy) * w + x0 + dx].as_f64();
            }
        }
        if p.remove_mean {
            center_columns(&mut x);
        }
        let op = OnlineParams::new(p.atoms, p.lambda).epochs(p.epochs).batch_size(p.batch_size).seed(p.seed);
        let FittedDictionary { dictionary, history, .. } = op.check()?.fit(&x)?;
        Ok(PatchDictionary { dictionary: dictionary.map(T::lit), params: p, history })
    }
}

impl<T: Real> PatchDictionary<T> {
    fn encoder(&self) -> Box<dyn Encoder<f64>> {
        match self.params.coder {
            PatchCoder::Omp { k } => Box::new(Omp::new(k)),
            PatchCoder::Lars { lambda } => Box::new(Lars::new(lambda)),
        }
    }
}

impl<T: Real> Reconstructor<T> for PatchDictionary<T> {
    /// Reconstruct a batch `(N, C, H, W)` of images (each channel plane independently).
    ///
    /// # Errors
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::ShapeMismatch`]
    /// for images smaller than a patch, and coding errors.
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let p = self.params.patch;
        if x.is_empty() {
            return Err(AnomalyError::Empty { what: "images" });
        }
        check_finite("images", x.as_slice())?;
        let [_, _, h, w] = x.shape();
        if h < p || w < p {
            return Err(crate::error::shape_err(
                "patch reconstruction",
                format!("images of at least {p}x{p}"),
                x.shape(),
            ));
        }
        let ys = offsets(h, p, self.params.stride);
        let xs = offsets(w, p, self.params.stride);
        let enc = self.encoder();
        // coded in f64 whatever T is (accuracy, and the f32 LARS path is slow)
        let dict: DMatrix<f64> = self.dictionary.map(|v| v.as_f64());
        let d = p * p;
        let plane = h * w;
        let mut out = Vec::with_capacity(x.len());
        for src in x.as_slice().chunks_exact(plane) {
            let np = ys.len() * xs.len();
            let mut m = DMatrix::<f64>::zeros(d, np);
            for (j, (y0, x0)) in ys.iter().flat_map(|&y0| xs.iter().map(move |&x0| (y0, x0))).enumerate() {
                for (k, v) in m.column_mut(j).into_iter().enumerate() {
                    *v = src[(y0 + k / p) * w + x0 + k % p].as_f64();
                }
            }
            let means = if self.params.remove_mean { center_columns(&mut m) } else { vec![0.0; np] };
            let codes = enc.encode_batch(&dict, &m, None)?;
            let rec = matmul(&dict, Trans::N, &codes.codes, Trans::N)?;
            let mut acc = vec![0.0f64; plane];
            let mut cnt = vec![0u32; plane];
            for (j, (y0, x0)) in ys.iter().flat_map(|&y0| xs.iter().map(move |&x0| (y0, x0))).enumerate() {
                let mean = means[j];
                for (k, v) in rec.column(j).iter().enumerate() {
                    let o = (y0 + k / p) * w + x0 + k % p;
                    acc[o] += v + mean;
                    cnt[o] += 1;
                }
            }
            out.extend(acc.iter().zip(&cnt).map(|(&a, &c)| T::lit(a / f64::from(c))));
        }
        Ok(Tensor4::from_vec(x.shape(), out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_cover_the_axis() {
        assert_eq!(offsets(10, 4, 3), vec![0, 3, 6]);
        assert_eq!(offsets(11, 4, 3), vec![0, 3, 6, 7]);
        assert_eq!(offsets(4, 4, 2), vec![0]);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = PatchDictionaryParams::new().stride(9).check().unwrap_err();
        assert!(matches!(e, AnomalyError::InvalidParameter { name: "stride", .. }), "{e}");
        let e = PatchDictionaryParams::new().coder(PatchCoder::Omp { k: 0 }).check().unwrap_err();
        assert!(matches!(e, AnomalyError::InvalidParameter { name: "coder.k", .. }), "{e}");
        let e = PatchDictionaryParams::new().lambda(f64::NAN).check().unwrap_err();
        assert!(matches!(e, AnomalyError::InvalidParameter { name: "lambda", .. }), "{e}");
    }
}
