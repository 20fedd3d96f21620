//! First-order optimizers as pure steps on caller-owned state.
//!
//! An [`Optimizer`] holds only hyperparameters; the per-parameter state (momentum buffers, moment
//! estimates, step count) lives in a separate value the caller owns, creates with
//! [`Optimizer::init_state`] and can serialise with serde (checkpointing). The learning rate is
//! passed to every [`Optimizer::step`], so any [`Schedule`](crate::schedule::Schedule) drives it.
//!
//! A step validates everything before touching anything: on error, parameters and state are left
//! unchanged.

use crate::error::{Result, check_len, check_nonneg, invalid};
use crate::fit::ParamGuard;
use latent_linalg::{Real, check_finite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A first-order optimizer: one update of `params` from `grad`, given caller-owned `state`.
pub trait Optimizer<T: Real> {
    /// Per-parameter state (serialisable, so training can be checkpointed and resumed).
    type State: Serialize + DeserializeOwned + Clone + std::fmt::Debug;

    /// Fresh state for `n_params` parameters.
    fn init_state(&self, n_params: usize) -> Self::State;

    /// One update `params ← params − lr·direction(grad, state)`.
    ///
    /// # Errors
    /// [`OptimError::LengthMismatch`](crate::OptimError::LengthMismatch) when `grad` or the state
    /// does not match `params`, [`OptimError::InvalidParameter`](crate::OptimError::InvalidParameter)
    /// for a negative or non-finite `lr`, and a non-finite error for NaN/Inf in `grad`. Nothing is
    /// modified on error.
    fn step(&self, params: &mut [T], grad: &[T], state: &mut Self::State, lr: T) -> Result<()>;
}

fn check_lr<T: Real>(op: &'static str, lr: T) -> Result<()> {
    if lr.finite() && lr >= T::zero() { Ok(()) } else { Err(invalid(op, "lr", lr, "must be finite and >= 0")) }
}

fn check_unit_open(op: &'static str, name: &'static str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) { Ok(()) } else { Err(invalid(op, name, v, "must be in [0, 1)")) }
}

// ---------------------------------------------------------------------------------------------
// SGD

/// Hyperparameters of [`Sgd`] (builder).
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `momentum` | `0` | heavy-ball coefficient μ | `[0, 1)` |
/// | `dampening` | `0` | scales the gradient entering the buffer by `1 − dampening` | `[0, 1]` |
/// | `nesterov` | `false` | Nesterov look-ahead | needs `momentum > 0` and `dampening = 0` |
/// | `weight_decay` | `0` | L2 penalty added to the gradient (`g + wd·x`) | finite, `>= 0` |
///
/// Update (buffers start at zero): `g ← ∇ + wd·x`; `v ← μ·v + (1 − dampening)·g`;
/// `d ← g + μ·v` (Nesterov) or `d ← v` (momentum) or `d ← g` (plain); `x ← x − lr·d`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdParams {
    /// Momentum coefficient.
    pub momentum: f64,
    /// Dampening of the gradient entering the momentum buffer.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Coupled L2 weight decay.
    pub weight_decay: f64,
}

