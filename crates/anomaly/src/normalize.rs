//! Normalising anomaly maps by the statistics of normal data.
//!
//! A reconstruction error is only anomalous *relative to what is normal for this data*. On a
//! busy texture (grass, gravel) a reconstructor never reproduces every blade or pebble, so the
//! normal residual is large everywhere, while a smooth defect (a stain that washes the texture
//! out, a flat hole, a missing patch) is reconstructed *better* than the texture around it: the
//! raw error map is inverted there. Comparing the **local residual energy** with its
//! distribution on held-out normal images fixes both directions: a region whose residual energy
//! is abnormally high (a scratch the model cannot draw) and one whose residual energy is
//! abnormally low (texture that is missing) are both far from normal. The detector stays a
//! reconstruction-error detector; only the reference changes from "zero error" to "the error
//! normal images have".
//!
//! For every pixel of a map `m` (squared error, `1 − SSIM`, …):
//!
//! 1. local energy `e = G_σ ∗ m` (Gaussian window of standard deviation `window`, border-
//!    renormalised like [`crate::filter::gaussian_blur`]);
//! 2. log-energy `s = ln(e + floor · m̄)`, where `m̄` is the mean of the normal maps (a floor
//!    relative to the normal error level, so an exactly reconstructed region gets a finite value
//!    and the statistic does not depend on the units of the map);
//! 3. a split robust z-score against the normal log-energies: with the median `c` and the
//!    quantiles `q₋ = Q(Φ(−1)) ≈ Q(0.159)`, `q₊ = Q(Φ(1)) ≈ Q(0.841)` of `s` on the normal
//!    maps, `z = (s − c)/(q₊ − c)` above the median and `z = (s − c)/(c − q₋)` below it (for
//!    Gaussian `s` both are the ordinary z-score; the split handles a skewed distribution);
//! 4. the anomaly value: `|z|` ([`Side::TwoSided`]), `max(z, 0)` ([`Side::High`], only
//!    excess error is anomalous) or `max(−z, 0)` ([`Side::Low`]).
//!
//! The statistics are pooled over all pixels of the normal maps ([`Scope::Global`], for
//! stationary textures) or kept per pixel position ([`Scope::PerPixel`], for aligned objects
//! photographed in the same pose; all maps must then have the same size).

use crate::error::{AnomalyError, Result, check_finite, check_pos, invalid, shape_err};
use crate::filter::gaussian_blur;
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::{Checked, Fit, ParamGuard};
use serde::{Deserialize, Serialize};

/// Which deviations from the normal residual energy are anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Side {
    /// Both too much and too little residual energy: `|z|`.
    #[default]
    TwoSided,
    /// Only too much residual energy: `max(z, 0)`.
    High,
    /// Only too little residual energy (missing texture): `max(−z, 0)`.
    Low,
}

/// Where the normal statistics are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Scope {
    /// One median and spread pooled over all pixels of all normal maps (stationary textures).
    #[default]
    Global,
    /// A median and spread per pixel position (aligned objects; needs maps of one size).
    PerPixel,
}

/// Smallest spread of the log-energy (in nats): keeps the z-score finite when the normal
/// statistic is constant (e.g. a reconstructor that is exact on every normal image).
pub const MIN_SPREAD: f64 = 1e-3;

/// `Φ(1)`, the standard normal CDF at one: the quantiles `Φ(±1)` of a Gaussian are `mean ± std`.
const PHI_1: f64 = 0.841_344_746_068_543;

/// Map-normaliser settings (builder; [`ParamGuard::check`] validates them, and
/// `Checked::fit` on normal anomaly maps returns the [`MapNormalizer`]).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `window` | `2.0` | σ in pixels of the Gaussian window of the local energy | finite, `(0, 1000]` |
/// | `floor` | `0.01` | energy floor inside the log, as a fraction of the mean normal map value | finite, `(0, 1]` |
/// | `side` | `TwoSided` | which deviations are anomalous, see [`Side`] | — |
/// | `scope` | `Global` | where the statistics are estimated, see [`Scope`] | — |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormalizerParams {
    /// Local-energy window σ (pixels).
    pub window: f64,
    /// Relative energy floor.
    pub floor: f64,
    /// Which deviations count.
    pub side: Side,
    /// Pooled or per-pixel statistics.
    pub scope: Scope,
}

impl Default for NormalizerParams {
    fn default() -> Self {
        Self { window: 2.0, floor: 0.01, side: Side::TwoSided, scope: Scope::Global }
    }
}

impl NormalizerParams {
    /// The defaults: σ = 2 px window, floor 1 % of the normal mean, two-sided, pooled statistics.
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the local-energy window σ in pixels.
        window: f64,
        /// Set the relative energy floor.
        floor: f64,
        /// Set which deviations are anomalous.
        side: Side,
        /// Set where the statistics are estimated.
        scope: Scope,
    }
}

