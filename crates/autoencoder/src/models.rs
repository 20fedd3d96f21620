//! The lecture's models as parameter builders, in latent's one fit pattern: `XParams::new(..)` →
//! [`ParamGuard::check`] → [`Checked`] → [`Checked::build`] (an untrained model, e.g.
//! `let m: Autoencoder<f32> = LinearAeParams::new(4, 2).check()?.build()?`) or
//! [`Checked::fit`] (build for the data's shape and train); [`CheckedModel`] adds
//! `build_for(shape)` and `fit_validated(&data, validation)`.
//!
//! | builder | model |
//! |---|---|
//! | [`LinearAeParams`] | `s = Vx`, `x̂ = Ws`, loss `‖x − WVx‖² + λ‖Vx‖₁ + η‖W‖²_F` |
//! | [`SparseReluAeParams`] | `s = max(0, Vx)`, `x̂ = Ws`, with the L1 code penalty and the anti-dead-unit KL term |
//! | [`MlpAeParams`] | deep fully connected, any depth, from a list of widths |
//! | [`ConvAeParams`] | deep convolutional, any depth, from a list of channel stages |
//!
//! Every builder has a `denoising(noise)` setter: the model then gets a [`Noise`] layer in front
//! of its encoder, active in training mode only (the denoising autoencoder of Vincent et al.).
//! Initialisation (PyTorch's default, `U(−1/√fan_in, 1/√fan_in)`), shuffling and noise are all
//! seeded by `train.seed`.

use crate::error::{AutoencoderError, Result, check_nonneg, invalid, shape_err};
use crate::layer::{Activation, ActivationLayer};
use crate::layers::batchnorm::BatchNorm;
use crate::layers::conv::{Conv2d, ConvGeometry, ConvTranspose2d};
use crate::layers::dense::Dense;
use crate::layers::dropout::Dropout;
use crate::layers::noise::{Noise, NoiseModel};
use crate::loss::Loss;
use crate::model::{Autoencoder, KlSparsity, ModelKind, Objective, WeightSet};
use crate::sequential::Sequential;
use crate::train::{LrSchedule, OptimizerKind, TrainParams, TrainReport, Trainer};
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::{Build, Checked, Fit, ParamGuard};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A trained model with its training diagnostics.
#[derive(Debug, Clone)]
pub struct Fitted<T> {
    /// The trained model.
    pub model: Autoencoder<T>,
    /// Loss history, validation history, epochs run, stop reason, throughput.
    pub report: TrainReport,
}

/// What [`Checked::build`], [`Checked::fit`] and [`CheckedModel`] need from a model builder.
pub trait ModelParams {
    /// Validate the model part (the training part is validated by [`TrainParams`]'s
    /// [`ParamGuard::validate`]).
    ///
    /// # Errors
    /// [`crate::AutoencoderError::InvalidParameter`] naming the bad value.
    fn check_model(&self) -> Result<()>;
    /// Build an untrained model for per-sample inputs of `shape` `(C, H, W)`.
    ///
    /// # Errors
    /// A shape error when `shape` does not fit the architecture.
    fn build_model<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>>;
    /// The per-sample input shape `build()` uses.
    fn default_shape(&self) -> [usize; 3];
    /// The training parameters.
    fn train_params(&self) -> &TrainParams;
    /// The training parameters, to change (e.g. one seed and quiet training across several
    /// builders, as the figures do).
    fn train_params_mut(&mut self) -> &mut TrainParams;
}

/// What a checked autoencoder parameter set does beyond [`Checked::build`] (a model for the
/// builder's own input shape) and [`Checked::fit`] (build for the data's shape and train): build
/// for an explicit per-sample shape, and fit with a validation set. Implemented for
/// `Checked<P>` of every [`ModelParams`] type.
///
/// # Example
/// ```
/// use latent_autoencoder::{Autoencoder, CheckedModel, ParamGuard, models::LinearAeParams};
/// let params = LinearAeParams::new(16, 3).check()?;
/// let image_model: Autoencoder<f32> = params.build_for([1, 4, 4])?; // 16 values as 1×4×4 images
/// let vector_model: Autoencoder<f32> = params.build()?; // 16 values as 16×1×1
/// assert_eq!(image_model.code_shape()?, vector_model.code_shape()?);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
pub trait CheckedModel {
    /// An untrained model for per-sample inputs of `shape` `(C, H, W)`.
    ///
    /// # Errors
    /// As [`ModelParams::build_model`].
    fn build_for<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>>;

    /// Build a model for the data's per-sample shape and train it, validating on `validation`
    /// after every epoch (`None`: as [`Checked::fit`]).
    ///
    /// # Errors
    /// As [`Trainer::fit`], plus shape errors when the data does not fit the architecture.
    fn fit_validated<T: Real>(&self, data: &Tensor4<T>, validation: Option<&Tensor4<T>>) -> Result<Fitted<T>>;
}

impl<P: ModelParams> CheckedModel for Checked<P> {
    fn build_for<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>> {
        self.get().build_model(shape)
    }

