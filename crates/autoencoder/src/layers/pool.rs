//! Pooling and upsampling layers on the `latent-linalg` kernels.

use crate::error::{AutoencoderError, Result, format_err, invalid, shape_err};
use crate::layer::{Layer, Mode, expect_shape};
use latent_linalg::pool::{
    avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, upsample_bilinear, upsample_bilinear_backward,
    upsample_nearest, upsample_nearest_backward,
};
use latent_linalg::{Real, Tensor4};
use serde::{Deserialize, Serialize};

fn check_window(kernel: (usize, usize), stride: (usize, usize)) -> Result<()> {
    if kernel.0 == 0 || kernel.1 == 0 {
        return Err(invalid("kernel", format!("{kernel:?}"), "must be >= 1"));
    }
    if stride.0 == 0 || stride.1 == 0 {
        return Err(invalid("stride", format!("{stride:?}"), "must be >= 1"));
    }
    Ok(())
}

fn pooled(op: &'static str, x: [usize; 4], k: (usize, usize), s: (usize, usize)) -> Result<[usize; 4]> {
    let [n, c, h, w] = x;
    if h < k.0 || w < k.1 {
        return Err(shape_err(op, format!("input at least {}x{}", k.0, k.1), x));
    }
    Ok([n, c, (h - k.0) / s.0 + 1, (w - k.1) / s.1 + 1])
}

/// Max pooling (floor mode, no padding).
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `kernel` | window (rows, cols) | `>= 1` |
/// | `stride` | step (rows, cols) | `>= 1` |
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaxPool2d {
    kernel: (usize, usize),
    stride: (usize, usize),
    #[serde(skip)]
    argmax: Vec<u32>,
    #[serde(skip)]
    input_shape: Option<[usize; 4]>,
}

impl MaxPool2d {
    /// Window `kernel`, step `stride`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] for a zero window or stride.
    pub fn new(kernel: (usize, usize), stride: (usize, usize)) -> Result<Self> {
        check_window(kernel, stride)?;
        Ok(Self { kernel, stride, argmax: Vec::new(), input_shape: None })
    }
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] for a zero window or stride.
    pub fn validate(&self) -> Result<()> {
        check_window(self.kernel, self.stride).map_err(|e| format_err(format!("max pool: {e}")))
    }
    /// `(kernel, stride)`.
    pub fn window(&self) -> ((usize, usize), (usize, usize)) {
        (self.kernel, self.stride)
    }
}

impl<T: Real> Layer<T> for MaxPool2d {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        if mode == Mode::Eval {
            return self.infer(x);
        }
        pooled("max pool forward", x.shape(), self.kernel, self.stride)?;
        let (y, arg) = max_pool2d(x, self.kernel, self.stride)?;
        self.argmax = arg;
        self.input_shape = Some(x.shape());
        Ok(y)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        pooled("max pool forward", x.shape(), self.kernel, self.stride)?;
        Ok(max_pool2d(x, self.kernel, self.stride)?.0)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        if self.input_shape != Some(x.shape()) {
            return Err(AutoencoderError::State {
                op: "max pool backward",
                detail: format!("no training forward pass on an input of shape {:?} preceded it", x.shape()),
            });
        }
        let out = pooled("max pool backward", x.shape(), self.kernel, self.stride)?;
        expect_shape("max pool backward (y)", y, out)?;
        expect_shape("max pool backward (dy)", dy, out)?;
        Ok(max_pool2d_backward(dy, &self.argmax, x.shape())?)
    }
}

/// Average pooling (floor mode, no padding).
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `kernel` | window (rows, cols) | `>= 1` |
/// | `stride` | step (rows, cols) | `>= 1` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPool2d {
    kernel: (usize, usize),
    stride: (usize, usize),
}

impl AvgPool2d {
    /// Window `kernel`, step `stride`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] for a zero window or stride.
    pub fn new(kernel: (usize, usize), stride: (usize, usize)) -> Result<Self> {
        check_window(kernel, stride)?;
        Ok(Self { kernel, stride })
    }
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] for a zero window or stride.
    pub fn validate(&self) -> Result<()> {
        check_window(self.kernel, self.stride).map_err(|e| format_err(format!("average pool: {e}")))
    }
    /// `(kernel, stride)`.
    pub fn window(&self) -> ((usize, usize), (usize, usize)) {
        (self.kernel, self.stride)
    }
}

impl<T: Real> Layer<T> for AvgPool2d {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.infer(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        pooled("average pool forward", x.shape(), self.kernel, self.stride)?;
        Ok(avg_pool2d(x, self.kernel, self.stride)?)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        let out = pooled("average pool backward", x.shape(), self.kernel, self.stride)?;
        expect_shape("average pool backward (y)", y, out)?;
        expect_shape("average pool backward (dy)", dy, out)?;
        Ok(avg_pool2d_backward(dy, x.shape(), self.kernel, self.stride)?)
    }
}

/// Interpolation of [`Upsample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UpsampleMode {
    /// Repeat each pixel.
    #[default]
    Nearest,
    /// Bilinear with half-pixel centres (PyTorch `align_corners = False`).
    Bilinear,
}

/// Upsampling by integer factors.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `factor` | — | (rows, cols) scale | `>= 1` |
/// | `mode` | `Nearest` | interpolation | — |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upsample {
    factor: (usize, usize),
    mode: UpsampleMode,
}

impl Upsample {
    /// Upsample by `factor` with `mode`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] for a zero factor.
    pub fn new(factor: (usize, usize), mode: UpsampleMode) -> Result<Self> {
        if factor.0 == 0 || factor.1 == 0 {
            return Err(invalid("factor", format!("{factor:?}"), "must be >= 1"));
        }
        Ok(Self { factor, mode })
    }
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] for a zero factor.
    pub fn validate(&self) -> Result<()> {
        Self::new(self.factor, self.mode).map(drop).map_err(|e| format_err(format!("upsample: {e}")))
    }
    /// `(factor, mode)`.
    pub fn settings(&self) -> ((usize, usize), UpsampleMode) {
        (self.factor, self.mode)
    }
    fn out_shape(&self, x: [usize; 4]) -> Result<[usize; 4]> {
        let [n, c, h, w] = x;
        match (h.checked_mul(self.factor.0), w.checked_mul(self.factor.1)) {
            (Some(a), Some(b)) => Ok([n, c, a, b]),
            _ => Err(shape_err("upsample", "an output size that fits usize", x)),
        }
    }
}

impl<T: Real> Layer<T> for Upsample {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.infer(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let [_, _, ho, wo] = self.out_shape(x.shape())?;
        Ok(match self.mode {
            UpsampleMode::Nearest => upsample_nearest(x, self.factor)?,
            UpsampleMode::Bilinear => upsample_bilinear(x, (ho, wo))?,
        })
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        let out = self.out_shape(x.shape())?;
        expect_shape("upsample backward (y)", y, out)?;
        expect_shape("upsample backward (dy)", dy, out)?;
        Ok(match self.mode {
            UpsampleMode::Nearest => upsample_nearest_backward(dy, self.factor)?,
            UpsampleMode::Bilinear => upsample_bilinear_backward(dy, (x.h(), x.w()))?,
        })
    }
}
