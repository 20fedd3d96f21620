//! Smooth objectives: the [`Objective`] trait and a few ready-made objectives.
//!
//! An objective is anything that returns a value and writes a gradient. The composite solvers
//! ([`crate::solver`]) minimise `f(x) + g(x)` with `f` an [`Objective`] and `g` a
//! [`Prox`](crate::prox::Prox).

use crate::error::{OptimError, Result, check_len, invalid};
use latent_linalg::{DMatrix, MatMut, MatRef, Real, check_finite, gemm_view, ops};

/// A differentiable function of `dim()` variables.
///
/// Two required methods; [`Objective::value`] has a default that calls
/// [`Objective::value_grad`] with a scratch gradient and may be overridden when a value alone is
/// cheaper.
///
/// Implementations must not panic on slices of the wrong length: return NaN instead (the solvers
/// check lengths before calling, and treat a NaN as an error).
pub trait Objective<T: Real> {
    /// Number of variables.
    fn dim(&self) -> usize;

    /// Value at `x`; the gradient at `x` is written into `grad` (same length as `x`).
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T;

    /// Value at `x`.
    fn value(&self, x: &[T]) -> T {
        let mut g = vec![T::zero(); x.len()];
        self.value_grad(x, &mut g)
    }
}

impl<T: Real, O: Objective<T> + ?Sized> Objective<T> for &O {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T {
        (**self).value_grad(x, grad)
    }
    fn value(&self, x: &[T]) -> T {
        (**self).value(x)
    }
}

/// An [`Objective`] from a closure `|x, grad| -> value`.
///
/// The closure is only called with `x.len() == grad.len() == dim`; other lengths give NaN.
///
/// # Example
/// ```
/// use latent_optim::objective::{FnObjective, Objective};
/// // f(x) = ½‖x‖²
/// let f = FnObjective::new(2, |x: &[f64], g: &mut [f64]| {
///     g.copy_from_slice(x);
///     0.5 * x.iter().map(|v| v * v).sum::<f64>()
/// });
/// let mut g = [0.0; 2];
/// assert_eq!(f.value_grad(&[1.0, 2.0], &mut g), 2.5);
/// assert_eq!(g, [1.0, 2.0]);
/// ```
#[derive(Clone)]
pub struct FnObjective<F> {
    dim: usize,
    f: F,
}

impl<F> FnObjective<F> {
    /// Wrap `f` as an objective of `dim` variables.
    pub fn new(dim: usize, f: F) -> Self {
        Self { dim, f }
    }
}

impl<F> std::fmt::Debug for FnObjective<F> {
    fn fmt(&self, fmt: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt.debug_struct("FnObjective").field("dim", &self.dim).finish_non_exhaustive()
    }
}

impl<T: Real, F: Fn(&[T], &mut [T]) -> T> Objective<T> for FnObjective<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T {
        if x.len() != self.dim || grad.len() != self.dim {
            return T::lit(f64::NAN);
        }
        (self.f)(x, grad)
    }
}

/// Separable weighted quadratic `f(x) = ½ Σᵢ wᵢ (xᵢ − bᵢ)²`.
///
/// With `g = λ‖x‖₁` its composite minimiser is `xᵢ = soft(bᵢ, λ/wᵢ)` in closed form, which makes
/// it the reference problem for the solver tests.
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `w` | per-coordinate curvature | finite, `>= 0` |
/// | `b` | centre | finite, same length as `w` |
#[derive(Debug, Clone, PartialEq)]
pub struct SeparableQuadratic<T> {
    w: Vec<T>,
    b: Vec<T>,
}

impl<T: Real> SeparableQuadratic<T> {
    /// Build from weights and centre.
    ///
    /// # Errors
    /// [`OptimError::Empty`] for empty input, [`OptimError::LengthMismatch`] when the lengths
    /// differ, a non-finite error for NaN/Inf, [`OptimError::InvalidParameter`] for a negative weight.
    pub fn new(w: Vec<T>, b: Vec<T>) -> Result<Self> {
        const OP: &str = "SeparableQuadratic::new";
        if w.is_empty() {
            return Err(OptimError::Empty { op: OP, what: "w" });
        }
        check_len(OP, "b", w.len(), b.len())?;
        check_finite(OP, "w", &w)?;
        check_finite(OP, "b", &b)?;
        if let Some(i) = w.iter().position(|v| *v < T::zero()) {
            return Err(invalid(OP, "w", format!("{} at index {i}", w[i]), "weights must be >= 0"));
        }
        Ok(Self { w, b })
    }
    /// The weights.
    pub fn weights(&self) -> &[T] {
        &self.w
    }
    /// The centre.
    pub fn center(&self) -> &[T] {
        &self.b
    }
    /// Lipschitz constant of the gradient, `max wᵢ`.
    pub fn lipschitz(&self) -> T {
        self.w.iter().fold(T::zero(), |a, &v| a.max(v))
    }
}