impl Default for SgdParams {
    fn default() -> Self {
        Self { momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

impl SgdParams {
    /// Defaults (plain SGD).
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the momentum coefficient.
    pub fn momentum(mut self, v: f64) -> Self {
        self.momentum = v;
        self
    }
    /// Set the dampening.
    pub fn dampening(mut self, v: f64) -> Self {
        self.dampening = v;
        self
    }
    /// Turn Nesterov momentum on or off.
    pub fn nesterov(mut self, v: bool) -> Self {
        self.nesterov = v;
        self
    }
    /// Set the weight decay.
    pub fn weight_decay(mut self, v: f64) -> Self {
        self.weight_decay = v;
        self
    }
}

impl crate::fit::ParamGuard for SgdParams {
    type Error = crate::error::OptimError;

    /// Check every value (`params.check()` wraps them in a [`crate::fit::Checked`]).
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the first
    /// out-of-range value.
    fn validate(&self) -> Result<()> {
        const OP: &str = "SgdParams";
        check_unit_open(OP, "momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(invalid(OP, "dampening", self.dampening, "must be in [0, 1]"));
        }
        check_nonneg(OP, "weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(invalid(OP, "nesterov", self.nesterov, "needs momentum > 0 and dampening = 0"));
        }
        Ok(())
    }
}

/// State of [`Sgd`]: the momentum buffer (empty when momentum is 0) and the step count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SgdState<T> {
    /// Momentum buffer, one entry per parameter (empty without momentum).
    pub velocity: Vec<T>,
    /// Number of steps taken.
    pub steps: u64,
}

/// Stochastic gradient descent with optional (Nesterov) momentum and weight decay.
/// See [`SgdParams`] for the update rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    params: SgdParams,
}

impl Sgd {
    /// Build from validated hyperparameters.
    ///
    /// # Errors
    /// As [`SgdParams::check`].
    pub fn new(params: SgdParams) -> Result<Self> {
        params.validate()?;
        Ok(Self { params })
    }
    /// The hyperparameters.
    pub fn params(&self) -> &SgdParams {
        &self.params
    }
}

impl<T: Real> Optimizer<T> for Sgd {
    type State = SgdState<T>;

    fn init_state(&self, n_params: usize) -> SgdState<T> {
        let n = if self.params.momentum > 0.0 { n_params } else { 0 };
        SgdState { velocity: vec![T::zero(); n], steps: 0 }
    }

