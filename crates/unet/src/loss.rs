//! Segmentation losses on class logits: pixel-wise softmax cross-entropy with an optional
//! per-pixel weight map (the paper's energy), and the soft Dice loss.
//!
//! Logits are `(N, K, H, W)`, labels one class index per pixel (`N·H·W` values in `0..K`),
//! weights one non-negative value per pixel. Sums run per sample and are added in sample order,
//! so values and gradients are identical for any number of threads.

use crate::error::{Result, UnetError, shape_err};
use latent_linalg::{Real, Tensor4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Smoothing constant of the Dice loss (added to numerator and denominator).
pub const DICE_SMOOTH: f64 = 1.0;

/// The training objective.
///
/// | variant | value (P = N·H·W pixels) |
/// |---|---|
/// | `CrossEntropy` | `(1/P) Σ_x w(x) · (−ln softmax(z(x))_{ℓ(x)})`, `w ≡ 1` without a weight map (PyTorch's `CrossEntropyLoss`) |
/// | `Dice` | `1 − mean_{k ≥ 1} (2 Σ p_k t_k + s) / (Σ p_k + Σ t_k + s)` over the batch, `p = softmax(z)`, `t` one-hot, `s` = [`DICE_SMOOTH`]; class 0 (background) is left out; the weight map is ignored |
/// | `CrossEntropyDice` | the sum of the two |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SegLoss {
    /// (Weighted) softmax cross-entropy.
    #[default]
    CrossEntropy,
    /// Soft Dice loss over the foreground classes.
    Dice,
    /// Cross-entropy plus Dice.
    CrossEntropyDice,
}

impl SegLoss {
    /// The loss and, when `grad` is given, its gradient with respect to the logits (written, not
    /// added).
    ///
    /// # Errors
    /// As [`cross_entropy`] and [`dice_loss`].
    pub fn value_grad<T: Real>(
        &self,
        logits: &Tensor4<T>,
        labels: &[u8],
        weights: Option<&[T]>,
        grad: Option<&mut Tensor4<T>>,
    ) -> Result<f64> {
        match self {
            SegLoss::CrossEntropy => cross_entropy(logits, labels, weights, grad),
            SegLoss::Dice => dice_loss(logits, labels, grad),
            SegLoss::CrossEntropyDice => match grad {
                None => Ok(cross_entropy(logits, labels, weights, None)? + dice_loss(logits, labels, None)?),
                Some(g) => {
                    let mut g2 = Tensor4::zeros(logits.shape())?;
                    let a = cross_entropy(logits, labels, weights, Some(g))?;
                    let b = dice_loss(logits, labels, Some(&mut g2))?;
                    for (x, &y) in g.as_mut_slice().iter_mut().zip(g2.as_slice()) {
                        *x += y;
                    }
                    Ok(a + b)
                }
            },
        }
    }
}

