//! The sequential container and the serialisable enum of layers: the built-in ones and any
//! [`CustomLayer`] defined elsewhere.

use crate::custom::{CustomLayer, LayerRegistry, UserLayer};
use crate::error::{AutoencoderError, Result};
use crate::layer::{ActivationLayer, Layer, Mode, Param};
use crate::layers::batchnorm::BatchNorm;
use crate::layers::conv::{Conv2d, ConvTranspose2d};
use crate::layers::dense::Dense;
use crate::layers::dropout::Dropout;
use crate::layers::noise::Noise;
use crate::layers::pool::{AvgPool2d, MaxPool2d, Upsample};
use crate::layers::shape::{Flatten, Reshape};
use latent_linalg::{Real, Tensor4};
use serde::{Deserialize, Serialize};

/// Any layer: a built-in one or a [`CustomLayer`] defined in another crate (the unit a
/// [`Sequential`] holds and a model file stores).
///
/// Model files store the variant index, so new variants go last: files written before
/// [`AnyLayer::Custom`] existed decode unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub enum AnyLayer<T> {
    /// [`Dense`].
    Dense(Dense<T>),
    /// [`Conv2d`].
    Conv2d(Conv2d<T>),
    /// [`ConvTranspose2d`].
    ConvTranspose2d(ConvTranspose2d<T>),
    /// [`MaxPool2d`].
    MaxPool2d(MaxPool2d),
    /// [`AvgPool2d`].
    AvgPool2d(AvgPool2d),
    /// [`Upsample`].
    Upsample(Upsample),
    /// [`ActivationLayer`].
    Activation(ActivationLayer),
    /// [`Dropout`].
    Dropout(Dropout<T>),
    /// [`BatchNorm`].
    BatchNorm(BatchNorm<T>),
    /// [`Flatten`].
    Flatten(Flatten),
    /// [`Reshape`].
    Reshape(Reshape),
    /// [`Noise`].
    Noise(Noise<T>),
    /// A layer defined outside this crate (see [`crate::custom`]).
    Custom(UserLayer<T>),
}

macro_rules! dispatch {
    ($self:expr, $l:ident => $body:expr) => {
        match $self {
            AnyLayer::Dense($l) => $body,
            AnyLayer::Conv2d($l) => $body,
            AnyLayer::ConvTranspose2d($l) => $body,
            AnyLayer::MaxPool2d($l) => $body,
            AnyLayer::AvgPool2d($l) => $body,
            AnyLayer::Upsample($l) => $body,
            AnyLayer::Activation($l) => $body,
            AnyLayer::Dropout($l) => $body,
            AnyLayer::BatchNorm($l) => $body,
            AnyLayer::Flatten($l) => $body,
            AnyLayer::Reshape($l) => $body,
            AnyLayer::Noise($l) => $body,
            AnyLayer::Custom($l) => $body,
        }
    };
}

macro_rules! from_layer {
    ($($v:ident($ty:ty)),* $(,)?) => {
        $(impl<T: Real> From<$ty> for AnyLayer<T> {
            fn from(l: $ty) -> Self {
                AnyLayer::$v(l)
            }
        })*
    };
}

from_layer!(
    Dense(Dense<T>),
    Conv2d(Conv2d<T>),
    ConvTranspose2d(ConvTranspose2d<T>),
    MaxPool2d(MaxPool2d),
    AvgPool2d(AvgPool2d),
    Upsample(Upsample),
    Activation(ActivationLayer),
    Dropout(Dropout<T>),
    BatchNorm(BatchNorm<T>),
    Flatten(Flatten),
    Reshape(Reshape),
    Noise(Noise<T>),
    Custom(UserLayer<T>),
);