    fn step(&self, params: &mut [T], grad: &[T], state: &mut SgdState<T>, lr: T) -> Result<()> {
        const OP: &str = "Sgd::step";
        let p = &self.params;
        check_len(OP, "grad", params.len(), grad.len())?;
        let expected = if p.momentum > 0.0 { params.len() } else { 0 };
        check_len(OP, "state.velocity", expected, state.velocity.len())?;
        check_lr(OP, lr)?;
        check_finite(OP, "grad", grad)?;
        let wd = T::lit(p.weight_decay);
        let mu = T::lit(p.momentum);
        let damp = T::one() - T::lit(p.dampening);
        if p.momentum > 0.0 {
            for ((x, &g0), v) in params.iter_mut().zip(grad).zip(state.velocity.iter_mut()) {
                let g = g0 + wd * *x;
                *v = mu * *v + damp * g;
                let d = if p.nesterov { g + mu * *v } else { *v };
                *x -= lr * d;
            }
        } else {
            for (x, &g0) in params.iter_mut().zip(grad) {
                let g = g0 + wd * *x;
                *x -= lr * g;
            }
        }
        state.steps += 1;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

/// Hyperparameters of [`Adam`] (builder).
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `beta1` | `0.9` | decay of the first-moment estimate | `[0, 1)` |
/// | `beta2` | `0.999` | decay of the second-moment estimate | `[0, 1)` |
/// | `eps` | `1e-8` | added to `√v̂` in the denominator | finite, `> 0` |
/// | `weight_decay` | `0` | coupled L2 penalty added to the gradient (`g + wd·x`) | finite, `>= 0` |
///
/// Update at step `t` (1-based): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `x ← x − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + eps)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamParams {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Coupled L2 weight decay.
    pub weight_decay: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamParams {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set β₁.
    pub fn beta1(mut self, v: f64) -> Self {
        self.beta1 = v;
        self
    }
    /// Set β₂.
    pub fn beta2(mut self, v: f64) -> Self {
        self.beta2 = v;
        self
    }
    /// Set ε.
    pub fn eps(mut self, v: f64) -> Self {
        self.eps = v;
        self
    }
    /// Set the (coupled) weight decay.
    pub fn weight_decay(mut self, v: f64) -> Self {
        self.weight_decay = v;
        self
    }
}

impl crate::fit::ParamGuard for AdamParams {
    type Error = crate::error::OptimError;

    /// Check every value (`params.check()` wraps them in a [`crate::fit::Checked`]).
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the first
    /// out-of-range value.
    fn validate(&self) -> Result<()> {
        check_moments("AdamParams", self.beta1, self.beta2, self.eps)?;
        check_nonneg("AdamParams", "weight_decay", self.weight_decay)
    }
}

fn check_moments(op: &'static str, beta1: f64, beta2: f64, eps: f64) -> Result<()> {
    check_unit_open(op, "beta1", beta1)?;
    check_unit_open(op, "beta2", beta2)?;
    crate::error::check_pos(op, "eps", eps)
}

/// Hyperparameters of [`AdamW`] (builder).
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `beta1` | `0.9` | decay of the first-moment estimate | `[0, 1)` |
/// | `beta2` | `0.999` | decay of the second-moment estimate | `[0, 1)` |
/// | `eps` | `1e-8` | added to `√v̂` in the denominator | finite, `> 0` |
/// | `weight_decay` | `0.01` | decoupled decay: `x ← x − lr·wd·x` before the Adam step | finite, `>= 0` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWParams {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

impl AdamWParams {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set β₁.
    pub fn beta1(mut self, v: f64) -> Self {
        self.beta1 = v;
        self
    }
    /// Set β₂.
    pub fn beta2(mut self, v: f64) -> Self {
        self.beta2 = v;
        self
    }
    /// Set ε.
    pub fn eps(mut self, v: f64) -> Self {
        self.eps = v;
        self
    }
    /// Set the decoupled weight decay.
    pub fn weight_decay(mut self, v: f64) -> Self {
        self.weight_decay = v;
        self
    }
}

impl crate::fit::ParamGuard for AdamWParams {
    type Error = crate::error::OptimError;

    /// Check every value (`params.check()` wraps them in a [`crate::fit::Checked`]).
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the first
    /// out-of-range value.
    fn validate(&self) -> Result<()> {
        check_moments("AdamWParams", self.beta1, self.beta2, self.eps)?;
        check_nonneg("AdamWParams", "weight_decay", self.weight_decay)
    }
}

/// State of [`Adam`] and [`AdamW`]: moment estimates and the step count `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamState<T> {
    /// First-moment estimate, one entry per parameter.
    pub m: Vec<T>,
    /// Second-moment estimate, one entry per parameter.
    pub v: Vec<T>,
    /// Number of steps taken.
    pub t: u64,
}

/// Adam (Kingma & Ba) with optional coupled L2 weight decay. See [`AdamParams`].
///
/// # Example
/// ```
/// use latent_optim::optimizer::{Adam, AdamParams, Optimizer};
/// // minimise ½‖x − c‖²
/// let c = [1.0f64, -2.0, 3.0];
/// let adam = Adam::new(AdamParams::new().beta1(0.9)).unwrap();
/// let mut x = vec![0.0f64; 3];
/// let mut state = adam.init_state(x.len());
/// for _ in 0..2000 {
///     let g: Vec<f64> = x.iter().zip(&c).map(|(x, c)| x - c).collect();
///     adam.step(&mut x, &g, &mut state, 0.01).unwrap();
/// }
/// assert!(x.iter().zip(&c).all(|(x, c)| (x - c).abs() < 1e-2));
/// // the state checkpoints through serde
/// let json = serde_json::to_string(&state).unwrap();
/// let back: latent_optim::optimizer::AdamState<f64> = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, state);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    params: AdamParams,
}

impl Adam {
    /// Build from validated hyperparameters.
    ///
    /// # Errors
    /// As [`AdamParams::check`].
    pub fn new(params: AdamParams) -> Result<Self> {
        params.validate()?;
        Ok(Self { params })
    }
    /// The hyperparameters.
    pub fn params(&self) -> &AdamParams {
        &self.params
    }
}

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay. See [`AdamWParams`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    params: AdamWParams,
}

impl AdamW {
    /// Build from validated hyperparameters.
    ///
    /// # Errors
    /// As [`AdamWParams::check`].
    pub fn new(params: AdamWParams) -> Result<Self> {
        params.validate()?;
        Ok(Self { params })
    }
    /// The hyperparameters.
    pub fn params(&self) -> &AdamWParams {
        &self.params
    }
}

fn adam_init<T: Real>(n: usize) -> AdamState<T> {
    AdamState { m: vec![T::zero(); n], v: vec![T::zero(); n], t: 0 }
}

/// Parameter count from which an Adam update is split across rayon threads.
const PAR_MIN: usize = 1 << 15;
/// Elements per parallel work item.
const PAR_CHUNK: usize = 1 << 13;

/// The element-wise Adam/AdamW update with its constants.
#[derive(Clone, Copy)]
struct AdamKernel<T> {
    b1: T,
    b2: T,
    c1: T,
    c2: T,
    wc: T,
    shrink: T,
    step: T,
    inv_sqrt_bc2: T,
    e: T,
}

impl<T: Real> AdamKernel<T> {
    /// Zipped iterators (no bounds checks), so the loop vectorises. IEEE operations only (no
    /// fused multiply-add), so every instruction set gives the same bits.
    #[inline(always)]
    fn body(&self, params: &mut [T], grad: &[T], ms: &mut [T], vs: &mut [T]) {
        let AdamKernel { b1, b2, c1, c2, wc, shrink, step, inv_sqrt_bc2, e } = *self;
        for (((x, &g0), m), v) in params.iter_mut().zip(grad).zip(ms.iter_mut()).zip(vs.iter_mut()) {
            let g = g0 + wc * *x;
            *m = b1 * *m + c1 * g;
            *v = b2 * *v + c2 * g * g;
            *x = shrink * *x - step * *m / (v.sqrt() * inv_sqrt_bc2 + e);
        }
    }

