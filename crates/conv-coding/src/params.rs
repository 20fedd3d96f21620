//! Solver parameters and diagnostics.

use crate::error::{Result, invalid, nonneg_param, pos_param};
use crate::geometry::Boundary;
use crate::operator::Backend;
use latent_optim::fit::ParamGuard;
use serde::{Deserialize, Serialize};

/// Automatic penalty adaptation by residual balancing (Boyd et al. 2010, §3.4.1, with the
/// normalised residuals and automatic scaling of Wohlberg 2015, "ADMM penalty parameter selection
/// by residual balancing").
///
/// Every `period` iterations (never after the first), with normalised primal and dual residuals
/// `r` and `s`: if `r > ξ·μ·s` then `ρ ← ρ·τ`, if `s > (μ/ξ)·r` then `ρ ← ρ/τ`. With `scaling`
/// the factor is `τ = min(√(r/(ξ s)) or √(ξ s/r), max_factor)`, otherwise `τ = max_factor`. The
/// scaled dual variable is divided by the same factor so the iterate is unchanged.
///
/// | field | default | [`AutoRho::every_iteration`] | [`AutoRho::interleaved`] | meaning |
/// |---|---|---|---|---|
/// | `period` | 10 | 1 | 10 | iterations between updates, ≥ 1 |
/// | `max_factor` | 1000 | 1000 | 2 | τ (cap of the multiplier), > 1 |
/// | `ratio` | 1.2 | 1.2 | 10 | μ, the residual ratio tolerated, ≥ 1 |
/// | `target` | `None`: ξ = 1 + 18.3^(log₁₀λ + 1) (Wohlberg 2015, §VI.C), 1 for λ = 0 | `None` | `Some(1.0)` | ξ, the target ratio r/s, > 0 |
/// | `scaling` | true | true | false | adapt τ to the residual ratio |
///
/// Adapting at every iteration ([`AutoRho::every_iteration`], SPORCO's `ConvBPDN` default) makes
/// the first tens of iterations fastest but can make ρ oscillate indefinitely near convergence, so
/// the tolerance is never met; the default adapts every 10 iterations, which converges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AutoRho {
    /// Iterations between updates.
    pub period: usize,
    /// Largest multiplier τ.
    pub max_factor: f64,
    /// Residual ratio μ.
    pub ratio: f64,
    /// Target residual ratio ξ (`None`: the λ-dependent default).
    pub target: Option<f64>,
    /// Adaptive multiplier.
    pub scaling: bool,
}

impl Default for AutoRho {
    fn default() -> Self {
        Self { period: 10, max_factor: 1000.0, ratio: 1.2, target: None, scaling: true }
    }
}

impl AutoRho {
    /// Balancing at every iteration (SPORCO's `ConvBPDN` setting, used by the `csc_encode`
    /// benchmark to run the same algorithm as the peer).
    pub fn every_iteration() -> Self {
        Self { period: 1, ..Self::default() }
    }
    /// The gentler schedule for interleaved dictionary learning (one ADMM iteration per outer
    /// iteration): every 10 iterations by a factor 2 when the residuals differ by 10×.
    pub fn interleaved() -> Self {
        Self { period: 10, max_factor: 2.0, ratio: 10.0, target: Some(1.0), scaling: false }
    }
    /// The target ratio ξ for a given λ.
    pub fn target_for(&self, lambda: f64) -> f64 {
        match self.target {
            Some(x) => x,
            None if lambda > 0.0 => 1.0 + 18.3f64.powf(lambda.log10() + 1.0),
            None => 1.0,
        }
    }
}

impl ParamGuard for AutoRho {
    type Error = crate::ConvCodingError;

    /// # Errors
    /// [`crate::ConvCodingError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        if self.period == 0 {
            return Err(invalid("auto_rho.period", 0, "must be >= 1"));
        }
        if !(self.max_factor > 1.0) || !self.max_factor.is_finite() {
            return Err(invalid("auto_rho.max_factor", self.max_factor, "must be finite and > 1"));
        }
        if !(self.ratio >= 1.0) || !self.ratio.is_finite() {
            return Err(invalid("auto_rho.ratio", self.ratio, "must be finite and >= 1"));
        }
        if let Some(t) = self.target {
            pos_param("auto_rho.target", t)?;
        }
        Ok(())
    }
}

