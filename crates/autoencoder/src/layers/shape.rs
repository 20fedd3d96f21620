//! Shape-only layers: flatten and reshape.

use crate::error::{Result, format_err, invalid, shape_err};
use crate::layer::{Layer, Mode, expect_shape};
use latent_linalg::{Real, Tensor4};
use serde::{Deserialize, Serialize};

/// `(N, C, H, W) → (N, C·H·W, 1, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flatten;

impl<T: Real> Layer<T> for Flatten {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.infer(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(x.clone().reshape([x.n(), x.sample_len(), 1, 1])?)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        let out = [x.n(), x.sample_len(), 1, 1];
        expect_shape("flatten backward (y)", y, out)?;
        expect_shape("flatten backward (dy)", dy, out)?;
        Ok(dy.clone().reshape(x.shape())?)
    }
}

/// `(N, ·) → (N, C, H, W)` for a fixed per-sample shape with the same element count.
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `shape` | target `(C, H, W)` | each `>= 1` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshape {
    shape: [usize; 3],
}

impl Reshape {
    /// Reshape every sample to `(C, H, W)`.
    ///
    /// # Errors
    /// [`crate::AutoencoderError::InvalidParameter`] for a zero dimension.
    pub fn new(shape: [usize; 3]) -> Result<Self> {
        if shape.contains(&0) {
            return Err(invalid("shape", format!("{shape:?}"), "every dimension must be >= 1"));
        }
        Ok(Self { shape })
    }
    /// The per-sample target shape.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`crate::AutoencoderError::Format`] for a zero dimension.
    pub fn validate(&self) -> Result<()> {
        Self::new(self.shape).map(drop).map_err(|e| format_err(format!("reshape: {e}")))
    }
    fn target<T0: Real>(&self, x: &Tensor4<T0>) -> Result<[usize; 4]> {
        let [c, h, w] = self.shape;
        let len = c.checked_mul(h).and_then(|v| v.checked_mul(w));
        if len != Some(x.sample_len()) {
            return Err(shape_err("reshape", format!("{} values per sample", x.sample_len()), self.shape));
        }
        Ok([x.n(), c, h, w])
    }
}

impl<T: Real> Layer<T> for Reshape {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.infer(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(x.clone().reshape(self.target(x)?)?)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        let out = self.target(x)?;
        expect_shape("reshape backward (y)", y, out)?;
        expect_shape("reshape backward (dy)", dy, out)?;
        Ok(dy.clone().reshape(x.shape())?)
    }
}
