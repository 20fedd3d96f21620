//! Reconstruction losses, penalties and the dead-unit counter.
//!
//! Every function returns the value as `f64` and (when asked) writes or adds the gradient. Sums
//! run over fixed chunks in a fixed order, so values are identical for any number of threads.

use crate::error::{Result, check_nonneg, shape_err};
use crate::layer::sigmoid;
use crate::par;
use latent_linalg::{Real, Tensor4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A reconstruction loss between a prediction `p` and a target `t` of `N` samples with `D`
/// values each.
///
/// | variant | value | note |
/// |---|---|---|
/// | `Mse` | `Σ (p − t)² / (N·D)` | PyTorch's `nn.MSELoss()` (mean over all elements) |
/// | `SumSquared` | `Σ (p − t)² / N` | `‖x − x̂‖²` per sample, averaged over the batch (the lecture's form) |
/// | `Bce` | `−Σ [t ln p + (1 − t) ln(1 − p)] / (N·D)` | on probabilities `p ∈ [0, 1]`; logs clamped at −100 like PyTorch |
/// | `BceWithLogits` | `Σ [max(z, 0) − z·t + ln(1 + e^{−|z|})] / (N·D)` | on logits `z`, numerically stable; the reconstruction is `σ(z)` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Loss {
    /// Mean squared error over all elements.
    #[default]
    Mse,
    /// Squared error summed per sample, averaged over samples.
    SumSquared,
    /// Binary cross-entropy on probabilities.
    Bce,
    /// Binary cross-entropy on logits.
    BceWithLogits,
}

impl Loss {
    /// The loss value and, when `grad` is given, its gradient with respect to `pred` (written,
    /// not added). `n_samples` is `N` (the batch size).
    ///
    /// # Errors
    /// [`crate::AutoencoderError::ShapeMismatch`] when the lengths differ or are not a multiple
    /// of `n_samples`; [`crate::AutoencoderError::Empty`] for an empty batch.
    pub fn value_grad<T: Real>(
        &self,
        pred: &[T],
        target: &[T],
        n_samples: usize,
        grad: Option<&mut [T]>,
    ) -> Result<f64> {
        if pred.len() != target.len() {
            return Err(shape_err("loss", format!("target of {} values", pred.len()), target.len()));
        }
        if n_samples == 0 || pred.is_empty() {
            return Err(crate::AutoencoderError::Empty { what: "loss batch" });
        }
        if !pred.len().is_multiple_of(n_samples) {
            return Err(shape_err("loss", format!("a multiple of {n_samples} samples"), pred.len()));
        }
        if let Some(g) = grad.as_ref()
            && g.len() != pred.len()
        {
            return Err(shape_err("loss gradient", pred.len(), g.len()));
        }
        let denom = match self {
            Loss::SumSquared => n_samples as f64,
            _ => pred.len() as f64,
        };
        let inv = 1.0 / denom;
        let s = match self {
            Loss::Mse | Loss::SumSquared => {
                let c = T::lit(2.0 * inv);
                fused(pred, target, grad, move |p, t| {
                    let d = p - t;
                    (d.as_f64() * d.as_f64(), c * d)
                })
            }
            Loss::Bce => {
                let c = T::lit(inv);
                let tiny = T::lit(1e-12);
                fused(pred, target, grad, move |p, t| {
                    let (pf, tf) = (p.as_f64(), t.as_f64());
                    let lp = pf.ln().max(-100.0);
                    let lq = (1.0 - pf).ln().max(-100.0);
                    let g = c * (p - t) / ((T::one() - p) * p).max(tiny);
                    (-(tf * lp + (1.0 - tf) * lq), g)
                })
            }
            Loss::BceWithLogits => {
                let c = T::lit(inv);
                fused(pred, target, grad, move |z, t| {
                    let (zf, tf) = (z.as_f64(), t.as_f64());
                    let v = zf.max(0.0) - zf * tf + (-zf.abs()).exp().ln_1p();
                    (v, c * (sigmoid(z) - t))
                })
            }
        };
        Ok(s * inv)
    }

    /// The loss value only.
    ///
    /// # Errors
    /// As [`Loss::value_grad`].
    pub fn value<T: Real>(&self, pred: &[T], target: &[T], n_samples: usize) -> Result<f64> {
        self.value_grad(pred, target, n_samples, None)
    }
}

