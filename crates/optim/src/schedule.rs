//! Learning-rate schedules: `step ↦ lr`, composable.
//!
//! Steps count from 0. Constructors validate their arguments, so [`Schedule::lr`] cannot fail.
//!
//! ```
//! use latent_optim::schedule::{CosineAnnealing, LinearWarmup, Schedule};
//! // 10 warm-up steps to 0.1, then cosine decay to 0.001 over 90 steps.
//! let s = LinearWarmup::new(10, CosineAnnealing::new(0.1, 0.001, 90).unwrap()).unwrap();
//! assert_eq!(s.lr(0), 0.0);
//! assert!((s.lr(5) - 0.05).abs() < 1e-12);
//! assert_eq!(s.lr(10), 0.1);
//! assert!((s.lr(100) - 0.001).abs() < 1e-12);
//! ```

use crate::error::{Result, check_nonneg, invalid};
use serde::{Deserialize, Serialize};

/// A learning-rate schedule.
pub trait Schedule {
    /// Learning rate at `step` (0-based).
    fn lr(&self, step: usize) -> f64;
}

impl<S: Schedule + ?Sized> Schedule for &S {
    fn lr(&self, step: usize) -> f64 {
        (**self).lr(step)
    }
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, step: usize) -> f64 {
        (**self).lr(step)
    }
}

/// Constant learning rate.
///
/// | name | meaning | range |
/// |---|---|---|
/// | `lr` | the rate | finite, `>= 0` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constant {
    lr: f64,
}

impl Constant {
    /// `lr(step) = lr`.
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] for a negative or non-finite `lr`.
    pub fn new(lr: f64) -> Result<Self> {
        check_nonneg("Constant", "lr", lr)?;
        Ok(Self { lr })
    }
}

impl Schedule for Constant {
    fn lr(&self, _step: usize) -> f64 {
        self.lr
    }
}

/// Step decay: `lr(step) = base · gamma^⌊step / step_size⌋`.
///
/// | name | meaning | range |
/// |---|---|---|
/// | `base` | rate at step 0 | finite, `>= 0` |
/// | `gamma` | factor applied every `step_size` steps | `(0, 1]` |
/// | `step_size` | steps between decays | `>= 1` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepDecay {
    base: f64,
    gamma: f64,
    step_size: usize,
}

impl StepDecay {
    /// Build.
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the out-of-range argument.
    pub fn new(base: f64, gamma: f64, step_size: usize) -> Result<Self> {
        check_nonneg("StepDecay", "base", base)?;
        if !(gamma > 0.0 && gamma <= 1.0) {
            return Err(invalid("StepDecay", "gamma", gamma, "must be in (0, 1]"));
        }
        if step_size == 0 {
            return Err(invalid("StepDecay", "step_size", step_size, "must be >= 1"));
        }
        Ok(Self { base, gamma, step_size })
    }
}

impl Schedule for StepDecay {
    fn lr(&self, step: usize) -> f64 {
        let k = (step / self.step_size) as f64;
        self.base * self.gamma.powf(k)
    }
}

/// Cosine annealing from `base` to `min` over `period` steps, then constant at `min`:
/// `lr(step) = min + (base − min)·(1 + cos(π·step/period))/2` for `step <= period`.
///
/// | name | meaning | range |
/// |---|---|---|
/// | `base` | rate at step 0 | finite, `>= min` |
/// | `min` | rate from step `period` on | finite, `>= 0` |
/// | `period` | length of the decay | `>= 1` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineAnnealing {
    base: f64,
    min: f64,
    period: usize,
}

impl CosineAnnealing {
    /// Build.
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the out-of-range argument.
    pub fn new(base: f64, min: f64, period: usize) -> Result<Self> {
        check_nonneg("CosineAnnealing", "min", min)?;
        check_nonneg("CosineAnnealing", "base", base)?;
        if base < min {
            return Err(invalid("CosineAnnealing", "base", base, "must be >= min"));
        }
        if period == 0 {
            return Err(invalid("CosineAnnealing", "period", period, "must be >= 1"));
        }
        Ok(Self { base, min, period })
    }
}

