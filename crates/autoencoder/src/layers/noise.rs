//! Corruption processes for denoising autoencoders (Vincent et al. 2010) and the noise layer
//! that applies one in training mode only.

use crate::error::{AutoencoderError, Result, check_nonneg, check_pos, check_unit, format_err, invalid};
use crate::layer::{Layer, Mode, check_same};
use latent_linalg::filter::{Border, Kernel1d};
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
/// | `Blobs` | see [`BlobNoise`] | per image: random blob-shaped regions replaced by a blurred / contrast-scaled / shifted / flat version of the image (not element-wise) |
///
/// The element-wise variants treat every element independently, whatever the shape. `Blobs` is
/// spatial: [`Noise`] applies it per sample of an `(N, C, H, W)` batch (see
/// [`NoiseModel::corrupt_images`]); [`NoiseModel::corrupt`] on a flat slice treats the slice as a
/// single `1 × 1 × len` image.
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
    /// Blob-shaped region corruption for images (restoring / inpainting autoencoders): see
    /// [`BlobNoise`].
    Blobs(BlobNoise),
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
    pub fn validate(&self) -> Result<()> {
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
            NoiseModel::Blobs(b) => b.validate(),
        }
    }

    /// Corrupt `x` in place with randomness from `rng`. When `keep` is given it receives, per
    /// element, the slope of `x̃` in `x` with any replacement content held fixed: `1` where `x̃`
    /// still is `x` (plus noise), `0` where it was replaced, `1 − α` where a blob fill of opacity
    /// `α` was blended in. For [`NoiseModel::Blobs`] the slice is one `1 × 1 × len` image; use
    /// [`NoiseModel::corrupt_images`] for batches of images.
    pub fn corrupt<T: Real>(&self, x: &mut [T], keep: Option<&mut Vec<T>>, rng: &mut ChaCha8Rng) {
        let len = x.len();
        self.corrupt_images(x, [1, 1, 1, len], keep, rng);
    }

    /// Corrupt a batch of images stored `(N, C, H, W)` row-major in `x` (`x.len()` must be the
    /// product of `shape`; the shape only matters for [`NoiseModel::Blobs`], which draws one
    /// blob mask per sample, shared by its channels). `keep` as in [`NoiseModel::corrupt`].
    ///
    /// # Panics
    /// If `x.len()` is not the product of `shape`.
    ///
    /// # Example
    /// ```
    /// use latent_autoencoder::{BlobNoise, NoiseModel};
    /// use rand::SeedableRng;
    /// use rand_chacha::ChaCha8Rng;
    /// let clean: Vec<f32> = (0..2 * 16 * 16).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
    /// let model = NoiseModel::Blobs(BlobNoise { probability: 1.0, max_coverage: 0.5, ..BlobNoise::default() });
    /// let mut a = clean.clone();
    /// let mut b = clean.clone();
    /// model.corrupt_images(&mut a, [2, 1, 16, 16], None, &mut ChaCha8Rng::seed_from_u64(3));
    /// model.corrupt_images(&mut b, [2, 1, 16, 16], None, &mut ChaCha8Rng::seed_from_u64(3));
    /// assert_eq!(a, b); // deterministic for a seed
    /// let changed = a.iter().zip(&clean).filter(|(u, v)| u != v).count();
    /// assert!(changed <= 256); // at most half of each image is in a blob
    /// ```
    pub fn corrupt_images<T: Real>(
        &self,
        x: &mut [T],
        shape: [usize; 4],
        mut keep: Option<&mut Vec<T>>,
        rng: &mut ChaCha8Rng,
    ) {
        assert_eq!(x.len(), shape.iter().product::<usize>(), "corrupt_images: data length does not match shape");
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
            NoiseModel::Blobs(b) => b.corrupt(x, shape, keep, rng),
        }
    }
}