/// `Σ f(p, t).0` with `grad ← f(p, t).1`, chunked in a fixed order.
fn fused<T: Real>(pred: &[T], target: &[T], grad: Option<&mut [T]>, f: impl Fn(T, T) -> (f64, T) + Sync + Send) -> f64 {
    let n = pred.len();
    let parallel = n >= par::PAR_MIN && rayon::current_num_threads() > 1;
    match grad {
        Some(g) => {
            let kernel = |p: &[T], t: &[T], g: &mut [T]| -> f64 {
                let mut s = 0.0;
                for ((&p, &t), g) in p.iter().zip(t).zip(g.iter_mut()) {
                    let (v, d) = f(p, t);
                    s += v;
                    *g = d;
                }
                s
            };
            let parts: Vec<f64> = if parallel {
                pred.par_chunks(par::CHUNK)
                    .zip(target.par_chunks(par::CHUNK))
                    .zip(g.par_chunks_mut(par::CHUNK))
                    .map(|((p, t), g)| kernel(p, t, g))
                    .collect()
            } else {
                pred.chunks(par::CHUNK)
                    .zip(target.chunks(par::CHUNK))
                    .zip(g.chunks_mut(par::CHUNK))
                    .map(|((p, t), g)| kernel(p, t, g))
                    .collect()
            };
            parts.into_iter().sum()
        }
        None => par::sum2(pred, target, |p, t| f(p, t).0),
    }
}

/// The L1 code penalty `λ·(1/N)·Σₙ ‖sₙ‖₁` over a batch of `n_samples` codes; adds
/// `λ/N·sign(s)` into `grad` when given (0 at `s = 0`).
///
/// # Errors
/// [`crate::AutoencoderError::InvalidParameter`] for a negative or non-finite `lambda`,
/// [`crate::AutoencoderError::ShapeMismatch`] for a gradient of another length,
/// [`crate::AutoencoderError::Empty`] for `n_samples = 0`.
pub fn l1_penalty<T: Real>(lambda: f64, s: &[T], n_samples: usize, grad: Option<&mut [T]>) -> Result<f64> {
    check_nonneg("l1", lambda)?;
    if n_samples == 0 {
        return Err(crate::AutoencoderError::Empty { what: "l1 penalty batch" });
    }
    let c = lambda / n_samples as f64;
    if let Some(g) = grad {
        if g.len() != s.len() {
            return Err(shape_err("l1 penalty gradient", s.len(), g.len()));
        }
        let ct = T::lit(c);
        par::zip1(g, s, move |g, s| {
            if s > T::zero() {
                g + ct
            } else if s < T::zero() {
                g - ct
            } else {
                g
            }
        });
    }
    Ok(c * par::sum1(s, |v| v.as_f64().abs()))
}

/// The Frobenius weight penalty `η·‖W‖²_F`; adds `2η·W` into `grad` when given.
///
/// # Errors
/// [`crate::AutoencoderError::InvalidParameter`] for a negative or non-finite `eta`,
/// [`crate::AutoencoderError::ShapeMismatch`] for a gradient of another length.
pub fn frobenius_penalty<T: Real>(eta: f64, w: &[T], grad: Option<&mut [T]>) -> Result<f64> {
    check_nonneg("frobenius", eta)?;
    if let Some(g) = grad {
        if g.len() != w.len() {
            return Err(shape_err("frobenius penalty gradient", w.len(), g.len()));
        }
        let c = T::lit(2.0 * eta);
        par::zip1(g, w, move |g, w| g + c * w);
    }
    Ok(eta * par::sum1(w, |v| v.as_f64() * v.as_f64()))
}

/// The default temperature τ of the KL term's soft firing indicator `σ(z/(τ·sd))`.
///
/// The indicator counts an input on which a unit does not fire but whose pre-activation is
/// within a few `τ·sd` below zero as partly firing, so the smooth rate `ρ̂` overstates the true
/// firing rate of a unit by about the share of its inputs that sit just below zero. The L1 code
/// penalty drives inputs there (it pushes every positive code value down to 0 and stops), so the
/// overstatement is largest exactly for the units that are about to die. With τ = 0.25 (the
/// former default) units of the sparse ReLU autoencoder on MNIST died with `ρ̂ ≈ ρ`: a unit that
/// fired on none of 10 000 training images read `ρ̂ ≈ 0.045` for `ρ = 0.05`, so the term barely
/// pushed it (see the test `a_unit_piled_up_just_below_zero_is_not_read_as_firing`). τ = 0.1
/// narrows the window 2.5-fold; ρ̂ then tracks the true rate closely.
pub const DEFAULT_KL_TEMPERATURE: f64 = 0.1;

