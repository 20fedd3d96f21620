//! Composite solvers for `min_x f(x) + g(x)`: ISTA and FISTA.
//!
//! `f` is smooth (an [`Objective`]), `g` is handled through its proximal map (a [`Prox`]). Each
//! iteration takes a proximal-gradient step `x⁺ = prox_{t·g}(y − t∇f(y))` from `y = x` (ISTA) or
//! from an extrapolated point (FISTA, Beck & Teboulle 2009). The step `t` is fixed (`1/L` for an
//! `L`-smooth `f`) or found by Beck–Teboulle backtracking, which only ever shrinks it. FISTA
//! optionally uses the function-value adaptive restart of O'Donoghue & Candès (2015): whenever
//! `F(x_{k+1}) > F(x_k)` the momentum is reset.
//!
//! Everything is deterministic. All scalar bookkeeping (objective, history, tolerances) is in
//! `f64`; vectors stay in `T`.

use crate::error::{OptimError, Result, check_len, check_nonneg, check_pos, invalid};
use crate::fit::ParamGuard;
use crate::objective::Objective;
use crate::prox::Prox;
use latent_linalg::{Real, check_finite, ops};
use serde::{Deserialize, Serialize};

/// How the step size is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum StepRule {
    /// A fixed step `t`; converges for `t <= 1/L` (ISTA also for `t < 2/L`).
    Fixed(f64),
    /// Beck–Teboulle backtracking: start from `initial`, divide by `eta` until
    /// `f(x⁺) <= f(y) + ⟨∇f(y), x⁺ − y⟩ + ‖x⁺ − y‖²/(2t)`. The accepted step carries over to the
    /// next iteration (it never grows).
    Backtracking {
        /// First step tried.
        initial: f64,
        /// Shrink factor, `> 1`.
        eta: f64,
    },
}

/// What the tolerance is measured on.
///
/// Both criteria include the length of the last proximal-gradient step `x_{k+1} − y_k` (taken
/// from the extrapolated point `y_k`; for ISTA `y_k = x_k`). That step vanishes only at a
/// minimiser (`(y_k − x_{k+1})/t` is the gradient mapping), so FISTA cannot stop at a turning
/// point of its momentum oscillation, where `x` or `F` momentarily stop changing.
///
/// Step lengths are first reduced by the rounding level of the step,
/// `8·ε·‖|y_k| + t|∇f(y_k)|‖₂` (ε of `T`), so a solution that is small next to the data (where
/// the iterates can only settle to within rounding) still converges instead of cycling at the
/// last bits until `max_iter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Criterion {
    /// `max(‖x_{k+1} − x_k‖, ‖x_{k+1} − y_k‖) / max(‖x_{k+1}‖, ‖x_k‖)` (0 when the numerator is
    /// 0); for ISTA simply the relative change of `x`.
    RelativeChangeX,
    /// `max(|F_{k+1} − F_k|, ‖x_{k+1} − y_k‖²/(2t)) / max(|F_{k+1}|, |F_k|)` with `F = f + g`
    /// (0 when the numerator is 0); for ISTA (where the step's sufficient decrease is at most
    /// `F_k − F_{k+1}`) simply the relative change of `F`.
    RelativeChangeObjective,
    /// ADMM: the larger of the normalised primal and dual residuals. Reported in the
    /// [`StopReason`] of ADMM solvers built on this crate's types (e.g. convolutional sparse
    /// coding); not a proximal-gradient criterion ([`ProxGradParams::check`] rejects it).
    PrimalDualResiduals,
}

/// Hyperparameters of [`ista`] and [`fista`] (builder).
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `max_iter` | `1000` | iteration cap | any (0 returns `x0`) |
/// | `tol` | `1e-6` | stop when the [`Criterion`] value is `<= tol` | finite, `>= 0` |
/// | `criterion` | [`Criterion::RelativeChangeX`] | what `tol` applies to | |
/// | `step` | `Backtracking { initial: 1, eta: 2 }` | [`StepRule`] | fixed step / initial `> 0`, `eta > 1` |
/// | `restart` | `true` | O'Donoghue–Candès function-value restart (FISTA only) | |
/// | `max_backtracks` | `60` | step reductions allowed within one iteration | `>= 1` |
/// | `slack` | `None`: `10·ε` of `T` | relative slack of the sufficient-decrease test: accept when `f(x⁺) <= model + slack·max(|f(y)|, |f(x⁺)|)` | finite, `>= 0` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProxGradParams {
    /// Iteration cap.
    pub max_iter: usize,
    /// Tolerance on the stopping criterion.
    pub tol: f64,
    /// Stopping criterion.
    pub criterion: Criterion,
    /// Step rule.
    pub step: StepRule,
    /// Adaptive restart (FISTA).
    pub restart: bool,
    /// Maximum step reductions per iteration.
    pub max_backtracks: usize,
    /// Relative slack of the backtracking test (`None`: `10·ε` of the element type).
    #[serde(default)]
    pub slack: Option<f64>,
}

impl Default for ProxGradParams {
    fn default() -> Self {
        Self {
            max_iter: 1000,
            tol: 1e-6,
            criterion: Criterion::RelativeChangeX,
            step: StepRule::Backtracking { initial: 1.0, eta: 2.0 },
            restart: true,
            max_backtracks: 60,
            slack: None,
        }
    }
}

impl ProxGradParams {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the iteration cap.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Set the tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Set the stopping criterion.
    pub fn criterion(mut self, c: Criterion) -> Self {
        self.criterion = c;
        self
    }
    /// Use a fixed step `t` (typically `1/L`).
    pub fn step(mut self, t: f64) -> Self {
        self.step = StepRule::Fixed(t);
        self
    }
    /// Use backtracking from `initial`, shrinking by `eta`.
    pub fn backtracking(mut self, initial: f64, eta: f64) -> Self {
        self.step = StepRule::Backtracking { initial, eta };
        self
    }
    /// Turn adaptive restart on or off.
    pub fn restart(mut self, on: bool) -> Self {
        self.restart = on;
        self
    }
    /// Set the maximum number of step reductions per iteration.
    pub fn max_backtracks(mut self, n: usize) -> Self {
        self.max_backtracks = n;
        self
    }
    /// Set the relative slack of the backtracking test (default `10·ε` of the element type).
    pub fn slack(mut self, slack: f64) -> Self {
        self.slack = Some(slack);
        self
    }
}

impl crate::fit::ParamGuard for ProxGradParams {
    type Error = crate::error::OptimError;

