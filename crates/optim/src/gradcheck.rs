//! Gradient checking by central differences — the shared helper for every crate's tests.
//!
//! For each coordinate `i` the numeric derivative is
//! `nᵢ = (f(x + h·eᵢ) − f(x − h·eᵢ)) / ((xᵢ + h) − (xᵢ − h))` (the denominator is the step actually
//! taken in floating point) and the relative error is
//! `|aᵢ − nᵢ| / max(floor, |aᵢ| + |nᵢ|)` against the analytic value `aᵢ`. The report gives the
//! worst coordinate; [`GradCheckReport::passes`] compares it with a tolerance.
//!
//! Two entry points cover what layers need:
//! - [`check_gradient`] (and [`check_objective`]): a full gradient of `f: &[T] → T`;
//! - [`check_vjp`]: a vector–Jacobian product, i.e. the claimed `dx = Jᵀ·dy` of `y = F(x)`, via
//!   `nᵢ = ∂⟨dy, F(x)⟩/∂xᵢ`.
//!
//! Work in `f64`: the defaults ([`GradCheck::default`]) are tuned for it, and `passes(1e-5)` is
//! a sensible bar for smooth `f64` code. In `f32` central differences carry ~1e-3 relative noise;
//! use [`GradCheck::f32`] and `passes(1e-2)`.
//!
//! Because of the floor, `passes(tol)` means `|aᵢ − nᵢ| <= tol · max(floor, |aᵢ| + |nᵢ|)`: relative
//! for sizeable derivatives, absolute (`tol·floor`) for near-zero ones. The numeric derivative
//! itself is only accurate to about `h²·|f'''| + ε·|f|/h` (~1e-10 at the default `h` for values and
//! third derivatives of order 1): for functions with large values or curvature raise `tol` or
//! `floor` accordingly. Deliberately wrong gradients (a missing term, a sign, a transpose, a factor)
//! give relative errors far above any such tolerance.
//!
//! # Example
//! ```
//! use latent_optim::gradcheck::{check_gradient, check_vjp, GradCheck};
//! let f = |x: &[f64]| x[0] * x[0] * x[1] + x[1].sin();
//! let x = [0.7f64, -1.3];
//! let right = [2.0 * x[0] * x[1], x[0] * x[0] + x[1].cos()];
//! let report = check_gradient(f, &x, &right, &GradCheck::default()).unwrap();
//! assert!(report.passes(1e-5), "{report}");
//! let wrong = [2.0 * x[0] * x[1], x[0] * x[0] - x[1].cos()];
//! let report = check_gradient(f, &x, &wrong, &GradCheck::default()).unwrap();
//! assert!(!report.passes(1e-3));
//! assert_eq!(report.worst_index, 1);
//!
//! // y = F(x) = (x0·x1, x0 + x1); Jᵀdy = (x1·dy0 + dy1, x0·dy0 + dy1)
//! let big_f = |x: &[f64]| vec![x[0] * x[1], x[0] + x[1]];
//! let dy = [0.5, -2.0];
//! let dx = [x[1] * dy[0] + dy[1], x[0] * dy[0] + dy[1]];
//! assert!(check_vjp(big_f, &x, &dy, &dx, &GradCheck::default()).unwrap().passes(1e-5));
//! ```

use crate::error::{OptimError, Result, check_len, check_pos};
use crate::fit::ParamGuard;
use crate::objective::Objective;
use latent_linalg::{Real, check_finite};

/// Settings of a gradient check.
///
/// | name | default | `f32()` | meaning | range |
/// |---|---|---|---|---|
/// | `h` | `1e-5` | `5e-3` | central-difference step | finite, `> 0` |
/// | `floor` | `1e-3` | `1e-1` | lower bound of the relative-error denominator | finite, `> 0` |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradCheck {
    /// Central-difference step.
    pub h: f64,
    /// Lower bound of `|a| + |n|` in the relative error.
    pub floor: f64,
}

impl Default for GradCheck {
    fn default() -> Self {
        Self { h: 1e-5, floor: 1e-3 }
    }
}

impl GradCheck {
    /// `f64` defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Settings for checking `f32` code.
    pub fn f32() -> Self {
        Self { h: 5e-3, floor: 1e-1 }
    }
    /// Set the step.
    pub fn h(mut self, h: f64) -> Self {
        self.h = h;
        self
    }
    /// Set the denominator floor.
    pub fn floor(mut self, floor: f64) -> Self {
        self.floor = floor;
        self
    }
}