/// The KL "every unit fires sometimes" term; see [`kl_sparsity_penalty`].
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `rho` | — | target activation rate ρ | `(0, 1)` |
/// | `weight` | — | multiplier β | finite, `>= 0` |
/// | `temperature` | `0.1` ([`DEFAULT_KL_TEMPERATURE`]) | τ, softness of the "fires" indicator `σ(z/(τ·sd))`, in units of the unit's spread | finite, `> 0` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KlSparsity {
    /// Target activation rate ρ.
    pub rho: f64,
    /// Weight β of the term.
    pub weight: f64,
    /// Temperature τ of the indicator `σ(z/(τ·sd))`.
    pub temperature: f64,
}

impl KlSparsity {
    /// Target rate `rho`, weight `weight`, temperature [`DEFAULT_KL_TEMPERATURE`].
    pub fn new(rho: f64, weight: f64) -> Self {
        Self { rho, weight, temperature: DEFAULT_KL_TEMPERATURE }
    }
    /// Set the temperature.
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
        self
    }
    /// Validate.
    ///
    /// # Errors
    /// [`crate::AutoencoderError::InvalidParameter`] naming `kl_rho`, `kl_weight` or
    /// `kl_temperature`.
    pub fn validate(&self) -> Result<()> {
        if !(self.rho > 0.0 && self.rho < 1.0) {
            return Err(crate::error::invalid("kl_rho", self.rho, "must be in (0, 1)"));
        }
        check_nonneg("kl_weight", self.weight)?;
        crate::error::check_pos("kl_temperature", self.temperature)
    }
}

/// `log σ(x) = −softplus(−x)`, stable for any `x`.
fn log_sigmoid(x: f64) -> f64 {
    -((-x).max(0.0) + (-x.abs()).exp().ln_1p())
}

/// `ln Σ exp(v)`, stable.
fn log_sum_exp(v: &[f64]) -> f64 {
    let mx = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    mx + v.iter().map(|a| (a - mx).exp()).sum::<f64>().ln()
}

/// One unit's smooth firing rate in the log domain: fills `ls[k] = ln σ(u_k)` and
/// `lsb[k] = ln σ(−u_k)` for `u_k = z_k/(τ·sd)` and returns `(ln ρ̂, ln(1 − ρ̂), μ, sd)`.
fn log_rate(vals: &[f64], tau: f64, ls: &mut [f64], lsb: &mut [f64]) -> (f64, f64, f64, f64) {
    let mf = vals.len() as f64;
    let mu = vals.iter().sum::<f64>() / mf;
    let var = vals.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / mf;
    let sd = (var + 1e-8).sqrt();
    let scale = 1.0 / (tau * sd);
    for ((v, l), lb) in vals.iter().zip(ls.iter_mut()).zip(lsb.iter_mut()) {
        let u = v * scale;
        *l = log_sigmoid(u);
        *lb = log_sigmoid(-u);
    }
    (log_sum_exp(ls) - mf.ln(), log_sum_exp(lsb) - mf.ln(), mu, sd)
}

/// The values of channel `ch` of `z` (all samples and positions), in sample-major order.
fn channel_values<T: Real>(z: &Tensor4<T>, ch: usize, out: &mut [f64]) {
    let [_, c, h, w] = z.shape();
    let p = h * w;
    let zs = z.as_slice();
    for (k, v) in out.iter_mut().enumerate() {
        let (i, q) = (k / p, k % p);
        *v = zs[(i * c + ch) * p + q].as_f64();
    }
}