    /// Check every value (`params.check()` wraps them in a [`crate::fit::Checked`]).
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the first
    /// out-of-range value.
    fn validate(&self) -> Result<()> {
        const OP: &str = "ProxGradParams";
        check_nonneg(OP, "tol", self.tol)?;
        if self.criterion == Criterion::PrimalDualResiduals {
            return Err(invalid(OP, "criterion", "PrimalDualResiduals", "is an ADMM criterion"));
        }
        if let Some(slack) = self.slack {
            check_nonneg(OP, "slack", slack)?;
        }
        match self.step {
            StepRule::Fixed(t) => check_pos(OP, "step", t)?,
            StepRule::Backtracking { initial, eta } => {
                check_pos(OP, "initial step", initial)?;
                if !(eta.is_finite() && eta > 1.0) {
                    return Err(invalid(OP, "eta", eta, "must be finite and > 1"));
                }
            }
        }
        if self.max_backtracks == 0 {
            return Err(invalid(OP, "max_backtracks", self.max_backtracks, "must be >= 1"));
        }
        Ok(())
    }
}

/// Why a solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum StopReason {
    /// The criterion fell to the tolerance.
    Converged {
        /// Which criterion.
        criterion: Criterion,
        /// Its final value.
        change: f64,
        /// The tolerance it met.
        tol: f64,
    },
    /// The iteration cap was reached first (no claim of convergence).
    MaxIterations,
}

impl StopReason {
    /// `true` for [`StopReason::Converged`].
    pub fn converged(&self) -> bool {
        matches!(self, StopReason::Converged { .. })
    }
}

/// Output of [`ista`] / [`fista`] / [`fista_linear`].
#[derive(Debug, Clone, PartialEq)]
pub struct SolveResult<T> {
    /// Final iterate.
    pub x: Vec<T>,
    /// `F(x) = f(x) + g(x)` at the final iterate.
    pub objective: f64,
    /// Proximal-gradient steps taken.
    pub iterations: usize,
    /// `F(x_0), F(x_1), …, F(x_iterations)` (length `iterations + 1`).
    pub history: Vec<f64>,
    /// Why the solver stopped.
    pub stop: StopReason,
    /// Number of adaptive restarts (always 0 for ISTA).
    pub restarts: usize,
    /// Step size in use at the end.
    pub step: f64,
    /// Step reductions of the backtracking line search, summed over all iterations.
    pub backtracks: usize,
    /// Gradient evaluations ([`Objective::value_grad`] / [`LinearSmooth::value_grad`]).
    pub grad_evals: usize,
    /// Value-only evaluations ([`Objective::value`] / [`LinearSmooth::value`]).
    pub value_evals: usize,
}

impl<T> SolveResult<T> {
    /// `true` when the stopping criterion was met (not merely the iteration cap).
    pub fn converged(&self) -> bool {
        self.stop.converged()
    }
}

/// One accepted iteration, as passed to the observer of [`fista_linear`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterationStat {
    /// Iteration number, from 1.
    pub iteration: usize,
    /// `F(x_k) = f(x_k) + g(x_k)` at the new iterate.
    pub objective: f64,
    /// Value of the stopping [`Criterion`] after this iteration.
    pub change: f64,
    /// Step `t` of this iteration (after any backtracking).
    pub step: f64,
    /// Step reductions in this iteration.
    pub backtracks: usize,
    /// Whether the momentum was reset after this iteration.
    pub restarted: bool,
}

/// A smooth `f(x) = h(A x)` with `A` linear, for [`fista_linear`].
///
/// FISTA's extrapolated point `y = x_k + β(x_k − x_{k−1})` is a linear combination of iterates
/// whose images `A x` the solver already knows, so `A y = A x_k + β(A x_k − A x_{k−1})` costs no
/// application of `A` ([`LinearSmooth::extrapolate`]). An iteration then costs one
/// [`LinearSmooth::apply`] per trial step and one [`LinearSmooth::value_grad`] (typically one
/// adjoint) at `y`, instead of an extra application of `A` at `y`. This is what makes FISTA
/// competitive for operators that are expensive to apply (convolutions through FFTs, dictionary
/// spectra, …).
///
/// | item | meaning |
/// |---|---|
/// | `Image` | the representation of `A x` (spatial images, spectra, …) |
/// | `Error` | the implementor's error type; solver errors ([`OptimError`]) convert into it |
/// | [`dim`](LinearSmooth::dim) | number of variables |
/// | [`image`](LinearSmooth::image) | a fresh image buffer (its content is overwritten before use) |
/// | [`apply`](LinearSmooth::apply) | `ax ← A x` |
/// | [`value`](LinearSmooth::value) | `f(x) = h(ax)` for `ax = A x` |
/// | [`value_grad`](LinearSmooth::value_grad) | `f(x)` and `∇f(x) = Aᵀ∇h(ax)` |
/// | [`extrapolate`](LinearSmooth::extrapolate) | `ay ← a + β(a − b)` (exact by linearity of `A`) |
///
/// Every [`Objective`] is a `LinearSmooth` with `A` the identity through [`fista`] and [`ista`].
pub trait LinearSmooth<T: Real> {
    /// The image `A x`.
    type Image: Clone;
    /// Error of the evaluations.
    type Error: From<OptimError>;
    /// Number of variables.
    fn dim(&self) -> usize;
    /// A buffer for one image.
    fn image(&self) -> Self::Image;
    /// `ax ← A x`.
    ///
    /// # Errors
    /// Implementation-defined (e.g. a transform rejecting a buffer).
    fn apply(&self, x: &[T], ax: &mut Self::Image) -> std::result::Result<(), Self::Error>;
    /// `f(x)` from `ax = A x` (NaN/Inf is treated by the solver as a failed evaluation).
    ///
    /// # Errors
    /// Implementation-defined.
    fn value(&self, x: &[T], ax: &Self::Image) -> std::result::Result<f64, Self::Error>;
    /// `f(x)` from `ax = A x`, and `∇f(x)` into `grad` (length [`LinearSmooth::dim`]).
    ///
    /// # Errors
    /// Implementation-defined.
    fn value_grad(&self, x: &[T], ax: &Self::Image, grad: &mut [T]) -> std::result::Result<f64, Self::Error>;
    /// `ay ← a + β(a − b)`, the image of `x_a + β(x_a − x_b)` from the images `a`, `b`.
    fn extrapolate(&self, beta: T, a: &Self::Image, b: &Self::Image, ay: &mut Self::Image);
}