impl crate::fit::ParamGuard for GradCheck {
    type Error = crate::error::OptimError;

    /// Check every value (`params.check()` wraps them in a [`crate::fit::Checked`]).
    ///
    /// # Errors
    /// [`crate::OptimError::InvalidParameter`] naming the first
    /// out-of-range value.
    fn validate(&self) -> Result<()> {
        check_pos("GradCheck", "h", self.h)?;
        check_pos("GradCheck", "floor", self.floor)
    }
}

/// Outcome of a gradient check.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheckReport {
    /// Largest relative error over the coordinates (`+∞` where the analytic value is not finite).
    pub max_rel_error: f64,
    /// Coordinate of the largest relative error.
    pub worst_index: usize,
    /// Analytic derivative at `worst_index`.
    pub analytic: f64,
    /// Numeric derivative at `worst_index`.
    pub numeric: f64,
    /// Largest absolute difference `|aᵢ − nᵢ|` over the coordinates.
    pub max_abs_error: f64,
    /// Relative error of every coordinate.
    pub rel_errors: Vec<f64>,
}

impl GradCheckReport {
    /// `true` when the largest relative error is `<= tol`.
    pub fn passes(&self, tol: f64) -> bool {
        self.max_rel_error <= tol
    }
}

impl std::fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max relative error {:.3e} at index {} (analytic {:e}, numeric {:e}); \
             max absolute error {:.3e} over {} coordinates",
            self.max_rel_error,
            self.worst_index,
            self.analytic,
            self.numeric,
            self.max_abs_error,
            self.rel_errors.len()
        )
    }
}

/// `|a − n| / max(floor, |a| + |n|)`; `+∞` when `a` or `n` is not finite.
pub fn relative_error(analytic: f64, numeric: f64, floor: f64) -> f64 {
    if !(analytic.is_finite() && numeric.is_finite()) {
        return f64::INFINITY;
    }
    (analytic - numeric).abs() / floor.max(analytic.abs() + numeric.abs())
}

fn validate<T: Real>(op: &'static str, x: &[T], opts: &GradCheck) -> Result<()> {
    opts.validate()?;
    if x.is_empty() {
        return Err(OptimError::Empty { op, what: "x" });
    }
    check_finite(op, "x", x)?;
    Ok(())
}

/// Central differences of a scalar `phi` of `x`, coordinate by coordinate.
fn central<T: Real>(op: &'static str, x: &[T], h: f64, mut phi: impl FnMut(&[T]) -> Result<f64>) -> Result<Vec<f64>> {
    let mut xp = x.to_vec();
    let h = T::lit(h);
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let xi = x[i];
        let (hi, lo) = (xi + h, xi - h);
        xp[i] = hi;
        let fp = phi(&xp)?;
        xp[i] = lo;
        let fm = phi(&xp)?;
        xp[i] = xi;
        for v in [fp, fm] {
            if !v.is_finite() {
                return Err(OptimError::NonFiniteObjective { op, iteration: i, value: v });
            }
        }
        out.push((fp - fm) / (hi - lo).as_f64());
    }
    Ok(out)
}

/// Numeric gradient of `f` at `x` by central differences (in `f64`).
///
/// # Errors
/// [`OptimError::InvalidParameter`] for bad settings, [`OptimError::Empty`] for an empty `x`, a
/// non-finite error for NaN/Inf in `x`, [`OptimError::NonFiniteObjective`] (with the coordinate as
/// `iteration`) when `f` is not finite at a perturbed point.
pub fn numeric_gradient<T: Real>(mut f: impl FnMut(&[T]) -> T, x: &[T], opts: &GradCheck) -> Result<Vec<f64>> {
    const OP: &str = "numeric_gradient";
    validate(OP, x, opts)?;
    central(OP, x, opts.h, |z| Ok(f(z).as_f64()))
}

/// Numeric vector–Jacobian product `∂⟨dy, F(x)⟩/∂x` by central differences (in `f64`).
///
/// # Errors
/// As [`numeric_gradient`], plus [`OptimError::LengthMismatch`] when `F` returns a vector whose
/// length differs from `dy`, and a non-finite error for NaN/Inf in `dy` or in an output of `F`.
pub fn numeric_vjp<T: Real>(
    mut f: impl FnMut(&[T]) -> Vec<T>,
    x: &[T],
    dy: &[T],
    opts: &GradCheck,
) -> Result<Vec<f64>> {
    const OP: &str = "numeric_vjp";
    validate(OP, x, opts)?;
    check_finite(OP, "dy", dy)?;
    central(OP, x, opts.h, |z| {
        let y = f(z);
        check_len(OP, "F(x)", dy.len(), y.len())?;
        check_finite(OP, "F(x)", &y)?;
        Ok(y.iter().zip(dy).map(|(a, b)| a.as_f64() * b.as_f64()).sum())
    })
}