/// The smooth firing rate `ρ̂_c` that [`kl_sparsity_penalty`] compares with `ρ`, per unit
/// (channel) of the pre-activation code `z` (`N, C, H, W`): the mean over the batch (and
/// positions) of `σ(z / (τ·sd_c))`. For any `k > 0` it lies within
/// `[r − a − σ(−k), r + b + σ(−k)]`, where `r` is the share of values above 0 (the true firing
/// rate) and `a`, `b` the shares in `(0, k·τ·sd_c)` and `(−k·τ·sd_c, 0]`. Empty when a unit has
/// fewer than two values in the batch (the term is then 0).
///
/// # Errors
/// As [`kl_sparsity_penalty`] (the weight is not used).
pub fn kl_firing_rates<T: Real>(kl: &KlSparsity, z: &Tensor4<T>) -> Result<Vec<f64>> {
    kl.validate()?;
    if z.is_empty() {
        return Err(crate::AutoencoderError::Empty { what: "kl penalty batch" });
    }
    let [n, c, h, w] = z.shape();
    let m = n * h * w;
    if m < 2 {
        return Ok(Vec::new());
    }
    let (mut vals, mut ls, mut lsb) = (vec![0.0f64; m], vec![0.0f64; m], vec![0.0f64; m]);
    Ok((0..c)
        .map(|ch| {
            channel_values(z, ch, &mut vals);
            log_rate(&vals, kl.temperature, &mut ls, &mut lsb).0.exp()
        })
        .collect())
}

/// The "entropy" term that makes every unit activate on about a fraction `ρ` of the inputs:
/// `β·Σ_c KL(ρ ‖ ρ̂_c)` with `KL(ρ‖q) = ρ ln(ρ/q) + (1 − ρ) ln((1 − ρ)/(1 − q))` and the smooth
/// firing rate of unit (channel) `c` of the **pre-activation** code `z` (`N, C, H, W`):
///
/// `ρ̂_c = mean over the batch (and positions) of σ(z / (τ·sd_c))`, `sd_c = √(var_c(z) + 1e-8)`
/// (see [`kl_firing_rates`]).
///
/// `σ(z/(τ·sd))` is a soft indicator of "the unit fires" (`z > 0`) whose sharpness is measured in
/// units of the unit's own spread over the batch, so `ρ̂_c` tracks the fraction of inputs on which
/// the unit fires whatever the scale of `z`, up to the inputs within a few `τ·sd` of zero (see
/// [`DEFAULT_KL_TEMPERATURE`] for why τ must be small: near-misses below zero count as partly
/// firing). The gradient includes the dependence through `sd_c`. Because it is computed on the
/// pre-activation, a gradient reaches units whose ReLU never fires and pushes them to fire on
/// some inputs; it is evaluated in the log domain, so that push does not vanish however far below
/// zero the unit sits. Units on more than the target share are pushed the other way. Adds the
/// gradient with respect to `z` into `grad` when given. A unit needs at least two values in the
/// batch; with fewer the term is 0.
///
/// # Errors
/// As [`KlSparsity::validate`]; [`crate::AutoencoderError::ShapeMismatch`] for a gradient of another
/// shape, [`crate::AutoencoderError::Empty`] for an empty batch.
pub fn kl_sparsity_penalty<T: Real>(kl: &KlSparsity, z: &Tensor4<T>, grad: Option<&mut Tensor4<T>>) -> Result<f64> {
    kl.validate()?;
    let (rho, beta, tau) = (kl.rho, kl.weight, kl.temperature);
    let [n, c, h, w] = z.shape();
    let p = h * w;
    if z.is_empty() {
        return Err(crate::AutoencoderError::Empty { what: "kl penalty batch" });
    }
    let mut grad = match grad {
        Some(g) if g.shape() != z.shape() => return Err(shape_err("kl penalty gradient", z.shape(), g.shape())),
        g => g,
    };
    let m = n * p;
    if m < 2 {
        return Ok(0.0);
    }
    let mf = m as f64;
    let mut vals = vec![0.0f64; m];
    let (mut ls, mut lsb) = (vec![0.0f64; m], vec![0.0f64; m]);
    let mut value = 0.0;
    for ch in 0..c {
        channel_values(z, ch, &mut vals);
        let (log_q, log_qb, mu, sd) = log_rate(&vals, tau, &mut ls, &mut lsb);
        let scale = 1.0 / (tau * sd);
        value += rho * (rho.ln() - log_q) + (1.0 - rho) * ((1.0 - rho).ln() - log_qb);
        if let Some(g) = grad.as_deref_mut() {
            // G_k = ∂J/∂u_k; then ∂J/∂z_n = G_n/(τ sd) − (Σ_k G_k z_k)(z_n − μ)/(τ m sd³).
            let gk: Vec<f64> = (0..m)
                .map(|k| {
                    let ld = ls[k] + lsb[k];
                    beta / mf * (-rho * (ld - log_q).exp() + (1.0 - rho) * (ld - log_qb).exp())
                })
                .collect();
            let s: f64 = gk.iter().zip(&vals).map(|(g, z)| g * z).sum();
            let gs = g.as_mut_slice();
            for k in 0..m {
                let (i, q) = (k / p, k % p);
                let d = gk[k] * scale - s * (vals[k] - mu) * scale / (mf * sd * sd);
                gs[(i * c + ch) * p + q] += T::lit(d);
            }
        }
    }
    Ok(beta * value)
}