    fn fit_validated<T: Real>(&self, data: &Tensor4<T>, validation: Option<&Tensor4<T>>) -> Result<Fitted<T>> {
        let [_, c, h, w] = data.shape();
        let mut model = self.get().build_model([c, h, w])?;
        let trainer = Trainer::new(self.get().train_params().check_ref()?);
        let report = trainer.fit(&mut model, data, validation)?;
        Ok(Fitted { model, report })
    }
}

/// The fit pattern for an autoencoder parameter set: [`ParamGuard`] (model part, then training
/// part), [`Build`] (an untrained model for the builder's input shape) and [`Fit`] on a
/// [`Tensor4`] (build for the data's shape, then train).
macro_rules! fit_pattern {
    ($t:ty) => {
        impl ParamGuard for $t {
            type Error = AutoencoderError;

            /// # Errors
            /// [`AutoencoderError::InvalidParameter`] naming the first bad value (or a shape
            /// error for an architecture whose shapes do not chain).
            fn validate(&self) -> Result<()> {
                self.check_model()?;
                self.train.validate()
            }
        }

        impl<T: Real> Build<Autoencoder<T>> for $t {
            fn build_checked(params: &Checked<Self>) -> Result<Autoencoder<T>> {
                params.build_for(params.default_shape())
            }
        }

        impl<T: Real> Fit<Tensor4<T>> for $t {
            type Fitted = Fitted<T>;

            fn fit_checked(params: &Checked<Self>, data: &Tensor4<T>) -> Result<Fitted<T>> {
                params.fit_validated(data, None)
            }
        }
    };
}

macro_rules! common_setters {
    ($t:ty) => {
        impl $t {
            /// Replace all training parameters.
            pub fn train(mut self, train: TrainParams) -> Self {
                self.train = train;
                self
            }
            /// Set the base learning rate.
            pub fn lr(mut self, lr: f64) -> Self {
                self.train.lr = lr;
                self
            }
            /// Set the number of epochs.
            pub fn epochs(mut self, epochs: usize) -> Self {
                self.train.epochs = epochs;
                self
            }
            /// Set the batch size.
            pub fn batch_size(mut self, batch_size: usize) -> Self {
                self.train.batch_size = batch_size;
                self
            }
            /// Set the seed (initialisation, shuffling, noise).
            pub fn seed(mut self, seed: u64) -> Self {
                self.train.seed = seed;
                self
            }
            /// Set the optimizer.
            pub fn optimizer(mut self, optimizer: OptimizerKind) -> Self {
                self.train.optimizer = optimizer;
                self
            }
            /// Set the learning-rate schedule.
            pub fn schedule(mut self, schedule: LrSchedule) -> Self {
                self.train.schedule = schedule;
                self
            }
            /// Enable early stopping with `patience` epochs.
            pub fn patience(mut self, patience: usize) -> Self {
                self.train.patience = Some(patience);
                self
            }
            /// Hold out this share of the data for validation.
            pub fn validation_fraction(mut self, f: f64) -> Self {
                self.train.validation_fraction = f;
                self
            }
            /// Show the progress bar (when stderr is a terminal), or not.
            pub fn progress(mut self, on: bool) -> Self {
                self.train.progress = on;
                self
            }
            /// Make it a denoising autoencoder: corrupt inputs with `noise` in training mode.
            pub fn denoising(mut self, noise: NoiseModel) -> Self {
                self.noise = Some(noise);
                self
            }
            /// Set the reconstruction loss.
            pub fn loss(mut self, loss: Loss) -> Self {
                self.loss = loss;
                self
            }
        }
    };
}

fn init_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Noise seed derived from the run seed (its own random stream).
fn noise_seed(seed: u64) -> u64 {
    seed ^ 0x6e6f_6973_6521_0001
}

