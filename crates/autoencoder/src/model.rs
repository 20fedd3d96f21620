//! The encoder / decoder traits, their composition and the [`Autoencoder`] model.

use crate::custom::LayerRegistry;
use crate::error::{AutoencoderError, Result, check_finite_data, check_nonneg, invalid, shape_err};
use crate::layer::{Activation, Layer, Mode, Param, ParamKind};
use crate::layers::noise::{Noise, NoiseModel};
pub use crate::loss::KlSparsity;
use crate::loss::{DeadUnitCounter, Loss, frobenius_penalty, kl_sparsity_penalty, l1_penalty};
use crate::sequential::{AnyLayer, Sequential};
use latent_linalg::{Real, Tensor4};
use serde::{Deserialize, Serialize};

/// Maps inputs `x` to codes `s`, a batch at a time.
pub trait Encoder<T: Real> {
    /// Codes of a batch `(N, C, H, W)`.
    ///
    /// # Errors
    /// A typed error when the batch does not fit the encoder.
    fn encode(&self, x: &Tensor4<T>) -> Result<Tensor4<T>>;
}

/// Maps codes `s` back to reconstructions `x̂`, a batch at a time.
pub trait Decoder<T: Real> {
    /// Reconstructions of a batch of codes.
    ///
    /// # Errors
    /// A typed error when the codes do not fit the decoder.
    fn decode(&self, s: &Tensor4<T>) -> Result<Tensor4<T>>;
}

/// Per-sample mean squared error `‖xₙ − x̂ₙ‖² / D` between a batch and its reconstruction.
///
/// # Errors
/// A shape error when `xh` does not have `x`'s size.
pub fn per_sample_mse<T: Real>(x: &Tensor4<T>, xh: &Tensor4<T>) -> Result<Vec<T>> {
    if xh.len() != x.len() {
        return Err(shape_err("reconstruction_errors", x.shape(), xh.shape()));
    }
    Ok(x.per_sample_mse(xh)?)
}

impl<T: Real, E: Encoder<T> + ?Sized> Encoder<T> for &E {
    fn encode(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        (**self).encode(x)
    }
}
impl<T: Real, D: Decoder<T> + ?Sized> Decoder<T> for &D {
    fn decode(&self, s: &Tensor4<T>) -> Result<Tensor4<T>> {
        (**self).decode(s)
    }
}

/// Any encoder followed by any decoder: `x̂ = decode(encode(x))`.
///
/// # Example
/// ```
/// use latent_autoencoder::{Composed, Decoder, Encoder, Result};
/// use latent_linalg::Tensor4;
/// // A "model" that keeps the first coordinate: s = x₀, x̂ = (s, 0).
/// struct First;
/// impl Encoder<f64> for First {
///     fn encode(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
///         Ok(Tensor4::from_fn([x.n(), 1, 1, 1], |[n, ..]| x.sample(n).unwrap()[0])?)
///     }
/// }
/// struct Pad;
/// impl Decoder<f64> for Pad {
///     fn decode(&self, s: &Tensor4<f64>) -> Result<Tensor4<f64>> {
///         Ok(Tensor4::from_fn([s.n(), 2, 1, 1], |[n, c, ..]| if c == 0 { s.as_slice()[n] } else { 0.0 })?)
///     }
/// }
/// let ae = Composed::new(First, Pad);
/// let x = Tensor4::from_vec([1, 2, 1, 1], vec![3.0, 4.0])?;
/// assert_eq!(ae.reconstruct(&x)?.as_slice(), &[3.0, 0.0]);
/// assert_eq!(ae.reconstruction_errors(&x)?, vec![8.0]);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Composed<E, D> {
    /// The encoder.
    pub encoder: E,
    /// The decoder.
    pub decoder: D,
}

impl<E, D> Composed<E, D> {
    /// Compose.
    pub fn new(encoder: E, decoder: D) -> Self {
        Self { encoder, decoder }
    }
}

