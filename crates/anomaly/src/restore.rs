//! Restoring (denoising) autoencoders for anomaly detection, and their validation on normal data.
//!
//! A restoring autoencoder is trained on normal images only, with inputs corrupted by a generic
//! region corruption ([`NoiseModel::Blobs`], see [`latent_autoencoder::BlobNoise`]) and the clean image as target
//! (the lecture's denoising autoencoder: "map corrupted points back to the data manifold"; the
//! reconstructive sub-network of DRAEM, Zavrtanik et al. 2021). At test time a defect is off
//! the normal manifold, so it is "restored" to normal texture and the reconstruction error is
//! high exactly there. Training reuses the autoencoder crate's denoising path
//! (`ConvAeParams::denoising(NoiseModel::Blobs(..))`); the anomaly map stays a reconstruction
//! error map ([`crate::Detector`]).
//!
//! [`restoration_check`] measures, on held-out *normal* images corrupted by a noise model, how
//! well a reconstructor restores them and how well its error map finds the corrupted pixels.
//! It needs no anomalous data, so hyper-parameters can be chosen with it without looking at
//! test defects.

use crate::error::{AnomalyError, Result, check_finite, invalid};
use crate::metrics::auroc;
use crate::reconstructor::Reconstructor;
use latent_autoencoder::models::{ConvAeParams, ConvStage};
use latent_autoencoder::{Activation, NoiseModel};
use latent_linalg::{Real, Tensor4};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The restoring-autoencoder recipe of F11 (see the README, "What we tried"), as an unchecked builder:
/// a convolutional autoencoder on `1 × tile × tile` crops with the given encoder stages
/// `(channels, kernel, stride, padding)` and a mirrored decoder, leaky ReLU (0.2) hidden units, a
/// linear code, sigmoid output, MSE, Adam lr 2e-3, batch 32, `epochs` epochs, seeded, no progress
/// bar, trained to return the clean crop of a crop corrupted by `noise`.
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `tile` | crop side | ≥ 1 (checked by `check`) |
/// | `stages` | encoder stages | ≥ 1 stage |
/// | `epochs` | training epochs | ≥ 1 |
/// | `seed` | initialisation and shuffling seed | any |
/// | `noise` | the corruption (F11: `NoiseModel::Blobs(BlobNoise::default())`) | any |
///
/// # Example
/// ```
/// use latent_anomaly::restore::restoring_ae_params;
/// use latent_autoencoder::{BlobNoise, NoiseModel, ParamGuard};
/// let p = restoring_ae_params(16, &[(4, 4, 2, 1)], 1, 0, NoiseModel::Blobs(BlobNoise::default()));
/// assert!(p.check().is_ok());
/// ```
pub fn restoring_ae_params(
    tile: usize,
    stages: &[(usize, usize, usize, usize)],
    epochs: usize,
    seed: u64,
    noise: NoiseModel,
) -> ConvAeParams {
    texture_ae_params(tile, stages, epochs, seed).denoising(noise)
}

/// The plain (ℓ2) convolutional autoencoder of latent's texture detectors (F11 and the MVTec
/// example): `tile × tile` grey crops, the given encoder stages `(channels, kernel, stride,
/// padding)` mirrored by the decoder, leaky ReLU (0.2) hidden units, an identity code, sigmoid
/// output, batch 32, Adam 2e-3, no progress bar. [`restoring_ae_params`] is this recipe trained to
/// restore corrupted crops.
///
/// # Example
/// ```
/// use latent_anomaly::restore::texture_ae_params;
/// use latent_autoencoder::ParamGuard;
/// let p = texture_ae_params(32, &[(16, 4, 2, 1), (32, 4, 2, 1)], 1, 0);
/// assert!(p.check().is_ok());
/// ```
pub fn texture_ae_params(
    tile: usize,
    stages: &[(usize, usize, usize, usize)],
    epochs: usize,
    seed: u64,
) -> ConvAeParams {
    let mut p = ConvAeParams::new([1, tile, tile]);
    for &(c, k, s, pad) in stages {
        p = p.encoder_stage(ConvStage::new(c, k, s, pad));
    }
    p.hidden_activation(Activation::LeakyRelu(0.2))
        .code_activation(Activation::Identity)
        .epochs(epochs)
        .batch_size(32)
        .lr(2e-3)
        .seed(seed)
        .progress(false)
}