fn dropout_seed(seed: u64, i: usize) -> u64 {
    seed ^ 0x6472_6f70_0000_0000 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn sample_len(op: &'static str, shape: [usize; 3]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| shape_err(op, "a size that fits usize", shape))
}

fn finish<T: Real>(
    kind: ModelKind,
    shape: [usize; 3],
    encoder: Sequential<T>,
    code_activation: Activation,
    decoder: Sequential<T>,
    objective: Objective,
    noise: Option<NoiseModel>,
    seed: u64,
) -> Result<Autoencoder<T>> {
    let m = Autoencoder::assemble(kind, shape, encoder, code_activation, decoder, objective)?;
    match noise {
        Some(n) => m.with_noise(n, noise_seed(seed)),
        None => Ok(m),
    }
}

// ---------------------------------------------------------------------------------------------

/// The linear autoencoder `s = Vx`, `x̂ = Ws` trained on
/// `(1/N)Σₙ [‖xₙ − WVxₙ‖² + λ‖Vxₙ‖₁] + η‖W‖²_F`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `input_dim` | — | `D`, values per sample | `>= 1` |
/// | `code_dim` | — | `k`, code size | `>= 1` |
/// | `lambda` | `0` | λ, L1 weight on the code | finite, `>= 0` |
/// | `eta` | `0` | η, Frobenius weight on the decoder `W` | finite, `>= 0` |
/// | `bias` | `false` | add biases to `V` and `W` | — |
/// | `loss` | `SumSquared` | reconstruction loss | see [`Loss`] |
/// | `noise` | `None` | denoising corruption | see [`NoiseModel`] |
/// | `train` | [`TrainParams::default`] | training | see [`TrainParams`] |
///
/// # Example
/// ```
/// use latent_autoencoder::{ParamGuard, models::LinearAeParams};
/// use latent_linalg::Tensor4;
/// // Data on a 2-D subspace of R⁴: a 2-unit linear autoencoder reconstructs it.
/// let x = Tensor4::from_fn([200, 4, 1, 1], |[n, c, ..]| {
///     let (a, b) = (((n * 37) % 19) as f64 / 19.0 - 0.5, ((n * 11) % 23) as f64 / 23.0 - 0.5);
///     [a + b, a - b, 2.0 * a, b][c]
/// })?;
/// let fitted = LinearAeParams::new(4, 2).epochs(300).lr(1e-2).batch_size(50).progress(false).check()?.fit(&x)?;
/// let r = &fitted.report;
/// assert!(r.train_loss[r.epochs_run - 1] < 0.02 * r.train_loss[0], "{:?}", r.train_loss);
/// let err = fitted.model.reconstruction_errors(&x)?;
/// assert!(err.iter().all(|e| *e < 1e-2));
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearAeParams {
    /// Values per sample.
    pub input_dim: usize,
    /// Code size.
    pub code_dim: usize,
    /// L1 weight λ.
    pub lambda: f64,
    /// Frobenius weight η.
    pub eta: f64,
    /// Biases on or off.
    pub bias: bool,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Denoising corruption.
    pub noise: Option<NoiseModel>,
    /// Training parameters.
    pub train: TrainParams,
}

impl LinearAeParams {
    /// Defaults for `input_dim → code_dim → input_dim`.
    pub fn new(input_dim: usize, code_dim: usize) -> Self {
        Self {
            input_dim,
            code_dim,
            lambda: 0.0,
            eta: 0.0,
            bias: false,
            loss: Loss::SumSquared,
            noise: None,
            train: TrainParams::default(),
        }
    }
    /// Set λ.
    pub fn lambda(mut self, v: f64) -> Self {
        self.lambda = v;
        self
    }
    /// Set η.
    pub fn eta(mut self, v: f64) -> Self {
        self.eta = v;
        self
    }
    /// Biases on or off.
    pub fn bias(mut self, v: bool) -> Self {
        self.bias = v;
        self
    }
}
common_setters!(LinearAeParams);
fit_pattern!(LinearAeParams);

fn check_dims(input_dim: usize, code_dim: usize) -> Result<()> {
    if input_dim == 0 {
        return Err(invalid("input_dim", input_dim, "must be >= 1"));
    }
    if code_dim == 0 {
        return Err(invalid("code_dim", code_dim, "must be >= 1"));
    }
    Ok(())
}

fn check_noise(noise: &Option<NoiseModel>) -> Result<()> {
    noise.as_ref().map_or(Ok(()), NoiseModel::validate)
}

impl ModelParams for LinearAeParams {
    fn check_model(&self) -> Result<()> {
        check_dims(self.input_dim, self.code_dim)?;
        check_nonneg("lambda", self.lambda)?;
        check_nonneg("eta", self.eta)?;
        check_noise(&self.noise)
    }
    fn build_model<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>> {
        self.check_model()?;
        if sample_len("linear autoencoder input", shape)? != self.input_dim {
            return Err(shape_err("linear autoencoder input", format!("C·H·W = {}", self.input_dim), shape));
        }
        let mut rng = init_rng(self.train.seed);
        let enc = Sequential::new().with(Dense::new(
            self.input_dim,
            self.code_dim,
            Activation::Identity,
            self.bias,
            &mut rng,
        )?);
        let dec = Sequential::new().with(Dense::new(
            self.code_dim,
            self.input_dim,
            Activation::Identity,
            self.bias,
            &mut rng,
        )?);
        let obj = Objective {
            loss: self.loss,
            l1: self.lambda,
            kl: None,
            frobenius: self.eta,
            frobenius_on: WeightSet::Decoder,
        };
        finish(ModelKind::Linear, shape, enc, Activation::Identity, dec, obj, self.noise, self.train.seed)
    }
    fn default_shape(&self) -> [usize; 3] {
        [self.input_dim, 1, 1]
    }
    fn train_params(&self) -> &TrainParams {
        &self.train
    }
    fn train_params_mut(&mut self) -> &mut TrainParams {
        &mut self.train
    }
}

// ---------------------------------------------------------------------------------------------

/// The sparse ReLU autoencoder `s = max(0, Vx)`, `x̂ = Ws`, trained on
/// `(1/N)Σₙ [‖xₙ − x̂ₙ‖² + λ‖sₙ‖₁] + β·Σⱼ KL(ρ‖ρ̂ⱼ) + η‖W‖²_F`, where `ρ̂ⱼ` is unit `j`'s smooth
/// firing rate over the batch (computed from the pre-activation `vⱼ·x`): the entropy term that
/// forces every unit to activate on about a fraction `ρ` of the inputs, so no unit stays dead (see
/// [`crate::loss::kl_sparsity_penalty`]). Count dead units with [`Autoencoder::dead_units`].
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `input_dim` | — | `D` | `>= 1` |
/// | `code_dim` | — | `k` | `>= 1` |
/// | `lambda` | `0.1` | λ, L1 weight on the code | finite, `>= 0` |
/// | `kl_rho` | `0.05` | ρ, target activation rate | `(0, 1)` |
/// | `kl_weight` | `0.1` | β, weight of the KL term (0 disables it) | finite, `>= 0` |
/// | `kl_temperature` | `0.1` ([`crate::loss::DEFAULT_KL_TEMPERATURE`]) | τ of the soft firing indicator `σ(z/(τ·sd))` | finite, `> 0` |
/// | `eta` | `0` | η, Frobenius weight on `W` | finite, `>= 0` |
/// | `bias` | `false` | add biases to `V` and `W` | — |
/// | `loss` | `SumSquared` | reconstruction loss | see [`Loss`] |
/// | `noise` | `None` | denoising corruption | see [`NoiseModel`] |
/// | `train` | [`TrainParams::default`] | training | see [`TrainParams`] |
///
/// # Example
/// ```
/// use latent_autoencoder::{Encoder, ParamGuard, models::SparseReluAeParams};
/// use latent_linalg::Tensor4;
/// let x = Tensor4::from_fn([128, 6, 1, 1], |[n, c, ..]| ((n * 7 + c * 13 + n * c) % 17) as f32 / 17.0)?;
/// let fitted = SparseReluAeParams::new(6, 8).kl(0.1, 0.5).epochs(40).lr(1e-2).batch_size(32).progress(false).check()?.fit(&x)?;
/// let s = fitted.model.encode(&x)?;
/// assert!(s.as_slice().iter().all(|v| *v >= 0.0));
/// let zeros = s.as_slice().iter().filter(|v| **v == 0.0).count();
/// assert!(zeros > s.len() / 2, "sparse codes");
/// let dead = fitted.model.dead_units(&x, 64, 0.0)?; // samples on which each unit fired
/// assert_eq!(dead.counts().len(), 8);
/// assert!(dead.num_dead() <= 2, "{:?}", dead.counts());
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SparseReluAeParams {
    /// Values per sample.
    pub input_dim: usize,
    /// Code size.
    pub code_dim: usize,
    /// L1 weight λ.
    pub lambda: f64,
    /// KL target rate ρ.
    pub kl_rho: f64,
    /// KL weight β.
    pub kl_weight: f64,
    /// KL temperature τ.
    pub kl_temperature: f64,
    /// Frobenius weight η.
    pub eta: f64,
    /// Biases on or off.
    pub bias: bool,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Denoising corruption.
    pub noise: Option<NoiseModel>,
    /// Training parameters.
    pub train: TrainParams,
}

impl SparseReluAeParams {
    /// Defaults for `input_dim → code_dim → input_dim`.
    pub fn new(input_dim: usize, code_dim: usize) -> Self {
        Self {
            input_dim,
            code_dim,
            lambda: 0.1,
            kl_rho: 0.05,
            kl_weight: 0.1,
            kl_temperature: crate::loss::DEFAULT_KL_TEMPERATURE,
            eta: 0.0,
            bias: false,
            loss: Loss::SumSquared,
            noise: None,
            train: TrainParams::default(),
        }
    }
    /// Set λ.
    pub fn lambda(mut self, v: f64) -> Self {
        self.lambda = v;
        self
    }
    /// Set ρ and β of the KL term.
    pub fn kl(mut self, rho: f64, weight: f64) -> Self {
        self.kl_rho = rho;
        self.kl_weight = weight;
        self
    }
    /// Set τ of the KL term.
    pub fn kl_temperature(mut self, t: f64) -> Self {
        self.kl_temperature = t;
        self
    }
    /// Set η.
    pub fn eta(mut self, v: f64) -> Self {
        self.eta = v;
        self
    }
    /// Biases on or off.
    pub fn bias(mut self, v: bool) -> Self {
        self.bias = v;
        self
    }
}
common_setters!(SparseReluAeParams);
fit_pattern!(SparseReluAeParams);

impl ModelParams for SparseReluAeParams {
    fn check_model(&self) -> Result<()> {
        check_dims(self.input_dim, self.code_dim)?;
        check_nonneg("lambda", self.lambda)?;
        check_nonneg("eta", self.eta)?;
        KlSparsity::new(self.kl_rho, self.kl_weight).temperature(self.kl_temperature).validate()?;
        check_noise(&self.noise)
    }
    fn build_model<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>> {
        self.check_model()?;
        if sample_len("sparse ReLU autoencoder input", shape)? != self.input_dim {
            return Err(shape_err("sparse ReLU autoencoder input", format!("C·H·W = {}", self.input_dim), shape));
        }
        let mut rng = init_rng(self.train.seed);
        let enc = Sequential::new().with(Dense::new(
            self.input_dim,
            self.code_dim,
            Activation::Identity,
            self.bias,
            &mut rng,
        )?);
        let dec = Sequential::new().with(Dense::new(
            self.code_dim,
            self.input_dim,
            Activation::Identity,
            self.bias,
            &mut rng,
        )?);
        let kl = (self.kl_weight > 0.0)
            .then_some(KlSparsity::new(self.kl_rho, self.kl_weight).temperature(self.kl_temperature));
        let obj =
            Objective { loss: self.loss, l1: self.lambda, kl, frobenius: self.eta, frobenius_on: WeightSet::Decoder };
        finish(ModelKind::SparseRelu, shape, enc, Activation::Relu, dec, obj, self.noise, self.train.seed)
    }
    fn default_shape(&self) -> [usize; 3] {
        [self.input_dim, 1, 1]
    }
    fn train_params(&self) -> &TrainParams {
        &self.train
    }
    fn train_params_mut(&mut self) -> &mut TrainParams {
        &mut self.train
    }
}

// ---------------------------------------------------------------------------------------------

/// Penalties shared by the deep models.
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `l1` | `0` | λ, L1 weight on the code | finite, `>= 0` |
/// | `kl` | `None` | KL "every unit fires" term | see [`KlSparsity`] |
/// | `frobenius` | `0` | η, Frobenius weight | finite, `>= 0` |
/// | `frobenius_on` | `All` | weights it covers | see [`WeightSet`] |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalties {
    /// L1 weight on the code.
    pub l1: f64,
    /// KL sparsity term.
    pub kl: Option<KlSparsity>,
    /// Frobenius weight.
    pub frobenius: f64,
    /// Weights covered by the Frobenius penalty.
    pub frobenius_on: WeightSet,
}

