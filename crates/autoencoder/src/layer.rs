//! The layer trait, the training/eval mode flag, parameter views and activation functions.

use crate::error::{Result, shape_err};
use crate::par;
use latent_linalg::{Real, Tensor4};
use serde::{Deserialize, Serialize};

/// Training or evaluation behaviour of a forward pass.
///
/// In [`Mode::Train`] layers record what [`Layer::backward`] needs, dropout and noise layers
/// draw fresh randomness and batch normalisation uses (and updates) batch statistics. In
/// [`Mode::Eval`] a forward pass is a pure function of the input and the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Mode {
    /// Training behaviour.
    Train,
    /// Inference behaviour (the default).
    #[default]
    Eval,
}

/// What a parameter is (penalties and initialisers treat kinds differently: the Frobenius
/// penalty applies to [`ParamKind::Weight`] only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    /// A weight matrix or filter bank.
    Weight,
    /// An additive bias.
    Bias,
    /// A multiplicative scale (batch-norm γ).
    Scale,
    /// An additive shift (batch-norm β).
    Shift,
}

/// A mutable view of one parameter tensor and its gradient accumulator, flattened.
///
/// An optimizer step over every [`Param`] a model returns updates the whole model.
#[derive(Debug)]
pub struct Param<'a, T> {
    /// Name within the layer (`"weight"`, `"bias"`, ...).
    pub name: &'static str,
    /// What the parameter is.
    pub kind: ParamKind,
    /// The values.
    pub value: &'a mut [T],
    /// The gradient accumulator (same length as `value`).
    pub grad: &'a mut [T],
}

/// A differentiable layer on `(N, C, H, W)` batches.
///
/// `forward` computes the output (recording what `backward` needs in [`Mode::Train`]); `backward`
/// receives the same input `x`, the output `y` that forward returned and the output gradient
/// `dy`, returns the input gradient and **adds** the parameter gradients into the accumulators
/// that [`Layer::params`] exposes (zero them between steps). `infer` is the eval-mode forward
/// through a shared reference.
pub trait Layer<T: Real>: std::fmt::Debug + Send + Sync {
    /// Forward pass of a batch.
    ///
    /// # Errors
    /// A typed error when `x` does not have the shape the layer expects.
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>>;

    /// Eval-mode forward pass that leaves the layer unchanged (the same result as
    /// `forward(x, Mode::Eval)`).
    ///
    /// # Errors
    /// As [`Layer::forward`].
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>>;

    /// Backward pass: input gradient; parameter gradients are accumulated.
    ///
    /// # Errors
    /// A typed error when the shapes of `x`, `y`, `dy` disagree with each other or with the last
    /// training forward pass, or when no training forward pass preceded it (layers that record
    /// state).
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>>;

    /// Parameter views (empty for parameter-free layers).
    fn params(&mut self) -> Vec<Param<'_, T>> {
        Vec::new()
    }

    /// Backward pass when the input gradient is not needed (the first layer of a model):
    /// accumulates parameter gradients only. The default calls [`Layer::backward`]; layers with
    /// weights skip the input-gradient product.
    ///
    /// # Errors
    /// As [`Layer::backward`].
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
        self.backward(x, y, dy).map(drop)
    }

    /// Data-parallel training: position the layer's training randomness so that the next
    /// training forward pass draws from random stream `stream` (dropout and noise layers set
    /// their call counter). The distributed trainer numbers the chunks of a run and calls this
    /// before each, so every rank corrupts a chunk the same way whoever computes it. The
    /// default does nothing (layers without randomness).
    fn set_train_stream(&mut self, stream: u64) {
        let _ = stream;
    }

    /// Data-parallel training: while `on`, training forward passes do not fold their batch
    /// statistics into running state (batch normalisation's running mean and variance) but keep
    /// them for [`Layer::take_running_updates`]. The default does nothing (no running state).
    fn defer_running_updates(&mut self, on: bool) {
        let _ = on;
    }

    /// The batch statistics deferred since the last call (drained), one block per training
    /// forward pass, in a fixed layer order. Empty by default.
    fn take_running_updates(&mut self) -> Vec<T> {
        Vec::new()
    }

    /// Fold one forward pass's statistics (as [`Layer::take_running_updates`] returned them,
    /// from this or another rank's copy of the layer) into the running state with the forward
    /// pass's own arithmetic; returns how many values it used from the front of `stats`. The
    /// distributed trainers replay every chunk's statistics in chunk order on every rank, so the
    /// running state is the same for any number of ranks.
    ///
    /// # Errors
    /// [`AutoencoderError::State`](crate::AutoencoderError::State) when `stats` is too short.
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        let _ = stats;
        Ok(0)
    }
}