/// An [`Objective`] as a [`LinearSmooth`] with `A` the identity (nothing cached).
struct Plain<'a, F: ?Sized>(&'a F);

impl<T: Real, F: Objective<T> + ?Sized> LinearSmooth<T> for Plain<'_, F> {
    type Image = ();
    type Error = OptimError;
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn image(&self) {}
    fn apply(&self, _: &[T], _: &mut ()) -> Result<()> {
        Ok(())
    }
    fn value(&self, x: &[T], _: &()) -> Result<f64> {
        Ok(self.0.value(x).as_f64())
    }
    fn value_grad(&self, x: &[T], _: &(), grad: &mut [T]) -> Result<f64> {
        Ok(self.0.value_grad(x, grad).as_f64())
    }
    fn extrapolate(&self, _: T, _: &(), _: &(), _: &mut ()) {}
}

/// ISTA (proximal gradient descent) for `min f(x) + g(x)` from `x0`. `params.restart` is ignored.
///
/// # Errors
/// As [`fista`].
pub fn ista<T, F, G>(f: &F, g: &G, x0: &[T], params: &ProxGradParams) -> Result<SolveResult<T>>
where
    T: Real,
    F: Objective<T> + ?Sized,
    G: Prox<T> + Sync + ?Sized,
{
    solve("ista", false, &Plain(f), g, x0, params, &mut |_: &IterationStat| {})
}

/// FISTA (accelerated proximal gradient, Beck & Teboulle) for `min f(x) + g(x)` from `x0`, with
/// optional O'Donoghue–Candès function-value restart. See [`ProxGradParams`] for the settings.
///
/// # Errors
/// - [`OptimError::InvalidParameter`] from [`ProxGradParams::check`];
/// - [`OptimError::Empty`] when `f.dim() == 0`, [`OptimError::LengthMismatch`] when
///   `x0.len() != f.dim()`, and a non-finite error (`OptimError::Linalg`) for NaN/Inf in `x0` or in
///   a gradient;
/// - [`OptimError::NonFiniteObjective`] when `f` (or `F = f + g`) is NaN/Inf where it is needed
///   (with backtracking, a non-finite trial value just shrinks the step);
/// - [`OptimError::LineSearchFailed`] after `max_backtracks` reductions in one iteration;
/// - errors of `g.prox`.
///
/// # Example
/// Sparse coding of a signal `b` in a dictionary `A`: `min ½‖Ax − b‖² + λ‖x‖₁`.
/// ```
/// use latent_linalg::DMatrix;
/// use latent_optim::objective::{LeastSquares, Objective};
/// use latent_optim::prox::L1;
/// use latent_optim::solver::{fista, ProxGradParams};
///
/// let a = DMatrix::from_row_slice(3, 4, &[
///     1.0, 0.0, 0.5, 0.2,
///     0.0, 1.0, 0.5, -0.3,
///     0.0, 0.0, 0.1, 1.0,
/// ]);
/// let f = LeastSquares::new(a.clone(), vec![1.0, -2.0, 0.5]).unwrap();
/// let lambda = 0.1;
/// let g = L1::new(lambda).unwrap();
/// let params = ProxGradParams::new().step(1.0 / f.lipschitz()).tol(1e-10).max_iter(5000);
/// let res = fista(&f, &g, &[0.0; 4], &params).unwrap();
/// assert!(res.converged());
/// // optimality: |∇f(x)ᵢ| <= λ, with equality (and opposite sign) where xᵢ ≠ 0
/// let mut grad = vec![0.0; 4];
/// f.value_grad(&res.x, &mut grad);
/// for (xi, gi) in res.x.iter().zip(&grad) {
///     if *xi == 0.0 { assert!(gi.abs() <= lambda + 1e-6) }
///     else { assert!((gi + lambda * xi.signum()).abs() < 1e-6) }
/// }
/// ```
pub fn fista<T, F, G>(f: &F, g: &G, x0: &[T], params: &ProxGradParams) -> Result<SolveResult<T>>
where
    T: Real,
    F: Objective<T> + ?Sized,
    G: Prox<T> + Sync + ?Sized,
{
    solve("fista", true, &Plain(f), g, x0, params, &mut |_: &IterationStat| {})
}

/// FISTA for `min h(A x) + g(x)` from `x0`, keeping `A y` of the extrapolated point by linearity
/// (see [`LinearSmooth`]); the same iteration, step rule, restart and stopping test as [`fista`].
/// `observe` is called after every accepted iteration (pass `|_| {}` when not needed).
///
/// # Errors
/// As [`fista`] (converted into `F::Error`), and the errors of `f`'s methods.
///
/// # Example
/// `min ½‖A x − b‖² + λ‖x‖₁` with a diagonal `A` applied explicitly:
/// ```
/// use latent_optim::OptimError;
/// use latent_optim::prox::L1;
/// use latent_optim::solver::{fista_linear, LinearSmooth, ProxGradParams};
///
/// struct Diag { a: Vec<f64>, b: Vec<f64> }
/// impl LinearSmooth<f64> for Diag {
///     type Image = Vec<f64>;
///     type Error = OptimError;
///     fn dim(&self) -> usize { self.a.len() }
///     fn image(&self) -> Vec<f64> { vec![0.0; self.a.len()] }
///     fn apply(&self, x: &[f64], ax: &mut Vec<f64>) -> Result<(), OptimError> {
///         for ((o, a), x) in ax.iter_mut().zip(&self.a).zip(x) { *o = a * x }
///         Ok(())
///     }
///     fn value(&self, _: &[f64], ax: &Vec<f64>) -> Result<f64, OptimError> {
///         Ok(0.5 * ax.iter().zip(&self.b).map(|(p, b)| (p - b) * (p - b)).sum::<f64>())
///     }
///     fn value_grad(&self, x: &[f64], ax: &Vec<f64>, g: &mut [f64]) -> Result<f64, OptimError> {
///         for i in 0..g.len() { g[i] = self.a[i] * (ax[i] - self.b[i]) }
///         self.value(x, ax)
///     }
///     fn extrapolate(&self, beta: f64, a: &Vec<f64>, b: &Vec<f64>, ay: &mut Vec<f64>) {
///         for ((o, a), b) in ay.iter_mut().zip(a).zip(b) { *o = a + beta * (a - b) }
///     }
/// }
/// let f = Diag { a: vec![2.0, 1.0], b: vec![4.0, 0.05] };
/// let mut seen = 0;
/// let p = ProxGradParams::new().step(0.25).tol(1e-12);
/// let res = fista_linear(&f, &L1::new(0.1).unwrap(), &[0.0, 0.0], &p, |_| seen += 1).unwrap();
/// assert!(res.converged() && seen == res.iterations);
/// assert!((res.x[0] - 1.975).abs() < 1e-9 && res.x[1] == 0.0);
/// ```
pub fn fista_linear<T, F, G>(
    f: &F,
    g: &G,
    x0: &[T],
    params: &ProxGradParams,
    mut observe: impl FnMut(&IterationStat),
) -> std::result::Result<SolveResult<T>, F::Error>
where
    T: Real,
    F: LinearSmooth<T> + ?Sized,
    G: Prox<T> + Sync + ?Sized,
{
    solve("fista", true, f, g, x0, params, &mut observe)
}