impl Default for Penalties {
    fn default() -> Self {
        Self { l1: 0.0, kl: None, frobenius: 0.0, frobenius_on: WeightSet::All }
    }
}

impl Penalties {
    fn objective(&self, loss: Loss) -> Objective {
        Objective { loss, l1: self.l1, kl: self.kl, frobenius: self.frobenius, frobenius_on: self.frobenius_on }
    }
}

/// A deep fully connected autoencoder from a list of widths `[D, h₁, …, k]`: the encoder maps
/// `D → h₁ → … → k` (hidden activation after every layer but the last; the code is
/// `s = code_activation(z)`), the decoder mirrors it `k → … → h₁ → D` (hidden activation, then
/// `output_activation` on the last layer).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `widths` | — | `[D, h₁, …, k]` | at least 2 entries, each `>= 1` |
/// | `hidden_activation` | `Relu` | activation of hidden layers | see [`Activation`] |
/// | `code_activation` | `Relu` | `s = f(z)` | see [`Activation`] |
/// | `output_activation` | `Sigmoid` | activation of the reconstruction (use `Identity` with `BceWithLogits`) | see [`Activation`] |
/// | `bias` | `true` | biases on every layer | — |
/// | `batch_norm` | `false` | batch normalisation before every hidden activation | — |
/// | `dropout` | `0` | dropout after every hidden activation | `[0, 1)` |
/// | `loss` | `Mse` | reconstruction loss (PyTorch's `MSELoss` scaling) | see [`Loss`] |
/// | `penalties` | none | L1 / KL / Frobenius | see [`Penalties`] |
/// | `noise` | `None` | denoising corruption | see [`NoiseModel`] |
/// | `train` | [`TrainParams::default`] | training | see [`TrainParams`] |
///
/// # Example
/// ```
/// use latent_autoencoder::{ParamGuard, models::MlpAeParams};
/// use latent_linalg::Tensor4;
/// let x = Tensor4::from_fn([96, 1, 4, 4], |[n, _, i, j]| ((n % 4 == i) as u8 as f32 + (n % 3 == j) as u8 as f32) / 2.0)?;
/// let fitted = MlpAeParams::new(vec![16, 12, 6]).epochs(40).lr(1e-2).batch_size(32).progress(false).check()?.fit(&x)?;
/// let r = &fitted.report;
/// assert!(r.train_loss[r.epochs_run - 1] < 0.5 * r.train_loss[0]);
/// assert_eq!(fitted.model.reconstruct(&x)?.shape(), x.shape());
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MlpAeParams {
    /// `[D, h₁, …, k]`.
    pub widths: Vec<usize>,
    /// Hidden activation.
    pub hidden_activation: Activation,
    /// Code activation.
    pub code_activation: Activation,
    /// Output activation.
    pub output_activation: Activation,
    /// Biases on or off.
    pub bias: bool,
    /// Batch normalisation on hidden layers.
    pub batch_norm: bool,
    /// Dropout probability after hidden activations.
    pub dropout: f64,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Penalties.
    pub penalties: Penalties,
    /// Denoising corruption.
    pub noise: Option<NoiseModel>,
    /// Training parameters.
    pub train: TrainParams,
}

