//! Proximal operators: `prox_{t·g}(x) = argmin_z g(z) + ‖z − x‖²/(2t)`.
//!
//! Every operator implements [`Prox`] (the map and the value of `g`); the convex ones also
//! implement [`ProxConjugate`], the prox of the convex conjugate `g*`, so the Moreau identity
//! `x = prox_{t·g}(x) + t·prox_{g*/t}(x/t)` can be checked.
//!
//! Indicator functions (projections) have value `0` inside the set and `+∞` outside.
//!
//! | operator | `g(x)` | `prox_{t·g}` |
//! |---|---|---|
//! | [`Zero`] | `0` | identity |
//! | [`L1`] | `λ‖x‖₁` | soft threshold at `tλ` |
//! | [`L1NonNeg`] | `λ·Σxᵢ + ι(x ≥ 0)` | `max(x − tλ, 0)` |
//! | [`L0`] | `λ‖x‖₀` | hard threshold at `√(2tλ)` |
//! | [`GroupL2`] | `λ Σ_g ‖x_g‖₂` (disjoint groups) | block soft threshold at `tλ` |
//! | [`L2Ball`] | `ι(‖x‖₂ ≤ r)` | radial projection |
//! | [`BoxConstraint`] | `ι(lo ≤ x ≤ hi)` | clamp |
//!
//! [`project_columns_l2_ball`] projects every column of a dictionary matrix onto the ball.

use crate::error::{OptimError, Result, check_nonneg, invalid};
use latent_linalg::{DMatrix, Real, check_finite, ops};

/// A proximal operator of a (possibly non-smooth, possibly extended-valued) function `g`.
pub trait Prox<T: Real> {
    /// In place: `x ← prox_{step·g}(x)`.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a negative or non-finite `step`, a non-finite error for
    /// NaN/Inf in `x`, and operator-specific shape errors.
    fn prox(&self, x: &mut [T], step: T) -> Result<()>;

    /// `g(x)`: `+∞` outside the domain of an indicator; NaN when `x` does not fit the operator
    /// (e.g. a group index past its end).
    fn value(&self, x: &[T]) -> T;

    /// For a separable `g` (one that acts on each coordinate on its own): apply the prox to
    /// `part`, the coordinates `offset..offset + part.len()` of the whole vector, exactly as
    /// [`Prox::prox`] would, and return `Some`. The proximal-gradient solvers then do the gradient
    /// step, the prox and the line-search terms in one pass over memory, chunk by chunk.
    ///
    /// The default returns `None` without touching `part`: the solvers call [`Prox::prox`] on the
    /// whole vector. An implementation must return `None` for every call or for none, and must
    /// give the same bits as [`Prox::prox`] (the solvers' results do not depend on the path).
    /// The solver has already checked `step` (finite, `>= 0`) and that the point is finite.
    ///
    /// # Errors
    /// Operator-specific shape errors (e.g. `offset + part.len()` past the operator's length).
    fn prox_part(&self, offset: usize, part: &mut [T], step: T) -> Option<Result<()>> {
        let _ = (offset, part, step);
        None
    }
}

/// The proximal map of the convex conjugate `g*` of a convex `g`.
pub trait ProxConjugate<T: Real>: Prox<T> {
    /// In place: `x ← prox_{sigma·g*}(x)`.
    ///
    /// # Errors
    /// As [`Prox::prox`].
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()>;
}

impl<T: Real, P: Prox<T> + ?Sized> Prox<T> for &P {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        (**self).prox(x, step)
    }
    fn value(&self, x: &[T]) -> T {
        (**self).value(x)
    }
    fn prox_part(&self, offset: usize, part: &mut [T], step: T) -> Option<Result<()>> {
        (**self).prox_part(offset, part, step)
    }
}

impl<T: Real, P: Prox<T> + ?Sized> Prox<T> for Box<P> {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        (**self).prox(x, step)
    }
    fn value(&self, x: &[T]) -> T {
        (**self).value(x)
    }
    fn prox_part(&self, offset: usize, part: &mut [T], step: T) -> Option<Result<()>> {
        (**self).prox_part(offset, part, step)
    }
}

