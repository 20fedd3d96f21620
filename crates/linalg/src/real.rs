//! The scalar trait every numeric algorithm in latent is generic over.

use nalgebra::RealField;

/// A real floating-point scalar: `f32` or `f64`.
///
/// It carries nalgebra's [`RealField`] (so `sqrt`, `abs`, `max`, ... are available through it)
/// and the hook that routes dense products to the fastest kernel for the type.
pub trait Real:
    RealField
    + Copy
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + std::fmt::Display
    + std::iter::Sum
    + serde::Serialize
    + for<'de> serde::Deserialize<'de>
    + 'static
{
    /// Type name used in benchmark ids and file headers (`"f32"` or `"f64"`).
    const NAME: &'static str;
    /// Machine epsilon.
    const EPS: Self;
    /// Convert an `f64` literal (rounding for `f32`).
    fn lit(v: f64) -> Self;
    /// Convert to `f64` exactly (widening for `f32`).
    fn as_f64(self) -> f64;
    /// Convert a count.
    fn from_count(n: usize) -> Self {
        Self::lit(n as f64)
    }
    /// `true` when neither NaN nor infinite.
    fn finite(self) -> bool;
    /// `true` for NaN.
    fn isnan(self) -> bool;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const EPS: Self = f32::EPSILON;
    #[inline(always)]
    fn lit(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn isnan(self) -> bool {
        self.is_nan()
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const EPS: Self = f64::EPSILON;
    #[inline(always)]
    fn lit(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn isnan(self) -> bool {
        self.is_nan()
    }
}