/// An element-wise activation function (also fused into dense and convolution layers).
///
/// | variant | `f(x)` | `f'` from the output `y` |
/// |---|---|---|
/// | `Identity` | `x` | `1` |
/// | `Relu` | `max(0, x)` | `[y > 0]` |
/// | `LeakyRelu(a)` | `x` for `x > 0`, `a·x` otherwise (`a ∈ [0, 1)`) | `1` or `a` |
/// | `Sigmoid` | `1/(1 + e^{−x})` | `y(1 − y)` |
/// | `Tanh` | `tanh x` | `1 − y²` |
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// No activation.
    #[default]
    Identity,
    /// Rectified linear unit.
    Relu,
    /// Leaky ReLU with the given negative slope in `[0, 1)`.
    LeakyRelu(f64),
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

impl Activation {
    /// Validate (the leaky slope must be in `[0, 1)`).
    ///
    /// # Errors
    /// [`crate::AutoencoderError::InvalidParameter`] naming `leaky_slope`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Activation::LeakyRelu(a) if !(0.0..1.0).contains(&a) => {
                Err(crate::error::invalid("leaky_slope", a, "must be in [0, 1)"))
            }
            _ => Ok(()),
        }
    }

    /// Apply in place.
    pub fn apply<T: Real>(&self, x: &mut [T]) {
        match *self {
            Activation::Identity => {}
            Activation::Relu => par::map_inplace(x, |v| if v > T::zero() { v } else { T::zero() }),
            Activation::LeakyRelu(a) => {
                let a = T::lit(a);
                par::map_inplace(x, move |v| if v > T::zero() { v } else { a * v })
            }
            Activation::Sigmoid => par::map_inplace(x, sigmoid),
            Activation::Tanh => par::map_inplace(x, |v| v.tanh()),
        }
    }

    /// `dz = dy ⊙ f'(·)` expressed through the output `y = f(x)`.
    pub fn backward_into<T: Real>(&self, y: &[T], dy: &[T], dz: &mut [T]) {
        match *self {
            Activation::Identity => par::zip2(dz, y, dy, |_, g| g),
            Activation::Relu => par::zip2(dz, y, dy, |y, g| if y > T::zero() { g } else { T::zero() }),
            Activation::LeakyRelu(a) => {
                let a = T::lit(a);
                par::zip2(dz, y, dy, move |y, g| if y > T::zero() { g } else { a * g })
            }
            Activation::Sigmoid => par::zip2(dz, y, dy, |y, g| g * y * (T::one() - y)),
            Activation::Tanh => par::zip2(dz, y, dy, |y, g| g * (T::one() - y * y)),
        }
    }

    /// `dz = dy ⊙ f'` computed in place in `dy`.
    pub fn backward_inplace<T: Real>(&self, y: &[T], dy: &mut [T]) {
        match *self {
            Activation::Identity => {}
            Activation::Relu => par::zip1(dy, y, |g, y| if y > T::zero() { g } else { T::zero() }),
            Activation::LeakyRelu(a) => {
                let a = T::lit(a);
                par::zip1(dy, y, move |g, y| if y > T::zero() { g } else { a * g })
            }
            Activation::Sigmoid => par::zip1(dy, y, |g, y| g * y * (T::one() - y)),
            Activation::Tanh => par::zip1(dy, y, |g, y| g * (T::one() - y * y)),
        }
    }
}

/// Logistic sigmoid `1/(1 + e^{−x})` (saturates to exactly 0 or 1, never NaN for finite `x`).
#[inline]
pub fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// The element-wise activation as a stand-alone layer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivationLayer {
    /// The function.
    pub activation: Activation,
}

impl ActivationLayer {
    /// Wrap an activation.
    ///
    /// # Errors
    /// As [`Activation::validate`].
    pub fn new(activation: Activation) -> Result<Self> {
        activation.validate()?;
        Ok(Self { activation })
    }
}

impl<T: Real> Layer<T> for ActivationLayer {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.infer(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let mut y = x.clone();
        self.activation.apply(y.as_mut_slice());
        Ok(y)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        check_same("activation backward", x, y, dy)?;
        let mut dx = dy.clone();
        self.activation.backward_inplace(y.as_slice(), dx.as_mut_slice());
        Ok(dx)
    }
}

/// Error unless `x`, `y` and `dy` all have `x`'s shape.
pub(crate) fn check_same<T: Real>(op: &'static str, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
    if y.shape() != x.shape() {
        return Err(shape_err(op, x.shape(), y.shape()));
    }
    if dy.shape() != x.shape() {
        return Err(shape_err(op, x.shape(), dy.shape()));
    }
    Ok(())
}

/// Error unless `t` has shape `shape`.
pub(crate) fn expect_shape<T: Real>(op: &'static str, t: &Tensor4<T>, shape: [usize; 4]) -> Result<()> {
    if t.shape() != shape { Err(shape_err(op, shape, t.shape())) } else { Ok(()) }
}