/// Validate the step and the point.
fn check_input<T: Real>(op: &'static str, x: &[T], step: T) -> Result<()> {
    if !(step.finite() && step >= T::zero()) {
        return Err(invalid(op, "step", step, "must be finite and >= 0"));
    }
    check_finite(op, "x", x)?;
    Ok(())
}

fn check_lambda(op: &'static str, lambda: f64) -> Result<f64> {
    check_nonneg(op, "lambda", lambda)?;
    Ok(lambda)
}

// ---------------------------------------------------------------------------------------------

/// `g = 0`: the prox is the identity (turns FISTA into accelerated gradient descent).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Zero;

impl<T: Real> Prox<T> for Zero {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        check_input("Zero::prox", x, step)
    }
    fn value(&self, _x: &[T]) -> T {
        T::zero()
    }
    fn prox_part(&self, _offset: usize, _part: &mut [T], _step: T) -> Option<Result<()>> {
        Some(Ok(()))
    }
}

impl<T: Real> ProxConjugate<T> for Zero {
    /// `g* = ι({0})`: everything maps to 0.
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()> {
        check_input("Zero::prox_conjugate", x, sigma)?;
        x.iter_mut().for_each(|v| *v = T::zero());
        Ok(())
    }
}

/// `g(x) = λ‖x‖₁`; prox is the soft threshold at `step·λ` (`latent-linalg`'s kernel).
///
/// | name | meaning | range |
/// |---|---|---|
/// | `lambda` | penalty weight λ | finite, `>= 0` |
///
/// Conjugate: `g* = ι(‖y‖∞ ≤ λ)`, whose prox clips to `[−λ, λ]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L1 {
    lambda: f64,
}

impl L1 {
    /// Build.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a negative or non-finite `lambda`.
    pub fn new(lambda: f64) -> Result<Self> {
        Ok(Self { lambda: check_lambda("L1", lambda)? })
    }
    /// λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
}

impl<T: Real> Prox<T> for L1 {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        check_input("L1::prox", x, step)?;
        ops::soft_threshold(x, step * T::lit(self.lambda))?;
        Ok(())
    }
    fn value(&self, x: &[T]) -> T {
        T::lit(self.lambda) * ops::norm1(x)
    }
    fn prox_part(&self, _offset: usize, part: &mut [T], step: T) -> Option<Result<()>> {
        Some(ops::soft_threshold(part, step * T::lit(self.lambda)).map_err(Into::into))
    }
}

impl<T: Real> ProxConjugate<T> for L1 {
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()> {
        check_input("L1::prox_conjugate", x, sigma)?;
        let l = T::lit(self.lambda);
        x.iter_mut().for_each(|v| *v = v.clamp(-l, l));
        Ok(())
    }
}

/// `g(x) = λ·Σxᵢ + ι(x ≥ 0)` (non-negative lasso); prox is `max(x − step·λ, 0)`.
///
/// | name | meaning | range |
/// |---|---|---|
/// | `lambda` | penalty weight λ | finite, `>= 0` |
///
/// Conjugate: `g* = ι(y ≤ λ)`, whose prox is `min(y, λ)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L1NonNeg {
    lambda: f64,
}

impl L1NonNeg {
    /// Build.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a negative or non-finite `lambda`.
    pub fn new(lambda: f64) -> Result<Self> {
        Ok(Self { lambda: check_lambda("L1NonNeg", lambda)? })
    }
    /// λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
}

impl<T: Real> Prox<T> for L1NonNeg {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        check_input("L1NonNeg::prox", x, step)?;
        ops::soft_threshold_nonneg(x, step * T::lit(self.lambda))?;
        Ok(())
    }
    fn value(&self, x: &[T]) -> T {
        if x.iter().any(|v| *v < T::zero()) {
            return infinity();
        }
        T::lit(self.lambda) * x.iter().copied().sum::<T>()
    }
    fn prox_part(&self, _offset: usize, part: &mut [T], step: T) -> Option<Result<()>> {
        Some(ops::soft_threshold_nonneg(part, step * T::lit(self.lambda)).map_err(Into::into))
    }
}

impl<T: Real> ProxConjugate<T> for L1NonNeg {
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()> {
        check_input("L1NonNeg::prox_conjugate", x, sigma)?;
        let l = T::lit(self.lambda);
        x.iter_mut().for_each(|v| *v = v.min(l));
        Ok(())
    }
}