impl<T: Real, E: Encoder<T>, D: Decoder<T>> Encoder<T> for Composed<E, D> {
    fn encode(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.encoder.encode(x)
    }
}
impl<T: Real, E: Encoder<T>, D: Decoder<T>> Decoder<T> for Composed<E, D> {
    fn decode(&self, s: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.decoder.decode(s)
    }
}
impl<E, D> Composed<E, D> {
    /// Reconstruction `decode(encode(x))` of a batch, shaped like `x` when it has `x`'s size.
    ///
    /// # Errors
    /// The encoder's and the decoder's errors.
    pub fn reconstruct<T: Real>(&self, x: &Tensor4<T>) -> Result<Tensor4<T>>
    where
        E: Encoder<T>,
        D: Decoder<T>,
    {
        let xh = self.decoder.decode(&self.encoder.encode(x)?)?;
        if xh.len() == x.len() && xh.shape() != x.shape() { Ok(xh.reshape(x.shape())?) } else { Ok(xh) }
    }

    /// Per-sample mean squared reconstruction error `‖xₙ − x̂ₙ‖² / D`.
    ///
    /// # Errors
    /// As [`Composed::reconstruct`], and a shape error when the reconstruction does not have
    /// the input's size.
    pub fn reconstruction_errors<T: Real>(&self, x: &Tensor4<T>) -> Result<Vec<T>>
    where
        E: Encoder<T>,
        D: Decoder<T>,
    {
        per_sample_mse(x, &self.reconstruct(x)?)
    }
}

/// Which weights the Frobenius penalty covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WeightSet {
    /// Decoder weights only (the lecture's `η‖W‖²_F`).
    #[default]
    Decoder,
    /// Encoder weights only.
    Encoder,
    /// Every weight.
    All,
}

/// The training objective of an [`Autoencoder`] on a batch of `N` samples with codes `s = f(z)`:
///
/// `J = loss(x̂, x) + λ·(1/N)Σₙ‖sₙ‖₁ + β·Σ_c KL(ρ‖ρ̂_c) + η·Σ_W ‖W‖²_F`.
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `loss` | `Mse` | reconstruction loss | see [`Loss`] |
/// | `l1` | `0` | λ, L1 weight on the code | finite, `>= 0` |
/// | `kl` | `None` | KL sparsity target, weight and temperature | see [`KlSparsity`] |
/// | `frobenius` | `0` | η, weight penalty | finite, `>= 0` |
/// | `frobenius_on` | `Decoder` | weights the penalty covers | see [`WeightSet`] |
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Objective {
    /// Reconstruction loss.
    pub loss: Loss,
    /// L1 weight λ on the code.
    pub l1: f64,
    /// KL sparsity term.
    pub kl: Option<KlSparsity>,
    /// Frobenius weight η.
    pub frobenius: f64,
    /// Weights covered by the Frobenius penalty.
    pub frobenius_on: WeightSet,
}

impl Objective {
    /// Validate.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming `l1`, `frobenius`, `kl_rho` or `kl_weight`.
    pub fn validate(&self) -> Result<()> {
        check_nonneg("l1", self.l1)?;
        check_nonneg("frobenius", self.frobenius)?;
        if let Some(kl) = &self.kl {
            kl.validate()?;
        }
        Ok(())
    }
}