/// How a reconstructor does on corrupted held-out normal images (all means over every element).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestorationCheck {
    /// Fraction of the elements the corruption changed.
    pub corrupted_fraction: f64,
    /// Mean squared difference between corrupted and clean inputs (the error of the identity).
    pub corrupted_mse: f64,
    /// Mean squared difference between the reconstruction of the corrupted input and the clean
    /// image (lower: better restoration).
    pub restored_mse: f64,
    /// `restored_mse` over the changed elements only (`NaN` if none changed).
    pub restored_mse_changed: f64,
    /// `restored_mse` over the unchanged elements only (`NaN` if all changed).
    pub restored_mse_unchanged: f64,
    /// AUROC of the squared error map `(x̃ − x̂)²` (input vs reconstruction, what a detector
    /// sees) separating changed from unchanged elements; `NaN` if only one class is present.
    pub changed_auroc: f64,
}

/// Corrupt `clean` with `noise` (stream seeded by `seed`, deterministic), reconstruct the
/// corrupted images with `model` and compare with the clean images: see [`RestorationCheck`].
///
/// | parameter | meaning |
/// |---|---|
/// | `model` | the reconstructor (e.g. a restoring autoencoder) |
/// | `clean` | held-out normal images `(N, C, H, W)`, non-empty, finite |
/// | `noise` | the corruption (typically the one used in training) |
/// | `seed` | seed of the corruption |
///
/// # Errors
/// [`AnomalyError::Empty`] for no images, [`AnomalyError::NonFinite`] for non-finite images,
/// [`AnomalyError::InvalidParameter`] for an invalid noise model, errors of the reconstructor,
/// [`AnomalyError::ShapeMismatch`] if it returns the wrong shape.
///
/// # Example
/// ```
/// use latent_anomaly::{Reconstructor, Result, restoration_check};
/// use latent_autoencoder::{BlobNoise, NoiseModel};
/// use latent_linalg::Tensor4;
/// /// The identity: restores nothing.
/// struct Identity;
/// impl Reconstructor<f32> for Identity {
///     fn reconstruct(&self, x: &Tensor4<f32>) -> Result<Tensor4<f32>> { Ok(x.clone()) }
/// }
/// let clean = Tensor4::<f32>::from_fn([8, 1, 16, 16], |[n, _, i, j]| ((n + 3 * i + 5 * j) % 7) as f32 / 7.0)?;
/// let noise = NoiseModel::Blobs(BlobNoise { probability: 1.0, ..BlobNoise::default() });
/// let r = restoration_check(&Identity, &clean, &noise, 1)?;
/// assert!(r.corrupted_fraction > 0.0);
/// assert_eq!(r.restored_mse, r.corrupted_mse); // the identity keeps all the corruption
/// assert_eq!(r.restored_mse_unchanged, 0.0);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn restoration_check<T: Real, R: Reconstructor<T>>(
    model: &R,
    clean: &Tensor4<T>,
    noise: &NoiseModel,
    seed: u64,
) -> Result<RestorationCheck> {
    let corrupted = corrupt_checked(clean, noise, seed)?;
    let restored = model.reconstruct(&corrupted)?;
    if restored.shape() != clean.shape() {
        return Err(crate::error::shape_err("restoration_check", clean.shape(), restored.shape()));
    }
    let (c, xt, xh) = (clean.as_slice(), corrupted.as_slice(), restored.as_slice());
    let n = c.len() as f64;
    let (mut n_changed, mut corrupted_sse, mut sse_changed, mut sse_unchanged) = (0usize, 0.0, 0.0, 0.0);
    let mut map = Vec::with_capacity(c.len());
    let mut changed = Vec::with_capacity(c.len());
    for i in 0..c.len() {
        let (c, xt, xh) = (c[i].as_f64(), xt[i].as_f64(), xh[i].as_f64());
        let is_changed = xt != c;
        let e = (xh - c) * (xh - c);
        if is_changed {
            n_changed += 1;
            sse_changed += e;
        } else {
            sse_unchanged += e;
        }
        corrupted_sse += (xt - c) * (xt - c);
        map.push((xt - xh) * (xt - xh));
        changed.push(is_changed);
    }
    let n_unchanged = c.len() - n_changed;
    let mean = |s: f64, k: usize| if k == 0 { f64::NAN } else { s / k as f64 };
    let changed_auroc = if n_changed == 0 || n_unchanged == 0 { f64::NAN } else { auroc(&map, &changed)? };
    Ok(RestorationCheck {
        corrupted_fraction: n_changed as f64 / n,
        corrupted_mse: corrupted_sse / n,
        restored_mse: (sse_changed + sse_unchanged) / n,
        restored_mse_changed: mean(sse_changed, n_changed),
        restored_mse_unchanged: mean(sse_unchanged, n_unchanged),
        changed_auroc,
    })
}