fn report<T: Real>(analytic: &[T], numeric: &[f64], floor: f64) -> GradCheckReport {
    let mut rep = GradCheckReport {
        max_rel_error: 0.0,
        worst_index: 0,
        analytic: analytic[0].as_f64(),
        numeric: numeric[0],
        max_abs_error: 0.0,
        rel_errors: Vec::with_capacity(numeric.len()),
    };
    for (i, (a, &n)) in analytic.iter().zip(numeric).enumerate() {
        let a = a.as_f64();
        let r = relative_error(a, n, floor);
        let abs = (a - n).abs();
        rep.max_abs_error = if abs.is_nan() { f64::INFINITY } else { rep.max_abs_error.max(abs) };
        if r > rep.max_rel_error {
            (rep.max_rel_error, rep.worst_index, rep.analytic, rep.numeric) = (r, i, a, n);
        }
        rep.rel_errors.push(r);
    }
    rep
}

/// Check a claimed gradient `analytic` of `f` at `x`.
///
/// # Errors
/// As [`numeric_gradient`], plus [`OptimError::LengthMismatch`] when `analytic.len() != x.len()`.
/// A non-finite analytic entry is not an error: it is reported with relative error `+∞`.
pub fn check_gradient<T: Real>(
    f: impl FnMut(&[T]) -> T,
    x: &[T],
    analytic: &[T],
    opts: &GradCheck,
) -> Result<GradCheckReport> {
    check_len("check_gradient", "analytic gradient", x.len(), analytic.len())?;
    let numeric = numeric_gradient(f, x, opts)?;
    Ok(report(analytic, &numeric, opts.floor))
}

/// Check the gradient an [`Objective`] computes in [`Objective::value_grad`] at `x`.
///
/// # Errors
/// As [`check_gradient`]; [`OptimError::LengthMismatch`] when `x.len() != obj.dim()`.
pub fn check_objective<T: Real, O: Objective<T> + ?Sized>(
    obj: &O,
    x: &[T],
    opts: &GradCheck,
) -> Result<GradCheckReport> {
    check_len("check_objective", "x", obj.dim(), x.len())?;
    let mut g = vec![T::zero(); x.len()];
    let mut scratch = vec![T::zero(); x.len()];
    obj.value_grad(x, &mut g);
    check_gradient(|z: &[T]| obj.value_grad(z, &mut scratch), x, &g, opts)
}