/// Differences below `NOISE_FACTOR·ε·‖|y| + t|∇f(y)|‖` count as zero in the stopping test.
const NOISE_FACTOR: f64 = 8.0;

fn relative_change(num: f64, a: f64, b: f64) -> f64 {
    let den = a.abs().max(b.abs());
    if num == 0.0 { 0.0 } else { num / den }
}

/// Length above which the element-wise passes of the proximal-gradient loop run in parallel.
const PAR_MIN: usize = 1 << 15;
/// Fixed chunk length of those passes: reductions sum each chunk in index order and combine the
/// chunk sums in chunk order, so the result does not depend on the thread count (and equals the
/// sequential loop, which uses the same chunks).
const CHUNK: usize = 1 << 13;

/// Apply `f` to matching chunks of the mutable `out` and the inputs, in parallel above
/// [`PAR_MIN`]; returns the per-chunk results in chunk order.
fn chunked<T, R, F>(out: &mut [T], a: &[T], b: &[T], c: &[T], f: F) -> Vec<R>
where
    T: Real,
    R: Send,
    F: Fn(&mut [T], &[T], &[T], &[T]) -> R + Sync + Send,
{
    use rayon::prelude::*;
    let n = out.len();
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    if n >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .zip(b.par_chunks(CHUNK).zip(c.par_chunks(CHUNK)))
            .map(|((o, a), (b, c))| f(o, a, b, c))
            .collect()
    } else {
        out.chunks_mut(CHUNK)
            .zip(a.chunks(CHUNK))
            .zip(b.chunks(CHUNK).zip(c.chunks(CHUNK)))
            .map(|((o, a), (b, c))| f(o, a, b, c))
            .collect()
    }
}

/// The trial point `p = y − t∇f(y)`; `false` when the gradient holds NaN/Inf (one fused pass).
fn gradient_step<T: Real>(p: &mut [T], y: &[T], grad: &[T], t: T) -> bool {
    chunked(p, y, grad, grad, |p, y, g, _| {
        let mut finite = true;
        for ((p, &y), &g) in p.iter_mut().zip(y).zip(g) {
            finite &= g.finite();
            *p = y - t * g;
        }
        finite
    })
    .into_iter()
    .all(|v| v)
}

/// What one fused chunk of [`prox_gradient_fused`] reports.
struct FusedChunk {
    finite: bool,
    prox: Option<crate::Result<()>>,
    lin: f64,
    sq: f64,
}

/// For a separable `g` ([`Prox::prox_part`]): the trial point `p = prox(y − t∇f(y))` and, when
/// `model` is set, the line-search terms `(⟨∇f(y), p − y⟩, ‖p − y‖²)`, in one pass over fixed
/// chunks (the same chunks and the same per-chunk sums as [`gradient_step`], [`Prox::prox`] and
/// [`linear_model`] one after the other, so the bits are those of the three passes).
/// `None` when `g` is not separable (nothing is touched); `Some(Ok(None))` when the gradient holds
/// NaN/Inf.
fn prox_gradient_fused<T: Real, G: Prox<T> + Sync + ?Sized>(
    g: &G,
    p: &mut [T],
    y: &[T],
    grad: &[T],
    t: T,
    model: bool,
) -> Option<crate::Result<Option<(f64, f64)>>> {
    // A separable g answers `Some` for every part, the empty one included.
    let _probe = g.prox_part(0, &mut [], t)?;
    let n = p.len();
    let (y, grad) = (&y[..n], &grad[..n]);
    let chunk = |k: usize, p: &mut [T], y: &[T], gr: &[T]| {
        let mut finite = true;
        for ((p, &y), &g) in p.iter_mut().zip(y).zip(gr) {
            finite &= g.finite();
            *p = y - t * g;
        }
        if !finite {
            return FusedChunk { finite, prox: Some(Ok(())), lin: 0.0, sq: 0.0 };
        }
        let prox = g.prox_part(k * CHUNK, p, t);
        let (lin, sq) = if model { linear_model_chunk(p, y, gr) } else { (0.0, 0.0) };
        FusedChunk { finite, prox, lin, sq }
    };
    let parts: Vec<FusedChunk> = if n >= PAR_MIN {
        use rayon::prelude::*;
        p.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .enumerate()
            .map(|(k, ((p, y), g))| chunk(k, p, y, g))
            .collect()
    } else {
        p.chunks_mut(CHUNK)
            .zip(y.chunks(CHUNK))
            .zip(grad.chunks(CHUNK))
            .enumerate()
            .map(|(k, ((p, y), g))| chunk(k, p, y, g))
            .collect()
    };
    let (mut lin, mut sq) = (0.0, 0.0);
    for c in parts {
        if !c.finite {
            return Some(Ok(None));
        }
        match c.prox {
            Some(Ok(())) => {}
            Some(Err(e)) => return Some(Err(e)),
            // `prox_part` must answer alike for every call; one that does not is a bug of `g`.
            None => {
                return Some(Err(OptimError::InvalidParameter {
                    op: "proximal gradient",
                    name: "g.prox_part",
                    value: "None after Some".into(),
                    reason: "a separable prox must answer Some for every part",
                }));
            }
        }
        lin += c.lin;
        sq += c.sq;
    }
    Some(Ok(Some((lin, sq))))
}