impl AutoRho {
    /// The multiplier for normalised residuals `r`, `s` (1 = no change).
    pub(crate) fn factor(&self, r: f64, s: f64, xi: f64) -> f64 {
        let tau = if self.scaling {
            if r == 0.0 || s == 0.0 {
                self.max_factor
            } else {
                let q = if r > s * xi { r / (s * xi) } else { s * xi / r };
                q.sqrt().min(self.max_factor)
            }
        } else {
            self.max_factor
        };
        if r > xi * self.ratio * s {
            tau
        } else if s > (self.ratio / xi) * r {
            1.0 / tau
        } else {
            1.0
        }
    }
}

/// ADMM parameters (Wohlberg 2016, "Efficient algorithms for convolutional sparse
/// representations": the x-step is solved exactly in the DFT domain).
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `rho` | `None`: 50λ + 1 | initial penalty ρ | > 0 |
/// | `relax` | 1.8 | over-relaxation α (1 = none) | (0, 2) |
/// | `auto_rho` | `Some(AutoRho::default())` | residual balancing, `None` keeps ρ fixed | |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdmmParams {
    /// Initial penalty (None: 50λ + 1).
    pub rho: Option<f64>,
    /// Over-relaxation parameter α.
    pub relax: f64,
    /// Penalty adaptation.
    pub auto_rho: Option<AutoRho>,
}

impl Default for AdmmParams {
    fn default() -> Self {
        Self { rho: None, relax: 1.8, auto_rho: Some(AutoRho::default()) }
    }
}

impl AdmmParams {
    /// Set the initial penalty.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = Some(rho);
        self
    }
    /// Set the over-relaxation parameter.
    pub fn relax(mut self, alpha: f64) -> Self {
        self.relax = alpha;
        self
    }
    /// Set (or disable with `None`) penalty adaptation.
    pub fn auto_rho(mut self, a: Option<AutoRho>) -> Self {
        self.auto_rho = a;
        self
    }
    /// The initial ρ for a given λ.
    pub fn rho_for(&self, lambda: f64) -> f64 {
        self.rho.unwrap_or(50.0 * lambda + 1.0)
    }
}

impl ParamGuard for AdmmParams {
    type Error = crate::ConvCodingError;

    /// # Errors
    /// [`crate::ConvCodingError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        if let Some(r) = self.rho {
            pos_param("rho", r)?;
        }
        if !(self.relax > 0.0 && self.relax < 2.0) {
            return Err(invalid("relax", self.relax, "must be in (0, 2)"));
        }
        if let Some(a) = &self.auto_rho {
            a.validate()?;
        }
        Ok(())
    }
}

/// FISTA parameters (Beck & Teboulle 2009) for convolutional sparse coding.
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `domain` | [`Backend::Fft`] | where the gradient `Aᴴ(A s − x)` is computed: the DFT domain ([`Backend::Fft`]) or the spatial domain ([`Backend::Direct`]) | |
/// | `lipschitz` | `None`: the operator's bound ([`crate::ConvOperator::lipschitz`]) | initial estimate L₀ of the gradient's Lipschitz constant | > 0 |
/// | `eta` | 2 | backtracking factor: L ← η·L until the quadratic upper bound holds; 1 disables backtracking (fixed step 1/L₀) | ≥ 1 |
/// | `restart` | true | O'Donoghue–Candès function-value restart of the momentum | |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FistaParams {
    /// Gradient domain.
    pub domain: Backend,
    /// Initial Lipschitz estimate.
    pub lipschitz: Option<f64>,
    /// Backtracking factor.
    pub eta: f64,
    /// Adaptive restart.
    pub restart: bool,
}

impl Default for FistaParams {
    fn default() -> Self {
        Self { domain: Backend::Fft, lipschitz: None, eta: 2.0, restart: true }
    }
}