fn check_inputs<T: Real>(op: &'static str, logits: &Tensor4<T>, labels: &[u8], weights: Option<&[T]>) -> Result<()> {
    let [n, k, h, w] = logits.shape();
    if n == 0 || h == 0 || w == 0 {
        return Err(UnetError::Empty { what: "loss batch" });
    }
    if k < 2 {
        return Err(shape_err(op, "logits with at least 2 classes", format!("{:?}", logits.shape())));
    }
    if labels.len() != n * h * w {
        return Err(shape_err(
            op,
            format!("{} labels (N·H·W of logits {:?})", n * h * w, logits.shape()),
            labels.len(),
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l as usize >= k) {
        return Err(UnetError::InvalidParameter {
            name: "labels",
            value: format!("{} at flat index {i}", labels[i]),
            reason: format!("class indices must be < {k}"),
        });
    }
    if let Some(wt) = weights {
        if wt.len() != labels.len() {
            return Err(shape_err(op, format!("{} weights", labels.len()), wt.len()));
        }
        if let Some(i) = wt.iter().position(|v| !(v.finite() && *v >= T::zero())) {
            return Err(UnetError::InvalidParameter {
                name: "weights",
                value: format!("{} at flat index {i}", wt[i]),
                reason: "weights must be finite and >= 0".into(),
            });
        }
    }
    crate::error::check_finite("logits", logits.as_slice())
}

/// Softmax of the `k` logits of one pixel (stride `p` apart) into `out`; returns `ln Σ e^z`.
#[inline]
fn softmax_pixel<T: Real>(z: &[T], j: usize, p: usize, k: usize, out: &mut [T]) -> T {
    let mut m = z[j];
    for c in 1..k {
        m = m.max(z[c * p + j]);
    }
    let mut s = T::zero();
    for c in 0..k {
        let e = (z[c * p + j] - m).exp();
        out[c] = e;
        s += e;
    }
    let inv = T::one() / s;
    for o in out.iter_mut().take(k) {
        *o *= inv;
    }
    m + s.ln()
}

/// Pixel-wise softmax cross-entropy, optionally weighted per pixel, averaged over all pixels.
///
/// # Errors
/// [`UnetError::ShapeMismatch`] when labels or weights do not have one value per pixel,
/// [`UnetError::InvalidParameter`] for a label `>= K` or a negative or non-finite weight,
/// [`UnetError::NonFinite`] for NaN/Inf logits, [`UnetError::Empty`] for an empty batch.
///
/// # Example
/// ```
/// use latent_linalg::Tensor4;
/// use latent_unet::loss::cross_entropy;
/// // one pixel, logits (0, ln 3): p = (1/4, 3/4)
/// let z = Tensor4::from_vec([1, 2, 1, 1], vec![0.0, 3f64.ln()])?;
/// let mut g = Tensor4::zeros([1, 2, 1, 1])?;
/// let l = cross_entropy(&z, &[1], None, Some(&mut g))?;
/// assert!((l - (4.0f64 / 3.0).ln()).abs() < 1e-12);
/// assert!((g.as_slice()[0] - 0.25).abs() < 1e-12 && (g.as_slice()[1] + 0.25).abs() < 1e-12);
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
pub fn cross_entropy<T: Real>(
    logits: &Tensor4<T>,
    labels: &[u8],
    weights: Option<&[T]>,
    grad: Option<&mut Tensor4<T>>,
) -> Result<f64> {
    check_inputs("cross_entropy", logits, labels, weights)?;
    let [n, k, h, w] = logits.shape();
    let p = h * w;
    let inv_total = T::lit(1.0 / (n * p) as f64);
    let per_sample = |i: usize, gi: Option<&mut [T]>| -> f64 {
        let z = &logits.as_slice()[i * k * p..(i + 1) * k * p];
        let lab = &labels[i * p..(i + 1) * p];
        let wt = weights.map(|wt| &wt[i * p..(i + 1) * p]);
        let mut prob = vec![T::zero(); k];
        let mut acc = 0.0f64;
        let mut gi = gi;
        for j in 0..p {
            let lse = softmax_pixel(z, j, p, k, &mut prob);
            let y = lab[j] as usize;
            let wj = wt.map_or(T::one(), |wt| wt[j]);
            acc += (wj * (lse - z[y * p + j])).as_f64();
            if let Some(g) = gi.as_deref_mut() {
                let s = wj * inv_total;
                for c in 0..k {
                    let t = if c == y { T::one() } else { T::zero() };
                    g[c * p + j] = s * (prob[c] - t);
                }
            }
        }
        acc
    };
    let parts: Vec<f64> = match grad {
        Some(g) => {
            if g.shape() != logits.shape() {
                return Err(shape_err(
                    "cross_entropy gradient",
                    format!("{:?}", logits.shape()),
                    format!("{:?}", g.shape()),
                ));
            }
            g.as_mut_slice().par_chunks_mut(k * p).enumerate().map(|(i, gi)| per_sample(i, Some(gi))).collect()
        }
        None => (0..n).into_par_iter().map(|i| per_sample(i, None)).collect(),
    };
    Ok(parts.iter().sum::<f64>() / (n * p) as f64)
}

/// Soft Dice loss over the foreground classes `1..K` (see [`SegLoss::Dice`]).
///
/// # Errors
/// As [`cross_entropy`].
pub fn dice_loss<T: Real>(logits: &Tensor4<T>, labels: &[u8], grad: Option<&mut Tensor4<T>>) -> Result<f64> {
    check_inputs("dice_loss", logits, labels, None)?;
    let [n, k, h, w] = logits.shape();
    let p = h * w;
    // per sample: Σ p_c t_c and Σ p_c + Σ t_c for every class
    let stats: Vec<Vec<(f64, f64)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let z = &logits.as_slice()[i * k * p..(i + 1) * k * p];
            let lab = &labels[i * p..(i + 1) * p];
            let mut prob = vec![T::zero(); k];
            let mut st = vec![(0.0f64, 0.0f64); k];
            for j in 0..p {
                softmax_pixel(z, j, p, k, &mut prob);
                let y = lab[j] as usize;
                for c in 0..k {
                    let pc = prob[c].as_f64();
                    st[c].1 += pc;
                    if c == y {
                        st[c].0 += pc;
                        st[c].1 += 1.0;
                    }
                }
            }
            st
        })
        .collect();
    let mut tot = vec![(0.0f64, 0.0f64); k];
    for st in &stats {
        for c in 0..k {
            tot[c].0 += st[c].0;
            tot[c].1 += st[c].1;
        }
    }
    let m = (k - 1) as f64;
    let s = DICE_SMOOTH;
    let mut loss = 1.0;
    for &(i, u) in &tot[1..] {
        loss -= (2.0 * i + s) / (u + s) / m;
    }
    if let Some(g) = grad {
        if g.shape() != logits.shape() {
            return Err(shape_err("dice_loss gradient", format!("{:?}", logits.shape()), format!("{:?}", g.shape())));
        }
        // dL/dp_c = −(1/m)·(2 t_c (U_c + s) − (2 I_c + s)) / (U_c + s)² for c >= 1, 0 for c = 0
        let coef: Vec<(T, T)> = tot
            .iter()
            .enumerate()
            .map(|(c, &(i, u))| {
                if c == 0 {
                    (T::zero(), T::zero())
                } else {
                    let d = (u + s) * (u + s) * m;
                    (T::lit(-2.0 * (u + s) / d), T::lit((2.0 * i + s) / d))
                }
            })
            .collect();
        g.as_mut_slice().par_chunks_mut(k * p).enumerate().for_each(|(i, gi)| {
            let z = &logits.as_slice()[i * k * p..(i + 1) * k * p];
            let lab = &labels[i * p..(i + 1) * p];
            let mut prob = vec![T::zero(); k];
            let mut dp = vec![T::zero(); k];
            for j in 0..p {
                softmax_pixel(z, j, p, k, &mut prob);
                let y = lab[j] as usize;
                let mut dot = T::zero();
                for c in 0..k {
                    dp[c] = coef[c].1 + if c == y { coef[c].0 } else { T::zero() };
                    dot += prob[c] * dp[c];
                }
                for c in 0..k {
                    gi[c * p + j] = prob[c] * (dp[c] - dot);
                }
            }
        });
    }
    Ok(loss)
}

