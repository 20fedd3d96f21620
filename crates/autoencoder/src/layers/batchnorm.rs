//! Batch normalisation over the channel axis (BatchNorm1d on `(N, D, 1, 1)`, BatchNorm2d on
//! `(N, C, H, W)`).

use crate::error::{AutoencoderError, Result, format_err, invalid, shape_err};
use crate::layer::{Layer, Mode, Param, ParamKind, check_same};
use crate::layers::ensure_len;
use latent_linalg::{Real, Tensor4};
use serde::{Deserialize, Serialize};

/// Batch normalisation: per channel `c`, `y = γ_c·(x − μ_c)/√(σ²_c + eps) + β_c`.
///
/// In [`Mode::Train`], `μ_c` and `σ²_c` are the batch mean and (biased) variance over `N·H·W`
/// values, and the running estimates are updated as
/// `r ← (1 − momentum)·r + momentum·batch` (the variance estimate unbiased, as in PyTorch). In
/// [`Mode::Eval`] the running estimates are used.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `channels` | — | number of channels `C` | `>= 1` |
/// | `eps` | `1e-5` | added to the variance | finite, `> 0` |
/// | `momentum` | `0.1` | running-statistics update rate | `[0, 1]` |
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct BatchNorm<T> {
    channels: usize,
    eps: f64,
    momentum: f64,
    gamma: Vec<T>,
    beta: Vec<T>,
    running_mean: Vec<T>,
    running_var: Vec<T>,
    #[serde(skip)]
    grad_gamma: Vec<T>,
    #[serde(skip)]
    grad_beta: Vec<T>,
    #[serde(skip)]
    xhat: Vec<T>,
    #[serde(skip)]
    inv_std: Vec<T>,
    #[serde(skip)]
    shape: Option<[usize; 4]>,
    /// Data-parallel training: keep batch statistics in `pending` instead of updating.
    #[serde(skip)]
    defer: bool,
    #[serde(skip)]
    pending: Vec<T>,
}

impl<T: Real> BatchNorm<T> {
    /// `γ = 1`, `β = 0`, running mean 0 and variance 1, `eps = 1e-5`, `momentum = 0.1`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] for zero channels.
    pub fn new(channels: usize) -> Result<Self> {
        Self::with_options(channels, 1e-5, 0.1)
    }

    /// With explicit `eps` and `momentum`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming the out-of-range value.
    pub fn with_options(channels: usize, eps: f64, momentum: f64) -> Result<Self> {
        check(channels, eps, momentum)?;
        Ok(Self {
            channels,
            eps,
            momentum,
            gamma: vec![T::one(); channels],
            beta: vec![T::zero(); channels],
            running_mean: vec![T::zero(); channels],
            running_var: vec![T::one(); channels],
            grad_gamma: Vec::new(),
            grad_beta: Vec::new(),
            xhat: Vec::new(),
            inv_std: Vec::new(),
            shape: None,
            defer: false,
            pending: Vec::new(),
        })
    }

    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] describing the inconsistency.
    pub fn validate(&self) -> Result<()> {
        check(self.channels, self.eps, self.momentum).map_err(|e| format_err(format!("batch norm: {e}")))?;
        for (what, v) in [
            ("gamma", &self.gamma),
            ("beta", &self.beta),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            if v.len() != self.channels {
                return Err(format_err(format!(
                    "batch norm {what} has {} values, expected {}",
                    v.len(),
                    self.channels
                )));
            }
        }
        if self.running_var.iter().any(|v| !(*v >= T::zero())) {
            return Err(format_err("batch norm running_var holds a negative or NaN value"));
        }
        Ok(())
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Running mean per channel.
    pub fn running_mean(&self) -> &[T] {
        &self.running_mean
    }
    /// Running variance per channel.
    pub fn running_var(&self) -> &[T] {
        &self.running_var
    }

    fn check_input(&self, op: &'static str, x: &Tensor4<T>) -> Result<(usize, usize)> {
        if x.c() != self.channels {
            return Err(shape_err(op, format!("{} channels", self.channels), x.shape()));
        }
        Ok((x.n(), x.h() * x.w()))
    }
}

fn check(channels: usize, eps: f64, momentum: f64) -> Result<()> {
    if channels == 0 {
        return Err(invalid("channels", channels, "must be >= 1"));
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(invalid("eps", eps, "must be finite and > 0"));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(invalid("momentum", momentum, "must be in [0, 1]"));
    }
    Ok(())
}

/// Visit every value of channel `c` in an `(N, C, P)` block.
fn channel_iter<T: Copy>(x: &[T], n: usize, c_all: usize, p: usize, c: usize) -> impl Iterator<Item = &[T]> {
    (0..n).map(move |i| &x[(i * c_all + c) * p..(i * c_all + c + 1) * p])
}