impl MlpAeParams {
    /// Defaults for the given widths.
    pub fn new(widths: Vec<usize>) -> Self {
        Self {
            widths,
            hidden_activation: Activation::Relu,
            code_activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            bias: true,
            batch_norm: false,
            dropout: 0.0,
            loss: Loss::Mse,
            penalties: Penalties::default(),
            noise: None,
            train: TrainParams::default(),
        }
    }
    /// Set the hidden activation.
    pub fn hidden_activation(mut self, a: Activation) -> Self {
        self.hidden_activation = a;
        self
    }
    /// Set the code activation.
    pub fn code_activation(mut self, a: Activation) -> Self {
        self.code_activation = a;
        self
    }
    /// Set the output activation.
    pub fn output_activation(mut self, a: Activation) -> Self {
        self.output_activation = a;
        self
    }
    /// Batch normalisation on or off.
    pub fn batch_norm(mut self, on: bool) -> Self {
        self.batch_norm = on;
        self
    }
    /// Set the dropout probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// Set the penalties.
    pub fn penalties(mut self, p: Penalties) -> Self {
        self.penalties = p;
        self
    }
}
common_setters!(MlpAeParams);
fit_pattern!(MlpAeParams);

fn check_common(
    hidden: Activation,
    code: Activation,
    out: Activation,
    dropout: f64,
    pen: &Penalties,
    loss: Loss,
    noise: &Option<NoiseModel>,
) -> Result<()> {
    hidden.validate()?;
    code.validate()?;
    out.validate()?;
    if !(0.0..1.0).contains(&dropout) {
        return Err(invalid("dropout", dropout, "must be in [0, 1)"));
    }
    pen.objective(loss).validate()?;
    check_noise(noise)
}

