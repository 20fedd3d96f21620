//! Corruption processes for denoising autoencoders (Vincent et al. 2010) and the noise layer
//! that applies one in training mode only.

use crate::error::{AutoencoderError, Result, check_nonneg, check_unit, format_err, invalid};
use crate::layer::{Layer, Mode, check_same};
use latent_linalg::{Real, Tensor4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A corruption process `x ↦ x̃`.
///
/// | variant | parameters (range) | effect on each input element, independently |
/// |---|---|---|
/// | `Gaussian` | `std` (finite, `>= 0`) | `x̃ = x + std·ε`, `ε ~ N(0, 1)` |
/// | `Masking` | `fraction` (`[0, 1]`) | with probability `fraction`, `x̃ = 0` |
/// | `SaltAndPepper` | `fraction` (`[0, 1]`), `low < high` (finite) | with probability `fraction`, `x̃ = low` or `high` (equally likely) |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NoiseModel {
    /// Additive isotropic Gaussian noise.
    Gaussian {
        /// Standard deviation.
        std: f64,
    },
    /// Masking noise: a random fraction of the inputs is set to zero.
    Masking {
        /// Probability that an element is zeroed.
        fraction: f64,
    },
    /// Salt-and-pepper noise: a random fraction of the inputs is set to the minimum or maximum.
    SaltAndPepper {
        /// Probability that an element is replaced.
        fraction: f64,
        /// The "pepper" value (typically the data minimum, 0 for images in `[0, 1]`).
        low: f64,
        /// The "salt" value (typically the data maximum, 1 for images in `[0, 1]`).
        high: f64,
    },
}

impl NoiseModel {
    /// Salt-and-pepper noise with values 0 and 1 (images in `[0, 1]`).
    pub fn salt_and_pepper(fraction: f64) -> Self {
        NoiseModel::SaltAndPepper { fraction, low: 0.0, high: 1.0 }
    }

    /// Validate.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming the bad value (`noise_std`,
    /// `noise_fraction`, `noise_low`/`noise_high`).
    pub fn check(&self) -> Result<()> {
        match *self {
            NoiseModel::Gaussian { std } => check_nonneg("noise_std", std),
            NoiseModel::Masking { fraction } => check_unit("noise_fraction", fraction),
            NoiseModel::SaltAndPepper { fraction, low, high } => {
                check_unit("noise_fraction", fraction)?;
                if !low.is_finite() {
                    return Err(invalid("noise_low", low, "must be finite"));
                }
                if !(high.is_finite() && high > low) {
                    return Err(invalid("noise_high", high, "must be finite and > noise_low"));
                }
                Ok(())
            }
        }
    }

    /// Corrupt `x` in place with randomness from `rng`. When `keep` is given it receives, per
    /// element, `1` where `x̃` still depends on `x` (with unit slope) and `0` where it was replaced.
    pub fn corrupt<T: Real>(&self, x: &mut [T], mut keep: Option<&mut Vec<T>>, rng: &mut ChaCha8Rng) {
        if let Some(k) = keep.as_deref_mut() {
            k.clear();
            k.resize(x.len(), T::one());
        }
        match *self {
            NoiseModel::Gaussian { std } => {
                let s = T::lit(std);
                for v in x.iter_mut() {
                    let e: f64 = StandardNormal.sample(rng);
                    *v += s * T::lit(e);
                }
            }
            NoiseModel::Masking { fraction } => {
                for (i, v) in x.iter_mut().enumerate() {
                    if rng.random::<f64>() < fraction {
                        *v = T::zero();
                        if let Some(k) = keep.as_deref_mut() {
                            k[i] = T::zero();
                        }
                    }
                }
            }
            NoiseModel::SaltAndPepper { fraction, low, high } => {
                let (lo, hi) = (T::lit(low), T::lit(high));
                for (i, v) in x.iter_mut().enumerate() {
                    let u = rng.random::<f64>();
                    if u < fraction {
                        *v = if u < 0.5 * fraction { lo } else { hi };
                        if let Some(k) = keep.as_deref_mut() {
                            k[i] = T::zero();
                        }
                    }
                }
            }
        }
    }
}

/// The random stream of call number `calls` of a seeded layer: reproducible, and independent of
/// thread counts.
pub(crate) fn stream_rng(seed: u64, calls: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(calls);
    rng
}

/// A noise layer: corrupts its input with a [`NoiseModel`] in [`Mode::Train`] and is the
/// identity in [`Mode::Eval`] (so a denoising autoencoder reconstructs clean inputs at test
/// time). Seeded: call `k` of `forward(·, Train)` draws from stream `k` of ChaCha8 with the seed,
/// so training is reproducible and a saved model resumes the sequence.
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `model` | the corruption | see [`NoiseModel`] |
/// | `seed` | random seed | any |
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct Noise<T> {
    model: NoiseModel,
    seed: u64,
    calls: u64,
    #[serde(skip)]
    keep: Vec<T>,
    #[serde(skip)]
    shape: Option<[usize; 4]>,
}

impl<T: Real> Noise<T> {
    /// A noise layer.
    ///
    /// # Errors
    /// As [`NoiseModel::check`].
    pub fn new(model: NoiseModel, seed: u64) -> Result<Self> {
        model.check()?;
        Ok(Self { model, seed, calls: 0, keep: Vec::new(), shape: None })
    }
    /// The corruption process.
    pub fn model(&self) -> &NoiseModel {
        &self.model
    }
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] for invalid noise parameters.
    pub fn validate(&self) -> Result<()> {
        self.model.check().map_err(|e| format_err(format!("noise layer: {e}")))
    }
}

impl<T: Real> Layer<T> for Noise<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        if mode == Mode::Eval {
            return self.infer(x);
        }
        let mut rng = stream_rng(self.seed, self.calls);
        self.calls = self.calls.wrapping_add(1);
        let mut y = x.clone();
        self.model.corrupt(y.as_mut_slice(), Some(&mut self.keep), &mut rng);
        self.shape = Some(x.shape());
        Ok(y)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(x.clone())
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        check_same("noise backward", x, y, dy)?;
        if self.shape != Some(x.shape()) || self.keep.len() != x.len() {
            return Err(AutoencoderError::State {
                op: "noise backward",
                detail: format!("no training forward pass on an input of shape {:?} preceded it", x.shape()),
            });
        }
        let mut dx = dy.clone();
        for (d, &k) in dx.as_mut_slice().iter_mut().zip(&self.keep) {
            *d *= k;
        }
        Ok(dx)
    }
}