/// Blob-shaped region corruption of images, for restoring (denoising) autoencoders in anomaly
/// detection (in the spirit of DRAEM's reconstructive sub-network, Zavrtanik et al. 2021): the
/// autoencoder is trained to map an image with corrupted regions back to the clean image, so at
/// test time anything off the normal manifold is "restored" and shows up in the error.
///
/// Per sample of an `(N, C, H, W)` batch, independently, with probability `probability`:
/// 1. **blob mask**: a Perlin-like value-noise field (uniform random values on a grid of cell side
///    `s ~ U(min_scale, max_scale)` px with a random offset, smoothstep-interpolated, plus a second
///    octave of cell `s/2` at half weight); the blobs are its `k = round(c·H·W)` highest pixels
///    (a superlevel set), coverage `c ~ U(0, max_coverage)`; one mask for all channels;
/// 2. **fill** (per channel), one of two kinds, drawn per sample:
///    - *flat* (probability 1/3): the mean of the clean image over the blob, plus a shift `b`;
///    - *texture* (probability 2/3): `B + g·(x − B) + b`, `B` = the image blurred by a Gaussian of
///      σ = `blur_sigma` (replicated border), gain `g ~ U(0, max_gain)` (`g < 1` flattens or
///      blurs the texture, `g = 0` is the blurred image, `g > 1` exaggerates it);
///
///    shift `b ~ U(−max_shift, max_shift)`;
/// 3. **blend**: inside the blob `x̃ = (1 − a)·x + a·fill`, `a = α·f`, opacity `α ~ U(min_opacity, 1)`,
///    then clamped to the range of the clean channel's values in that sample. Pixels outside the
///    blobs are never changed. `f = 1` (hard edges) unless `max_feather > 0`: then the edges are
///    softened inward, `f = clamp(2·(G_σf ∗ m) − 1, 0, 1)` for the blob indicator `m` and
///    `σf ~ U(0, max_feather)` px, so a blob fades in from its edge as real stains and wear do.
///
/// The model is generic (regions, blur, contrast, brightness), not a model of any particular
/// defect. For back-propagation the fill is held fixed (slope `1 − α` inside blobs, `0` where
/// clamped); the noise layer is the first layer, so this only matters for input gradients.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `probability` | `0.8` | probability that a sample is corrupted | `[0, 1]` |
/// | `max_coverage` | `0.3` | largest fraction of a sample's pixels in blobs | `[0, 1]` |
/// | `min_scale` | `2` | smallest noise cell side (px), sets the blob size | finite, `>= 1` |
/// | `max_scale` | `12` | largest noise cell side (px) | finite, `>= min_scale` |
/// | `blur_sigma` | `2` | σ (px) of the blur of the texture fill | finite, `> 0` |
/// | `max_gain` | `2` | largest texture gain `g` | finite, `>= 0` |
/// | `max_shift` | `0.4` | largest brightness shift `|b|` | finite, `>= 0` |
/// | `min_opacity` | `0.3` | smallest opacity `α` | `[0, 1]` |
/// | `max_feather` | `0` | largest edge softening σ (px); `0` = hard edges | finite, `>= 0` |
///
/// # Example
/// ```
/// use latent_autoencoder::{BlobNoise, NoiseModel, ParamGuard, models::ConvAeParams, models::ConvStage};
/// let blobs = BlobNoise { max_coverage: 0.25, ..BlobNoise::default() };
/// assert!(NoiseModel::Blobs(blobs).validate().is_ok());
/// // a restoring convolutional autoencoder: corrupted input, clean target
/// let params = ConvAeParams::new([1, 16, 16])
///     .encoder_stage(ConvStage::new(4, 4, 2, 1))
///     .denoising(NoiseModel::Blobs(blobs))
///     .check()?;
/// assert!(BlobNoise { min_scale: 0.5, ..blobs }.validate().is_err());
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlobNoise {
    /// Probability that a sample is corrupted.
    pub probability: f64,
    /// Largest fraction of a sample's pixels covered by blobs (coverage is uniform below it).
    pub max_coverage: f64,
    /// Smallest value-noise cell side in pixels.
    pub min_scale: f64,
    /// Largest value-noise cell side in pixels.
    pub max_scale: f64,
    /// σ in pixels of the Gaussian blur used by the texture fill.
    pub blur_sigma: f64,
    /// Largest texture gain.
    pub max_gain: f64,
    /// Largest absolute brightness shift.
    pub max_shift: f64,
    /// Smallest blending opacity.
    pub min_opacity: f64,
    /// Largest edge softening σ in pixels (`0`: hard-edged blobs, the original model). Files
    /// written before this field existed read as `0`.
    #[serde(default)]
    pub max_feather: f64,
}

impl Default for BlobNoise {
    fn default() -> Self {
        Self {
            probability: 0.8,
            max_coverage: 0.3,
            min_scale: 2.0,
            max_scale: 12.0,
            blur_sigma: 2.0,
            max_gain: 2.0,
            max_shift: 0.4,
            min_opacity: 0.3,
            max_feather: 0.0,
        }
    }
}

impl BlobNoise {
    /// Validate.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming the bad value (`noise_probability`,
    /// `noise_max_coverage`, `noise_min_scale`, `noise_max_scale`, `noise_blur_sigma`,
    /// `noise_max_gain`, `noise_max_shift`, `noise_min_opacity`, `noise_max_feather`).
    pub fn validate(&self) -> Result<()> {
        check_unit("noise_probability", self.probability)?;
        check_unit("noise_max_coverage", self.max_coverage)?;
        if !(self.min_scale.is_finite() && self.min_scale >= 1.0) {
            return Err(invalid("noise_min_scale", self.min_scale, "must be finite and >= 1"));
        }
        if !(self.max_scale.is_finite() && self.max_scale >= self.min_scale) {
            return Err(invalid("noise_max_scale", self.max_scale, "must be finite and >= noise_min_scale"));
        }
        check_pos("noise_blur_sigma", self.blur_sigma)?;
        check_nonneg("noise_max_gain", self.max_gain)?;
        check_nonneg("noise_max_shift", self.max_shift)?;
        check_unit("noise_min_opacity", self.min_opacity)?;
        check_nonneg("noise_max_feather", self.max_feather)
    }