/// After a hidden dense/conv layer: batch norm + activation (when `bn`, the layer then has no fused
/// activation) and dropout (when `dropout > 0`).
fn hidden_block<T: Real>(
    seq: &mut Sequential<T>,
    channels: usize,
    act: Activation,
    bn: bool,
    dropout: f64,
    seed: u64,
    idx: &mut usize,
) -> Result<()> {
    if bn {
        seq.push(BatchNorm::new(channels)?);
        seq.push(ActivationLayer::new(act)?);
    }
    if dropout > 0.0 {
        seq.push(Dropout::new(dropout, dropout_seed(seed, *idx))?);
        *idx += 1;
    }
    Ok(())
}

impl ModelParams for MlpAeParams {
    fn check_model(&self) -> Result<()> {
        if self.widths.len() < 2 {
            return Err(invalid("widths", format!("{:?}", self.widths), "needs at least [input, code]"));
        }
        if let Some(w) = self.widths.iter().find(|w| **w == 0) {
            return Err(invalid("widths", w, "every width must be >= 1"));
        }
        check_common(
            self.hidden_activation,
            self.code_activation,
            self.output_activation,
            self.dropout,
            &self.penalties,
            self.loss,
            &self.noise,
        )
    }
    fn build_model<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>> {
        self.check_model()?;
        let d = self.widths[0];
        if sample_len("MLP autoencoder input", shape)? != d {
            return Err(shape_err("MLP autoencoder input", format!("C·H·W = {d}"), shape));
        }
        let seed = self.train.seed;
        let mut rng = init_rng(seed);
        let mut drop_idx = 0;
        let w = &self.widths;
        let layers = w.len() - 1;
        let mut enc = Sequential::new();
        for i in 0..layers {
            let last = i + 1 == layers;
            let fused = if last || self.batch_norm { Activation::Identity } else { self.hidden_activation };
            enc.push(Dense::new(w[i], w[i + 1], fused, self.bias, &mut rng)?);
            if !last {
                hidden_block(
                    &mut enc,
                    w[i + 1],
                    self.hidden_activation,
                    self.batch_norm,
                    self.dropout,
                    seed,
                    &mut drop_idx,
                )?;
            }
        }
        let mut dec = Sequential::new();
        for i in (0..layers).rev() {
            let last = i == 0;
            let fused = if last {
                self.output_activation
            } else if self.batch_norm {
                Activation::Identity
            } else {
                self.hidden_activation
            };
            dec.push(Dense::new(w[i + 1], w[i], fused, self.bias, &mut rng)?);
            if !last {
                hidden_block(
                    &mut dec,
                    w[i],
                    self.hidden_activation,
                    self.batch_norm,
                    self.dropout,
                    seed,
                    &mut drop_idx,
                )?;
            }
        }
        finish(
            ModelKind::Mlp,
            shape,
            enc,
            self.code_activation,
            dec,
            self.penalties.objective(self.loss),
            self.noise,
            seed,
        )
    }
    fn default_shape(&self) -> [usize; 3] {
        [self.widths.first().copied().unwrap_or(1), 1, 1]
    }
    fn train_params(&self) -> &TrainParams {
        &self.train
    }
    fn train_params_mut(&mut self) -> &mut TrainParams {
        &mut self.train
    }
}

// ---------------------------------------------------------------------------------------------

/// One stage of a convolutional autoencoder: a convolution (encoder) or transposed convolution
/// (decoder) to `channels` output channels.
///
/// | field | meaning | range |
/// |---|---|---|
/// | `channels` | output channels | `>= 1` |
/// | `kernel` | square kernel size | `>= 1` |
/// | `stride` | stride | `>= 1` |
/// | `pad` | zero padding | `>= 0` |
/// | `output_padding` | extra output rows/cols (decoder stages) | `< stride` |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvStage {
    /// Output channels.
    pub channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub pad: usize,
    /// Output padding (transposed convolutions).
    pub output_padding: usize,
}