/// Positive infinity of `T`.
fn infinity<T: Real>() -> T {
    T::lit(f64::INFINITY)
}

/// `g(x) = λ‖x‖₀` (number of nonzeros); prox is the hard threshold at `√(2·step·λ)`
/// (entries with `|xᵢ| > √(2·step·λ)` are kept, the rest set to 0). Non-convex, so there is no
/// [`ProxConjugate`].
///
/// | name | meaning | range |
/// |---|---|---|
/// | `lambda` | penalty per nonzero λ | finite, `>= 0` |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L0 {
    lambda: f64,
}

impl L0 {
    /// Build.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a negative or non-finite `lambda`.
    pub fn new(lambda: f64) -> Result<Self> {
        Ok(Self { lambda: check_lambda("L0", lambda)? })
    }
    /// λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
}

impl<T: Real> Prox<T> for L0 {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        check_input("L0::prox", x, step)?;
        let t = (T::lit(2.0 * self.lambda) * step).sqrt();
        ops::hard_threshold(x, t)?;
        Ok(())
    }
    fn value(&self, x: &[T]) -> T {
        T::lit(self.lambda) * T::lit(ops::count_nonzero(x) as f64)
    }
}

/// Group lasso `g(x) = λ Σ_g ‖x_g‖₂` over disjoint groups of indices (e.g. neighbourhoods of a
/// topographic map). Coordinates in no group are not penalised. The prox shrinks each group's
/// norm by `step·λ` (block soft threshold): `x_g ← x_g·max(0, 1 − step·λ/‖x_g‖)`.
///
/// | name | meaning | range |
/// |---|---|---|
/// | `lambda` | penalty weight λ | finite, `>= 0` |
/// | `groups` | index lists | non-empty, pairwise disjoint, no repeats |
///
/// Conjugate: `g*` is the indicator of `‖y_g‖ ≤ λ` for every group and `y = 0` off the groups;
/// its prox projects each group onto the λ-ball and zeroes the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupL2 {
    lambda: f64,
    groups: Vec<Vec<usize>>,
    /// One past the largest index (the shortest vector the groups fit).
    min_len: usize,
}

impl GroupL2 {
    /// Build from explicit index lists.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a bad `lambda`; [`OptimError::InvalidGroups`] for an
    /// empty group or an index that appears twice.
    pub fn new(lambda: f64, groups: Vec<Vec<usize>>) -> Result<Self> {
        const OP: &str = "GroupL2::new";
        check_lambda(OP, lambda)?;
        // Sort (index, group) pairs to find repeats without allocating by the size of an index.
        let mut owned: Vec<(usize, usize)> = Vec::with_capacity(groups.iter().map(Vec::len).sum());
        for (gi, g) in groups.iter().enumerate() {
            if g.is_empty() {
                return Err(OptimError::InvalidGroups { op: OP, detail: format!("group {gi} is empty") });
            }
            owned.extend(g.iter().map(|&i| (i, gi)));
        }
        owned.sort_unstable();
        if let Some(w) = owned.windows(2).find(|w| w[0].0 == w[1].0) {
            let detail = format!("index {} appears in group {} and group {}", w[0].0, w[0].1, w[1].1);
            return Err(OptimError::InvalidGroups { op: OP, detail });
        }
        let min_len = match owned.last() {
            None => 0,
            Some(&(i, gi)) => i.checked_add(1).ok_or_else(|| OptimError::InvalidGroups {
                op: OP,
                detail: format!("index {i} in group {gi} is too large"),
            })?,
        };
        Ok(Self { lambda, groups, min_len })
    }

    /// Consecutive groups of `size` over `0..dim` (the last one shorter when `size ∤ dim`).
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a bad `lambda`, `size == 0` or `dim == 0`.
    pub fn contiguous(lambda: f64, dim: usize, size: usize) -> Result<Self> {
        if size == 0 {
            return Err(invalid("GroupL2::contiguous", "size", size, "must be >= 1"));
        }
        if dim == 0 {
            return Err(invalid("GroupL2::contiguous", "dim", dim, "must be >= 1"));
        }
        let groups = (0..dim).step_by(size).map(|s| (s..(s + size).min(dim)).collect()).collect();
        Self::new(lambda, groups)
    }