impl<T: Real> AnyLayer<T> {
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] describing the inconsistency.
    pub fn validate(&self) -> Result<()> {
        match self {
            AnyLayer::Dense(l) => l.validate(),
            AnyLayer::Conv2d(l) => l.validate(),
            AnyLayer::ConvTranspose2d(l) => l.validate(),
            AnyLayer::MaxPool2d(l) => l.validate(),
            AnyLayer::AvgPool2d(l) => l.validate(),
            AnyLayer::Upsample(l) => l.validate(),
            AnyLayer::Activation(l) => {
                l.activation.validate().map_err(|e| crate::error::format_err(format!("activation layer: {e}")))
            }
            AnyLayer::Dropout(l) => l.validate(),
            AnyLayer::BatchNorm(l) => l.validate(),
            AnyLayer::Flatten(_) => Ok(()),
            AnyLayer::Reshape(l) => l.validate(),
            AnyLayer::Noise(l) => l.validate(),
            AnyLayer::Custom(l) => l.validate(),
        }
    }

    /// Wrap a custom layer.
    pub fn custom<L: CustomLayer<T>>(layer: L) -> Self {
        AnyLayer::Custom(UserLayer::new(layer))
    }

    /// Short name of the layer kind (a custom layer's [`CustomLayer::KIND`]).
    pub fn kind(&self) -> &str {
        match self {
            AnyLayer::Dense(_) => "dense",
            AnyLayer::Conv2d(_) => "conv2d",
            AnyLayer::ConvTranspose2d(_) => "conv_transpose2d",
            AnyLayer::MaxPool2d(_) => "max_pool2d",
            AnyLayer::AvgPool2d(_) => "avg_pool2d",
            AnyLayer::Upsample(_) => "upsample",
            AnyLayer::Activation(_) => "activation",
            AnyLayer::Dropout(_) => "dropout",
            AnyLayer::BatchNorm(_) => "batch_norm",
            AnyLayer::Flatten(_) => "flatten",
            AnyLayer::Reshape(_) => "reshape",
            AnyLayer::Noise(_) => "noise",
            AnyLayer::Custom(l) => l.kind(),
        }
    }
}

impl<T: Real> Layer<T> for AnyLayer<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        dispatch!(self, l => l.forward(x, mode))
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        dispatch!(self, l => l.infer(x))
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        dispatch!(self, l => l.backward(x, y, dy))
    }
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
        dispatch!(self, l => l.backward_params(x, y, dy))
    }
    fn params(&mut self) -> Vec<Param<'_, T>> {
        dispatch!(self, l => l.params())
    }
    fn set_train_stream(&mut self, stream: u64) {
        dispatch!(self, l => Layer::<T>::set_train_stream(l, stream))
    }
    fn defer_running_updates(&mut self, on: bool) {
        dispatch!(self, l => Layer::<T>::defer_running_updates(l, on))
    }
    fn take_running_updates(&mut self) -> Vec<T> {
        dispatch!(self, l => Layer::<T>::take_running_updates(l))
    }
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        dispatch!(self, l => Layer::<T>::apply_running_updates(l, stats))
    }
}

/// Layers applied in order. Itself a [`Layer`]: a training forward pass keeps the intermediate
/// activations, and the backward pass walks them in reverse.
///
/// # Example
/// ```
/// use latent_autoencoder::{Activation, Layer, Mode, Sequential};
/// use latent_autoencoder::layers::dense::Dense;
/// use latent_linalg::Tensor4;
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut net = Sequential::<f64>::new()
///     .with(Dense::new(4, 3, Activation::Relu, true, &mut rng)?)
///     .with(Dense::new(3, 2, Activation::Sigmoid, true, &mut rng)?);
/// let x = Tensor4::from_fn([5, 4, 1, 1], |[n, c, _, _]| (n + c) as f64 * 0.1)?;
/// let y = net.forward(&x, Mode::Train)?;
/// assert_eq!(y.shape(), [5, 2, 1, 1]);
/// let dy = Tensor4::full([5, 2, 1, 1], 1.0)?;
/// let dx = net.backward(&x, &y, &dy)?;
/// assert_eq!(dx.shape(), x.shape());
/// assert_eq!(net.params().len(), 4);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct Sequential<T> {
    layers: Vec<AnyLayer<T>>,
    #[serde(skip)]
    acts: Vec<Tensor4<T>>,
}