/// The AUROC with which a whole detector's anomaly map (tiling, smoothing, normalisation
/// included) finds the pixels that `noise` (seeded by `seed`) changed in held-out **normal**
/// images: a validation score that needs no anomalous data, for choosing a detector's settings
/// (map smoothing, model size, training length) without looking at test defects. A pixel counts
/// as changed when any of its channels changed.
///
/// | parameter | meaning |
/// |---|---|
/// | `detector` | the detector to validate |
/// | `clean` | held-out normal images `(N, C, H, W)`, non-empty, finite |
/// | `noise` | the corruption |
/// | `seed` | seed of the corruption |
///
/// # Errors
/// As [`restoration_check`]; [`AnomalyError::SingleClass`] when the corruption changed no pixel
/// or every pixel.
///
/// # Example
/// ```
/// use latent_anomaly::{Detector, DetectorParams, ParamGuard, Reconstructor, Result, corrupted_pixel_auroc};
/// use latent_autoencoder::{BlobNoise, NoiseModel};
/// use latent_linalg::Tensor4;
/// let clean = Tensor4::<f32>::from_fn([4, 1, 16, 16], |[n, _, i, j]| ((n + 2 * i + 3 * j) % 5) as f32 / 5.0)?;
/// /// A perfect restorer: it knows the clean images.
/// struct Perfect(Tensor4<f32>);
/// impl Reconstructor<f32> for Perfect {
///     fn reconstruct(&self, _x: &Tensor4<f32>) -> Result<Tensor4<f32>> { Ok(self.0.clone()) }
/// }
/// let noise = NoiseModel::Blobs(BlobNoise { probability: 1.0, ..BlobNoise::default() });
/// let det = Detector::new(Perfect(clean.clone()), DetectorParams::new().check()?);
/// // its squared-error map is positive exactly on the changed pixels
/// assert_eq!(corrupted_pixel_auroc(&det, &clean, &noise, 2)?, 1.0);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn corrupted_pixel_auroc<T: Real, R: Reconstructor<T>>(
    detector: &crate::Detector<T, R>,
    clean: &Tensor4<T>,
    noise: &NoiseModel,
    seed: u64,
) -> Result<f64> {
    let [n, c, h, w] = clean.shape();
    let corrupted = corrupt_checked(clean, noise, seed)?;
    let maps = detector.anomaly_maps(&corrupted)?;
    if maps.shape() != [n, 1, h, w] {
        return Err(crate::error::shape_err("corrupted_pixel_auroc", [n, 1, h, w], maps.shape()));
    }
    let plane = h * w;
    let (a, b) = (clean.as_slice(), corrupted.as_slice());
    let changed: Vec<bool> = (0..n * plane)
        .map(|p| {
            let (s, i) = (p / plane, p % plane);
            (0..c).any(|ch| a[(s * c + ch) * plane + i] != b[(s * c + ch) * plane + i])
        })
        .collect();
    auroc(maps.as_slice(), &changed)
}

/// Validate held-out normal images and a noise model, and corrupt a copy of the images with
/// `noise` seeded by `seed` (shared by [`restoration_check`] and [`corrupted_pixel_auroc`]).
fn corrupt_checked<T: Real>(clean: &Tensor4<T>, noise: &NoiseModel, seed: u64) -> Result<Tensor4<T>> {
    if clean.is_empty() {
        return Err(AnomalyError::Empty { what: "held-out normal images" });
    }
    check_finite("held-out normal images", clean.as_slice())?;
    noise.validate().map_err(|e| invalid("noise", format!("{noise:?}"), e.to_string()))?;
    let mut corrupted = clean.clone();
    noise.corrupt_images(corrupted.as_mut_slice(), clean.shape(), None, &mut ChaCha8Rng::seed_from_u64(seed));
    Ok(corrupted)
}