    /// Non-overlapping `block_rows × block_cols` tiles of a `rows × cols` map stored row-major
    /// (index `r·cols + c`), tiles listed row by row: the usual topographic pooling.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a bad `lambda`, a zero size, or a block size that
    /// does not divide the map.
    pub fn grid_blocks(lambda: f64, rows: usize, cols: usize, block_rows: usize, block_cols: usize) -> Result<Self> {
        const OP: &str = "GroupL2::grid_blocks";
        for (name, v) in [("rows", rows), ("cols", cols), ("block_rows", block_rows), ("block_cols", block_cols)] {
            if v == 0 {
                return Err(invalid(OP, name, v, "must be >= 1"));
            }
        }
        if !rows.is_multiple_of(block_rows) {
            return Err(invalid(OP, "block_rows", block_rows, "must divide rows"));
        }
        if !cols.is_multiple_of(block_cols) {
            return Err(invalid(OP, "block_cols", block_cols, "must divide cols"));
        }
        let mut groups = Vec::with_capacity((rows / block_rows) * (cols / block_cols));
        for br in (0..rows).step_by(block_rows) {
            for bc in (0..cols).step_by(block_cols) {
                let g = (br..br + block_rows).flat_map(|r| (bc..bc + block_cols).map(move |c| r * cols + c)).collect();
                groups.push(g);
            }
        }
        Self::new(lambda, groups)
    }

    /// λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
    /// The groups.
    pub fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    fn check_fits(&self, op: &'static str, len: usize) -> Result<()> {
        if len < self.min_len {
            let detail = format!("index {} is out of range for a vector of length {len}", self.min_len - 1);
            return Err(OptimError::InvalidGroups { op, detail });
        }
        Ok(())
    }
}

fn group_norm<T: Real>(x: &[T], g: &[usize]) -> T {
    g.iter().fold(T::zero(), |a, &i| a + x[i] * x[i]).sqrt()
}

impl<T: Real> Prox<T> for GroupL2 {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        const OP: &str = "GroupL2::prox";
        check_input(OP, x, step)?;
        self.check_fits(OP, x.len())?;
        let tau = step * T::lit(self.lambda);
        for g in &self.groups {
            let n = group_norm(x, g);
            let scale = if n > tau { T::one() - tau / n } else { T::zero() };
            g.iter().for_each(|&i| x[i] *= scale);
        }
        Ok(())
    }
    fn value(&self, x: &[T]) -> T {
        if x.len() < self.min_len {
            return T::lit(f64::NAN);
        }
        T::lit(self.lambda) * self.groups.iter().map(|g| group_norm(x, g)).sum::<T>()
    }
}

impl<T: Real> ProxConjugate<T> for GroupL2 {
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()> {
        const OP: &str = "GroupL2::prox_conjugate";
        check_input(OP, x, sigma)?;
        self.check_fits(OP, x.len())?;
        let l = T::lit(self.lambda);
        let mut covered = vec![false; x.len()];
        for g in &self.groups {
            let n = group_norm(x, g);
            let scale = if n > l { l / n } else { T::one() };
            for &i in g {
                x[i] *= scale;
                covered[i] = true;
            }
        }
        x.iter_mut().zip(&covered).filter(|(_, c)| !**c).for_each(|(v, _)| *v = T::zero());
        Ok(())
    }
}

/// Indicator of the Euclidean ball `‖x‖₂ ≤ r`; prox is the projection `x·min(1, r/‖x‖)`.
/// [`L2Ball::value`](Prox::value) counts points within a relative `1000·ε` of the sphere as inside, so
/// projected points always have value 0.
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `radius` | `1` ([`L2Ball::unit`]) | ball radius r | finite, `>= 0` |
///
/// Conjugate: `g* = r‖y‖₂`, whose prox is the block soft threshold `y·max(0, 1 − σr/‖y‖)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L2Ball {
    radius: f64,
}

impl L2Ball {
    /// Ball of the given radius.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] for a negative or non-finite radius.
    pub fn new(radius: f64) -> Result<Self> {
        check_nonneg("L2Ball", "radius", radius)?;
        Ok(Self { radius })
    }
    /// The unit ball.
    pub fn unit() -> Self {
        Self { radius: 1.0 }
    }
    /// r.
    pub fn radius(&self) -> f64 {
        self.radius
    }
}