impl FistaParams {
    /// Set the gradient domain.
    pub fn domain(mut self, d: Backend) -> Self {
        self.domain = d;
        self
    }
    /// Set the initial Lipschitz estimate.
    pub fn lipschitz(mut self, l: f64) -> Self {
        self.lipschitz = Some(l);
        self
    }
    /// Set the backtracking factor.
    pub fn eta(mut self, eta: f64) -> Self {
        self.eta = eta;
        self
    }
    /// Turn adaptive restart on or off.
    pub fn restart(mut self, on: bool) -> Self {
        self.restart = on;
        self
    }
}

impl ParamGuard for FistaParams {
    type Error = crate::ConvCodingError;

    /// # Errors
    /// [`crate::ConvCodingError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        if let Some(l) = self.lipschitz {
            pos_param("lipschitz", l)?;
        }
        if !(self.eta >= 1.0) || !self.eta.is_finite() {
            return Err(invalid("eta", self.eta, "must be finite and >= 1"));
        }
        Ok(())
    }
}

/// Which algorithm codes the images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Solver {
    /// ADMM with the DFT-domain Sherman–Morrison x-step (the mask-decoupling variant when a mask
    /// or zero padding is present).
    Admm(AdmmParams),
    /// FISTA with backtracking.
    Fista(FistaParams),
}

impl Default for Solver {
    fn default() -> Self {
        Solver::Admm(AdmmParams::default())
    }
}

/// Why a solver stopped: the shared [`latent_optim::StopReason`]. ADMM reports
/// `Converged { criterion: Criterion::PrimalDualResiduals, change, tol }` with `change` the larger
/// of its two normalised residuals; FISTA reports its [`latent_optim::Criterion::RelativeChangeX`]
/// value. `MaxIterations` means the maps are the last iterate, not a certified optimum.
pub use latent_optim::StopReason;

/// One iteration's diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IterStat {
    /// Objective `½‖W(Σ d*s − x)‖² + Σ_m λ_m ‖s_m‖₁`. ADMM evaluates it at the x-iterate (the
    /// linear-solve output, not exactly sparse), as SPORCO does; FISTA at the new iterate.
    pub objective: f64,
    /// Normalised primal residual (ADMM) or the stopping criterion of FISTA (the relative step
    /// length, [`latent_optim::Criterion::RelativeChangeX`]).
    pub primal_residual: f64,
    /// Normalised dual residual (ADMM) or relative change of the objective (FISTA).
    pub dual_residual: f64,
    /// Penalty ρ used in this iteration (ADMM) or the step's Lipschitz estimate `L = 1/t` (FISTA).
    pub rho: f64,
}

/// Diagnostics of one coded image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveInfo {
    /// Iterations run.
    pub iterations: usize,
    /// Why the solver stopped.
    pub stop: StopReason,
    /// Objective at the returned (sparse) maps: `data_fidelity + regularizer`.
    pub objective: f64,
    /// `½ Σ_p w_p (Σ_m d_m * s_m − x)_p²` at the returned maps (`w` = mask, 1 without one).
    pub data_fidelity: f64,
    /// `Σ_m λ_m ‖s_m‖₁` at the returned maps.
    pub regularizer: f64,
    /// Fraction of nonzero map entries.
    pub nnz_fraction: f64,
    /// Last normalised primal residual (ADMM) / stopping criterion (FISTA).
    pub primal_residual: f64,
    /// Last normalised dual residual (ADMM) / relative objective change (FISTA).
    pub dual_residual: f64,
    /// Final ρ (ADMM) or final Lipschitz estimate L (FISTA).
    pub rho: f64,
    /// Per-iteration diagnostics (empty unless [`CscParams::history`] is on).
    pub history: Vec<IterStat>,
}