/// A trained or trainable model: something the [`crate::train::Trainer`] can fit.
pub trait Trainable<T: Real> {
    /// One training evaluation on a batch: zero the gradients, run forward (training mode) and
    /// backward, and return the objective.
    ///
    /// # Errors
    /// A typed error when the batch does not fit the model.
    fn train_step(&mut self, x: &Tensor4<T>) -> Result<f64>;
    /// The objective in evaluation mode (no noise, no dropout), without touching gradients.
    ///
    /// # Errors
    /// As [`Trainable::train_step`].
    fn eval_loss(&self, x: &Tensor4<T>) -> Result<f64>;
    /// Parameter views (values and gradients).
    fn params(&mut self) -> Vec<Param<'_, T>>;
    /// The model file bytes written by checkpoints.
    ///
    /// # Errors
    /// When serialisation fails.
    fn to_bytes(&self) -> Result<Vec<u8>>;
    /// Replace this model by the one `bytes` (written by [`Trainable::to_bytes`]) encode: how
    /// [`TrainParams::resume_from`](crate::train::TrainParams::resume_from) restores a saved run.
    /// The default cannot restore anything; [`Autoencoder`] implements it with full validation.
    ///
    /// # Errors
    /// A typed error for bytes that are not a valid model of this type (the model is then
    /// unchanged); [`AutoencoderError::State`] from the default implementation.
    fn restore_from_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let _ = bytes;
        Err(AutoencoderError::State {
            op: "restore_from_bytes",
            detail: "this model type cannot be restored from bytes, so its training cannot be resumed".into(),
        })
    }

    /// Data-parallel training: the next [`Trainable::train_step`] draws its training
    /// randomness (dropout, noise) from stream `stream` (see [`Layer::set_train_stream`]). The
    /// default does nothing: a model with randomness of its own must implement it to train
    /// bit-identically on any number of ranks.
    fn set_train_stream(&mut self, stream: u64) {
        let _ = stream;
    }

    /// Data-parallel training: defer batch-statistics updates of running state (see
    /// [`Layer::defer_running_updates`]). The default does nothing.
    fn defer_running_updates(&mut self, on: bool) {
        let _ = on;
    }

    /// The deferred statistics of the last training step (see [`Layer::take_running_updates`]).
    fn take_running_updates(&mut self) -> Vec<T> {
        Vec::new()
    }

    /// Replay one step's statistics into the running state (see
    /// [`Layer::apply_running_updates`]); returns the values used.
    ///
    /// # Errors
    /// [`AutoencoderError::State`] when `stats` is too short.
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        let _ = stats;
        Ok(0)
    }
}

/// What kind of model an [`Autoencoder`] is (informational; stored in the model file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// `s = Vx`, `x̂ = Ws`.
    Linear,
    /// `s = max(0, Vx)`, `x̂ = Ws`.
    SparseRelu,
    /// Deep fully connected.
    Mlp,
    /// Deep convolutional.
    Conv,
    /// Assembled by hand with [`Autoencoder::new`].
    Custom,
}

/// An autoencoder: `z = encoder(x)`, code `s = f(z)`, `x̂ = decoder(s)`, trained on an
/// [`Objective`]. Inputs are `(N, C, H, W)` batches with a fixed per-sample shape; the
/// reconstruction has the input's shape. With [`Loss::BceWithLogits`] the decoder outputs logits
/// and [`Autoencoder::reconstruct`] returns `σ(logits)`.
///
/// Build one with the lecture's constructors ([`crate::models`]) or by hand with
/// [`Autoencoder::new`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct Autoencoder<T> {
    kind: ModelKind,
    input_shape: [usize; 3],
    encoder: Sequential<T>,
    code_activation: Activation,
    decoder: Sequential<T>,
    objective: Objective,
    #[serde(skip)]
    cache: Cache<T>,
}

#[derive(Debug, Clone)]
struct Cache<T> {
    z: Option<Tensor4<T>>,
    s: Option<Tensor4<T>>,
    xhat: Option<Tensor4<T>>,
    grad: Vec<T>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self { z: None, s: None, xhat: None, grad: Vec::new() }
    }
}

/// Largest per-sample input accepted by a model file (2³⁰ values).
pub const MAX_SAMPLE_LEN: usize = 1 << 30;

impl<T: Real> Autoencoder<T> {
    /// Assemble a model from parts. `input_shape` is the per-sample `(C, H, W)`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] for an invalid objective or activation,
    /// [`AutoencoderError::ShapeMismatch`] when the encoder and decoder do not map an input of
    /// `input_shape` back to the same number of values.
    pub fn new(
        input_shape: [usize; 3],
        encoder: Sequential<T>,
        code_activation: Activation,
        decoder: Sequential<T>,
        objective: Objective,
    ) -> Result<Self> {
        Self::assemble(ModelKind::Custom, input_shape, encoder, code_activation, decoder, objective)
    }