impl<T: Real> Prox<T> for L2Ball {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        check_input("L2Ball::prox", x, step)?;
        let r = T::lit(self.radius);
        let n = ops::norm2(x);
        if n > r {
            let s = r / n;
            x.iter_mut().for_each(|v| *v *= s);
        }
        Ok(())
    }
    fn value(&self, x: &[T]) -> T {
        let r = T::lit(self.radius);
        if ops::norm2(x) <= r * (T::one() + T::lit(1e3) * T::EPS) { T::zero() } else { infinity() }
    }
}

impl<T: Real> ProxConjugate<T> for L2Ball {
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()> {
        check_input("L2Ball::prox_conjugate", x, sigma)?;
        let t = sigma * T::lit(self.radius);
        let n = ops::norm2(x);
        let s = if n > t { T::one() - t / n } else { T::zero() };
        x.iter_mut().for_each(|v| *v *= s);
        Ok(())
    }
}

/// Indicator of the box `lo ≤ xᵢ ≤ hi` (bounds may be infinite); prox is the clamp.
///
/// | name | meaning | range |
/// |---|---|---|
/// | `lo` | lower bound | not NaN, `< +∞`, `<= hi` |
/// | `hi` | upper bound | not NaN, `> −∞` |
///
/// Conjugate: the support function `g*(y) = Σ max(lo·yᵢ, hi·yᵢ)`, whose prox is
/// `y − σ·hi` where `y > σ·hi`, `y − σ·lo` where `y < σ·lo`, and 0 in between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxConstraint {
    lo: f64,
    hi: f64,
}

impl BoxConstraint {
    /// The box `[lo, hi]`.
    ///
    /// # Errors
    /// [`OptimError::InvalidParameter`] when a bound is NaN, `lo > hi`, `lo = +∞` or `hi = −∞`.
    pub fn new(lo: f64, hi: f64) -> Result<Self> {
        if lo.is_nan() || lo == f64::INFINITY {
            return Err(invalid("BoxConstraint", "lo", lo, "must not be NaN or +inf"));
        }
        if hi.is_nan() || hi == f64::NEG_INFINITY || hi < lo {
            return Err(invalid("BoxConstraint", "hi", hi, "must not be NaN or -inf and must be >= lo"));
        }
        Ok(Self { lo, hi })
    }
    /// The non-negative orthant `[0, +∞)`.
    pub fn nonneg() -> Self {
        Self { lo: 0.0, hi: f64::INFINITY }
    }
    /// Lower bound.
    pub fn lo(&self) -> f64 {
        self.lo
    }
    /// Upper bound.
    pub fn hi(&self) -> f64 {
        self.hi
    }
}

impl<T: Real> Prox<T> for BoxConstraint {
    fn prox(&self, x: &mut [T], step: T) -> Result<()> {
        check_input("BoxConstraint::prox", x, step)?;
        let (lo, hi) = (T::lit(self.lo), T::lit(self.hi));
        x.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
        Ok(())
    }
    fn value(&self, x: &[T]) -> T {
        let (lo, hi) = (T::lit(self.lo), T::lit(self.hi));
        if x.iter().all(|v| *v >= lo && *v <= hi) { T::zero() } else { infinity() }
    }
    fn prox_part(&self, _offset: usize, part: &mut [T], _step: T) -> Option<Result<()>> {
        let (lo, hi) = (T::lit(self.lo), T::lit(self.hi));
        part.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
        Some(Ok(()))
    }
}

impl<T: Real> ProxConjugate<T> for BoxConstraint {
    fn prox_conjugate(&self, x: &mut [T], sigma: T) -> Result<()> {
        check_input("BoxConstraint::prox_conjugate", x, sigma)?;
        let (lo, hi) = (T::lit(self.lo), T::lit(self.hi));
        for v in x.iter_mut() {
            // Compare v/σ with the bounds without dividing (σ may be 0).
            *v = if *v > sigma * hi {
                *v - sigma * hi
            } else if *v < sigma * lo {
                *v - sigma * lo
            } else {
                T::zero()
            };
        }
        Ok(())
    }
}