impl<T: Real> Objective<T> for SeparableQuadratic<T> {
    fn dim(&self) -> usize {
        self.w.len()
    }
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T {
        if x.len() != self.w.len() || grad.len() != self.w.len() {
            return T::lit(f64::NAN);
        }
        let mut s = T::zero();
        for i in 0..x.len() {
            let d = x[i] - self.b[i];
            grad[i] = self.w[i] * d;
            s += grad[i] * d;
        }
        s * T::lit(0.5)
    }
    fn value(&self, x: &[T]) -> T {
        if x.len() != self.w.len() {
            return T::lit(f64::NAN);
        }
        let s: T = x.iter().zip(&self.b).zip(&self.w).map(|((&x, &b), &w)| w * (x - b) * (x - b)).sum();
        s * T::lit(0.5)
    }
}

/// Least squares `f(x) = ½‖A x − b‖²` with gradient `Aᵀ(A x − b)`: the data term of sparse
/// coding (`A` the dictionary, `b` the signal, `x` the code).
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `a` | `m × n` matrix (dictionary) | finite, non-empty |
/// | `b` | target of length `m` | finite |
#[derive(Debug, Clone, PartialEq)]
pub struct LeastSquares<T: Real> {
    a: DMatrix<T>,
    b: Vec<T>,
}

impl<T: Real> LeastSquares<T> {
    /// Build from the matrix and the target.
    ///
    /// # Errors
    /// [`OptimError::Empty`] when `a` has no rows or columns, [`OptimError::LengthMismatch`] when
    /// `b.len() != a.nrows()`, a non-finite error for NaN/Inf.
    pub fn new(a: DMatrix<T>, b: Vec<T>) -> Result<Self> {
        const OP: &str = "LeastSquares::new";
        if a.nrows() == 0 || a.ncols() == 0 {
            return Err(OptimError::Empty { op: OP, what: "a" });
        }
        check_len(OP, "b", a.nrows(), b.len())?;
        check_finite(OP, "a", a.as_slice())?;
        check_finite(OP, "b", &b)?;
        Ok(Self { a, b })
    }
    /// The matrix.
    pub fn matrix(&self) -> &DMatrix<T> {
        &self.a
    }
    /// The target.
    pub fn target(&self) -> &[T] {
        &self.b
    }
    /// Replace the target (e.g. the next signal to code with the same dictionary).
    ///
    /// # Errors
    /// [`OptimError::LengthMismatch`] or a non-finite error.
    pub fn set_target(&mut self, b: &[T]) -> Result<()> {
        check_len("LeastSquares::set_target", "b", self.a.nrows(), b.len())?;
        check_finite("LeastSquares::set_target", "b", b)?;
        self.b.copy_from_slice(b);
        Ok(())
    }
    /// Residual `A x − b` into `r` (lengths checked by the caller).
    fn residual(&self, x: &[T], r: &mut [T]) -> Option<()> {
        let (m, n) = self.a.shape();
        r.copy_from_slice(&self.b);
        let xv = MatRef::col_major(x, n, 1).ok()?;
        let rv = MatMut::col_major(r, m, 1).ok()?;
        gemm_view(T::one(), MatRef::from_dmatrix(&self.a), xv, -T::one(), rv).ok()
    }
    /// Lipschitz constant of the gradient, `‖A‖₂²`, estimated by (deterministic) power iteration
    /// on `AᵀA` (at most 100 iterations, relative tolerance `1e-6`). The estimate approaches the
    /// true value from below; use a small safety factor or backtracking with a fixed step.
    pub fn lipschitz(&self) -> T {
        let (m, n) = self.a.shape();
        let mut r = vec![T::zero(); m];
        power_iteration(n, |v, out| {
            let ok = (|| {
                gemm_view(
                    T::one(),
                    MatRef::from_dmatrix(&self.a),
                    MatRef::col_major(v, n, 1).ok()?,
                    T::zero(),
                    MatMut::col_major(&mut r, m, 1).ok()?,
                )
                .ok()?;
                gemm_view(
                    T::one(),
                    MatRef::from_dmatrix(&self.a).t(),
                    MatRef::col_major(&r, m, 1).ok()?,
                    T::zero(),
                    MatMut::col_major(out, n, 1).ok()?,
                )
                .ok()
            })();
            if ok.is_none() {
                out.iter_mut().for_each(|o| *o = T::zero());
            }
        })
    }
}