impl ParamGuard for NormalizerParams {
    type Error = AnomalyError;

    /// # Errors
    /// [`AnomalyError::InvalidParameter`] naming `window` or `floor`.
    fn validate(&self) -> Result<()> {
        check_pos("window", self.window)?;
        if self.window > 1000.0 {
            return Err(invalid("window", self.window, "must be at most 1000 pixels"));
        }
        check_pos("floor", self.floor)?;
        if self.floor > 1.0 {
            return Err(invalid("floor", self.floor, "must be in (0, 1]"));
        }
        Ok(())
    }
}

/// Statistics of the normal log-energy: median and the two half-spreads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct SplitStats {
    center: f64,
    below: f64,
    above: f64,
}

impl SplitStats {
    /// From sorted values.
    fn from_sorted(v: &[f64]) -> Self {
        let q = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
            let hi = (lo + 1).min(v.len() - 1);
            v[lo] + frac * (v[hi] - v[lo])
        };
        let center = q(0.5);
        Self { center, below: (center - q(1.0 - PHI_1)).max(MIN_SPREAD), above: (q(PHI_1) - center).max(MIN_SPREAD) }
    }

    fn z(&self, s: f64) -> f64 {
        if s >= self.center { (s - self.center) / self.above } else { (s - self.center) / self.below }
    }
}

/// A map normaliser fitted on the anomaly maps of held-out normal images.
///
/// Settings and algorithm: see the [module documentation](self) and [`NormalizerParams`].
///
/// # Example
/// ```
/// use latent_anomaly::ParamGuard;
/// use latent_anomaly::normalize::{NormalizerParams, Side};
/// use latent_linalg::Tensor4;
/// // Normal maps: a residual that is about 1 everywhere (busy texture, never reconstructed exactly).
/// let normal = Tensor4::<f64>::from_fn([4, 1, 16, 16], |[n, _, i, j]| 1.0 + 0.3 * (((3 * i + 5 * j + n) % 7) as f64 / 6.0 - 0.5))?;
/// let norm = NormalizerParams::new().window(1.5).check()?.fit(&normal)?;
/// // A test map with too much error on the left and none at all (a smooth patch) on the right.
/// let test = Tensor4::<f64>::from_fn([1, 1, 16, 16], |[_, _, i, j]| match j {
///     0..=3 => 9.0,
///     12..=15 => 0.0,
///     _ => 1.0 + 0.3 * (((3 * i + 5 * j) % 7) as f64 / 6.0 - 0.5),
/// })?;
/// let z = norm.apply(&test)?;
/// let at = |j| z.get([0, 0, 8, j]).unwrap();
/// assert!(at(0) > 5.0 && at(15) > 5.0); // both directions are anomalous
/// assert!(at(8) < 2.0);
/// // One-sided: only the excess error counts.
/// let high = NormalizerParams::new().window(1.5).side(Side::High).check()?.fit(&normal)?;
/// assert_eq!(high.apply(&test)?.get([0, 0, 8, 15]), Some(0.0));
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapNormalizer {
    params: NormalizerParams,
    /// Absolute energy floor (`floor · m̄`).
    floor: f64,
    /// One entry ([`Scope::Global`]) or one per pixel ([`Scope::PerPixel`]).
    stats: Vec<SplitStats>,
    /// Map height and width seen at fitting time.
    size: (usize, usize),
}

impl<T: Real> Fit<Tensor4<T>> for NormalizerParams {
    type Fitted = MapNormalizer;

    /// Estimate the normal statistics from the anomaly maps `(N, 1, H, W)` of held-out
    /// **normal** images (maps with several channels are averaged over channels).
    ///
    /// # Errors
    /// [`AnomalyError::Empty`] for no maps, [`AnomalyError::NonFinite`] for NaN/Inf values,
    /// [`AnomalyError::InvalidParameter`] for negative map values (an energy is `>= 0`), for
    /// maps that are zero everywhere (no error level to compare with), and for
    /// [`Scope::PerPixel`] with fewer than 3 maps.
    fn fit_checked(params: &Checked<Self>, normal_maps: &Tensor4<T>) -> Result<MapNormalizer> {
        let [n, _, h, w] = normal_maps.shape();
        if normal_maps.is_empty() {
            return Err(AnomalyError::Empty { what: "normal maps" });
        }
        check_finite("normal maps", normal_maps.as_slice())?;
        let plain = channel_mean(normal_maps)?;
        let mean = plain.iter().sum::<f64>() / plain.len() as f64;
        if !(mean > 0.0) {
            return Err(invalid("normal maps", "all zero", "need a positive mean error level to normalise by"));
        }
        let floor = params.floor * mean;
        let s = log_energy(&plain, [n, h, w], params.window, floor)?;
        let plane = h * w;
        let stats = match params.scope {
            Scope::Global => {
                let mut v = s;
                v.sort_unstable_by(f64::total_cmp);
                vec![SplitStats::from_sorted(&v)]
            }
            Scope::PerPixel => {
                if n < 3 {
                    return Err(invalid("normal maps", n, "per-pixel statistics need at least 3 maps"));
                }
                (0..plane)
                    .map(|p| {
                        let mut v: Vec<f64> = (0..n).map(|i| s[i * plane + p]).collect();
                        v.sort_unstable_by(f64::total_cmp);
                        SplitStats::from_sorted(&v)
                    })
                    .collect()
            }
        };
        Ok(MapNormalizer { params: **params, floor, stats, size: (h, w) })
    }
}