    /// The same loop compiled for AVX-512 (16 lanes of f32 instead of 4).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn body_avx512(&self, params: &mut [T], grad: &[T], ms: &mut [T], vs: &mut [T]) {
        self.body(params, grad, ms, vs);
    }

    /// The same loop compiled for AVX2 (8 lanes of f32). IEEE operations only and no `fma`
    /// target feature, so no contraction: the same bits as `body`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn body_avx2(&self, params: &mut [T], grad: &[T], ms: &mut [T], vs: &mut [T]) {
        self.body(params, grad, ms, vs);
    }

    fn run(&self, params: &mut [T], grad: &[T], ms: &mut [T], vs: &mut [T]) {
        self.run_on(latent_linalg::simd::max_isa(), params, grad, ms, vs);
    }

    /// [`AdamKernel::run`] on the instruction set `isa` (the usable one, from
    /// `latent_linalg::simd::max_isa`, or one that tests force; it must be on this CPU).
    fn run_on(&self, isa: latent_linalg::simd::Isa, params: &mut [T], grad: &[T], ms: &mut [T], vs: &mut [T]) {
        use latent_linalg::simd::Isa;
        debug_assert!(isa.on_cpu());
        #[cfg(target_arch = "x86_64")]
        match isa {
            // SAFETY: `body_avx512`'s only precondition is that the CPU supports AVX-512F, which
            // `isa` (at most the level `latent_linalg::simd::detected` found on this CPU)
            // guarantees. Its body is the safe `body` (bounds-checked slices, zipped iterators),
            // so no memory-safety obligation is added by the target feature.
            Isa::Avx512 => return unsafe { self.body_avx512(params, grad, ms, vs) },
            // SAFETY: as above, for AVX2 (implied by the level `Isa::Avx2`).
            Isa::Avx2 => return unsafe { self.body_avx2(params, grad, ms, vs) },
            Isa::Scalar => {}
        }
        let _ = isa;
        self.body(params, grad, ms, vs);
    }
}