impl<T: Real> Objective<T> for LeastSquares<T> {
    fn dim(&self) -> usize {
        self.a.ncols()
    }
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T {
        let (m, n) = self.a.shape();
        if x.len() != n || grad.len() != n {
            return T::lit(f64::NAN);
        }
        let mut r = vec![T::zero(); m];
        let ok = self.residual(x, &mut r).and_then(|_| {
            gemm_view(
                T::one(),
                MatRef::from_dmatrix(&self.a).t(),
                MatRef::col_major(&r, m, 1).ok()?,
                T::zero(),
                MatMut::col_major(grad, n, 1).ok()?,
            )
            .ok()
        });
        match ok {
            Some(()) => ops::norm2_sq(&r) * T::lit(0.5),
            None => T::lit(f64::NAN),
        }
    }
    fn value(&self, x: &[T]) -> T {
        if x.len() != self.a.ncols() {
            return T::lit(f64::NAN);
        }
        let mut r = vec![T::zero(); self.a.nrows()];
        match self.residual(x, &mut r) {
            Some(()) => ops::norm2_sq(&r) * T::lit(0.5),
            None => T::lit(f64::NAN),
        }
    }
}

/// Quadratic `f(x) = ½ xᵀ A x − bᵀ x + c` with symmetric `A`, gradient `A x − b`. Strongly
/// convex when `A` is positive definite. With `A = DᵀD`, `b = Dᵀs`, `c = ½‖s‖²` it is the
/// least-squares term `½‖D x − s‖²` in Gram form.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `a` | — | `n × n` symmetric matrix | finite, symmetric to within `1e3·ε·max|aᵢⱼ|` |
/// | `b` | — | linear term of length `n` | finite |
/// | `c` | `0` | constant ([`Quadratic::with_constant`]) | finite |
#[derive(Debug, Clone, PartialEq)]
pub struct Quadratic<T: Real> {
    a: DMatrix<T>,
    b: Vec<T>,
    c: T,
}