/// Channel mean of maps `(N, C, H, W)` as `f64`, checking that every value is `>= 0`.
fn channel_mean<T: Real>(maps: &Tensor4<T>) -> Result<Vec<f64>> {
    let [n, c, h, w] = maps.shape();
    let plane = h * w;
    let src = maps.as_slice();
    if let Some(index) = src.iter().position(|v| v.as_f64() < 0.0) {
        return Err(invalid("maps", format!("{} at index {index}", src[index].as_f64()), "energies must be >= 0"));
    }
    let mut out = vec![0.0; n * plane];
    for i in 0..n {
        for ch in 0..c {
            let o = (i * c + ch) * plane;
            for p in 0..plane {
                out[i * plane + p] += src[o + p].as_f64();
            }
        }
    }
    out.iter_mut().for_each(|v| *v /= c as f64);
    Ok(out)
}

/// `ln(G_σ ∗ m + floor)` of `n` planes `h × w`.
fn log_energy(maps: &[f64], [n, h, w]: [usize; 3], sigma: f64, floor: f64) -> Result<Vec<f64>> {
    let t = Tensor4::from_vec([n, 1, h, w], maps.to_vec())?;
    let e = gaussian_blur(&t, sigma)?;
    Ok(e.as_slice().iter().map(|&v| (v.max(0.0) + floor).ln()).collect())
}

impl MapNormalizer {
    /// The parameters.
    pub fn params(&self) -> &NormalizerParams {
        &self.params
    }

    /// The absolute energy floor `floor · m̄` used inside the log.
    pub fn energy_floor(&self) -> f64 {
        self.floor
    }

    /// Median of the normal log-energy (the first pixel's for [`Scope::PerPixel`]).
    pub fn median(&self) -> f64 {
        self.stats[0].center
    }

    /// Signed split z-scores `(N, 1, H, W)` of the local log-energy of `maps` (step 3 of the
    /// [module documentation](self)): `0` at the normal median, `±1` at the normal `Φ(±1)`
    /// quantiles.
    ///
    /// # Errors
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::InvalidParameter`]
    /// for negative values, [`AnomalyError::ShapeMismatch`] for [`Scope::PerPixel`] maps of
    /// another size than the fitted ones.
    pub fn z_scores<T: Real>(&self, maps: &Tensor4<T>) -> Result<Tensor4<T>> {
        let [n, _, h, w] = maps.shape();
        if maps.is_empty() {
            return Err(AnomalyError::Empty { what: "maps to normalise" });
        }
        check_finite("maps to normalise", maps.as_slice())?;
        if self.params.scope == Scope::PerPixel && (h, w) != self.size {
            return Err(shape_err("per-pixel normalisation", self.size, (h, w)));
        }
        let plain = channel_mean(maps)?;
        let s = log_energy(&plain, [n, h, w], self.params.window, self.floor)?;
        let plane = h * w;
        let out: Vec<T> = s
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let st = if self.stats.len() == 1 { &self.stats[0] } else { &self.stats[k % plane] };
                T::lit(st.z(v))
            })
            .collect();
        Ok(Tensor4::from_vec([n, 1, h, w], out)?)
    }

    /// Normalised anomaly maps `(N, 1, H, W)`: `|z|`, `max(z, 0)` or `max(−z, 0)` by
    /// [`Side`]; `>= 0`, about `0` where the local residual energy is typical of normal data.
    ///
    /// # Errors
    /// As [`MapNormalizer::z_scores`].
    pub fn apply<T: Real>(&self, maps: &Tensor4<T>) -> Result<Tensor4<T>> {
        let mut z = self.z_scores(maps)?;
        let side = self.params.side;
        z.map_inplace(|v| match side {
            Side::TwoSided => v.abs(),
            Side::High => v.max(T::zero()),
            Side::Low => (-v).max(T::zero()),
        });
        Ok(z)
    }
}