/// Shared Adam update: `coupled` is added to the gradient as `coupled·x`, `decoupled` shrinks
/// `x` by `lr·decoupled·x` first.
fn adam_step<T: Real>(
    op: &'static str,
    beta1: f64,
    beta2: f64,
    eps: f64,
    coupled: f64,
    decoupled: f64,
    params: &mut [T],
    grad: &[T],
    state: &mut AdamState<T>,
    lr: T,
) -> Result<()> {
    let n = params.len();
    check_len(op, "grad", n, grad.len())?;
    check_len(op, "state.m", n, state.m.len())?;
    check_len(op, "state.v", n, state.v.len())?;
    check_lr(op, lr)?;
    check_finite(op, "grad", grad)?;
    let t = state.t.checked_add(1).ok_or_else(|| invalid(op, "state.t", state.t, "step counter overflow"))?;
    let bc1 = 1.0 - beta1.powf(t as f64);
    let bc2 = 1.0 - beta2.powf(t as f64);
    // x ← x − (lr/bc1)·m / (√v/√bc2 + eps)
    let step = lr / T::lit(bc1);
    let inv_sqrt_bc2 = T::lit(1.0 / bc2.sqrt());
    let (b1, b2, e) = (T::lit(beta1), T::lit(beta2), T::lit(eps));
    let (c1, c2) = (T::one() - b1, T::one() - b2);
    let (wc, shrink) = (T::lit(coupled), T::one() - lr * T::lit(decoupled));
    // zipped iterators (no bounds checks), so the loop vectorises; element-wise, so splitting it
    // across threads gives the same bits (the update is memory-bound: large tensors go parallel)
    let k = AdamKernel { b1, b2, c1, c2, wc, shrink, step, inv_sqrt_bc2, e };
    let kernel = |params: &mut [T], grad: &[T], ms: &mut [T], vs: &mut [T]| k.run(params, grad, ms, vs);
    if n >= PAR_MIN && rayon::current_num_threads() > 1 && !latent_linalg::product::in_serial_section() {
        use rayon::prelude::*;
        params
            .par_chunks_mut(PAR_CHUNK)
            .zip(grad.par_chunks(PAR_CHUNK))
            .zip(state.m.par_chunks_mut(PAR_CHUNK))
            .zip(state.v.par_chunks_mut(PAR_CHUNK))
            .for_each(|(((x, g), m), v)| kernel(x, g, m, v));
    } else {
        kernel(params, grad, &mut state.m, &mut state.v);
    }
    state.t = t;
    Ok(())
}

impl<T: Real> Optimizer<T> for Adam {
    type State = AdamState<T>;
    fn init_state(&self, n_params: usize) -> AdamState<T> {
        adam_init(n_params)
    }
    fn step(&self, params: &mut [T], grad: &[T], state: &mut AdamState<T>, lr: T) -> Result<()> {
        let p = &self.params;
        adam_step("Adam::step", p.beta1, p.beta2, p.eps, p.weight_decay, 0.0, params, grad, state, lr)
    }
}