/// Check a claimed vector–Jacobian product `dx = Jᵀ·dy` of `y = F(x)` at `x` — what a layer's
/// backward pass returns.
///
/// # Errors
/// As [`numeric_vjp`], plus [`OptimError::LengthMismatch`] when `dx.len() != x.len()`.
pub fn check_vjp<T: Real>(
    f: impl FnMut(&[T]) -> Vec<T>,
    x: &[T],
    dy: &[T],
    dx: &[T],
    opts: &GradCheck,
) -> Result<GradCheckReport> {
    check_len("check_vjp", "dx", x.len(), dx.len())?;
    let numeric = numeric_vjp(f, x, dy, opts)?;
    Ok(report(dx, &numeric, opts.floor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{FnObjective, LeastSquares};
    use latent_linalg::DMatrix;

    fn f(x: &[f64]) -> f64 {
        x.iter().enumerate().map(|(i, v)| (i as f64 + 1.0) * v.powi(3)).sum::<f64>() + x[0] * x[1]
    }

    fn grad(x: &[f64]) -> Vec<f64> {
        let mut g: Vec<f64> = x.iter().enumerate().map(|(i, v)| 3.0 * (i as f64 + 1.0) * v * v).collect();
        g[0] += x[1];
        g[1] += x[0];
        g
    }

    #[test]
    fn passes_right_gradient_and_catches_wrong_one() {
        let x = [0.3, -1.2, 2.0, 0.0];
        let rep = check_gradient(f, &x, &grad(&x), &GradCheck::default()).unwrap();
        assert!(rep.passes(1e-5), "{rep}");
        assert_eq!(rep.rel_errors.len(), 4);
        // forget the cross term in coordinate 1
        let mut wrong = grad(&x);
        wrong[1] -= x[0];
        let rep = check_gradient(f, &x, &wrong, &GradCheck::default()).unwrap();
        assert!(!rep.passes(1e-3), "{rep}");
        assert_eq!(rep.worst_index, 1);
        assert_eq!(rep.analytic, wrong[1]);
        assert!((rep.numeric - grad(&x)[1]).abs() < 1e-6);
        assert!(rep.to_string().contains("index 1"));
        // a NaN analytic entry fails
        let mut nan = grad(&x);
        nan[2] = f64::NAN;
        let rep = check_gradient(f, &x, &nan, &GradCheck::default()).unwrap();
        assert_eq!((rep.max_rel_error, rep.worst_index), (f64::INFINITY, 2));
        assert!(!rep.passes(1.0));
    }

    #[test]
    fn vjp_right_and_transposed_wrong() {
        let a = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, -1.0, 0.5, 0.0, 3.0]);
        let x = [0.1, 0.2, 0.3];
        let fwd = |z: &[f64]| (&a * latent_linalg::DVector::from_column_slice(z)).as_slice().to_vec();
        let dy = [1.0, -2.0];
        let right: Vec<f64> = (0..3).map(|j| a[(0, j)] * dy[0] + a[(1, j)] * dy[1]).collect();
        assert!(check_vjp(fwd, &x, &dy, &right, &GradCheck::default()).unwrap().passes(1e-8));
        let wrong = [a[(0, 0)] * dy[0] + a[(0, 1)] * dy[1], right[1], right[2]];
        let rep = check_vjp(fwd, &x, &dy, &wrong, &GradCheck::default()).unwrap();
        assert!(!rep.passes(1e-2), "{rep}");
        assert_eq!(rep.worst_index, 0);
    }

    #[test]
    fn checks_objectives_and_f32() {
        let a = DMatrix::from_row_slice(3, 2, &[1.0, 2.0, 0.0, 1.0, -1.0, 0.5]);
        let ls = LeastSquares::new(a, vec![0.5, -1.0, 2.0]).unwrap();
        assert!(check_objective(&ls, &[0.3, -0.7], &GradCheck::default()).unwrap().passes(1e-8));
        let bad = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
            g[0] = x[0];
            g[1] = x[1];
            x[0] * x[0] + x[1] * x[1]
        });
        assert!(!check_objective(&bad, &[1.0, 1.0], &GradCheck::default()).unwrap().passes(0.1));
        let x32 = [0.5f32, -0.25];
        let g32 = [2.0 * 0.5f32, 2.0 * -0.25];
        let rep = check_gradient(|z: &[f32]| z[0] * z[0] + z[1] * z[1], &x32, &g32, &GradCheck::f32()).unwrap();
        assert!(rep.passes(1e-2), "{rep}");
    }

    #[test]
    fn rejects_bad_input() {
        let g = GradCheck::default();
        assert!(matches!(check_gradient(f, &[], &[], &g), Err(OptimError::Empty { .. })));
        assert!(matches!(check_gradient(f, &[1.0, 2.0], &[1.0], &g), Err(OptimError::LengthMismatch { .. })));
        assert!(matches!(check_gradient(f, &[1.0, f64::NAN], &[1.0, 1.0], &g), Err(OptimError::Linalg(_))));
        assert!(matches!(
            check_gradient(f, &[1.0, 2.0], &[1.0, 1.0], &g.h(0.0)),
            Err(OptimError::InvalidParameter { name: "h", .. })
        ));
        assert!(matches!(
            check_gradient(f, &[1.0, 2.0], &[1.0, 1.0], &g.floor(-1.0)),
            Err(OptimError::InvalidParameter { name: "floor", .. })
        ));
        let log = |z: &[f64]| z[0].ln();
        assert!(matches!(
            check_gradient(log, &[0.0], &[1.0], &g),
            Err(OptimError::NonFiniteObjective { iteration: 0, .. })
        ));
        let short = |_: &[f64]| vec![1.0];
        assert!(matches!(
            check_vjp(short, &[1.0], &[1.0, 1.0], &[0.0], &g),
            Err(OptimError::LengthMismatch { what: "F(x)", .. })
        ));
        assert!(matches!(
            check_vjp(short, &[1.0], &[1.0], &[0.0, 1.0], &g),
            Err(OptimError::LengthMismatch { what: "dx", .. })
        ));
    }
}