impl<T: Real> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> Sequential<T> {
    /// An empty container (the identity map).
    pub fn new() -> Self {
        Self { layers: Vec::new(), acts: Vec::new() }
    }
    /// Append a layer.
    pub fn push(&mut self, layer: impl Into<AnyLayer<T>>) {
        self.layers.push(layer.into());
    }
    /// Append a layer (builder style).
    pub fn with(mut self, layer: impl Into<AnyLayer<T>>) -> Self {
        self.push(layer);
        self
    }
    /// Append a custom layer (one defined outside this crate, see [`crate::custom`]).
    pub fn push_custom<L: CustomLayer<T>>(&mut self, layer: L) {
        self.push(AnyLayer::custom(layer));
    }
    /// Append a custom layer (builder style).
    pub fn with_custom<L: CustomLayer<T>>(mut self, layer: L) -> Self {
        self.push_custom(layer);
        self
    }
    /// Insert a layer at position `i` (clamped to the end).
    pub fn insert(&mut self, i: usize, layer: impl Into<AnyLayer<T>>) {
        let i = i.min(self.layers.len());
        self.layers.insert(i, layer.into());
        self.acts.clear();
    }
    /// The layers.
    pub fn layers(&self) -> &[AnyLayer<T>] {
        &self.layers
    }
    /// The layers, mutable.
    pub fn layers_mut(&mut self) -> &mut [AnyLayer<T>] {
        &mut self.layers
    }
    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    /// `true` without layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    /// Check every layer (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] naming the first inconsistent layer.
    pub fn validate(&self) -> Result<()> {
        for (i, l) in self.layers.iter().enumerate() {
            l.validate().map_err(|e| crate::error::format_err(format!("layer {i} ({}): {e}", l.kind())))?;
        }
        Ok(())
    }
    /// Resolve the custom layers read from a file through `registry`.
    pub(crate) fn resolve(&mut self, registry: &LayerRegistry<T>) -> Result<()> {
        for l in &mut self.layers {
            if let AnyLayer::Custom(u) = l {
                u.resolve(registry)?;
            }
        }
        Ok(())
    }
    /// The custom layers.
    pub(crate) fn custom_layers(&self) -> impl Iterator<Item = &UserLayer<T>> {
        self.layers.iter().filter_map(|l| match l {
            AnyLayer::Custom(u) => Some(u),
            _ => None,
        })
    }
    /// Total number of trainable values.
    pub fn num_params(&mut self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }

    fn backward_impl(
        &mut self,
        x: &Tensor4<T>,
        y: &Tensor4<T>,
        dy: &Tensor4<T>,
        need_dx: bool,
    ) -> Result<Option<Tensor4<T>>> {
        let n = self.layers.len();
        if n == 0 {
            return Ok(need_dx.then(|| dy.clone()));
        }
        if self.acts.len() + 1 != n {
            return Err(AutoencoderError::State {
                op: "sequential backward",
                detail: "no training forward pass preceded it".into(),
            });
        }
        let Self { layers, acts } = self;
        let mut g: Option<Tensor4<T>> = None;
        for i in (0..n).rev() {
            let xin = if i == 0 { x } else { &acts[i - 1] };
            let yout = if i + 1 == n { y } else { &acts[i] };
            let gin = g.as_ref().unwrap_or(dy);
            if i == 0 && !need_dx {
                layers[0].backward_params(xin, yout, gin)?;
                return Ok(None);
            }
            g = Some(layers[i].backward(xin, yout, gin)?);
        }
        Ok(g)
    }
}

impl<T: Real> Layer<T> for Sequential<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        if mode == Mode::Eval {
            self.acts.clear();
            return self.infer(x);
        }
        let n = self.layers.len();
        self.acts.clear();
        if n == 0 {
            return Ok(x.clone());
        }
        for i in 0..n {
            let y = {
                let input = if i == 0 { x } else { &self.acts[i - 1] };
                self.layers[i].forward(input, mode)
            };
            let y = match y {
                Ok(y) => y,
                Err(e) => {
                    self.acts.clear();
                    return Err(e);
                }
            };
            if i + 1 == n {
                return Ok(y);
            }
            self.acts.push(y);
        }
        Ok(x.clone())
    }

    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let mut cur: Option<Tensor4<T>> = None;
        for l in &self.layers {
            cur = Some(l.infer(cur.as_ref().unwrap_or(x))?);
        }
        Ok(cur.unwrap_or_else(|| x.clone()))
    }

    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.backward_impl(x, y, dy, true)?.ok_or_else(|| AutoencoderError::State {
            op: "sequential backward",
            detail: "input gradient was not computed".into(),
        })
    }

    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
        self.backward_impl(x, y, dy, false).map(drop)
    }

    fn params(&mut self) -> Vec<Param<'_, T>> {
        self.layers.iter_mut().flat_map(|l| l.params()).collect()
    }

    fn set_train_stream(&mut self, stream: u64) {
        self.layers.iter_mut().for_each(|l| l.set_train_stream(stream));
    }

    fn defer_running_updates(&mut self, on: bool) {
        self.layers.iter_mut().for_each(|l| l.defer_running_updates(on));
    }

    fn take_running_updates(&mut self) -> Vec<T> {
        self.layers.iter_mut().flat_map(|l| l.take_running_updates()).collect()
    }

    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        let mut used = 0;
        for l in &mut self.layers {
            used += l.apply_running_updates(&stats[used.min(stats.len())..])?;
        }
        Ok(used)
    }
}