/// Counts, per unit (channel of a code `(N, C, H, W)`), the samples on which it activates
/// (some value above `threshold`), over any number of batches. Units with a zero count never
/// activated: they are dead.
///
/// # Example
/// ```
/// use latent_autoencoder::loss::DeadUnitCounter;
/// use latent_linalg::Tensor4;
/// let s = Tensor4::from_vec([3, 2, 1, 1], vec![0.0, 1.0, 0.0, 0.5, 0.0, 0.0])?;
/// let mut c = DeadUnitCounter::new(2);
/// c.update(&s, 0.0)?;
/// assert_eq!(c.counts(), &[0, 2]);
/// assert_eq!(c.dead_units(), vec![0]);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadUnitCounter {
    counts: Vec<u64>,
    samples: u64,
}

impl DeadUnitCounter {
    /// A counter for `units` units.
    pub fn new(units: usize) -> Self {
        Self { counts: vec![0; units], samples: 0 }
    }
    /// Add a batch of codes.
    ///
    /// # Errors
    /// [`crate::AutoencoderError::ShapeMismatch`] when the code has another number of channels.
    pub fn update<T: Real>(&mut self, s: &Tensor4<T>, threshold: T) -> Result<()> {
        let [n, c, h, w] = s.shape();
        if c != self.counts.len() {
            return Err(shape_err("dead-unit counter", format!("{} units (channels)", self.counts.len()), s.shape()));
        }
        let p = h * w;
        if p == 0 {
            return Ok(());
        }
        for sample in s.as_slice().chunks_exact(c * p) {
            for (cnt, plane) in self.counts.iter_mut().zip(sample.chunks_exact(p)) {
                if plane.iter().any(|&v| v > threshold) {
                    *cnt += 1;
                }
            }
        }
        self.samples += n as u64;
        Ok(())
    }
    /// Samples on which each unit activated.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
    /// Samples seen.
    pub fn samples(&self) -> u64 {
        self.samples
    }
    /// Indices of the units that never activated.
    pub fn dead_units(&self) -> Vec<usize> {
        self.counts.iter().enumerate().filter(|(_, c)| **c == 0).map(|(i, _)| i).collect()
    }
    /// Number of units that never activated.
    pub fn num_dead(&self) -> usize {
        self.counts.iter().filter(|c| **c == 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mse_matches_pytorch_scaling_and_sum_squared_the_lecture() {
        let p = [0.5f64, 1.0, 0.0, 2.0];
        let t = [0.0f64, 1.0, 1.0, 1.0];
        // mean over all 4 elements, as nn.MSELoss
        assert_eq!(Loss::Mse.value(&p, &t, 2).unwrap(), (0.25 + 0.0 + 1.0 + 1.0) / 4.0);
        // per-sample sum, averaged over the 2 samples
        assert_eq!(Loss::SumSquared.value(&p, &t, 2).unwrap(), (0.25 + 0.0 + 1.0 + 1.0) / 2.0);
        let mut g = [0.0; 4];
        Loss::Mse.value_grad(&p, &t, 2, Some(&mut g)).unwrap();
        assert_eq!(g, [0.25, 0.0, -0.5, 0.5]);
    }

    #[test]
    fn cross_entropies_are_stable_at_the_extremes() {
        let t = [1.0f32, 0.0, 1.0, 0.0];
        let z = [100.0f32, -100.0, -100.0, 100.0];
        let mut g = [0.0f32; 4];
        let v = Loss::BceWithLogits.value_grad(&z, &t, 1, Some(&mut g)).unwrap();
        assert!((v - 50.0).abs() < 1e-9, "{v}");
        assert_eq!(g, [0.0, 0.0, -0.25, 0.25]);
        // probabilities at exactly 0 and 1: logs clamped at −100 like PyTorch
        let p = [1.0f32, 0.0, 0.0, 1.0];
        let mut g = [0.0f32; 4];
        let v = Loss::Bce.value_grad(&p, &t, 1, Some(&mut g)).unwrap();
        assert!((v - 50.0).abs() < 1e-9, "{v}");
        assert!(g.iter().all(|x| x.is_finite()));
        assert!(g[2] < 0.0 && g[3] > 0.0);
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        assert!(matches!(
            Loss::Mse.value(&[1.0f64], &[1.0, 2.0], 1),
            Err(crate::AutoencoderError::ShapeMismatch { .. })
        ));
        assert!(matches!(Loss::Mse.value::<f64>(&[], &[], 1), Err(crate::AutoencoderError::Empty { .. })));
        assert!(matches!(
            Loss::Mse.value(&[1.0f64, 2.0, 3.0], &[1.0, 2.0, 3.0], 2),
            Err(crate::AutoencoderError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            l1_penalty(-1.0, &[1.0f64], 1, None),
            Err(crate::AutoencoderError::InvalidParameter { name: "l1", .. })
        ));
        let z = Tensor4::<f64>::zeros([2, 1, 1, 1]).unwrap();
        let bad = KlSparsity::new(0.1, 1.0).temperature(0.0);
        assert!(matches!(
            kl_sparsity_penalty(&bad, &z, None),
            Err(crate::AutoencoderError::InvalidParameter { name: "kl_temperature", .. })
        ));
    }

    #[test]
    fn kl_is_zero_at_the_target_rate_and_pushes_dead_units_up() {
        // Half of the values fire: ρ̂ ≈ 0.5 for a sharp indicator.
        let z = Tensor4::from_vec([4, 1, 1, 1], vec![-1.0f64, -1.0, 1.0, 1.0]).unwrap();
        let kl = KlSparsity::new(0.5, 1.0).temperature(0.01);
        assert!(kl_sparsity_penalty(&kl, &z, None).unwrap() < 1e-12);
        // A unit far below zero still gets a clear upward push on its least negative inputs.
        let dead = Tensor4::from_vec([4, 1, 1, 1], vec![-50.0f64, -51.0, -52.0, -49.0]).unwrap();
        let mut g = Tensor4::zeros([4, 1, 1, 1]).unwrap();
        let v = kl_sparsity_penalty(&KlSparsity::new(0.1, 1.0), &dead, Some(&mut g)).unwrap();
        assert!(v.is_finite() && v > 1.0, "{v}");
        assert!(g.as_slice()[3] < -0.1, "{:?}", g.as_slice());
        assert!(g.as_slice().iter().all(|x| x.is_finite()));
    }

    /// Quantiles (in units of its own sd) of the pre-activation of unit 94 of F5's sparse ReLU
    /// autoencoder (seed 0, KL weight 2, ρ = 0.05, τ = 0.25, after 8 epochs) over its 10 000
    /// training images, on none of which it fired: a long lower tail, and the L1 term's pile-up
    /// just below zero (14 % of the inputs within 0.5 sd of 0).
    const DEAD_UNIT_QUANTILES: [(f64, f64); 12] = [
        (0.0, -6.027),
        (0.05, -3.468),
        (0.1, -2.932),
        (0.25, -2.046),
        (0.5, -1.272),
        (0.75, -0.704),
        (0.8, -0.612),
        (0.85, -0.512),
        (0.9, -0.414),
        (0.95, -0.309),
        (0.99, -0.179),
        (1.0, -0.007),
    ];

    /// A batch of `m` values with the quantile function interpolated from `DEAD_UNIT_QUANTILES`.
    fn dead_unit_batch(m: usize) -> Tensor4<f64> {
        let qf = |p: f64| {
            let w = DEAD_UNIT_QUANTILES.windows(2).find(|w| p <= w[1].0).unwrap();
            let ((a, x), (b, y)) = (w[0], w[1]);
            x + (y - x) * (p - a) / (b - a)
        };
        Tensor4::from_fn([m, 1, 1, 1], |[i, ..]| qf((i as f64 + 0.5) / m as f64)).unwrap()
    }

    #[test]
    fn a_unit_piled_up_just_below_zero_is_not_read_as_firing() {
        let z = dead_unit_batch(100);
        assert!(z.as_slice().iter().all(|v| *v < 0.0), "the unit never fires");
        let rho = 0.05;
        let push = |kl: &KlSparsity| {
            let mut g = Tensor4::zeros(z.shape()).unwrap();
            kl_sparsity_penalty(kl, &z, Some(&mut g)).unwrap();
            // ∂J/∂b for the unit's bias: negative = gradient descent raises the bias
            g.as_slice().iter().sum::<f64>()
        };
        // The former default τ = 0.25 reads this never-firing unit as firing on more than the
        // target share, so the term even pushes it further down.
        let old = KlSparsity::new(rho, 1.0).temperature(0.25);
        let rate = kl_firing_rates(&old, &z).unwrap()[0];
        assert!(rate > rho, "{rate}");
        assert!(push(&old) > 0.0, "{}", push(&old));
        // The default τ sees a rate far below the target and pushes the unit up.
        let new = KlSparsity::new(rho, 1.0);
        assert_eq!(new.temperature, DEFAULT_KL_TEMPERATURE);
        let rate = kl_firing_rates(&new, &z).unwrap()[0];
        assert!(rate < rho / 3.0, "{rate}");
        assert!(push(&new) < -0.1, "{}", push(&new));
    }

    #[test]
    fn kl_firing_rates_match_the_penalty_and_the_hard_rate() {
        // Two units: the dead one above and one firing on 5 % of the inputs with a gap around 0.
        let z = dead_unit_batch(200);
        let z2 = Tensor4::from_fn([200, 2, 1, 1], |[i, c, ..]| {
            if c == 0 {
                z.as_slice()[i]
            } else if i % 20 == 0 {
                1.0 + i as f64 / 200.0
            } else {
                -1.0 - i as f64 / 200.0
            }
        })
        .unwrap();
        let kl = KlSparsity::new(0.05, 2.0);
        let r = kl_firing_rates(&kl, &z2).unwrap();
        assert_eq!(r.len(), 2);
        assert!((r[1] - 0.05).abs() < 1e-3, "{r:?}");
        let expect: f64 = r.iter().map(|q| 0.05 * (0.05 / q).ln() + 0.95 * (0.95 / (1.0 - q)).ln()).sum::<f64>() * 2.0;
        let v = kl_sparsity_penalty(&kl, &z2, None).unwrap();
        assert!((v - expect).abs() < 1e-9 * expect.max(1.0), "{v} {expect}");
        assert!(kl_firing_rates(&kl, &Tensor4::<f64>::zeros([1, 3, 1, 1]).unwrap()).unwrap().is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 64,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x0f5),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]
        /// ρ̂ differs from the true firing rate only through the inputs within `k·τ·sd` of zero
        /// (plus `σ(−k)`), whatever the distribution.
        #[test]
        fn soft_rate_errs_only_near_zero(
            vals in proptest::collection::vec(-5.0f64..5.0, 2..80),
            shift in -3.0f64..3.0,
            scale in 0.01f64..100.0,
            tau in 0.02f64..1.0,
            k in 0.5f64..6.0,
        ) {
            let z = Tensor4::from_fn([vals.len(), 1, 1, 1], |[i, ..]| (vals[i] + shift) * scale).unwrap();
            let zs = z.as_slice();
            let m = zs.len() as f64;
            let mu = zs.iter().sum::<f64>() / m;
            let sd = (zs.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / m + 1e-8).sqrt();
            let w = k * tau * sd;
            let share = |f: &dyn Fn(f64) -> bool| zs.iter().filter(|v| f(**v)).count() as f64 / m;
            let r = share(&|v| v > 0.0);
            let a = share(&|v| v > 0.0 && v < w);
            let b = share(&|v| v <= 0.0 && v > -w);
            let tail = 1.0 / (1.0 + k.exp());
            let q = kl_firing_rates(&KlSparsity::new(0.05, 1.0).temperature(tau), &z).unwrap()[0];
            proptest::prop_assert!(q <= r + b + tail + 1e-12, "{q} > {r} + {b} + {tail}");
            proptest::prop_assert!(q >= r - a - tail - 1e-12, "{q} < {r} - {a} - {tail}");
        }
    }
}