impl<T: Real> Quadratic<T> {
    /// Build from `A` and `b`.
    ///
    /// # Errors
    /// [`OptimError::Empty`], [`OptimError::LengthMismatch`] (non-square `A` or wrong `b`),
    /// a non-finite error, or [`OptimError::InvalidParameter`] when `A` is not symmetric.
    pub fn new(a: DMatrix<T>, b: Vec<T>) -> Result<Self> {
        const OP: &str = "Quadratic::new";
        let n = a.nrows();
        if n == 0 {
            return Err(OptimError::Empty { op: OP, what: "a" });
        }
        check_len(OP, "columns of a", n, a.ncols())?;
        check_len(OP, "b", n, b.len())?;
        check_finite(OP, "a", a.as_slice())?;
        check_finite(OP, "b", &b)?;
        let scale = a.iter().fold(T::zero(), |m, v| m.max(v.abs()));
        let tol = T::lit(1e3) * T::EPS * scale;
        for j in 0..n {
            for i in 0..j {
                if (a[(i, j)] - a[(j, i)]).abs() > tol {
                    return Err(invalid(
                        OP,
                        "a",
                        format!("a[({i}, {j})] = {} vs a[({j}, {i})] = {}", a[(i, j)], a[(j, i)]),
                        "must be symmetric",
                    ));
                }
            }
        }
        Ok(Self { a, b, c: T::zero() })
    }
    /// Set the constant term `c`.
    ///
    /// # Errors
    /// A non-finite error for NaN/Inf.
    pub fn with_constant(mut self, c: T) -> Result<Self> {
        check_finite("Quadratic::with_constant", "c", &[c])?;
        self.c = c;
        Ok(self)
    }
    /// Replace the linear term (e.g. the next signal's correlations), keeping the validated `A`.
    ///
    /// # Errors
    /// [`OptimError::LengthMismatch`] or a non-finite error.
    pub fn set_linear(&mut self, b: &[T]) -> Result<()> {
        check_len("Quadratic::set_linear", "b", self.a.nrows(), b.len())?;
        check_finite("Quadratic::set_linear", "b", b)?;
        self.b.copy_from_slice(b);
        Ok(())
    }
    /// The constant term.
    pub fn constant(&self) -> T {
        self.c
    }
    /// The matrix.
    pub fn matrix(&self) -> &DMatrix<T> {
        &self.a
    }
    /// The linear term.
    pub fn linear(&self) -> &[T] {
        &self.b
    }
    /// Lipschitz constant of the gradient, `max |λ(A)|`, estimated by deterministic power
    /// iteration (at most 100 iterations, relative tolerance `1e-6`, approached from below).
    pub fn lipschitz(&self) -> T {
        let n = self.a.nrows();
        power_iteration(n, |v, out| {
            let ok = (|| {
                gemm_view(
                    T::one(),
                    MatRef::from_dmatrix(&self.a),
                    MatRef::col_major(v, n, 1).ok()?,
                    T::zero(),
                    MatMut::col_major(out, n, 1).ok()?,
                )
                .ok()
            })();
            if ok.is_none() {
                out.iter_mut().for_each(|o| *o = T::zero());
            }
        })
    }
}

impl<T: Real> Objective<T> for Quadratic<T> {
    fn dim(&self) -> usize {
        self.a.nrows()
    }
    fn value_grad(&self, x: &[T], grad: &mut [T]) -> T {
        let n = self.a.nrows();
        if x.len() != n || grad.len() != n {
            return T::lit(f64::NAN);
        }
        grad.copy_from_slice(&self.b);
        let ok = (|| {
            gemm_view(
                T::one(),
                MatRef::from_dmatrix(&self.a),
                MatRef::col_major(x, n, 1).ok()?,
                -T::one(),
                MatMut::col_major(grad, n, 1).ok()?,
            )
            .ok()
        })();
        match ok {
            // ½xᵀAx − bᵀx = ½xᵀ(Ax − b) − ½bᵀx
            Some(()) => T::lit(0.5) * (ops::dot_unchecked(x, grad) - ops::dot_unchecked(x, &self.b)) + self.c,
            None => T::lit(f64::NAN),
        }
    }
}