/// `(⟨∇f(y), p − y⟩, ‖p − y‖²)` in `f64`, for the backtracking test (one pass, fixed chunks).
fn linear_model<T: Real>(p: &[T], y: &[T], grad: &[T]) -> (f64, f64) {
    let parts = if p.len() >= PAR_MIN {
        use rayon::prelude::*;
        p.par_chunks(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .map(|((p, y), g)| linear_model_chunk(p, y, g))
            .collect::<Vec<_>>()
    } else {
        p.chunks(CHUNK)
            .zip(y.chunks(CHUNK))
            .zip(grad.chunks(CHUNK))
            .map(|((p, y), g)| linear_model_chunk(p, y, g))
            .collect()
    };
    parts.into_iter().fold((0.0, 0.0), |(l, s), (a, b)| (l + a, s + b))
}

fn linear_model_chunk<T: Real>(p: &[T], y: &[T], g: &[T]) -> (f64, f64) {
    let (mut lin, mut sq) = (0.0f64, 0.0f64);
    for ((&p, &y), &g) in p.iter().zip(y).zip(g) {
        let d = (p - y).as_f64();
        lin += g.as_f64() * d;
        sq += d * d;
    }
    (lin, sq)
}

/// One fused pass after an accepted step: the squared lengths `‖x − x_prev‖²`, `‖x − y‖²` and the
/// rounding scale `‖|y| + t|∇f(y)|‖²` (each summed in fixed chunks), then the next extrapolation
/// point `y ← x + β (x − x_prev)` (`None`: `y ← x`).
fn step_lengths<T: Real>(y: &mut [T], x: &[T], x_prev: &[T], grad: &[T], t: T, beta: Option<T>) -> (T, T, T) {
    chunked(y, x, x_prev, grad, |y, x, xp, g| {
        let (mut dx2, mut dy2, mut scale2) = (T::zero(), T::zero(), T::zero());
        for (((y, &x), &xp), &g) in y.iter_mut().zip(x).zip(xp).zip(g) {
            let d = x - xp;
            let e = x - *y;
            let s = y.abs() + t * g.abs();
            dx2 += d * d;
            dy2 += e * e;
            scale2 += s * s;
            *y = match beta {
                Some(beta) => x + beta * d,
                None => x,
            };
        }
        (dx2, dy2, scale2)
    })
    .into_iter()
    .fold((T::zero(), T::zero(), T::zero()), |(a, b, c), (d, e, f)| (a + d, b + e, c + f))
}

/// The one proximal-gradient loop behind [`ista`], [`fista`] and [`fista_linear`].
fn solve<T, F, G, O>(
    op: &'static str,
    accelerate: bool,
    f: &F,
    g: &G,
    x0: &[T],
    params: &ProxGradParams,
    observe: &mut O,
) -> std::result::Result<SolveResult<T>, F::Error>
where
    T: Real,
    F: LinearSmooth<T> + ?Sized,
    G: Prox<T> + Sync + ?Sized,
    O: FnMut(&IterationStat) + ?Sized,
{
    params.validate()?;
    let n = f.dim();
    if n == 0 {
        return Err(OptimError::Empty { op, what: "objective (dim() == 0)" }.into());
    }
    check_len(op, "x0", n, x0.len())?;
    check_finite(op, "x0", x0).map_err(OptimError::from)?;

    let (mut step, eta) = match params.step {
        StepRule::Fixed(t) => (t, None),
        StepRule::Backtracking { initial, eta } => (initial, Some(eta)),
    };
    let slack_factor = params.slack.unwrap_or(10.0 * T::EPS.as_f64());

    let mut x = x0.to_vec();
    let mut x_prev = vec![T::zero(); n];
    let mut y = x.clone();
    let mut grad = vec![T::zero(); n];
    let mut p = vec![T::zero(); n];
    // ISTA's next extrapolation point is its next iterate, so it evaluates trial points with
    // `value_grad` and reuses the accepted gradient (one evaluation per iteration, not two).
    let mut grad_p = if accelerate { Vec::new() } else { vec![T::zero(); n] };
    // Images A x_k, A x_{k-1}, A y and A p of the trial point.
    let (mut ax, mut ax_prev, mut ay, mut ap) = (f.image(), f.image(), f.image(), f.image());
    f.apply(&x, &mut ax)?;
    ay.clone_from(&ax);
    let (mut grad_evals, mut value_evals, mut restarts, mut total_backtracks) = (0usize, 0usize, 0usize, 0usize);

    // Value and gradient at x0 (= y0).
    let mut fy = f.value_grad(&y, &ay, &mut grad)?;
    grad_evals += 1;
    if !fy.is_finite() {
        return Err(OptimError::NonFiniteObjective { op, iteration: 0, value: fy }.into());
    }
    let mut f_cur = fy + g.value(&x).as_f64();
    if f_cur.is_nan() {
        return Err(OptimError::NonFiniteObjective { op, iteration: 0, value: f_cur }.into());
    }
    let mut have_grad = true;
    let mut history = Vec::with_capacity(params.max_iter.min(1 << 16) + 1);
    history.push(f_cur);
    let mut momentum = 1.0f64;
    let mut stop = StopReason::MaxIterations;
    let mut iterations = 0;
    // ‖x‖ of the current iterate once computed (the next iteration's ‖x_prev‖).
    let mut norm_x: Option<f64> = None;

    for k in 1..=params.max_iter {
        if !have_grad {
            fy = f.value_grad(&y, &ay, &mut grad)?;
            grad_evals += 1;
            if !fy.is_finite() {
                return Err(OptimError::NonFiniteObjective { op, iteration: k, value: fy }.into());
            }
        }
        have_grad = false;

        // Proximal-gradient step from y, with backtracking if requested.
        let mut backtracks = 0;
        let fp = loop {
            let t = T::lit(step);
            // A separable g takes one fused pass (step, prox, line-search terms); any other g
            // three passes. Both give the same bits.
            let fused = match prox_gradient_fused(g, &mut p, &y, &grad, t, eta.is_some()) {
                Some(r) => match r? {
                    Some(terms) => Some(terms),
                    None => {
                        check_finite(op, "gradient", &grad).map_err(OptimError::from)?;
                        return Err(OptimError::NonFiniteObjective { op, iteration: k, value: f64::NAN }.into());
                    }
                },
                None => {
                    if !gradient_step(&mut p, &y, &grad, t) {
                        check_finite(op, "gradient", &grad).map_err(OptimError::from)?;
                    }
                    g.prox(&mut p, t)?;
                    None
                }
            };
            f.apply(&p, &mut ap)?;
            let fp = if accelerate {
                value_evals += 1;
                f.value(&p, &ap)?
            } else {
                grad_evals += 1;
                f.value_grad(&p, &ap, &mut grad_p)?
            };
            let Some(eta) = eta else { break fp };
            let (lin, sq) = fused.unwrap_or_else(|| linear_model(&p, &y, &grad));
            let model = fy + lin + sq / (2.0 * step);
            if fp.is_finite() && fp <= model + slack_factor * fy.abs().max(fp.abs()) {
                break fp;
            }
            backtracks += 1;
            step /= eta;
            if backtracks >= params.max_backtracks || step <= 0.0 {
                return Err(OptimError::LineSearchFailed { op, iteration: k, step, backtracks }.into());
            }
        };
        total_backtracks += backtracks;
        if !fp.is_finite() {
            return Err(OptimError::NonFiniteObjective { op, iteration: k, value: fp }.into());
        }
        let f_new = fp + g.value(&p).as_f64();
        if f_new.is_nan() {
            return Err(OptimError::NonFiniteObjective { op, iteration: k, value: f_new }.into());
        }
        std::mem::swap(&mut x_prev, &mut x);
        std::mem::swap(&mut x, &mut p);
        std::mem::swap(&mut ax_prev, &mut ax);
        std::mem::swap(&mut ax, &mut ap);
        history.push(f_new);
        iterations = k;

        // Length of the proximal-gradient step from y (x_prev holds x_k, x holds x_{k+1}), and
        // the rounding level of that step: x_{k+1} is computed from y − t∇f(y), so differences
        // below a few ε·‖|y| + t|∇f(y)|‖ are noise.
        // The same pass moves y to the next extrapolation point.
        let restarted = accelerate && params.restart && f_new > f_cur;
        let beta = if accelerate && !restarted {
            let m_next = 0.5 * (1.0 + (1.0 + 4.0 * momentum * momentum).sqrt());
            let beta = T::lit((momentum - 1.0) / m_next);
            momentum = m_next;
            Some(beta)
        } else {
            None
        };
        let (dx2, dy2, scale2) = step_lengths(&mut y, &x, &x_prev, &grad, T::lit(step), beta);
        let noise = NOISE_FACTOR * T::EPS.as_f64() * scale2.as_f64().sqrt();
        let denoise = |v: T| (v.as_f64().sqrt() - noise).max(0.0);
        let (dx, dy) = (denoise(dx2), denoise(dy2));
        let change = match params.criterion {
            // `check` rejects `PrimalDualResiduals` for proximal-gradient solvers.
            Criterion::RelativeChangeX | Criterion::PrimalDualResiduals => {
                // ‖x_prev‖ is the previous iteration's ‖x‖ (x_prev is that x, swapped in).
                let prev = norm_x.unwrap_or_else(|| ops::norm2(&x_prev).as_f64());
                let cur = ops::norm2(&x).as_f64();
                norm_x = Some(cur);
                relative_change(dx.max(dy), cur, prev)
            }
            Criterion::RelativeChangeObjective => {
                let df = if f_new == f_cur { 0.0 } else { (f_new - f_cur).abs() };
                relative_change(df.max(dy * dy / (2.0 * step)), f_new, f_cur)
            }
        };

        if !accelerate {
            // ISTA: the next extrapolation point is x_{k+1}, whose gradient is already known.
            std::mem::swap(&mut grad, &mut grad_p);
            fy = fp;
            have_grad = true;
        }

        // The image of the next extrapolation point (y itself moved in `step_lengths`), by linearity.
        if let Some(beta) = beta {
            f.extrapolate(beta, &ax, &ax_prev, &mut ay);
        } else {
            if accelerate {
                restarts += 1;
                momentum = 1.0;
            }
            ay.clone_from(&ax);
        }
        f_cur = f_new;
        observe(&IterationStat { iteration: k, objective: f_new, change, step, backtracks, restarted });

        if change <= params.tol {
            stop = StopReason::Converged { criterion: params.criterion, change, tol: params.tol };
            break;
        }
    }

    Ok(SolveResult {
        x,
        objective: f_cur,
        iterations,
        history,
        stop,
        restarts,
        step,
        backtracks: total_backtracks,
        grad_evals,
        value_evals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{FnObjective, SeparableQuadratic};
    use crate::prox::{BoxConstraint, L1, Zero};
    use latent_linalg::DMatrix;

    fn quad() -> SeparableQuadratic<f64> {
        SeparableQuadratic::new(vec![1.0, 4.0, 0.5], vec![2.0, -1.0, 0.1]).unwrap()
    }

    /// A prox that hides `prox_part`, so the solver takes the three-pass path.
    struct Unfused<P>(P);
    impl<T: Real, P: Prox<T>> Prox<T> for Unfused<P> {
        fn prox(&self, x: &mut [T], step: T) -> crate::Result<()> {
            self.0.prox(x, step)
        }
        fn value(&self, x: &[T]) -> T {
            self.0.value(x)
        }
    }

    /// The fused pass (step, separable prox, line-search terms) gives the bits of the three
    /// passes, sequential and parallel (`n` above `PAR_MIN`), with and without backtracking.
    #[test]
    fn fused_separable_prox_is_bit_identical() {
        use crate::prox::{BoxConstraint, L1NonNeg};
        for n in [1000, PAR_MIN + 3 * CHUNK + 17] {
            let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 7) as f64).collect();
            let b: Vec<f64> = (0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) / 10.0).collect();
            let f = SeparableQuadratic::new(w, b).unwrap();
            let x0 = vec![0.0; n];
            for p in [
                ProxGradParams::new().max_iter(30).tol(0.0),
                ProxGradParams::new().max_iter(30).tol(0.0).backtracking(10.0, 2.0),
            ] {
                let l1 = L1::new(0.7).unwrap();
                let (a, b) = (fista(&f, &l1, &x0, &p).unwrap(), fista(&f, &Unfused(l1), &x0, &p).unwrap());
                assert_eq!((a.x, a.history, a.backtracks), (b.x, b.history, b.backtracks), "L1, n = {n}");
                let nn = L1NonNeg::new(0.3).unwrap();
                let (a, b) = (ista(&f, &nn, &x0, &p).unwrap(), ista(&f, &Unfused(nn), &x0, &p).unwrap());
                assert_eq!((a.x, a.history), (b.x, b.history), "L1NonNeg, n = {n}");
                let bx = BoxConstraint::new(-0.5, 1.0).unwrap();
                let (a, b) = (fista(&f, &bx, &x0, &p).unwrap(), fista(&f, &Unfused(bx), &x0, &p).unwrap());
                assert_eq!((a.x, a.history), (b.x, b.history), "box, n = {n}");
            }
        }
    }

    #[test]
    fn iteration_cap_is_reported_not_convergence() {
        let f = quad();
        let res = fista(&f, &L1::new(0.2).unwrap(), &[0.0; 3], &ProxGradParams::new().max_iter(3).tol(0.0)).unwrap();
        assert_eq!(res.stop, StopReason::MaxIterations);
        assert!(!res.converged());
        assert_eq!(res.iterations, 3);
        assert_eq!(res.history.len(), 4);
        let res = ista(&f, &Zero, &[0.0; 3], &ProxGradParams::new().max_iter(0)).unwrap();
        assert_eq!((res.iterations, res.x.as_slice(), res.stop), (0, &[0.0; 3][..], StopReason::MaxIterations));
    }

    #[test]
    fn converges_on_both_criteria() {
        let f = quad();
        let g = BoxConstraint::new(-0.5, 1.0).unwrap();
        for crit in [Criterion::RelativeChangeX, Criterion::RelativeChangeObjective] {
            for restart in [false, true] {
                let p = ProxGradParams::new().criterion(crit).tol(1e-12).restart(restart).max_iter(10_000);
                let res = fista(&f, &g, &[0.0; 3], &p).unwrap();
                assert!(res.converged(), "{crit:?} {restart}: {:?}", res.stop);
                let want = [1.0, -0.5, 0.1];
                for (a, b) in res.x.iter().zip(want) {
                    assert!((a - b).abs() < 1e-5, "{crit:?}: {:?}", res.x);
                }
                assert_eq!(res.history.len(), res.iterations + 1);
                assert_eq!(res.objective, *res.history.last().unwrap());
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let f = quad();
        let g = L1::new(0.1).unwrap();
        let p = ProxGradParams::new();
        assert!(matches!(fista(&f, &g, &[0.0; 2], &p), Err(OptimError::LengthMismatch { what: "x0", .. })));
        assert!(matches!(ista(&f, &g, &[0.0, f64::NAN, 0.0], &p), Err(OptimError::Linalg(_))));
        assert!(matches!(
            fista(&f, &g, &[0.0; 3], &p.tol(-1.0)),
            Err(OptimError::InvalidParameter { name: "tol", .. })
        ));
        assert!(matches!(
            fista(&f, &g, &[0.0; 3], &p.step(0.0)),
            Err(OptimError::InvalidParameter { name: "step", .. })
        ));
        assert!(matches!(
            fista(&f, &g, &[0.0; 3], &p.backtracking(1.0, 1.0)),
            Err(OptimError::InvalidParameter { name: "eta", .. })
        ));
        let empty = FnObjective::new(0, |_: &[f64], _: &mut [f64]| 0.0);
        assert!(matches!(fista(&empty, &g, &[], &p), Err(OptimError::Empty { .. })));
        // objective that turns NaN away from the start
        let bad = FnObjective::new(1, |x: &[f64], gr: &mut [f64]| {
            gr[0] = 1.0;
            if x[0] < -0.5 { f64::NAN } else { x[0] }
        });
        let e = fista(&bad, &Zero, &[0.0], &p.step(1.0)).unwrap_err();
        assert!(matches!(e, OptimError::NonFiniteObjective { iteration: 1, .. }), "{e}");
        let nan0 = FnObjective::new(1, |_: &[f64], gr: &mut [f64]| {
            gr[0] = 0.0;
            f64::INFINITY
        });
        assert!(matches!(ista(&nan0, &Zero, &[0.0], &p), Err(OptimError::NonFiniteObjective { iteration: 0, .. })));
    }

    #[test]
    fn fista_without_restart_does_not_stop_at_a_turning_point() {
        // Without restart FISTA oscillates around the minimiser, and at a turning point x can
        // change by less than 1e-13 relative while still 1e-7 away. These two lassos stopped
        // there when the criterion looked at x alone; measuring the step from y prevents it.
        let cases = [
            ([9.272975032526727, 0.14724071582183695], [-4.1701955564475295, -3.3881090076645903], 0.4787955082236699),
            ([9.48628460239314, 0.3605502856882491], [-3.954731344461254, -3.1726447956783153], 0.5218883506209246),
        ];
        for (w, b, lambda) in cases {
            let f = SeparableQuadratic::new(w.to_vec(), b.to_vec()).unwrap();
            let want: Vec<f64> = w.iter().zip(&b).map(|(w, b)| ops::soft(*b, lambda / w)).collect();
            let p = ProxGradParams::new().tol(1e-13).max_iter(20_000).step(1.0 / f.lipschitz()).restart(false);
            let res = fista(&f, &L1::new(lambda).unwrap(), &[0.0, 0.0], &p).unwrap();
            assert!(res.converged());
            for (x, e) in res.x.iter().zip(&want) {
                assert!((x - e).abs() < 1e-9 * (1.0 + e.abs()), "{:?} vs {want:?}", res.x);
            }
        }
    }

    #[test]
    fn line_search_failure_is_an_error() {
        // A "gradient" pointing uphill can never satisfy sufficient decrease.
        let liar = FnObjective::new(1, |x: &[f64], gr: &mut [f64]| {
            gr[0] = -1.0;
            x[0]
        });
        let e = fista(&liar, &Zero, &[0.0], &ProxGradParams::new().max_backtracks(10)).unwrap_err();
        assert!(matches!(e, OptimError::LineSearchFailed { backtracks: 10, .. }), "{e}");
    }

    #[test]
    fn large_problems_give_the_same_bits_on_one_and_two_threads() {
        // Above PAR_MIN the element-wise passes run in parallel in fixed chunks.
        let n = PAR_MIN + 3 * CHUNK + 17;
        let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 13) as f64 * 0.37).collect();
        let b: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let f = SeparableQuadratic::new(w, b).unwrap();
        let p = ProxGradParams::new().backtracking(1.0, 2.0).tol(0.0).max_iter(40);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| fista(&f, &L1::new(0.3).unwrap(), &vec![0.0; n], &p).unwrap())
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.iterations, 40);
        assert!(one.x.iter().zip(&two.x).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(one.history.iter().zip(&two.history).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(one.step.to_bits(), two.step.to_bits());
    }

    #[test]
    fn chunked_passes_match_the_plain_loops() {
        let n = PAR_MIN + CHUNK / 2;
        let y: Vec<f64> = (0..n).map(|i| (i % 17) as f64 - 8.0).collect();
        let g: Vec<f64> = (0..n).map(|i| ((i * 31) % 23) as f64 * 0.25 - 2.0).collect();
        let mut p = vec![0.0; n];
        assert!(gradient_step(&mut p, &y, &g, 0.5));
        assert!(p.iter().enumerate().all(|(i, v)| *v == y[i] - 0.5 * g[i]));
        let (lin, sq) = linear_model(&p, &y, &g);
        let want_sq: f64 = (0..n).map(|i| (p[i] - y[i]) * (p[i] - y[i])).sum();
        assert!((sq - want_sq).abs() <= 1e-12 * want_sq && lin < 0.0);
        let mut bad = g.clone();
        bad[PAR_MIN + 1] = f64::NAN;
        assert!(!gradient_step(&mut p, &y, &bad, 0.5));
        let x: Vec<f64> = y.iter().map(|v| v + 1.0).collect();
        let mut yy = y.clone();
        let (dx2, dy2, _) = step_lengths(&mut yy, &x, &y, &g, 0.5, Some(0.5));
        assert_eq!((dx2, dy2), (n as f64, n as f64));
        assert!(yy.iter().zip(&x).all(|(a, b)| *a == b + 0.5));
    }

    #[test]
    fn backtracking_finds_a_working_step_and_restarts_fire() {
        // Ill-conditioned quadratic, initial step far too long.
        let f = SeparableQuadratic::new(vec![100.0f64, 1.0], vec![1.0, 1.0]).unwrap();
        let p = ProxGradParams::new().backtracking(10.0, 2.0).tol(1e-12).max_iter(5000);
        let res = fista(&f, &Zero, &[0.0, 0.0], &p).unwrap();
        assert!(res.converged());
        assert!(res.step <= 1.0 / 100.0 && res.step > 1.0 / 400.0, "{}", res.step);
        assert!(res.restarts > 0);
        assert!((res.x[0] - 1.0).abs() < 1e-8 && (res.x[1] - 1.0).abs() < 1e-6, "{:?}", res.x);
        let plain = ista(&f, &Zero, &[0.0, 0.0], &p).unwrap();
        assert_eq!(plain.restarts, 0);
        assert!(res.iterations < plain.iterations, "{} vs {}", res.iterations, plain.iterations);
    }

    /// `½‖A x − b‖²` with `A` applied explicitly, counting applications.
    struct CountingLs {
        a: DMatrix<f64>,
        b: Vec<f64>,
        applies: std::cell::Cell<usize>,
    }

    impl LinearSmooth<f64> for CountingLs {
        type Image = Vec<f64>;
        type Error = OptimError;
        fn dim(&self) -> usize {
            self.a.ncols()
        }
        fn image(&self) -> Vec<f64> {
            vec![0.0; self.a.nrows()]
        }
        fn apply(&self, x: &[f64], ax: &mut Vec<f64>) -> Result<()> {
            self.applies.set(self.applies.get() + 1);
            let v = &self.a * latent_linalg::DVector::from_column_slice(x);
            ax.copy_from_slice(v.as_slice());
            Ok(())
        }
        fn value(&self, _: &[f64], ax: &Vec<f64>) -> Result<f64> {
            Ok(0.5 * ax.iter().zip(&self.b).map(|(p, b)| (p - b) * (p - b)).sum::<f64>())
        }
        fn value_grad(&self, x: &[f64], ax: &Vec<f64>, grad: &mut [f64]) -> Result<f64> {
            let r: Vec<f64> = ax.iter().zip(&self.b).map(|(p, b)| p - b).collect();
            let g = self.a.transpose() * latent_linalg::DVector::from_vec(r);
            grad.copy_from_slice(g.as_slice());
            self.value(x, ax)
        }
        fn extrapolate(&self, beta: f64, a: &Vec<f64>, b: &Vec<f64>, ay: &mut Vec<f64>) {
            for ((o, &a), &b) in ay.iter_mut().zip(a).zip(b) {
                *o = a + beta * (a - b);
            }
        }
    }

    #[test]
    fn fista_linear_matches_fista_with_one_apply_per_trial() {
        use crate::objective::LeastSquares;
        let a = DMatrix::from_row_slice(4, 3, &[1.0, 0.2, -0.5, 0.0, 1.5, 0.3, 0.7, -0.1, 1.0, 0.2, 0.4, -0.8]);
        let b = vec![1.0, -2.0, 0.5, 0.3];
        let g = L1::new(0.05).unwrap();
        let p = ProxGradParams::new().backtracking(4.0, 2.0).tol(1e-11).max_iter(5000);
        let plain = fista(&LeastSquares::new(a.clone(), b.clone()).unwrap(), &g, &[0.0; 3], &p).unwrap();
        let f = CountingLs { a, b, applies: std::cell::Cell::new(0) };
        let mut stats = Vec::new();
        let lin = fista_linear(&f, &g, &[0.0; 3], &p, |s| stats.push(*s)).unwrap();
        assert!(plain.converged() && lin.converged());
        for (u, v) in plain.x.iter().zip(&lin.x) {
            assert!((u - v).abs() < 1e-8, "{:?} vs {:?}", plain.x, lin.x);
        }
        assert!((plain.objective - lin.objective).abs() < 1e-10);
        // one application for x0, then one per trial point; none at the extrapolated points
        assert_eq!(f.applies.get(), 1 + lin.value_evals);
        assert_eq!(lin.value_evals, lin.iterations + lin.backtracks);
        assert_eq!(stats.len(), lin.iterations);
        assert_eq!(stats.iter().map(|s| s.backtracks).sum::<usize>(), lin.backtracks);
        assert_eq!(stats.iter().filter(|s| s.restarted).count(), lin.restarts);
        for (s, h) in stats.iter().zip(&lin.history[1..]) {
            assert_eq!(s.objective, *h);
        }
        assert_eq!(stats.last().map(|s| s.step), Some(lin.step));
    }

    #[test]
    fn slack_and_admm_criterion_are_validated() {
        let f = quad();
        let p = ProxGradParams::new();
        assert!(matches!(
            fista(&f, &Zero, &[0.0; 3], &p.slack(-1.0)),
            Err(OptimError::InvalidParameter { name: "slack", .. })
        ));
        assert!(matches!(
            fista(&f, &Zero, &[0.0; 3], &p.criterion(Criterion::PrimalDualResiduals)),
            Err(OptimError::InvalidParameter { name: "criterion", .. })
        ));
        let exact = fista(&f, &Zero, &[0.0; 3], &p.slack(0.0).tol(1e-12)).unwrap();
        assert!(exact.converged());
    }
}