    /// The blob mask of one `h × w` sample (row-major), `true` in the blobs, or `None` when the
    /// sample is left clean. Draws from `rng` exactly as [`NoiseModel::corrupt_images`] does for
    /// that sample's mask (useful to reproduce or visualise masks).
    pub fn draw_mask(&self, h: usize, w: usize, rng: &mut ChaCha8Rng) -> Option<Vec<bool>> {
        if rng.random::<f64>() >= self.probability {
            return None;
        }
        let scale = uniform(rng, self.min_scale, self.max_scale);
        let mut field = vec![0.0f64; h * w];
        for (octave, weight) in [(scale, 1.0), ((scale / 2.0).max(1.0), 0.5)] {
            add_value_noise(&mut field, h, w, octave, weight, rng);
        }
        let coverage = uniform(rng, 0.0, self.max_coverage);
        let k = ((coverage * (h * w) as f64).round() as usize).min(h * w);
        let mut order: Vec<usize> = (0..h * w).collect();
        order.sort_by(|&a, &b| field[b].total_cmp(&field[a]).then(a.cmp(&b)));
        let mut mask = vec![false; h * w];
        for &i in &order[..k] {
            mask[i] = true;
        }
        Some(mask)
    }

    fn corrupt<T: Real>(&self, x: &mut [T], shape: [usize; 4], mut keep: Option<&mut Vec<T>>, rng: &mut ChaCha8Rng) {
        let [n, c, h, w] = shape;
        let plane = h * w;
        for s in 0..n {
            let Some(mask) = self.draw_mask(h, w, rng) else { continue };
            let alpha = uniform(rng, self.min_opacity, 1.0);
            let flat = rng.random::<f64>() < 1.0 / 3.0;
            let gain = uniform(rng, 0.0, self.max_gain);
            let shift = uniform(rng, -self.max_shift, self.max_shift);
            let n_in = mask.iter().filter(|&&m| m).count();
            if n_in == 0 {
                continue;
            }
            // opacity weight per pixel: 1 in the blobs, or a ramp from 0 at a blob's edge to 1
            // inside when feathered (never outside the blobs)
            let weight: Vec<f64> = if self.max_feather > 0.0 {
                let sigma = uniform(rng, 0.0, self.max_feather);
                feather(&mask, h, w, sigma)
            } else {
                mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect()
            };
            for ch in 0..c {
                let off = (s * c + ch) * plane;
                let img: Vec<f64> = x[off..off + plane].iter().map(|v| v.as_f64()).collect();
                let (lo, hi) = img.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
                let fill: Vec<f64> = if flat {
                    let mean = img.iter().zip(&mask).filter(|(_, m)| **m).map(|(v, _)| v).sum::<f64>() / n_in as f64;
                    vec![mean + shift; plane]
                } else {
                    let blurred = gaussian_blur(&img, h, w, self.blur_sigma, Border::Replicate);
                    img.iter().zip(&blurred).map(|(&v, &b)| b + gain * (v - b) + shift).collect()
                };
                for i in (0..plane).filter(|&i| mask[i] && weight[i] > 0.0) {
                    let a = alpha * weight[i];
                    let raw = (1.0 - a) * img[i] + a * fill[i];
                    let clamped = raw.clamp(lo, hi);
                    x[off + i] = T::lit(clamped);
                    if let Some(k) = keep.as_deref_mut() {
                        k[off + i] = if clamped == raw { T::lit(1.0 - a) } else { T::zero() };
                    }
                }
            }
        }
    }
}

/// Inward feathering of a blob mask: `clamp(2·(G_σ ∗ m) − 1, 0, 1)` inside the blobs (about 0
/// at a blob's edge, 1 deep inside, the ramp about `1.2·σ` px wide), `0` outside; the hard mask for
/// `σ < 0.05`.
fn feather(mask: &[bool], h: usize, w: usize, sigma: f64) -> Vec<f64> {
    let hard: Vec<f64> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    if sigma < 0.05 {
        return hard;
    }
    let blurred = gaussian_blur(&hard, h, w, sigma, Border::Zero);
    mask.iter().zip(&blurred).map(|(&m, &b)| if m { (2.0 * b - 1.0).clamp(0.0, 1.0) } else { 0.0 }).collect()
}