/// Largest `‖Op v‖/‖v‖` by power iteration from a fixed, non-degenerate start vector.
fn power_iteration<T: Real>(n: usize, mut op: impl FnMut(&[T], &mut [T])) -> T {
    if n == 0 {
        return T::zero();
    }
    // Deterministic start with no special structure (all entries positive and distinct).
    let mut v: Vec<T> = (0..n).map(|i| T::lit(1.0 + ((i * 7919 + 13) % 101) as f64 / 101.0)).collect();
    let nv = ops::norm2(&v);
    v.iter_mut().for_each(|x| *x /= nv);
    let mut w = vec![T::zero(); n];
    let mut est = T::zero();
    for _ in 0..100 {
        op(&v, &mut w);
        let nw = ops::norm2(&w);
        if !nw.finite() {
            return nw;
        }
        if nw == T::zero() {
            return T::zero();
        }
        let done = (nw - est).abs() <= T::lit(1e-6) * nw;
        est = nw;
        for (vi, &wi) in v.iter_mut().zip(&w) {
            *vi = wi / nw;
        }
        if done {
            break;
        }
    }
    est
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_value_and_gradient() {
        let a = DMatrix::from_row_slice(3, 2, &[1.0f64, 2.0, 0.0, 1.0, 1.0, 0.0]);
        let f = LeastSquares::new(a, vec![1.0, 1.0, 1.0]).unwrap();
        let x = [1.0, 1.0];
        // Ax − b = [2, 0, 0]
        let mut g = [0.0; 2];
        assert_eq!(f.value_grad(&x, &mut g), 2.0);
        assert_eq!(g, [2.0, 4.0]);
        assert_eq!(f.value(&x), 2.0);
        assert!(f.value(&[1.0]).is_nan());
        assert!(f.value_grad(&x, &mut [0.0; 3]).is_nan());
    }

    #[test]
    fn lipschitz_estimates_match_known_spectra() {
        let a = DMatrix::from_diagonal(&latent_linalg::DVector::from_vec(vec![3.0f64, -1.0, 2.0]));
        let q = Quadratic::new(a.clone(), vec![0.0; 3]).unwrap();
        assert!((q.lipschitz() - 3.0).abs() < 1e-4, "{}", q.lipschitz());
        let ls = LeastSquares::new(a, vec![0.0; 3]).unwrap();
        assert!((ls.lipschitz() - 9.0).abs() < 1e-3, "{}", ls.lipschitz());
        let sq = SeparableQuadratic::new(vec![0.5, 4.0], vec![0.0, 0.0]).unwrap();
        assert_eq!(sq.lipschitz(), 4.0);
    }

    #[test]
    fn constructors_reject_bad_input() {
        assert!(matches!(SeparableQuadratic::<f64>::new(vec![], vec![]), Err(OptimError::Empty { .. })));
        assert!(matches!(SeparableQuadratic::new(vec![1.0], vec![1.0, 2.0]), Err(OptimError::LengthMismatch { .. })));
        assert!(matches!(
            SeparableQuadratic::new(vec![-1.0], vec![1.0]),
            Err(OptimError::InvalidParameter { name: "w", .. })
        ));
        assert!(matches!(
            SeparableQuadratic::new(vec![1.0, f64::NAN], vec![1.0, 2.0]),
            Err(OptimError::Linalg(latent_linalg::LinalgError::NonFinite { what: "w", index: 1, .. }))
        ));
        let ns = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 0.0, 1.0]);
        assert!(matches!(Quadratic::new(ns, vec![0.0; 2]), Err(OptimError::InvalidParameter { name: "a", .. })));
        assert!(matches!(
            Quadratic::new(DMatrix::<f64>::zeros(2, 3), vec![0.0; 2]),
            Err(OptimError::LengthMismatch { .. })
        ));
        assert!(matches!(LeastSquares::new(DMatrix::<f32>::zeros(0, 3), vec![]), Err(OptimError::Empty { .. })));
        assert!(matches!(
            LeastSquares::new(DMatrix::<f32>::zeros(2, 3), vec![0.0]),
            Err(OptimError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn gram_form_matches_least_squares() {
        let d = DMatrix::from_row_slice(3, 2, &[1.0f64, 2.0, 0.0, 1.0, -1.0, 0.5]);
        let s = vec![0.5, -1.0, 2.0];
        let ls = LeastSquares::new(d.clone(), s.clone()).unwrap();
        let b = (d.transpose() * latent_linalg::DVector::from_vec(s.clone())).as_slice().to_vec();
        let q = Quadratic::new(d.transpose() * &d, b).unwrap().with_constant(0.5 * ops::norm2_sq(&s)).unwrap();
        let x = [0.3, -0.7];
        let (mut g1, mut g2) = ([0.0; 2], [0.0; 2]);
        assert!((ls.value_grad(&x, &mut g1) - q.value_grad(&x, &mut g2)).abs() < 1e-12);
        assert!(g1.iter().zip(&g2).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn quadratic_value_gradient() {
        let a = DMatrix::from_row_slice(2, 2, &[2.0f32, 1.0, 1.0, 3.0]);
        let q = Quadratic::new(a, vec![1.0, -1.0]).unwrap();
        let mut g = [0.0f32; 2];
        // x = [1, 2]: Ax = [4, 7]; ½xᵀAx = ½(4 + 14) = 9; bᵀx = −1 → f = 10
        let v = q.value_grad(&[1.0, 2.0], &mut g);
        assert!((v - 10.0).abs() < 1e-6);
        assert_eq!(g, [3.0, 8.0]);
        let mut q = q.with_constant(0.5).unwrap();
        q.set_linear(&[0.0, 0.0]).unwrap();
        assert!((q.value(&[1.0, 2.0]) - 9.5).abs() < 1e-6);
        assert!(q.set_linear(&[0.0]).is_err());
        assert!(q.clone().with_constant(f32::NAN).is_err());
    }
}