    pub(crate) fn assemble(
        kind: ModelKind,
        input_shape: [usize; 3],
        encoder: Sequential<T>,
        code_activation: Activation,
        decoder: Sequential<T>,
        objective: Objective,
    ) -> Result<Self> {
        code_activation.validate()?;
        objective.validate()?;
        let m = Self { kind, input_shape, encoder, code_activation, decoder, objective, cache: Cache::default() };
        m.check_shapes()?;
        Ok(m)
    }

    /// Static shape check: the per-sample input is sane and maps back to its own size.
    pub(crate) fn check_shapes(&self) -> Result<()> {
        let len = self.input_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        match len {
            Some(l) if l > 0 && l <= MAX_SAMPLE_LEN => {}
            _ => {
                return Err(shape_err(
                    "autoencoder input",
                    format!("1..={MAX_SAMPLE_LEN} values per sample"),
                    self.input_shape,
                ));
            }
        }
        let code = self.encoder.output_shape(self.input_shape)?;
        let out = self.decoder.output_shape(code)?;
        let out_len = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if out_len != len {
            return Err(shape_err("autoencoder output", self.input_shape, out));
        }
        Ok(())
    }

    /// Check everything after deserialisation.
    pub(crate) fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        self.decoder.validate()?;
        self.code_activation.validate().map_err(|e| crate::error::format_err(format!("code activation: {e}")))?;
        self.objective.validate().map_err(|e| crate::error::format_err(format!("objective: {e}")))?;
        self.check_shapes().map_err(|e| crate::error::format_err(format!("shapes: {e}")))?;
        for (what, seq) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            let mut s = seq.clone();
            for p in s.params() {
                check_finite_data(what, p.value)
                    .map_err(|e| crate::error::format_err(format!("{what} parameters: {e}")))?;
            }
        }
        Ok(())
    }

    /// Put a noise layer (training mode only) in front of the encoder: the denoising version of
    /// this model. The objective still compares the reconstruction with the clean input.
    ///
    /// # Errors
    /// As [`NoiseModel::validate`].
    ///
    /// # Example
    /// ```
    /// use latent_autoencoder::{Autoencoder, Mode, NoiseModel, ParamGuard, models::MlpAeParams};
    /// use latent_linalg::Tensor4;
    /// let x = Tensor4::<f32>::from_fn([4, 6, 1, 1], |[n, c, ..]| ((n + c) % 4) as f32 / 4.0)?;
    /// let plain: Autoencoder<f32> = MlpAeParams::new(vec![6, 3]).check()?.build()?;
    /// let mut denoising = plain.clone().with_noise(NoiseModel::Masking { fraction: 0.5 }, 7)?;
    /// // noise in training mode only
    /// assert_eq!(denoising.reconstruct(&x)?, plain.reconstruct(&x)?);
    /// assert_ne!(denoising.forward(&x, Mode::Train)?, plain.reconstruct(&x)?);
    /// # Ok::<(), latent_autoencoder::AutoencoderError>(())
    /// ```
    pub fn with_noise(mut self, noise: NoiseModel, seed: u64) -> Result<Self> {
        self.encoder.insert(0, Noise::new(noise, seed)?);
        Ok(self)
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }
    /// Per-sample input shape `(C, H, W)`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input_shape
    }
    /// Per-sample code shape `(C, H, W)` (units are channels).
    ///
    /// # Errors
    /// Never for a validated model; kept fallible for hand-edited encoders.
    pub fn code_shape(&self) -> Result<[usize; 3]> {
        self.encoder.output_shape(self.input_shape)
    }
    /// The encoder layers (producing the pre-activation code `z`).
    pub fn encoder(&self) -> &Sequential<T> {
        &self.encoder
    }
    /// The decoder layers.
    pub fn decoder(&self) -> &Sequential<T> {
        &self.decoder
    }
    /// The code activation `f` (`s = f(z)`).
    pub fn code_activation(&self) -> Activation {
        self.code_activation
    }
    /// The training objective.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }
    /// Replace the objective.
    ///
    /// # Errors
    /// As [`Objective::validate`].
    pub fn set_objective(&mut self, objective: Objective) -> Result<()> {
        objective.validate()?;
        self.objective = objective;
        Ok(())
    }
    /// Number of trainable values.
    pub fn num_params(&mut self) -> usize {
        Trainable::params(self).iter().map(|p| p.value.len()).sum()
    }

    fn check_input(&self, op: &'static str, x: &Tensor4<T>) -> Result<()> {
        let [_, c, h, w] = x.shape();
        if [c, h, w] != self.input_shape {
            return Err(shape_err(
                op,
                format!("(N, {}, {}, {})", self.input_shape[0], self.input_shape[1], self.input_shape[2]),
                x.shape(),
            ));
        }
        if x.n() == 0 {
            return Err(AutoencoderError::Empty { what: "batch" });
        }
        Ok(())
    }

    /// [`Self::check_input`] plus a NaN/Inf scan (inference entry points; the trainer scans its
    /// data once up front).
    fn check_input_finite(&self, op: &'static str, x: &Tensor4<T>) -> Result<()> {
        self.check_input(op, x)?;
        check_finite_data("input", x.as_slice())
    }

    /// Forward pass in the given mode: `(z, s, x̂)` with `x̂` as the decoder outputs it (logits
    /// for [`Loss::BceWithLogits`]).
    fn run(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<(Tensor4<T>, Tensor4<T>, Tensor4<T>)> {
        self.check_input("autoencoder forward", x)?;
        let z = self.encoder.forward(x, mode)?;
        let mut s = z.clone();
        self.code_activation.apply(s.as_mut_slice());
        let xh = self.decoder.forward(&s, mode)?;
        Ok((z, s, xh))
    }

    fn run_eval(&self, x: &Tensor4<T>) -> Result<(Tensor4<T>, Tensor4<T>, Tensor4<T>)> {
        self.check_input_finite("autoencoder forward", x)?;
        let z = self.encoder.infer(x)?;
        let mut s = z.clone();
        self.code_activation.apply(s.as_mut_slice());
        let xh = self.decoder.infer(&s)?;
        Ok((z, s, xh))
    }

    fn penalties_value(&self, x: &Tensor4<T>, z: &Tensor4<T>, s: &Tensor4<T>, xh: &Tensor4<T>) -> Result<f64> {
        let n = x.n();
        let o = self.objective;
        let mut j = o.loss.value(xh.as_slice(), x.as_slice(), n)?;
        if o.l1 > 0.0 {
            j += l1_penalty(o.l1, s.as_slice(), n, None)?;
        }
        if let Some(kl) = o.kl {
            j += kl_sparsity_penalty(&kl, z, None)?;
        }
        if o.frobenius > 0.0 {
            let seqs: Vec<&Sequential<T>> = match o.frobenius_on {
                WeightSet::Decoder => vec![&self.decoder],
                WeightSet::Encoder => vec![&self.encoder],
                WeightSet::All => vec![&self.encoder, &self.decoder],
            };
            for seq in seqs {
                for w in seq.layers().iter().flat_map(|l| l.weights()) {
                    j += frobenius_penalty(o.frobenius, w, None)?;
                }
            }
        }
        Ok(j)
    }

    /// Frobenius penalty value, its gradient added into the weight gradients.
    fn frobenius_grad(&mut self) -> Result<f64> {
        let o = self.objective;
        if o.frobenius <= 0.0 {
            return Ok(0.0);
        }
        let mut j = 0.0;
        let seqs: Vec<&mut Sequential<T>> = match o.frobenius_on {
            WeightSet::Decoder => vec![&mut self.decoder],
            WeightSet::Encoder => vec![&mut self.encoder],
            WeightSet::All => vec![&mut self.encoder, &mut self.decoder],
        };
        for seq in seqs {
            for p in seq.params() {
                if p.kind == ParamKind::Weight {
                    j += frobenius_penalty(o.frobenius, p.value, Some(p.grad))?;
                }
            }
        }
        Ok(j)
    }

    /// Forward pass in `mode` returning the reconstruction (shaped like `x`).
    ///
    /// In [`Mode::Train`] the noise and dropout layers are active and batch normalisation uses
    /// (and updates) batch statistics; [`Mode::Eval`] equals [`Autoencoder::reconstruct`].
    ///
    /// # Errors
    /// [`AutoencoderError::ShapeMismatch`] for a batch of another per-sample shape,
    /// [`AutoencoderError::Empty`] for an empty batch.
    pub fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        let (_, _, xh) = self.run(x, mode)?;
        self.finish_reconstruction(xh, x.shape())
    }

    fn finish_reconstruction(&self, mut xh: Tensor4<T>, shape: [usize; 4]) -> Result<Tensor4<T>> {
        if self.objective.loss == Loss::BceWithLogits {
            Activation::Sigmoid.apply(xh.as_mut_slice());
        }
        if xh.shape() != shape { Ok(xh.reshape(shape)?) } else { Ok(xh) }
    }

    /// Reconstruction of a batch in evaluation mode, same shape as `x` (`σ(logits)` with
    /// [`Loss::BceWithLogits`]).
    ///
    /// # Errors
    /// [`AutoencoderError::ShapeMismatch`] for a batch of another per-sample shape,
    /// [`AutoencoderError::Empty`] for an empty batch, [`AutoencoderError::NonFiniteInput`] for
    /// NaN/Inf in `x`.
    pub fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let (_, _, xh) = self.run_eval(x)?;
        self.finish_reconstruction(xh, x.shape())
    }

    /// Per-sample mean squared reconstruction error `‖xₙ − x̂ₙ‖² / D` (evaluation mode).
    ///
    /// # Errors
    /// As [`Autoencoder::reconstruct`].
    pub fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        per_sample_mse(x, &self.reconstruct(x)?)
    }

    /// The registry of the custom layer types this model holds: enough to load the files of
    /// models with the same architecture (see [`crate::custom`]).
    pub fn layer_registry(&self) -> LayerRegistry<T> {
        LayerRegistry::of_layers(self.encoder.custom_layers().chain(self.decoder.custom_layers()))
    }

    /// Resolve the custom layers read from a file through `registry`.
    pub(crate) fn resolve(&mut self, registry: &LayerRegistry<T>) -> Result<()> {
        self.encoder.resolve(registry)?;
        self.decoder.resolve(registry)
    }

    /// Count dead code units (channels of the code that never exceed `threshold`) over `data`,
    /// in eval mode, `batch_size` samples at a time.
    ///
    /// # Errors
    /// As [`Encoder::encode`]; [`AutoencoderError::InvalidParameter`] for a zero batch size.
    pub fn dead_units(&self, data: &Tensor4<T>, batch_size: usize, threshold: T) -> Result<DeadUnitCounter> {
        if batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be >= 1"));
        }
        let units = self.code_shape()?[0];
        let mut counter = DeadUnitCounter::new(units);
        for b in crate::train::batches_of(data, batch_size) {
            counter.update(&self.encode(&b?)?, threshold)?;
        }
        Ok(counter)
    }

    /// Encode, decode or reconstruct a large data set in batches of `batch_size` (eval mode).
    ///
    /// # Errors
    /// As [`Autoencoder::reconstruct`]; [`AutoencoderError::InvalidParameter`] for a zero
    /// batch size.
    pub fn reconstruct_batched(&self, data: &Tensor4<T>, batch_size: usize) -> Result<Tensor4<T>> {
        if batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be >= 1"));
        }
        let mut out = Vec::with_capacity(data.len());
        for b in crate::train::batches_of(data, batch_size) {
            out.extend_from_slice(self.reconstruct(&b?)?.as_slice());
        }
        Ok(Tensor4::from_vec(data.shape(), out)?)
    }
}