/// Project every column of `m` onto the ball `‖·‖₂ ≤ radius` in place (columns already inside
/// are untouched) and return the former column norms. The usual constraint on dictionary atoms.
///
/// # Errors
/// [`OptimError::InvalidParameter`] for a negative or non-finite radius; a non-finite error for
/// NaN/Inf in `m`.
///
/// # Example
/// ```
/// use latent_linalg::DMatrix;
/// use latent_optim::prox::project_columns_l2_ball;
/// let mut d = DMatrix::from_column_slice(2, 2, &[3.0f64, 4.0, 0.3, 0.4]);
/// let norms = project_columns_l2_ball(&mut d, 1.0).unwrap();
/// assert_eq!(norms, vec![5.0, 0.5]);
/// let want = [0.6, 0.8, 0.3, 0.4];
/// assert!(d.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15));
/// ```
pub fn project_columns_l2_ball<T: Real>(m: &mut DMatrix<T>, radius: T) -> Result<Vec<T>> {
    const OP: &str = "project_columns_l2_ball";
    if !(radius.finite() && radius >= T::zero()) {
        return Err(invalid(OP, "radius", radius, "must be finite and >= 0"));
    }
    check_finite(OP, "matrix", m.as_slice())?;
    let norms = ops::column_norms(m);
    for (j, &n) in norms.iter().enumerate() {
        if n > radius {
            let s = radius / n;
            m.column_mut(j).iter_mut().for_each(|v| *v *= s);
        }
    }
    Ok(norms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_family_values_and_maps() {
        let mut x = vec![3.0f64, -0.5, 1.0, -2.0];
        let l1 = L1::new(0.5).unwrap();
        assert_eq!(Prox::<f64>::value(&l1, &x), 3.25);
        l1.prox(&mut x, 2.0).unwrap();
        assert_eq!(x, vec![2.0, 0.0, 0.0, -1.0]);

        let mut y = vec![3.0f32, -0.5, 1.0];
        let nn = L1NonNeg::new(1.0).unwrap();
        assert_eq!(Prox::<f32>::value(&nn, &y), f32::INFINITY);
        nn.prox(&mut y, 0.5).unwrap();
        assert_eq!(y, vec![2.5, 0.0, 0.5]);
        assert_eq!(nn.value(&y), 3.0);

        // hard threshold at √(2·0.5·2) = √2
        let mut z = vec![1.5f64, -1.4, 0.0, -3.0];
        let l0 = L0::new(0.5).unwrap();
        l0.prox(&mut z, 2.0).unwrap();
        assert_eq!(z, vec![1.5, 0.0, 0.0, -3.0]);
        assert_eq!(l0.value(&z), 1.0);
    }

    #[test]
    fn projections_and_indicator_values() {
        let b = L2Ball::unit();
        let mut x = vec![3.0f64, 4.0];
        assert_eq!(b.value(&x), f64::INFINITY);
        b.prox(&mut x, 1.0).unwrap();
        assert!((x[0] - 0.6).abs() < 1e-15 && (x[1] - 0.8).abs() < 1e-15);
        assert_eq!(b.value(&x), 0.0);

        let bx = BoxConstraint::new(-1.0, 2.0).unwrap();
        let mut y = vec![-3.0f32, 0.5, 7.0];
        assert_eq!(bx.value(&y), f32::INFINITY);
        bx.prox(&mut y, 1.0).unwrap();
        assert_eq!(y, vec![-1.0, 0.5, 2.0]);
        assert_eq!(bx.value(&y), 0.0);
        let mut z = vec![-3.0f64, 4.0];
        BoxConstraint::nonneg().prox(&mut z, 1.0).unwrap();
        assert_eq!(z, vec![0.0, 4.0]);
    }

    #[test]
    fn group_l2_block_threshold() {
        let g = GroupL2::new(1.0, vec![vec![0, 1], vec![3]]).unwrap();
        let mut x = vec![3.0f64, 4.0, 9.0, 0.5];
        assert_eq!(g.value(&x), 5.5);
        g.prox(&mut x, 2.0).unwrap();
        // group {0,1}: norm 5 → scale 1 − 2/5; index 2 free; group {3}: 0.5 ≤ 2 → 0
        assert!((x[0] - 1.8).abs() < 1e-15 && (x[1] - 2.4).abs() < 1e-15);
        assert_eq!(&x[2..], &[9.0, 0.0]);
        assert!(Prox::<f64>::value(&g, &[1.0, 2.0]).is_nan());
        assert!(matches!(g.prox(&mut [1.0f64, 2.0], 1.0), Err(OptimError::InvalidGroups { .. })));
    }

    #[test]
    fn group_constructors() {
        let c = GroupL2::contiguous(1.0, 5, 2).unwrap();
        assert_eq!(c.groups(), &[vec![0, 1], vec![2, 3], vec![4]]);
        let t = GroupL2::grid_blocks(1.0, 4, 4, 2, 2).unwrap();
        assert_eq!(t.groups().len(), 4);
        assert_eq!(t.groups()[1], vec![2, 3, 6, 7]);
        assert!(matches!(GroupL2::new(1.0, vec![vec![0, 1], vec![1]]), Err(OptimError::InvalidGroups { .. })));
        assert!(matches!(GroupL2::new(1.0, vec![vec![0, 0]]), Err(OptimError::InvalidGroups { .. })));
        assert!(matches!(GroupL2::new(1.0, vec![vec![]]), Err(OptimError::InvalidGroups { .. })));
        assert!(matches!(GroupL2::new(1.0, vec![vec![usize::MAX]]), Err(OptimError::InvalidGroups { .. })));
        let far = GroupL2::new(1.0, vec![vec![1 << 40]]).unwrap();
        assert!(matches!(far.prox(&mut [1.0f64], 1.0), Err(OptimError::InvalidGroups { .. })));
        let e = GroupL2::new(1.0, vec![vec![4, 1], vec![2, 4]]).unwrap_err();
        assert!(e.to_string().contains("index 4 appears in group 0 and group 1"), "{e}");
        assert_eq!(GroupL2::new(1.0, vec![]).unwrap().groups().len(), 0);
        assert!(matches!(
            GroupL2::grid_blocks(1.0, 4, 5, 2, 2),
            Err(OptimError::InvalidParameter { name: "block_cols", .. })
        ));
        assert!(matches!(GroupL2::contiguous(1.0, 5, 0), Err(OptimError::InvalidParameter { name: "size", .. })));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(matches!(L1::new(-1.0), Err(OptimError::InvalidParameter { name: "lambda", .. })));
        assert!(matches!(L0::new(f64::NAN), Err(OptimError::InvalidParameter { name: "lambda", .. })));
        assert!(matches!(L2Ball::new(-1.0), Err(OptimError::InvalidParameter { name: "radius", .. })));
        assert!(matches!(BoxConstraint::new(1.0, 0.0), Err(OptimError::InvalidParameter { name: "hi", .. })));
        assert!(matches!(
            BoxConstraint::new(f64::INFINITY, f64::INFINITY),
            Err(OptimError::InvalidParameter { name: "lo", .. })
        ));
        let l1 = L1::new(1.0).unwrap();
        assert!(matches!(l1.prox(&mut [1.0f64], -1.0), Err(OptimError::InvalidParameter { name: "step", .. })));
        let e = l1.prox(&mut [1.0f64, f64::NAN], 1.0).unwrap_err();
        assert!(
            matches!(e, OptimError::Linalg(latent_linalg::LinalgError::NonFinite { what: "x", index: 1, .. })),
            "{e}"
        );
        let mut empty: [f64; 0] = [];
        l1.prox(&mut empty, 1.0).unwrap();
        let mut m = DMatrix::from_element(2, 2, f64::NAN);
        assert!(project_columns_l2_ball(&mut m, 1.0).is_err());
        assert!(project_columns_l2_ball(&mut DMatrix::<f64>::zeros(2, 2), -1.0).is_err());
    }

    #[test]
    fn prox_through_references_and_boxes() {
        let ops: Vec<Box<dyn Prox<f64> + Sync>> = vec![Box::new(Zero), Box::new(L1::new(1.0).unwrap())];
        let mut x = vec![2.0, -2.0];
        for p in &ops {
            p.prox(&mut x, 0.5).unwrap();
        }
        assert_eq!(x, vec![1.5, -1.5]);
        // through the `&P` and `Box<P>` impls
        fn value_of<P: Prox<f64>>(p: P, x: &[f64]) -> f64 {
            p.value(x)
        }
        assert_eq!(value_of(&ops[1], &x), 3.0);
    }
}