impl<T: Real> Layer<T> for BatchNorm<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        if mode == Mode::Eval {
            return self.infer(x);
        }
        let (n, p) = self.check_input("batch norm forward", x)?;
        let m = n * p;
        if m < 2 {
            return Err(AutoencoderError::InvalidParameter {
                name: "batch size",
                value: format!("{n} samples of {p} values per channel"),
                reason: "batch norm in training mode needs more than one value per channel",
            });
        }
        let c_all = self.channels;
        let xs = x.as_slice();
        let mut y = Tensor4::zeros(x.shape())?;
        self.xhat.clear();
        self.xhat.resize(xs.len(), T::zero());
        self.inv_std.clear();
        let mom = T::lit(self.momentum);
        for c in 0..c_all {
            let mut s = 0.0f64;
            for plane in channel_iter(xs, n, c_all, p, c) {
                s += plane.iter().map(|v| v.as_f64()).sum::<f64>();
            }
            let mean = s / m as f64;
            let mut ss = 0.0f64;
            for plane in channel_iter(xs, n, c_all, p, c) {
                ss += plane.iter().map(|v| (v.as_f64() - mean).powi(2)).sum::<f64>();
            }
            let var = ss / m as f64;
            let inv = T::lit(1.0 / (var + self.eps).sqrt());
            self.inv_std.push(inv);
            let (mean_t, g, b) = (T::lit(mean), self.gamma[c], self.beta[c]);
            for i in 0..n {
                let r = (i * c_all + c) * p..(i * c_all + c + 1) * p;
                for ((xh, yv), &xv) in self.xhat[r.clone()].iter_mut().zip(&mut y.as_mut_slice()[r.clone()]).zip(&xs[r])
                {
                    *xh = (xv - mean_t) * inv;
                    *yv = g * *xh + b;
                }
            }
            let unbiased = T::lit(var * m as f64 / (m - 1) as f64);
            if self.defer {
                self.pending.push(mean_t);
                self.pending.push(unbiased);
            } else {
                self.running_mean[c] = (T::one() - mom) * self.running_mean[c] + mom * mean_t;
                self.running_var[c] = (T::one() - mom) * self.running_var[c] + mom * unbiased;
            }
        }
        self.shape = Some(x.shape());
        Ok(y)
    }

    fn defer_running_updates(&mut self, on: bool) {
        self.defer = on;
        self.pending.clear();
    }
    fn take_running_updates(&mut self) -> Vec<T> {
        std::mem::take(&mut self.pending)
    }
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        let need = 2 * self.channels;
        if stats.len() < need {
            return Err(AutoencoderError::State {
                op: "batch norm running update",
                detail: format!("{} statistics for {} channels", stats.len(), self.channels),
            });
        }
        let mom = T::lit(self.momentum);
        for c in 0..self.channels {
            self.running_mean[c] = (T::one() - mom) * self.running_mean[c] + mom * stats[2 * c];
            self.running_var[c] = (T::one() - mom) * self.running_var[c] + mom * stats[2 * c + 1];
        }
        Ok(need)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let (n, p) = self.check_input("batch norm forward", x)?;
        let c_all = self.channels;
        let mut y = x.clone();
        let eps = T::lit(self.eps);
        for c in 0..c_all {
            let scale = self.gamma[c] / (self.running_var[c] + eps).sqrt();
            let shift = self.beta[c] - self.running_mean[c] * scale;
            for i in 0..n {
                for v in &mut y.as_mut_slice()[(i * c_all + c) * p..(i * c_all + c + 1) * p] {
                    *v = *v * scale + shift;
                }
            }
        }
        Ok(y)
    }

    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        check_same("batch norm backward", x, y, dy)?;
        let (n, p) = self.check_input("batch norm backward", x)?;
        if self.shape != Some(x.shape()) || self.xhat.len() != x.len() || self.inv_std.len() != self.channels {
            return Err(AutoencoderError::State {
                op: "batch norm backward",
                detail: format!("no training forward pass on an input of shape {:?} preceded it", x.shape()),
            });
        }
        ensure_len(&mut self.grad_gamma, self.channels);
        ensure_len(&mut self.grad_beta, self.channels);
        let c_all = self.channels;
        let m = T::from_count(n * p);
        let dys = dy.as_slice();
        let mut dx = Tensor4::zeros(x.shape())?;
        for c in 0..c_all {
            let (mut sdy, mut sdyx) = (T::zero(), T::zero());
            for i in 0..n {
                let r = (i * c_all + c) * p..(i * c_all + c + 1) * p;
                for (&g, &xh) in dys[r.clone()].iter().zip(&self.xhat[r]) {
                    sdy += g;
                    sdyx += g * xh;
                }
            }
            self.grad_gamma[c] += sdyx;
            self.grad_beta[c] += sdy;
            let k = self.gamma[c] * self.inv_std[c] / m;
            for i in 0..n {
                let r = (i * c_all + c) * p..(i * c_all + c + 1) * p;
                for ((d, &g), &xh) in dx.as_mut_slice()[r.clone()].iter_mut().zip(&dys[r.clone()]).zip(&self.xhat[r]) {
                    *d = k * (m * g - sdy - xh * sdyx);
                }
            }
        }
        Ok(dx)
    }

    fn params(&mut self) -> Vec<Param<'_, T>> {
        ensure_len(&mut self.grad_gamma, self.channels);
        ensure_len(&mut self.grad_beta, self.channels);
        vec![
            Param { name: "gamma", kind: ParamKind::Scale, value: &mut self.gamma, grad: &mut self.grad_gamma },
            Param { name: "beta", kind: ParamKind::Shift, value: &mut self.beta, grad: &mut self.grad_beta },
        ]
    }
}