impl<T: Real> Encoder<T> for Autoencoder<T> {
    fn encode(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.check_input_finite("encode", x)?;
        let mut s = self.encoder.infer(x)?;
        self.code_activation.apply(s.as_mut_slice());
        Ok(s)
    }
}

impl<T: Real> Decoder<T> for Autoencoder<T> {
    fn decode(&self, s: &Tensor4<T>) -> Result<Tensor4<T>> {
        let code = self.code_shape()?;
        let [_, c, h, w] = s.shape();
        if [c, h, w] != code {
            return Err(shape_err("decode", format!("(N, {}, {}, {})", code[0], code[1], code[2]), s.shape()));
        }
        check_finite_data("code", s.as_slice())?;
        let xh = self.decoder.infer(s)?;
        let [ic, ih, iw] = self.input_shape;
        self.finish_reconstruction(xh, [s.n(), ic, ih, iw])
    }
}

impl<T: Real> Trainable<T> for Autoencoder<T> {
    fn train_step(&mut self, x: &Tensor4<T>) -> Result<f64> {
        // a step is a chain of short parallel loops: keep the pool's threads awake between them
        let _warm = latent_linalg::product::TrainingScope::new();
        for p in Trainable::params(self) {
            p.grad.iter_mut().for_each(|g| *g = T::zero());
        }
        let (z, s, xh) = self.run(x, Mode::Train)?;
        let n = x.n();
        let o = self.objective;
        if xh.len() != x.len() {
            return Err(shape_err("autoencoder output", x.shape(), xh.shape()));
        }
        let mut cache = std::mem::take(&mut self.cache);
        cache.grad.resize(xh.len(), T::zero());
        let mut j = o.loss.value_grad(xh.as_slice(), x.as_slice(), n, Some(&mut cache.grad))?;
        let g_out = Tensor4::from_vec(xh.shape(), std::mem::take(&mut cache.grad))?;
        let mut ds = self.decoder.backward(&s, &xh, &g_out)?;
        cache.grad = g_out.into_vec();
        if o.l1 > 0.0 {
            j += l1_penalty(o.l1, s.as_slice(), n, Some(ds.as_mut_slice()))?;
        }
        self.code_activation.backward_inplace(s.as_slice(), ds.as_mut_slice());
        let mut dz = ds;
        if let Some(kl) = o.kl {
            j += kl_sparsity_penalty(&kl, &z, Some(&mut dz))?;
        }
        if self.encoder.is_empty() {
            // nothing to train upstream of the code
        } else {
            self.encoder.backward_params(x, &z, &dz)?;
        }
        j += self.frobenius_grad()?;
        cache.z = Some(z);
        cache.s = Some(s);
        cache.xhat = Some(xh);
        self.cache = cache;
        Ok(j)
    }