impl ConvStage {
    /// A stage without output padding.
    pub fn new(channels: usize, kernel: usize, stride: usize, pad: usize) -> Self {
        Self { channels, kernel, stride, pad, output_padding: 0 }
    }
    /// Set the output padding.
    pub fn output_padding(mut self, op: usize) -> Self {
        self.output_padding = op;
        self
    }
}

/// A deep convolutional autoencoder from channel stages: the encoder applies
/// [`Conv2d`] stages (hidden activation after all but the last; the code is
/// `s = code_activation(z)`), the decoder applies [`ConvTranspose2d`] stages (hidden activation,
/// `output_activation` on the last, whose channels must equal the input's). Without explicit
/// decoder stages the decoder mirrors the encoder (same kernels, strides and paddings, output
/// padding chosen to restore each size).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `input_shape` | — | per-sample `(C, H, W)` | each `>= 1` |
/// | `encoder` | — | encoder stages | at least one, see [`ConvStage`] |
/// | `decoder` | `None` (mirror) | decoder stages | last has `C` channels |
/// | `hidden_activation` | `Relu` | activation of hidden layers | see [`Activation`] |
/// | `code_activation` | `Relu` | `s = f(z)` | see [`Activation`] |
/// | `output_activation` | `Sigmoid` | activation of the reconstruction | see [`Activation`] |
/// | `batch_norm` | `false` | batch normalisation before every hidden activation | — |
/// | `loss` | `Mse` | reconstruction loss | see [`Loss`] |
/// | `penalties` | none | L1 / KL / Frobenius | see [`Penalties`] |
/// | `noise` | `None` | denoising corruption | see [`NoiseModel`] |
/// | `train` | [`TrainParams::default`] | training | see [`TrainParams`] |
///
/// # Example
/// ```
/// use latent_autoencoder::ParamGuard;
/// use latent_autoencoder::models::{ConvAeParams, ConvStage};
/// use latent_linalg::Tensor4;
/// // 1×8×8 → 4×4×4 → 8×2×2 and back, mirrored.
/// let params = ConvAeParams::new([1, 8, 8])
///     .encoder_stage(ConvStage::new(4, 3, 2, 1))
///     .encoder_stage(ConvStage::new(8, 3, 2, 1))
///     .epochs(15).lr(1e-2).batch_size(16).progress(false)
///     .check()?;
/// let x = Tensor4::from_fn([48, 1, 8, 8], |[n, _, i, j]| ((i + j + n) % 4 == 0) as u8 as f32)?;
/// let fitted = params.fit(&x)?;
/// assert_eq!(fitted.model.code_shape()?, [8, 2, 2]);
/// assert!(fitted.report.train_loss[14] < fitted.report.train_loss[0]);
/// assert_eq!(fitted.model.reconstruct(&x)?.shape(), x.shape());
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConvAeParams {
    /// Per-sample input shape.
    pub input_shape: [usize; 3],
    /// Encoder stages.
    pub encoder: Vec<ConvStage>,
    /// Decoder stages (`None`: mirror the encoder).
    pub decoder: Option<Vec<ConvStage>>,
    /// Hidden activation.
    pub hidden_activation: Activation,
    /// Code activation.
    pub code_activation: Activation,
    /// Output activation.
    pub output_activation: Activation,
    /// Batch normalisation on hidden layers.
    pub batch_norm: bool,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Penalties.
    pub penalties: Penalties,
    /// Denoising corruption.
    pub noise: Option<NoiseModel>,
    /// Training parameters.
    pub train: TrainParams,
}