impl Schedule for CosineAnnealing {
    fn lr(&self, step: usize) -> f64 {
        if step >= self.period {
            return self.min;
        }
        let c = (std::f64::consts::PI * step as f64 / self.period as f64).cos();
        // clamp away rounding so the rate never leaves [min, base]
        (self.min + (self.base - self.min) * 0.5 * (1.0 + c)).clamp(self.min, self.base)
    }
}

/// Linear warm-up in front of any schedule: for `step < warmup`,
/// `lr(step) = inner.lr(0) · (start + (1 − start)·step/warmup)`; afterwards
/// `lr(step) = inner.lr(step − warmup)`.
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `warmup` | — | warm-up length in steps | `>= 1` |
/// | `start` | `0` | fraction of `inner.lr(0)` at step 0 | `[0, 1]` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearWarmup<S> {
    warmup: usize,
    start: f64,
    inner: S,
}

impl<S: Schedule> LinearWarmup<S> {
    /// Warm up from 0 over `warmup` steps, then follow `inner`.
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] when `warmup` is 0.
    pub fn new(warmup: usize, inner: S) -> Result<Self> {
        if warmup == 0 {
            return Err(invalid("LinearWarmup", "warmup", warmup, "must be >= 1"));
        }
        Ok(Self { warmup, start: 0.0, inner })
    }
    /// Start the ramp at `start · inner.lr(0)` instead of 0.
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] unless `start` is in `[0, 1]`.
    pub fn start(mut self, start: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&start) {
            return Err(invalid("LinearWarmup", "start", start, "must be in [0, 1]"));
        }
        self.start = start;
        Ok(self)
    }
    /// The wrapped schedule.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Schedule> Schedule for LinearWarmup<S> {
    fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            let frac = self.start + (1.0 - self.start) * step as f64 / self.warmup as f64;
            self.inner.lr(0) * frac
        } else {
            self.inner.lr(step - self.warmup)
        }
    }
}

/// Linear warm-up over `warmup` steps to `base`, then cosine decay to `min` reached at step
/// `total` (and held afterwards).
///
/// # Errors
/// [`crate::OptimError::InvalidParameter`] when `warmup` is 0, `total <= warmup`, or the rates are
/// out of range (see [`CosineAnnealing::new`]).
pub fn warmup_cosine(base: f64, min: f64, warmup: usize, total: usize) -> Result<LinearWarmup<CosineAnnealing>> {
    if total <= warmup {
        return Err(invalid("warmup_cosine", "total", total, "must exceed warmup"));
    }
    LinearWarmup::new(warmup, CosineAnnealing::new(base, min, total - warmup)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OptimError;

    #[test]
    fn constructors_reject_out_of_range() {
        let name = |r: Result<()>| match r {
            Err(OptimError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        };
        assert_eq!(name(Constant::new(-1.0).map(drop)), "lr");
        assert_eq!(name(Constant::new(f64::INFINITY).map(drop)), "lr");
        assert_eq!(name(StepDecay::new(0.1, 0.0, 10).map(drop)), "gamma");
        assert_eq!(name(StepDecay::new(0.1, 0.5, 0).map(drop)), "step_size");
        assert_eq!(name(CosineAnnealing::new(0.1, 0.2, 10).map(drop)), "base");
        assert_eq!(name(CosineAnnealing::new(0.1, 0.0, 0).map(drop)), "period");
        assert_eq!(name(LinearWarmup::new(0, Constant::new(1.0).unwrap()).map(drop)), "warmup");
        assert_eq!(name(LinearWarmup::new(5, Constant::new(1.0).unwrap()).unwrap().start(2.0).map(drop)), "start");
        assert_eq!(name(warmup_cosine(0.1, 0.0, 10, 10).map(drop)), "total");
    }

    #[test]
    fn trait_objects_compose() {
        let boxed: Vec<Box<dyn Schedule>> =
            vec![Box::new(Constant::new(0.5).unwrap()), Box::new(StepDecay::new(1.0, 0.5, 1).unwrap())];
        assert_eq!(boxed.iter().map(|s| s.lr(2)).collect::<Vec<_>>(), vec![0.5, 0.25]);
        let w = LinearWarmup::new(2, &boxed[1]).unwrap().start(0.5).unwrap();
        assert_eq!([w.lr(0), w.lr(1), w.lr(2), w.lr(3)], [0.5, 0.75, 1.0, 0.5]);
    }
}