    fn eval_loss(&self, x: &Tensor4<T>) -> Result<f64> {
        let (z, s, xh) = self.run_eval(x)?;
        self.penalties_value(x, &z, &s, &xh)
    }

    fn params(&mut self) -> Vec<Param<'_, T>> {
        let mut v = self.encoder.params();
        v.extend(self.decoder.params());
        v
    }

    fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::io::to_bytes(self)
    }

    fn set_train_stream(&mut self, stream: u64) {
        self.encoder.set_train_stream(stream);
        self.decoder.set_train_stream(stream);
    }

    fn defer_running_updates(&mut self, on: bool) {
        self.encoder.defer_running_updates(on);
        self.decoder.defer_running_updates(on);
    }

    fn take_running_updates(&mut self) -> Vec<T> {
        let mut v = self.encoder.take_running_updates();
        v.extend(self.decoder.take_running_updates());
        v
    }

    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        let used = self.encoder.apply_running_updates(stats)?;
        Ok(used + self.decoder.apply_running_updates(&stats[used.min(stats.len())..])?)
    }

    /// Decodes custom layers with the types this model holds ([`Autoencoder::layer_registry`]).
    fn restore_from_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        *self = crate::io::from_bytes_with(bytes, &self.layer_registry())?;
        Ok(())
    }
}