impl<T: Real> Optimizer<T> for AdamW {
    type State = AdamState<T>;
    fn init_state(&self, n_params: usize) -> AdamState<T> {
        adam_init(n_params)
    }
    fn step(&self, params: &mut [T], grad: &[T], state: &mut AdamState<T>, lr: T) -> Result<()> {
        let p = &self.params;
        adam_step("AdamW::step", p.beta1, p.beta2, p.eps, 0.0, p.weight_decay, params, grad, state, lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OptimError;

    /// The Adam kernel gives the same bits on every instruction-set level this CPU has (AVX-512,
    /// AVX2, portable): it uses IEEE operations only, no fused multiply-add. Lengths cover the
    /// vector tails (not multiples of 16, 8 or 4).
    fn adam_levels_agree<T: Real>() {
        use latent_linalg::simd::Isa;
        let k = AdamKernel {
            b1: T::lit(0.9),
            b2: T::lit(0.999),
            c1: T::lit(0.1),
            c2: T::lit(0.001),
            wc: T::lit(0.01),
            shrink: T::lit(0.9999),
            step: T::lit(1e-3 / 0.1),
            inv_sqrt_bc2: T::lit(1.0 / 0.001f64.sqrt()),
            e: T::lit(1e-8),
        };
        for n in [1usize, 7, 37, 1000] {
            let val = |i: usize, f: f64| T::lit((((i + 1) as f64 * f).sin() * 1.7).clamp(-1.5, 1.5));
            let x0: Vec<T> = (0..n).map(|i| val(i, 0.37)).collect();
            let g: Vec<T> = (0..n).map(|i| val(i, 1.91)).collect();
            let m0: Vec<T> = (0..n).map(|i| val(i, 0.53) * T::lit(0.1)).collect();
            let v0: Vec<T> = (0..n).map(|i| val(i, 0.71).abs() * T::lit(0.01)).collect();
            let run = |isa| {
                let (mut x, mut m, mut v) = (x0.clone(), m0.clone(), v0.clone());
                for _ in 0..3 {
                    k.run_on(isa, &mut x, &g, &mut m, &mut v);
                }
                (x, m, v)
            };
            let portable = run(Isa::Scalar);
            assert_ne!(portable.0, x0, "the update moved the parameters");
            for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.on_cpu()) {
                assert_eq!(run(isa), portable, "{isa} {} n={n}", T::NAME);
            }
        }
    }

    #[test]
    fn adam_kernel_same_bits_on_every_isa_level() {
        adam_levels_agree::<f32>();
        adam_levels_agree::<f64>();
    }

    #[test]
    fn params_check_names_bad_value() {
        let e = SgdParams::new().momentum(1.0).check().unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "momentum", .. }), "{e}");
        assert!(e.to_string().contains("momentum = 1"), "{e}");
        let e = SgdParams::new().nesterov(true).check().unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "nesterov", .. }));
        let e = SgdParams::new().dampening(1.5).check().unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "dampening", .. }));
        let e = SgdParams::new().weight_decay(f64::NAN).check().unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "weight_decay", .. }));
        assert!(Sgd::new(SgdParams::new().momentum(0.9).nesterov(true)).is_ok());

        let e = AdamParams::new().beta1(-0.1).check().unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "beta1", .. }));
        let e = Adam::new(AdamParams::new().beta2(1.0)).unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "beta2", .. }));
        let e = AdamWParams::new().eps(0.0).check().unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "eps", .. }));
        let e = AdamW::new(AdamWParams::new().weight_decay(-1.0)).unwrap_err();
        assert!(matches!(e, OptimError::InvalidParameter { name: "weight_decay", .. }));
    }

    #[test]
    fn step_rejects_bad_input_without_modifying() {
        let sgd = Sgd::new(SgdParams::new().momentum(0.5)).unwrap();
        let mut x = vec![1.0f64, 2.0];
        let mut st = Optimizer::<f64>::init_state(&sgd, 2);
        let before = (x.clone(), st.clone());
        assert!(matches!(sgd.step(&mut x, &[1.0], &mut st, 0.1), Err(OptimError::LengthMismatch { what: "grad", .. })));
        assert!(matches!(
            sgd.step(&mut x, &[1.0, 1.0], &mut st, -0.1),
            Err(OptimError::InvalidParameter { name: "lr", .. })
        ));
        assert!(matches!(sgd.step(&mut x, &[1.0, f64::INFINITY], &mut st, 0.1), Err(OptimError::Linalg(_))));
        let mut short = Optimizer::<f64>::init_state(&sgd, 1);
        assert!(matches!(
            sgd.step(&mut x, &[1.0, 1.0], &mut short, 0.1),
            Err(OptimError::LengthMismatch { what: "state.velocity", .. })
        ));
        assert_eq!((x.clone(), st.clone()), before);

        let adam = Adam::new(AdamParams::new()).unwrap();
        let mut ast = Optimizer::<f64>::init_state(&adam, 3);
        assert!(matches!(
            adam.step(&mut x, &[1.0, 1.0], &mut ast, 0.1),
            Err(OptimError::LengthMismatch { what: "state.m", .. })
        ));
        assert!(matches!(adam.step(&mut x, &[1.0, 1.0], &mut ast, f64::NAN), Err(OptimError::LengthMismatch { .. })));
        let mut ast = Optimizer::<f64>::init_state(&adam, 2);
        assert!(matches!(
            adam.step(&mut x, &[1.0, 1.0], &mut ast, f64::NAN),
            Err(OptimError::InvalidParameter { name: "lr", .. })
        ));
        assert_eq!(ast.t, 0);
        assert_eq!(x, before.0);
    }

    #[test]
    fn sgd_matches_hand_computation() {
        // momentum 0.5, nesterov, wd 0.1, lr 0.1, x = 1, g = 2 each step
        let sgd = Sgd::new(SgdParams::new().momentum(0.5).nesterov(true).weight_decay(0.1)).unwrap();
        let mut x = [1.0f64];
        let mut st = Optimizer::<f64>::init_state(&sgd, 1);
        sgd.step(&mut x, &[2.0], &mut st, 0.1).unwrap();
        // g = 2.1, v = 2.1, d = 2.1 + 1.05 = 3.15, x = 1 − 0.315
        assert!((x[0] - 0.685).abs() < 1e-15);
        assert!((st.velocity[0] - 2.1).abs() < 1e-15);
        assert_eq!(st.steps, 1);
        let plain = Sgd::new(SgdParams::new()).unwrap();
        let mut y = [1.0f32, -1.0];
        let mut pst = Optimizer::<f32>::init_state(&plain, 2);
        assert!(pst.velocity.is_empty());
        plain.step(&mut y, &[1.0, 1.0], &mut pst, 0.5).unwrap();
        assert_eq!(y, [0.5, -1.5]);
    }

    #[test]
    fn adam_first_step_is_sign_times_lr() {
        // After one step with bias correction, Adam moves each coordinate by ≈ lr·sign(g).
        let adam = Adam::new(AdamParams::new()).unwrap();
        let mut x = [0.0f64, 0.0, 0.0];
        let mut st = Optimizer::<f64>::init_state(&adam, 3);
        adam.step(&mut x, &[3.0, -0.5, 0.0], &mut st, 0.1).unwrap();
        assert!((x[0] + 0.1).abs() < 1e-8 && (x[1] - 0.1).abs() < 1e-8 && x[2] == 0.0, "{x:?}");
        assert_eq!(st.t, 1);
    }

    #[test]
    fn adamw_decay_is_decoupled() {
        // Zero gradient: AdamW shrinks x by (1 − lr·wd); Adam with coupled decay moves by ≈ lr.
        let adamw = AdamW::new(AdamWParams::new().weight_decay(0.5)).unwrap();
        let mut x = [2.0f64];
        let mut st = Optimizer::<f64>::init_state(&adamw, 1);
        adamw.step(&mut x, &[0.0], &mut st, 0.1).unwrap();
        assert!((x[0] - 2.0 * 0.95).abs() < 1e-12, "{}", x[0]);
        let adam = Adam::new(AdamParams::new().weight_decay(0.5)).unwrap();
        let mut y = [2.0f64];
        let mut st = Optimizer::<f64>::init_state(&adam, 1);
        adam.step(&mut y, &[0.0], &mut st, 0.1).unwrap();
        assert!((y[0] - 1.9).abs() < 1e-6, "{}", y[0]);
    }

    #[test]
    fn adam_kernel_gives_the_same_bits_on_every_instruction_set() {
        let k = AdamKernel::<f32> {
            b1: 0.9,
            b2: 0.999,
            c1: 0.1,
            c2: 0.001,
            wc: 0.01,
            shrink: 0.9999,
            step: 1e-3,
            inv_sqrt_bc2: 3.1,
            e: 1e-8,
        };
        let n = 1037;
        let f = |i: usize, a: f32| ((i * 37 % 101) as f32 - 50.0) * a;
        let (g, m0, v0, x0): (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) = (
            (0..n).map(|i| f(i, 0.013)).collect(),
            (0..n).map(|i| f(i, 0.002)).collect(),
            (0..n).map(|i| f(i, 0.0007).abs()).collect(),
            (0..n).map(|i| f(i, 0.05)).collect(),
        );
        let (mut xa, mut ma, mut va) = (x0.clone(), m0.clone(), v0.clone());
        k.body(&mut xa, &g, &mut ma, &mut va);
        let (mut xb, mut mb, mut vb) = (x0, m0, v0);
        k.run(&mut xb, &g, &mut mb, &mut vb);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&xa), bits(&xb));
        assert_eq!(bits(&ma), bits(&mb));
        assert_eq!(bits(&va), bits(&vb));
    }
}