/// `U(lo, hi)`, or `lo` when the interval is empty.
fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Add `weight` × value noise of cell side `cell` (uniform grid values, random offset,
/// smoothstep interpolation) to the `h × w` field.
fn add_value_noise(field: &mut [f64], h: usize, w: usize, cell: f64, weight: f64, rng: &mut ChaCha8Rng) {
    let gh = (h as f64 / cell).ceil() as usize + 2;
    let gw = (w as f64 / cell).ceil() as usize + 2;
    let (oy, ox) = (rng.random::<f64>() * cell, rng.random::<f64>() * cell);
    let grid: Vec<f64> = (0..gh * gw).map(|_| rng.random::<f64>()).collect();
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    for y in 0..h {
        let fy = (y as f64 + oy) / cell;
        let (iy, ty) = ((fy.floor() as usize).min(gh - 2), smooth(fy - fy.floor()));
        for xx in 0..w {
            let fx = (xx as f64 + ox) / cell;
            let (ix, tx) = ((fx.floor() as usize).min(gw - 2), smooth(fx - fx.floor()));
            let g = |a: usize, b: usize| grid[a * gw + b];
            let top = g(iy, ix) * (1.0 - tx) + g(iy, ix + 1) * tx;
            let bottom = g(iy + 1, ix) * (1.0 - tx) + g(iy + 1, ix + 1) * tx;
            field[y * w + xx] += weight * (top * (1.0 - ty) + bottom * ty);
        }
    }
}

/// Separable Gaussian blur of an `h × w` image (radius ⌈3σ⌉), `sigma` already validated (> 0).
fn gaussian_blur(img: &[f64], h: usize, w: usize, sigma: f64, border: Border) -> Vec<f64> {
    // Both calls pass a finite sigma > 0 (checked by `check`, or >= 0.05 in `feather`) and a
    // whole h × w image, the only ways the filter can fail; an image is left unblurred otherwise.
    Kernel1d::gaussian_truncated(sigma, 3.0).and_then(|k| k.apply(img, h, w, border)).unwrap_or_else(|_| img.to_vec())
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
    /// As [`NoiseModel::validate`].
    pub fn new(model: NoiseModel, seed: u64) -> Result<Self> {
        model.validate()?;
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
        self.model.validate().map_err(|e| format_err(format!("noise layer: {e}")))
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
        self.model.corrupt_images(y.as_mut_slice(), x.shape(), Some(&mut self.keep), &mut rng);
        self.shape = Some(x.shape());
        Ok(y)
    }
    fn set_train_stream(&mut self, stream: u64) {
        self.calls = stream;
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

#[cfg(test)]
mod blur_tests {
    use super::*;

    /// What a blur saw beyond the image's edge before it moved to `latent_linalg::filter`.
    #[derive(Clone, Copy)]
    enum OldBorder {
        /// The nearest edge pixel.
        Replicate,
        /// Zeros.
        Zero,
    }

    /// Separable Gaussian blur of an `h × w` image (radius ⌈3σ⌉).
    fn gaussian_blur_before(img: &[f64], h: usize, w: usize, sigma: f64, border: OldBorder) -> Vec<f64> {
        let r = (3.0 * sigma).ceil() as isize;
        let kernel: Vec<f64> = (-r..=r).map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp()).collect();
        let total: f64 = kernel.iter().sum();
        let kernel: Vec<f64> = kernel.iter().map(|k| k / total).collect();
        // index of tap `v` along an axis of length `n`, or `None` for a zero outside the image
        let at = |v: isize, n: usize| match border {
            OldBorder::Replicate => Some(v.clamp(0, n as isize - 1) as usize),
            OldBorder::Zero => (v >= 0 && v < n as isize).then_some(v as usize),
        };
        let mut tmp = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .filter_map(|(j, k)| at(x as isize + j as isize - r, w).map(|xx| k * img[y * w + xx]))
                    .sum();
            }
        }
        let mut out = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .filter_map(|(j, k)| at(y as isize + j as isize - r, h).map(|yy| k * tmp[yy * w + x]))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn linalg_blur_is_bit_identical_to_the_old_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for (h, w, sigma) in [(32, 32, 2.0), (9, 17, 0.8), (1, 7, 1.5), (48, 48, 0.05), (5, 3, 3.3)] {
            let img: Vec<f64> = (0..h * w).map(|_| rng.random::<f64>() - 0.3).collect();
            for (new, old) in [(Border::Replicate, OldBorder::Replicate), (Border::Zero, OldBorder::Zero)] {
                let a = gaussian_blur(&img, h, w, sigma, new);
                let b = gaussian_blur_before(&img, h, w, sigma, old);
                assert_eq!(
                    a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
}