impl<T: Real> Sequential<T> {
    /// Per-sample output shape for a per-sample input shape, without computing anything.
    ///
    /// # Errors
    /// A typed shape error naming the first layer that does not accept its input.
    pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        let mut s = input;
        for l in self.layers() {
            s = l.output_shape(s)?;
        }
        Ok(s)
    }
}

impl<T: Real> AnyLayer<T> {
    /// The values of the layer's (first) weight (the parameter of kind [`ParamKind::Weight`]),
    /// if any.
    pub fn weight_values(&self) -> Option<&[T]> {
        match self {
            AnyLayer::Dense(l) => Some(l.weight()),
            AnyLayer::Conv2d(l) => Some(l.weight().as_slice()),
            AnyLayer::ConvTranspose2d(l) => Some(l.weight().as_slice()),
            AnyLayer::Custom(l) => l.weight_values().into_iter().next(),
            _ => None,
        }
    }

    /// The values of every weight of the layer (parameters of kind [`ParamKind::Weight`]), in
    /// [`Layer::params`] order.
    pub fn weights(&self) -> Vec<&[T]> {
        match self {
            AnyLayer::Custom(l) => l.weight_values(),
            other => other.weight_values().into_iter().collect(),
        }
    }

    /// Per-sample output shape `(C, H, W)` for a per-sample input shape.
    ///
    /// # Errors
    /// A typed shape error when the layer does not accept the input.
    pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        use crate::layers::pool::UpsampleMode;
        let [c, h, w] = input;
        let len = c.checked_mul(h).and_then(|v| v.checked_mul(w));
        let same = || Ok(input);
        match self {
            AnyLayer::Dense(l) => {
                if len != Some(l.in_features()) {
                    return Err(shape_err("dense", format!("C·H·W = {}", l.in_features()), input));
                }
                Ok([l.out_features(), 1, 1])
            }
            AnyLayer::Conv2d(l) => {
                let g = l.geometry();
                if c != g.in_channels {
                    return Err(shape_err("conv2d", format!("{} channels", g.in_channels), input));
                }
                let (ho, wo) = g.conv_output(h, w)?;
                Ok([g.out_channels, ho, wo])
            }
            AnyLayer::ConvTranspose2d(l) => {
                let g = l.geometry();
                if c != g.in_channels {
                    return Err(shape_err("conv_transpose2d", format!("{} channels", g.in_channels), input));
                }
                let (ho, wo) = g.transposed_output(h, w)?;
                Ok([g.out_channels, ho, wo])
            }
            AnyLayer::MaxPool2d(_) | AnyLayer::AvgPool2d(_) => {
                let (k, s) = match self {
                    AnyLayer::MaxPool2d(p) => p.window(),
                    AnyLayer::AvgPool2d(p) => p.window(),
                    _ => ((1, 1), (1, 1)),
                };
                if h < k.0 || w < k.1 || s.0 == 0 || s.1 == 0 {
                    return Err(shape_err("pool", format!("input at least {}x{}", k.0, k.1), input));
                }
                Ok([c, (h - k.0) / s.0 + 1, (w - k.1) / s.1 + 1])
            }
            AnyLayer::Upsample(u) => {
                let (f, _mode): ((usize, usize), UpsampleMode) = u.settings();
                match (h.checked_mul(f.0), w.checked_mul(f.1)) {
                    (Some(a), Some(b)) if c.checked_mul(a).and_then(|v| v.checked_mul(b)).is_some() => Ok([c, a, b]),
                    _ => Err(shape_err("upsample", "an output size that fits usize", input)),
                }
            }
            AnyLayer::BatchNorm(b) => {
                if c != b.channels() {
                    return Err(shape_err("batch_norm", format!("{} channels", b.channels()), input));
                }
                same()
            }
            AnyLayer::Activation(_) | AnyLayer::Dropout(_) | AnyLayer::Noise(_) => same(),
            AnyLayer::Flatten(_) => match len {
                Some(l) => Ok([l, 1, 1]),
                None => Err(shape_err("flatten", "a size that fits usize", input)),
            },
            AnyLayer::Reshape(r) => {
                let t = r.shape();
                if t.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != len {
                    return Err(shape_err("reshape", format!("{t:?}"), input));
                }
                Ok(t)
            }
            AnyLayer::Custom(l) => l.output_shape(input),
        }
    }
}
