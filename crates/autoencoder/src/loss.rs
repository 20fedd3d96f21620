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

/// The KL "every unit fires sometimes" term; see [`kl_sparsity_penalty`].
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `rho` | — | target activation rate ρ | `(0, 1)` |
/// | `weight` | — | multiplier β | finite, `>= 0` |
/// | `temperature` | `0.25` | τ, softness of the "fires" indicator `σ(z/(τ·sd))`, in units of the unit's spread | finite, `> 0` |
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
    /// Target rate `rho`, weight `weight`, temperature 0.25.
    pub fn new(rho: f64, weight: f64) -> Self {
        Self { rho, weight, temperature: 0.25 }
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

/// The "entropy" term that makes every unit activate on about a fraction `ρ` of the inputs:
/// `β·Σ_c KL(ρ ‖ ρ̂_c)` with `KL(ρ‖q) = ρ ln(ρ/q) + (1 − ρ) ln((1 − ρ)/(1 − q))` and the smooth
/// firing rate of unit (channel) `c` of the **pre-activation** code `z` (`N, C, H, W`):
///
/// `ρ̂_c = mean over the batch (and positions) of σ(z / (τ·sd_c))`, `sd_c = √(var_c(z) + 1e-8)`.
///
/// `σ(z/(τ·sd))` is a soft indicator of "the unit fires" (`z > 0`) whose sharpness is measured in
/// units of the unit's own spread over the batch, so `ρ̂_c` tracks the fraction of inputs on which
/// the unit fires whatever the scale of `z` (the gradient includes the dependence through
/// `sd_c`). Because it is computed on the pre-activation, a gradient reaches units whose ReLU never
/// fires and pushes them to fire on some inputs; it is evaluated in the log domain, so that push
/// does not vanish however far below zero the unit sits. Units on more than the target share are
/// pushed the other way. Adds the gradient with respect to `z` into `grad` when given. A unit
/// needs at least two values in the batch; with fewer the term is 0.
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
    let zs = z.as_slice();
    // log σ(x) = −softplus(−x)
    let log_sig = |x: f64| -(((-x).max(0.0)) + (-x.abs()).exp().ln_1p());
    let lse = |v: &[f64]| {
        let mx = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        mx + v.iter().map(|a| (a - mx).exp()).sum::<f64>().ln()
    };
    let mut vals = vec![0.0f64; m];
    let (mut ls, mut lsb) = (vec![0.0f64; m], vec![0.0f64; m]);
    let mut value = 0.0;
    for ch in 0..c {
        for (k, v) in vals.iter_mut().enumerate() {
            let (i, q) = (k / p, k % p);
            *v = zs[(i * c + ch) * p + q].as_f64();
        }
        let mu = vals.iter().sum::<f64>() / mf;
        let var = vals.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / mf;
        let sd = (var + 1e-8).sqrt();
        let scale = 1.0 / (tau * sd);
        for k in 0..m {
            let u = vals[k] * scale;
            ls[k] = log_sig(u);
            lsb[k] = log_sig(-u);
        }
        let log_q = lse(&ls) - mf.ln();
        let log_qb = lse(&lsb) - mf.ln();
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
}