impl ConvAeParams {
    /// Defaults for inputs of `input_shape` (add stages with [`ConvAeParams::encoder_stage`]).
    pub fn new(input_shape: [usize; 3]) -> Self {
        Self {
            input_shape,
            encoder: Vec::new(),
            decoder: None,
            hidden_activation: Activation::Relu,
            code_activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            batch_norm: false,
            loss: Loss::Mse,
            penalties: Penalties::default(),
            noise: None,
            train: TrainParams::default(),
        }
    }
    /// Append an encoder stage.
    pub fn encoder_stage(mut self, s: ConvStage) -> Self {
        self.encoder.push(s);
        self
    }
    /// Append a decoder stage (switches off mirroring).
    pub fn decoder_stage(mut self, s: ConvStage) -> Self {
        self.decoder.get_or_insert_with(Vec::new).push(s);
        self
    }
    /// Set the hidden activation.
    pub fn hidden_activation(mut self, a: Activation) -> Self {
        self.hidden_activation = a;
        self
    }
    /// Set the code activation.
    pub fn code_activation(mut self, a: Activation) -> Self {
        self.code_activation = a;
        self
    }
    /// Set the output activation.
    pub fn output_activation(mut self, a: Activation) -> Self {
        self.output_activation = a;
        self
    }
    /// Batch normalisation on or off.
    pub fn batch_norm(mut self, on: bool) -> Self {
        self.batch_norm = on;
        self
    }
    /// Set the penalties.
    pub fn penalties(mut self, p: Penalties) -> Self {
        self.penalties = p;
        self
    }
    /// The encoder geometries and the decoder geometries for `shape`.
    fn geometries(&self, shape: [usize; 3]) -> Result<(Vec<ConvGeometry>, Vec<ConvGeometry>)> {
        let [c0, mut h, mut w] = shape;
        let mut c = c0;
        let mut enc = Vec::new();
        let mut sizes = vec![(c, h, w)];
        for s in &self.encoder {
            let g = ConvGeometry::new(c, s.channels, s.kernel, s.stride, s.pad);
            g.validate()?;
            (h, w) = g.conv_output(h, w)?;
            c = s.channels;
            enc.push(g);
            sizes.push((c, h, w));
        }
        let mut dec = Vec::new();
        match &self.decoder {
            Some(stages) => {
                for s in stages {
                    let g =
                        ConvGeometry::new(c, s.channels, s.kernel, s.stride, s.pad).output_padding(s.output_padding);
                    g.validate()?;
                    (h, w) = g.transposed_output(h, w)?;
                    c = s.channels;
                    dec.push(g);
                }
            }
            None => {
                for (i, s) in self.encoder.iter().enumerate().rev() {
                    let (tc, th, tw) = sizes[i];
                    let base = |n: usize, t: usize| -> Result<usize> {
                        let full = (n - 1) * s.stride + s.kernel;
                        let lo = full.checked_sub(2 * s.pad).ok_or_else(|| {
                            shape_err("mirrored decoder", format!("output size {t}"), (n, s.kernel, s.stride, s.pad))
                        })?;
                        match t.checked_sub(lo) {
                            Some(op) if op < s.stride => Ok(op),
                            _ => Err(shape_err(
                                "mirrored decoder",
                                format!("a transposed convolution reaching size {t}"),
                                (n, s.kernel, s.stride, s.pad),
                            )),
                        }
                    };
                    let (oph, opw) = (base(h, th)?, base(w, tw)?);
                    let mut g = ConvGeometry::new(c, tc, s.kernel, s.stride, s.pad);
                    g.output_padding = (oph, opw);
                    g.validate()?;
                    (h, w) = g.transposed_output(h, w)?;
                    c = tc;
                    dec.push(g);
                }
            }
        }
        if [c, h, w] != shape {
            return Err(shape_err("convolutional autoencoder decoder output", shape, [c, h, w]));
        }
        Ok((enc, dec))
    }
}
common_setters!(ConvAeParams);
fit_pattern!(ConvAeParams);

impl ModelParams for ConvAeParams {
    fn check_model(&self) -> Result<()> {
        if self.input_shape.contains(&0) {
            return Err(invalid("input_shape", format!("{:?}", self.input_shape), "every dimension must be >= 1"));
        }
        if self.encoder.is_empty() {
            return Err(invalid("encoder", "[]", "needs at least one stage"));
        }
        if let Some(d) = &self.decoder
            && d.is_empty()
        {
            return Err(invalid("decoder", "[]", "needs at least one stage (or None to mirror)"));
        }
        check_common(
            self.hidden_activation,
            self.code_activation,
            self.output_activation,
            0.0,
            &self.penalties,
            self.loss,
            &self.noise,
        )?;
        self.geometries(self.input_shape).map(drop)
    }
    fn build_model<T: Real>(&self, shape: [usize; 3]) -> Result<Autoencoder<T>> {
        self.check_model()?;
        if shape != self.input_shape {
            return Err(shape_err("convolutional autoencoder input", self.input_shape, shape));
        }
        let (eg, dg) = self.geometries(shape)?;
        let seed = self.train.seed;
        let mut rng = init_rng(seed);
        let mut idx = 0;
        let mut enc = Sequential::new();
        for (i, g) in eg.iter().enumerate() {
            let last = i + 1 == eg.len();
            let fused = if last || self.batch_norm { Activation::Identity } else { self.hidden_activation };
            enc.push(Conv2d::new(*g, fused, true, &mut rng)?);
            if !last {
                hidden_block(&mut enc, g.out_channels, self.hidden_activation, self.batch_norm, 0.0, seed, &mut idx)?;
            }
        }
        let mut dec = Sequential::new();
        for (i, g) in dg.iter().enumerate() {
            let last = i + 1 == dg.len();
            let fused = if last {
                self.output_activation
            } else if self.batch_norm {
                Activation::Identity
            } else {
                self.hidden_activation
            };
            dec.push(ConvTranspose2d::new(*g, fused, true, &mut rng)?);
            if !last {
                hidden_block(&mut dec, g.out_channels, self.hidden_activation, self.batch_norm, 0.0, seed, &mut idx)?;
            }
        }
        finish(
            ModelKind::Conv,
            shape,
            enc,
            self.code_activation,
            dec,
            self.penalties.objective(self.loss),
            self.noise,
            seed,
        )
    }
    fn default_shape(&self) -> [usize; 3] {
        self.input_shape
    }
    fn train_params(&self) -> &TrainParams {
        &self.train
    }
    fn train_params_mut(&mut self) -> &mut TrainParams {
        &mut self.train
    }
}

/// Build a noise layer (re-exported for hand-assembled denoising models).
///
/// # Errors
/// As [`NoiseModel::validate`].
pub fn noise_layer<T: Real>(noise: NoiseModel, seed: u64) -> Result<Noise<T>> {
    Noise::new(noise, seed)
}