/// Parameters of convolutional sparse coding:
/// `min_s ½ Σ_p w_p (Σ_m d_m * s_m − x)_p² + Σ_m λ_m ‖s_m‖₁` (optionally `s ≥ 0`), per image.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `lambda` | — | ℓ1 weight λ | finite, ≥ 0 |
/// | `map_weights` | `None` (all 1) | per-map multipliers: `λ_m = λ·weights[m]` | M values, finite, ≥ 0 |
/// | `nonneg` | false | constrain the maps to `s ≥ 0` | |
/// | `boundary` | [`Boundary::Periodic`] | border handling | |
/// | `solver` | [`Solver::Admm`] with defaults | algorithm | |
/// | `max_iter` | 200 | iteration cap | ≥ 1 |
/// | `tol` | 1e-3 | ADMM: normalised primal and dual residuals below `tol` (0 runs exactly `max_iter` iterations); FISTA: the relative step length ([`latent_optim::Criterion::RelativeChangeX`]) at most `tol` (0 stops only at an exact fixed point) | finite, ≥ 0 |
/// | `history` | false | record [`IterStat`]s | |
///
/// The mask `w` (per pixel and channel, `≥ 0`, 0 for a missing pixel) is given to
/// [`crate::Csc::encode_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct CscParams<T> {
    /// ℓ1 weight.
    pub lambda: T,
    /// Per-map multipliers of λ.
    pub map_weights: Option<Vec<T>>,
    /// Non-negative maps.
    pub nonneg: bool,
    /// Border handling.
    pub boundary: Boundary,
    /// Algorithm.
    pub solver: Solver,
    /// Iteration cap.
    pub max_iter: usize,
    /// Tolerance.
    pub tol: f64,
    /// Record per-iteration diagnostics.
    pub history: bool,
}

impl<T: latent_linalg::Real> CscParams<T> {
    /// Defaults for everything but λ.
    pub fn new(lambda: T) -> Self {
        Self {
            lambda,
            map_weights: None,
            nonneg: false,
            boundary: Boundary::Periodic,
            solver: Solver::default(),
            max_iter: 200,
            tol: 1e-3,
            history: false,
        }
    }
    /// Per-map multipliers of λ.
    pub fn map_weights(mut self, w: Vec<T>) -> Self {
        self.map_weights = Some(w);
        self
    }
    /// Non-negative maps.
    pub fn nonneg(mut self, on: bool) -> Self {
        self.nonneg = on;
        self
    }
    /// Border handling.
    pub fn boundary(mut self, b: Boundary) -> Self {
        self.boundary = b;
        self
    }
    /// Use ADMM.
    pub fn admm(mut self, p: AdmmParams) -> Self {
        self.solver = Solver::Admm(p);
        self
    }
    /// Use FISTA.
    pub fn fista(mut self, p: FistaParams) -> Self {
        self.solver = Solver::Fista(p);
        self
    }
    /// Iteration cap.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Tolerance (0: no early stop).
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Record per-iteration diagnostics.
    pub fn history(mut self, on: bool) -> Self {
        self.history = on;
        self
    }
}

/// `CscParams::new(λ)...check()?` proves the parameters valid; the coder is
/// `Csc::from(checked)` (see [`crate::Csc`]).
impl<T: latent_linalg::Real> ParamGuard for CscParams<T> {
    type Error = crate::ConvCodingError;

    /// # Errors
    /// [`crate::ConvCodingError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        check_lambda(self.lambda)?;
        if let Some(w) = &self.map_weights {
            if w.is_empty() {
                return Err(invalid("map_weights", "[]", "must hold one weight per filter"));
            }
            if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !(v.finite() && **v >= T::zero())) {
                return Err(invalid("map_weights", format!("[{i}] = {v}"), "must be finite and >= 0"));
            }
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", 0, "must be >= 1"));
        }
        nonneg_param("tol", self.tol)?;
        match &self.solver {
            Solver::Admm(a) => a.validate()?,
            Solver::Fista(f) => f.validate()?,
        }
        Ok(())
    }
}

pub(crate) fn check_lambda<T: latent_linalg::Real>(lambda: T) -> Result<()> {
    if !(lambda.finite() && lambda >= T::zero()) {
        return Err(invalid("lambda", lambda, "must be finite and >= 0"));
    }
    Ok(())
}