/// Class probabilities (softmax over the channel axis) of logits `(N, K, H, W)`.
///
/// # Errors
/// [`UnetError::Empty`] for an empty tensor.
pub fn softmax<T: Real>(logits: &Tensor4<T>) -> Result<Tensor4<T>> {
    let [n, k, h, w] = logits.shape();
    if logits.is_empty() {
        return Err(UnetError::Empty { what: "logits" });
    }
    let p = h * w;
    let mut out = Tensor4::zeros([n, k, h, w])?;
    out.as_mut_slice().par_chunks_mut(k * p).zip(logits.as_slice().par_chunks(k * p)).for_each(|(o, z)| {
        let mut prob = vec![T::zero(); k];
        for j in 0..p {
            softmax_pixel(z, j, p, k, &mut prob);
            for c in 0..k {
                o[c * p + j] = prob[c];
            }
        }
    });
    Ok(out)
}

/// The most likely class of every pixel (`N·H·W` values; ties go to the lower class).
pub fn argmax_classes<T: Real>(logits: &Tensor4<T>) -> Vec<u8> {
    let [n, k, h, w] = logits.shape();
    let p = h * w;
    let mut out = vec![0u8; n * p];
    for (i, z) in logits.as_slice().chunks(k * p.max(1)).enumerate().take(n) {
        for j in 0..p {
            let mut best = 0;
            for c in 1..k {
                if z[c * p + j] > z[best * p + j] {
                    best = c;
                }
            }
            out[i * p + j] = best.min(255) as u8;
        }
    }
    out
}
