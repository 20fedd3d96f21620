//! The trainer: seeded mini-batches, `latent-optim` optimizers and schedules, validation, early
//! stopping, callbacks, atomic checkpoints, a NaN/Inf guard, a progress bar, and training-state
//! files from which an interrupted run resumes bit-identically (see [`TrainParams::resume_from`]).

use crate::error::{AutoencoderError, Result, check_finite_data, check_nonneg, check_pos, invalid};
use crate::io::write_atomic;
use crate::layer::Param;
use crate::model::Trainable;
use crate::resume::{RunConfig, SavedOptimizer, TrainingState, fingerprint, mismatch};
use latent_linalg::{Real, Tensor4};
use latent_optim::collective::{ChunkPartials, Communicator, Fingerprint, fnv1a};
use latent_optim::fit::{Checked, ParamGuard};
use latent_optim::optimizer::{Adam, AdamParams, AdamState, AdamW, AdamWParams, Optimizer, Sgd, SgdParams, SgdState};
use latent_optim::progress::Bar as ProgressBar;
use latent_optim::schedule::{Constant, CosineAnnealing, Schedule, StepDecay, warmup_cosine};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The optimizer (from `latent-optim`) and its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// Adam.
    Adam(AdamParams),
    /// AdamW (decoupled weight decay).
    AdamW(AdamWParams),
    /// SGD with optional (Nesterov) momentum.
    Sgd(SgdParams),
}

impl Default for OptimizerKind {
    fn default() -> Self {
        OptimizerKind::Adam(AdamParams::default())
    }
}

/// Learning-rate schedule over the run (evaluated at every optimizer step, built on
/// `latent-optim`'s schedules).
///
/// | variant | rate at step `k` |
/// |---|---|
/// | `Constant` | `lr` |
/// | `StepDecay { gamma, every_epochs }` | `lr·gamma^⌊epoch / every_epochs⌋` (`gamma ∈ (0, 1]`, `every_epochs >= 1`) |
/// | `Cosine { min_lr }` | cosine from `lr` to `min_lr` over all steps (`0 <= min_lr <= lr`) |
/// | `WarmupCosine { warmup_epochs, min_lr }` | linear warm-up from 0 over `warmup_epochs`, then cosine to `min_lr` (`warmup_epochs < epochs`) |
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum LrSchedule {
    /// Constant rate.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    StepDecay {
        /// Decay factor.
        gamma: f64,
        /// Epochs between decays.
        every_epochs: usize,
    },
    /// Cosine annealing over the whole run.
    Cosine {
        /// Final rate.
        min_lr: f64,
    },
    /// Linear warm-up then cosine annealing.
    WarmupCosine {
        /// Warm-up length in epochs.
        warmup_epochs: usize,
        /// Final rate.
        min_lr: f64,
    },
}

/// Periodic checkpoints: a file at `path`, written atomically every `every_epochs` epochs and
/// after the last epoch, only when all parameters are finite. For [`TrainParams::checkpoint`] it
/// is the model file (as [`crate::Autoencoder::save`] writes it), for
/// [`TrainParams::state_checkpoint`] the complete training state (a [`TrainingState`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointParams {
    /// Destination file (overwritten atomically).
    pub path: PathBuf,
    /// Epochs between checkpoints (`>= 1`).
    pub every_epochs: usize,
}

/// Training hyperparameters (builder).
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `epochs` | `10` | maximum passes over the training set | `>= 1` |
/// | `batch_size` | `64` | samples per optimizer step (the last batch may be smaller) | `>= 1` |
/// | `lr` | `1e-3` | base learning rate | finite, `> 0` |
/// | `optimizer` | Adam (β = 0.9, 0.999; ε = 1e-8) | see [`OptimizerKind`] | validated by `latent-optim` |
/// | `schedule` | `Constant` | see [`LrSchedule`] | — |
/// | `shuffle` | `true` | reshuffle the samples every epoch (seeded) | — |
/// | `seed` | `0` | seed of shuffling, the validation split and (in the model builders) initialisation and noise | any |
/// | `validation_fraction` | `0` | share of the training data held out for validation when no validation set is given | `[0, 1)` |
/// | `patience` | `None` | early stopping: epochs without improvement of the monitored loss before stopping | `>= 1` |
/// | `min_delta` | `0` | smallest decrease that counts as an improvement | finite, `>= 0` |
/// | `restore_best` | `true` | after early stopping, restore the best epoch's model | — |
/// | `progress` | `true` | show a progress bar on stderr (never when stderr is not a terminal) | — |
/// | `checkpoint` | `None` | periodic atomic checkpoints, see [`CheckpointParams`] | `every_epochs >= 1` |
/// | `state_checkpoint` | `None` | periodic atomic training-state files (everything needed to resume), see [`TrainParams::state_checkpoint`] | `every_epochs >= 1` |
/// | `resume_from` | `None` | continue the run saved in this training-state file, see [`TrainParams::resume_from`] | a file written by `state_checkpoint` |
/// | `distributed_chunk` | `16` ([`DISTRIBUTED_CHUNK`]) | samples per chunk of a global batch in [`Trainer::fit_distributed`]: the unit of work a rank takes and of the ordered gradient sum; results are bit-identical over rank counts for a fixed chunk, and differ between chunk sizes. Larger chunks run faster per sample (fewer, larger matrix products; fewer `f64` partials), smaller ones spread a batch over more ranks (at most `⌈batch / chunk⌉` ranks get work). Unused by [`Trainer::fit`] | `>= 1` |
///
/// The monitored loss is the validation loss when there is validation data, the training loss
/// otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainParams {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Reshuffle every epoch.
    pub shuffle: bool,
    /// Random seed.
    pub seed: u64,
    /// Held-out share of the training data.
    pub validation_fraction: f64,
    /// Early-stopping patience.
    pub patience: Option<usize>,
    /// Minimum improvement.
    pub min_delta: f64,
    /// Restore the best model after early stopping.
    pub restore_best: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Periodic checkpoints.
    pub checkpoint: Option<CheckpointParams>,
    /// Periodic training-state files.
    pub state_checkpoint: Option<CheckpointParams>,
    /// Training-state file to resume from.
    pub resume_from: Option<PathBuf>,
    /// Samples per chunk of a global batch in data-parallel training.
    pub distributed_chunk: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptimizerKind::default(),
            schedule: LrSchedule::Constant,
            shuffle: true,
            seed: 0,
            validation_fraction: 0.0,
            patience: None,
            min_delta: 0.0,
            restore_best: true,
            progress: true,
            checkpoint: None,
            state_checkpoint: None,
            resume_from: None,
            distributed_chunk: DISTRIBUTED_CHUNK,
        }
    }
}

impl TrainParams {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the maximum number of epochs.
        epochs: usize,
        /// Set the batch size.
        batch_size: usize,
        /// Set the base learning rate.
        lr: f64,
        /// Set the optimizer.
        optimizer: OptimizerKind,
        /// Set the learning-rate schedule.
        schedule: LrSchedule,
        /// Turn shuffling on or off.
        shuffle: bool,
        /// Set the seed.
        seed: u64,
        /// Set the held-out validation share.
        validation_fraction: f64,
        /// Set the minimum improvement.
        min_delta: f64,
        /// Restore the best model after early stopping, or not.
        restore_best: bool,
        /// Show the progress bar, or not.
        progress: bool,
        /// Set the samples per chunk of data-parallel training ([`Trainer::fit_distributed`]).
        distributed_chunk: usize,
    }
    /// Enable early stopping with this patience.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = Some(epochs);
        self
    }
    /// Write a checkpoint to `path` every `every_epochs` epochs.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>, every_epochs: usize) -> Self {
        self.checkpoint = Some(CheckpointParams { path: path.into(), every_epochs });
        self
    }

    /// Write the complete training state (a [`TrainingState`]: model, optimizer moments and step
    /// counts, shuffling generator and sample order, epoch and step counters, loss history) to
    /// `path` atomically every `every_epochs` epochs and after the last epoch, so the run can be
    /// continued with [`TrainParams::resume_from`]. The state is written at the end of the epoch,
    /// after the callbacks ran (it holds their learning-rate multiplier, not their own state).
    ///
    /// | parameter | meaning | range |
    /// |---|---|---|
    /// | `path` | destination file (overwritten atomically) | must name a file |
    /// | `every_epochs` | epochs between state files | `>= 1` |
    pub fn state_checkpoint(mut self, path: impl Into<PathBuf>, every_epochs: usize) -> Self {
        self.state_checkpoint = Some(CheckpointParams { path: path.into(), every_epochs });
        self
    }

    /// Continue the run whose state [`TrainParams::state_checkpoint`] wrote to `path`: the
    /// trainer replaces the model it is given by the saved one and carries on from the next
    /// epoch. With the same data and parameters, the resumed run is bit-identical to a run that
    /// was never interrupted (weights, loss history, step count), on any number of threads.
    ///
    /// | parameter | meaning | range |
    /// |---|---|---|
    /// | `path` | a training-state file of the same scalar type | must name a file |
    ///
    /// Every hyperparameter must equal the saved run's, except `epochs` (which may grow, unless
    /// the schedule is `Cosine` or `WarmupCosine`), `progress` and the checkpoint settings.
    ///
    /// # Errors
    /// Reported by [`Trainer::fit`]: [`AutoencoderError::Io`], [`AutoencoderError::Format`] or
    /// [`AutoencoderError::UnsupportedVersion`] for a missing, corrupt, truncated or newer file;
    /// [`AutoencoderError::State`] when the parameters, the data or the model type do not fit
    /// the saved run. The model is left untouched on error.
    ///
    /// # Example
    /// ```
    /// use latent_autoencoder::models::MlpAeParams;
    /// use latent_autoencoder::train::{Control, EpochContext, TrainParams, Trainer};
    /// use latent_autoencoder::{Autoencoder, ParamGuard, Trainable};
    /// use latent_linalg::Tensor4;
    /// let data = Tensor4::from_fn([48, 6, 1, 1], |[n, c, ..]| ((n * 5 + c) % 7) as f32 / 7.0)?;
    /// let path = std::env::temp_dir().join(format!("latent-resume-doc-{}.bin", std::process::id()));
    /// let arch = MlpAeParams::new(vec![6, 4, 2]).check()?;
    /// let params = TrainParams::new().epochs(6).batch_size(8).lr(1e-2).progress(false);
    ///
    /// // uninterrupted
    /// let mut whole: Autoencoder<f32> = arch.build()?;
    /// let full = Trainer::new(params.clone().check()?).fit(&mut whole, &data, None)?;
    ///
    /// // interrupted after epoch 2, with the state saved every epoch …
    /// let mut first: Autoencoder<f32> = arch.build()?;
    /// let mut stop = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
    ///     if ctx.epoch == 2 { Control::Stop } else { Control::Continue }
    /// };
    /// let saving = params.clone().state_checkpoint(&path, 1).check()?;
    /// Trainer::new(saving).fit_with_callbacks(&mut first, &data, None, &mut [&mut stop])?;
    ///
    /// // … and resumed: the same weights and loss history as the uninterrupted run
    /// let mut resumed: Autoencoder<f32> = arch.build()?;
    /// let rest = Trainer::new(params.resume_from(&path).check()?).fit(&mut resumed, &data, None)?;
    /// assert_eq!(rest.train_loss, full.train_loss);
    /// assert_eq!(resumed.to_bytes()?, whole.to_bytes()?);
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), latent_autoencoder::AutoencoderError>(())
    /// ```
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume_from = Some(path.into());
        self
    }
}

impl ParamGuard for TrainParams {
    type Error = AutoencoderError;

    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming the first bad value, or
    /// [`AutoencoderError::Optim`] for invalid optimizer hyperparameters.
    fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid("epochs", self.epochs, "must be >= 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", self.batch_size, "must be >= 1"));
        }
        if self.distributed_chunk == 0 {
            return Err(invalid("distributed_chunk", self.distributed_chunk, "must be >= 1"));
        }
        check_pos("lr", self.lr)?;
        match self.optimizer {
            OptimizerKind::Adam(p) => p.validate()?,
            OptimizerKind::AdamW(p) => p.validate()?,
            OptimizerKind::Sgd(p) => p.validate()?,
        }
        match self.schedule {
            LrSchedule::Constant => {}
            LrSchedule::StepDecay { gamma, every_epochs } => {
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(invalid("schedule.gamma", gamma, "must be in (0, 1]"));
                }
                if every_epochs == 0 {
                    return Err(invalid("schedule.every_epochs", every_epochs, "must be >= 1"));
                }
            }
            LrSchedule::Cosine { min_lr } => check_min_lr(min_lr, self.lr)?,
            LrSchedule::WarmupCosine { warmup_epochs, min_lr } => {
                check_min_lr(min_lr, self.lr)?;
                if warmup_epochs == 0 || warmup_epochs >= self.epochs {
                    return Err(invalid("schedule.warmup_epochs", warmup_epochs, "must be in [1, epochs)"));
                }
            }
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(invalid("validation_fraction", self.validation_fraction, "must be in [0, 1)"));
        }
        if self.patience == Some(0) {
            return Err(invalid("patience", 0, "must be >= 1"));
        }
        check_nonneg("min_delta", self.min_delta)?;
        if let Some(c) = &self.checkpoint {
            if c.every_epochs == 0 {
                return Err(invalid("checkpoint.every_epochs", 0, "must be >= 1"));
            }
            if c.path.file_name().is_none() {
                return Err(invalid("checkpoint.path", c.path.display(), "must name a file"));
            }
        }
        if let Some(c) = &self.state_checkpoint {
            if c.every_epochs == 0 {
                return Err(invalid("state_checkpoint.every_epochs", 0, "must be >= 1"));
            }
            if c.path.file_name().is_none() {
                return Err(invalid("state_checkpoint.path", c.path.display(), "must name a file"));
            }
        }
        if let Some(r) = &self.resume_from
            && r.file_name().is_none()
        {
            return Err(invalid("resume_from", r.display(), "must name a file"));
        }
        Ok(())
    }
}

fn check_min_lr(min_lr: f64, lr: f64) -> Result<()> {
    if !(min_lr.is_finite() && min_lr >= 0.0 && min_lr <= lr) {
        return Err(invalid("schedule.min_lr", min_lr, "must be in [0, lr]"));
    }
    Ok(())
}

/// Why training stopped (latent's one learner stop reason): [`LearnStop::MaxIterations`] when
/// all epochs ran, [`LearnStop::EarlyStopping`] or [`LearnStop::Callback`].
pub use latent_optim::fit::LearnStop;

/// Diagnostics of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Mean training objective per epoch (over the epoch's batches, weighted by batch size).
    pub train_loss: Vec<f64>,
    /// Validation objective (eval mode) per epoch; empty without validation data.
    pub val_loss: Vec<f64>,
    /// Epochs run.
    pub epochs_run: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Why training stopped.
    pub stop_reason: LearnStop,
    /// Epoch (1-based) with the lowest monitored loss.
    pub best_epoch: usize,
    /// The lowest monitored loss.
    pub best_loss: f64,
    /// Training samples processed per second (wall clock of the whole run).
    pub samples_per_s: f64,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// Training samples (after any validation split).
    pub train_samples: usize,
}

/// What a callback wants after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop training now (the report's stop reason is [`LearnStop::Callback`]).
    Stop,
}

/// What a callback sees (and may change) at the end of an epoch.
#[derive(Debug)]
pub struct EpochContext<'a, M> {
    /// Epoch just finished (1-based).
    pub epoch: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mean training objective of the epoch.
    pub train_loss: f64,
    /// Validation objective, if there is validation data.
    pub val_loss: Option<f64>,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Optimizer steps so far.
    pub steps: usize,
    /// Time since training started.
    pub elapsed: Duration,
    /// The model (may be inspected or modified).
    pub model: &'a mut M,
    /// Multiplier applied to the scheduled learning rate from the next step on (starts at 1).
    pub lr_scale: f64,
}

/// A per-epoch hook. Closures `FnMut(&mut EpochContext<'_, M>) -> Control` implement it.
pub trait Callback<M> {
    /// Called after every epoch (after validation and checkpointing).
    fn on_epoch_end(&mut self, ctx: &mut EpochContext<'_, M>) -> Control;
}

impl<M, F: FnMut(&mut EpochContext<'_, M>) -> Control> Callback<M> for F {
    fn on_epoch_end(&mut self, ctx: &mut EpochContext<'_, M>) -> Control {
        self(ctx)
    }
}

/// Parameter values per optimizer chunk: large tensors are split in fixed chunks with their own
/// state, so steps run in parallel (element-wise updates: results do not depend on threads).
const OPT_CHUNK: usize = 1 << 14;

#[derive(Debug, Clone)]
enum OptStates<T: Real> {
    Adam(Adam, Vec<AdamState<T>>),
    AdamW(AdamW, Vec<AdamState<T>>),
    Sgd(Sgd, Vec<SgdState<T>>),
}

fn chunk_lens(params: &[Param<'_, impl Real>]) -> Vec<usize> {
    params.iter().flat_map(|p| p.value.chunks(OPT_CHUNK).map(<[_]>::len)).collect()
}

impl<T: Real> OptStates<T> {
    fn new(kind: &OptimizerKind, lens: &[usize]) -> Result<Self> {
        Ok(match kind {
            OptimizerKind::Adam(p) => {
                let o = Adam::new(*p)?;
                let s = lens.iter().map(|&n| Optimizer::<T>::init_state(&o, n)).collect();
                OptStates::Adam(o, s)
            }
            OptimizerKind::AdamW(p) => {
                let o = AdamW::new(*p)?;
                let s = lens.iter().map(|&n| Optimizer::<T>::init_state(&o, n)).collect();
                OptStates::AdamW(o, s)
            }
            OptimizerKind::Sgd(p) => {
                let o = Sgd::new(*p)?;
                let s = lens.iter().map(|&n| Optimizer::<T>::init_state(&o, n)).collect();
                OptStates::Sgd(o, s)
            }
        })
    }

    /// A copy of the state of every chunk.
    fn save(&self) -> SavedOptimizer<T> {
        match self {
            OptStates::Adam(_, s) => SavedOptimizer::Adam(s.clone()),
            OptStates::AdamW(_, s) => SavedOptimizer::AdamW(s.clone()),
            OptStates::Sgd(_, s) => SavedOptimizer::Sgd(s.clone()),
        }
    }

    /// Replace the (fresh) state by a saved one of the same optimizer and chunk sizes.
    fn restore(&mut self, saved: SavedOptimizer<T>) -> Result<()> {
        let fits = |ok: bool, chunks: usize| {
            if ok {
                Ok(())
            } else {
                Err(mismatch(format!(
                    "the saved optimizer state does not fit the saved model's {chunks} parameter chunks"
                )))
            }
        };
        match (self, saved) {
            (OptStates::Adam(_, s), SavedOptimizer::Adam(v)) | (OptStates::AdamW(_, s), SavedOptimizer::AdamW(v)) => {
                let ok = v.len() == s.len()
                    && v.iter().zip(s.iter()).all(|(a, b)| a.m.len() == b.m.len() && a.v.len() == b.v.len());
                fits(ok, s.len())?;
                *s = v;
            }
            (OptStates::Sgd(_, s), SavedOptimizer::Sgd(v)) => {
                let ok =
                    v.len() == s.len() && v.iter().zip(s.iter()).all(|(a, b)| a.velocity.len() == b.velocity.len());
                fits(ok, s.len())?;
                *s = v;
            }
            _ => return Err(mismatch("the saved optimizer state is of another optimizer".into())),
        }
        Ok(())
    }

    fn step(&mut self, params: Vec<Param<'_, T>>, lr: T) -> Result<()> {
        fn run<T: Real, O: Optimizer<T> + Sync>(
            o: &O,
            states: &mut [O::State],
            params: Vec<Param<'_, T>>,
            lr: T,
        ) -> Result<()>
        where
            O::State: Send,
        {
            let chunks: Vec<(&mut [T], &mut [T])> = params
                .into_iter()
                .flat_map(|p| p.value.chunks_mut(OPT_CHUNK).zip(p.grad.chunks_mut(OPT_CHUNK)))
                .collect();
            if chunks.len() != states.len() {
                return Err(AutoencoderError::State {
                    op: "optimizer step",
                    detail: format!(
                        "the model has {} parameter chunks, the optimizer state {}",
                        chunks.len(),
                        states.len()
                    ),
                });
            }
            let total: usize = chunks.iter().map(|c| c.0.len()).sum();
            if total >= 1 << 15 && rayon::current_num_threads() > 1 {
                chunks.into_par_iter().zip(states.par_iter_mut()).try_for_each(|((v, g), s)| o.step(v, g, s, lr))?;
            } else {
                for ((v, g), s) in chunks.into_iter().zip(states.iter_mut()) {
                    o.step(v, g, s, lr)?;
                }
            }
            Ok(())
        }
        match self {
            OptStates::Adam(o, s) => run(o, s, params, lr),
            OptStates::AdamW(o, s) => run(o, s, params, lr),
            OptStates::Sgd(o, s) => run(o, s, params, lr),
        }
    }
}

/// An optimizer from `latent-optim` with its state for every parameter of a model, for custom
/// training loops (the [`Trainer`] uses it internally). Large parameter tensors are split into
/// fixed chunks, each with its own state, and updated in parallel; the result does not depend on
/// the number of threads.
///
/// # Example
/// ```
/// use latent_autoencoder::{Autoencoder, ParamGuard, Trainable, models::MlpAeParams, train::{ModelOptimizer, OptimizerKind}};
/// use latent_linalg::Tensor4;
/// let x = Tensor4::<f32>::from_fn([16, 8, 1, 1], |[n, c, ..]| ((n + c) % 3) as f32 / 3.0)?;
/// let mut model: Autoencoder<f32> = MlpAeParams::new(vec![8, 4]).check()?.build()?;
/// let mut opt = ModelOptimizer::new(&OptimizerKind::default(), &mut model)?;
/// let first = model.train_step(&x)?;
/// for _ in 0..50 {
///     model.train_step(&x)?;
///     opt.step(&mut model, 1e-2)?;
/// }
/// assert!(model.train_step(&x)? < first);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ModelOptimizer<T: Real> {
    inner: OptStates<T>,
}

impl<T: Real> ModelOptimizer<T> {
    /// Fresh optimizer state for every parameter of `model`.
    ///
    /// # Errors
    /// [`AutoencoderError::Optim`] for invalid hyperparameters.
    pub fn new<M: Trainable<T>>(kind: &OptimizerKind, model: &mut M) -> Result<Self> {
        Ok(Self { inner: OptStates::new(kind, &chunk_lens(&model.params()))? })
    }

    /// One update of every parameter from the gradients the last
    /// [`Trainable::train_step`] left.
    ///
    /// # Errors
    /// [`AutoencoderError::Optim`] for a negative or non-finite `lr` or a non-finite gradient
    /// (nothing in that chunk is modified), [`AutoencoderError::State`] when the model's
    /// parameters changed shape since [`ModelOptimizer::new`].
    pub fn step<M: Trainable<T>>(&mut self, model: &mut M, lr: T) -> Result<()> {
        self.inner.step(model.params(), lr)
    }

    /// Fresh optimizer state for a list of parameter views: for models that are not
    /// [`Trainable`] (anything exposing [`Param`]s, e.g. through [`crate::Layer::params`]).
    /// Step with [`ModelOptimizer::step_params`] on the same parameters in the same order.
    ///
    /// # Errors
    /// [`AutoencoderError::Optim`] for invalid hyperparameters.
    pub fn for_params(kind: &OptimizerKind, params: &[Param<'_, T>]) -> Result<Self> {
        Ok(Self { inner: OptStates::new(kind, &chunk_lens(params))? })
    }

    /// One update of every parameter in `params` from its gradient.
    ///
    /// # Errors
    /// As [`ModelOptimizer::step`].
    pub fn step_params(&mut self, params: Vec<Param<'_, T>>, lr: T) -> Result<()> {
        self.inner.step(params, lr)
    }
}

/// Contiguous batches of `batch_size` samples (the last may be smaller).
pub(crate) fn batches_of<T: Real>(
    data: &Tensor4<T>,
    batch_size: usize,
) -> impl Iterator<Item = Result<Tensor4<T>>> + '_ {
    let [n, c, h, w] = data.shape();
    let d = data.sample_len();
    let bs = batch_size.max(1);
    (0..n.div_ceil(bs)).map(move |b| {
        let (i0, i1) = (b * bs, ((b + 1) * bs).min(n));
        Ok(Tensor4::from_vec([i1 - i0, c, h, w], data.as_slice()[i0 * d..i1 * d].to_vec())?)
    })
}

/// Gather samples `idx` of `data` into `out` (resized).
fn gather<T: Real>(data: &Tensor4<T>, idx: &[usize], out: &mut Vec<T>) {
    let d = data.sample_len();
    out.clear();
    for &i in idx {
        out.extend_from_slice(&data.as_slice()[i * d..(i + 1) * d]);
    }
}

/// Mean of `model.eval_loss` over `data` in batches, weighted by batch size.
///
/// # Errors
/// [`AutoencoderError::Empty`] for empty data (a zero batch size counts as 1), and the model's own
/// `eval_loss` errors.
pub fn evaluate<T: Real, M: Trainable<T>>(model: &M, data: &Tensor4<T>, batch_size: usize) -> Result<f64> {
    if data.n() == 0 {
        return Err(AutoencoderError::Empty { what: "evaluation data" });
    }
    let mut s = 0.0;
    for b in batches_of(data, batch_size) {
        let b = b?;
        s += model.eval_loss(&b)? * b.n() as f64;
    }
    Ok(s / data.n() as f64)
}

/// Runs training loops with validated [`TrainParams`].
///
/// Deterministic: for a given seed, model and data the weights after training are bit-identical
/// whatever the number of rayon threads (every kernel and reduction has a fixed order).
///
/// # Speed: call `init_threads` first in `main`
/// Training runs on rayon's global pool. Calling [`crate::init_threads`]`(None)` (re-exported
/// from `latent_linalg::product`) once, first thing in `main`, makes the thread that trains one
/// of the pool's threads, so it takes part in its own parallel loops instead of waiting beside
/// the workers (on 2 cores: 2 threads in all, not 3; up to +20 % samples/s on the MLP workload).
/// It is optional — results are bit-identical either way — and the library never calls it for
/// you, because it fixes the global pool for the whole program (a program that builds its own
/// rayon pool keeps doing so). `cargo xtask bench` and the examples call it.
///
/// # Example
/// ```
/// use latent_autoencoder::models::MlpAeParams;
/// use latent_autoencoder::train::{Control, EpochContext, TrainParams, Trainer};
/// use latent_autoencoder::{Autoencoder, ParamGuard};
/// use latent_linalg::Tensor4;
/// let data = Tensor4::from_fn([64, 8, 1, 1], |[n, c, ..]| ((n * 7 + c * 3) % 11) as f32 / 11.0)?;
/// let mut model: Autoencoder<f32> = MlpAeParams::new(vec![8, 6, 3]).check()?.build()?;
/// let trainer = Trainer::new(TrainParams::new().epochs(5).batch_size(16).lr(1e-2).progress(false).check()?);
/// let mut seen = 0;
/// let mut count = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
///     seen += 1;
///     if ctx.epoch == 3 { Control::Stop } else { Control::Continue }
/// };
/// let report = trainer.fit_with_callbacks(&mut model, &data, None, &mut [&mut count])?;
/// assert_eq!(report.epochs_run, 3);
/// assert_eq!(seen, 3);
/// assert!(report.train_loss[2] < report.train_loss[0]);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trainer {
    params: TrainParams,
}

impl Trainer {
    /// A trainer with validated parameters.
    pub fn new(params: Checked<TrainParams>) -> Self {
        Self { params: params.into_inner() }
    }

    /// The parameters.
    pub fn params(&self) -> &TrainParams {
        &self.params
    }

    /// Train `model` on `train` (validating on `validation`, or on a held-out
    /// `validation_fraction` of `train`).
    ///
    /// # Errors
    /// [`AutoencoderError::NonFiniteInput`] for NaN/Inf in the data (checked before anything
    /// else), [`AutoencoderError::Empty`] for empty data, shape errors from the model, and
    /// [`AutoencoderError::Diverged`] when the loss, a gradient, the parameters or the validation
    /// loss becomes non-finite: the model is then restored to its state at the end of the last
    /// good epoch (the initial state if none), which is also what the last checkpoint holds.
    pub fn fit<T: Real, M: Trainable<T> + Clone>(
        &self,
        model: &mut M,
        train: &Tensor4<T>,
        validation: Option<&Tensor4<T>>,
    ) -> Result<TrainReport> {
        self.fit_with_callbacks(model, train, validation, &mut [])
    }

    /// As [`Trainer::fit`], calling every callback after every epoch.
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    pub fn fit_with_callbacks<T: Real, M: Trainable<T> + Clone>(
        &self,
        model: &mut M,
        train: &Tensor4<T>,
        validation: Option<&Tensor4<T>>,
        callbacks: &mut [&mut dyn Callback<M>],
    ) -> Result<TrainReport> {
        self.fit_impl(None, model, train, validation, callbacks)
    }

    /// Data-parallel [`Trainer::fit_with_callbacks`] (PyTorch DDP / Horovod style): every rank
    /// calls it with the same model, data and parameters. Every global mini-batch is cut into
    /// chunks of [`TrainParams::distributed_chunk`] samples (default [`DISTRIBUTED_CHUNK`]; a
    /// partition that does not depend on the number of ranks); each rank runs [`Trainable::train_step`] on its block of chunks
    /// ([`Communicator::my_chunks`]), the chunk gradients and losses, weighted by chunk size, are
    /// summed in chunk order ([`Communicator::sum_all_reduce`]) and every rank takes the same
    /// optimizer step. Dropout and noise draw per chunk from a stream numbered by the chunk
    /// ([`Trainable::set_train_stream`]). So the same seed gives **bit-identical** weights, loss
    /// curves and reports on 1, 2, 3, … ranks (and with
    /// [`SingleProcess`](latent_optim::SingleProcess)); they differ in the last bits from
    /// [`Trainer::fit`], which evaluates a whole batch at once.
    ///
    /// At start-up the ranks exchange fingerprints of the run configuration, the training and
    /// validation data and the model, and refuse to start when one differs
    /// ([`latent_optim::CommError::Mismatch`] names the first rank that disagrees). Validation,
    /// early stopping, the NaN/Inf guard and callbacks run on every rank (callbacks must decide
    /// the same on every rank, as in DDP scripts); only rank 0 draws the progress bar and writes
    /// checkpoints and training-state files (atomically). [`TrainParams::resume_from`] is read
    /// by rank 0 and broadcast, so a run resumes on any number of ranks and ends as the
    /// uninterrupted run would.
    ///
    /// The KL sparsity penalty and batch normalisation's batch statistics are computed per
    /// chunk (as DDP computes them per rank); batch normalisation's running statistics are
    /// updated with every chunk's statistics in chunk order on every rank
    /// ([`Trainable::take_running_updates`], [`Trainable::apply_running_updates`]), so they too
    /// are the same for any number of ranks.
    ///
    /// # Errors
    /// As [`Trainer::fit`]; [`AutoencoderError::Optim`] wrapping
    /// [`OptimError::Collective`](latent_optim::OptimError::Collective) for a failed collective
    /// or ranks that disagree. A
    /// rank that fails alone leaves the others waiting in the next collective: under MPI the
    /// driver must abort the job (see `latent-mpi`).
    ///
    /// # Example
    /// ```
    /// use latent_autoencoder::models::MlpAeParams;
    /// use latent_autoencoder::train::{TrainParams, Trainer};
    /// use latent_autoencoder::{Autoencoder, ParamGuard, Trainable};
    /// use latent_linalg::Tensor4;
    /// use latent_optim::collective::{SingleProcess, run_threads};
    /// let data = Tensor4::from_fn([70, 6, 1, 1], |[n, c, ..]| ((n * 5 + c) % 7) as f32 / 7.0)?;
    /// let arch = MlpAeParams::new(vec![6, 4, 2]).check()?;
    /// let trainer = Trainer::new(TrainParams::new().epochs(3).batch_size(40).lr(1e-2).progress(false).check()?);
    /// let mut one: Autoencoder<f32> = arch.build()?;
    /// let r1 = trainer.fit_distributed(&SingleProcess, &mut one, &data, None, &mut [])?;
    /// let three = run_threads(3, |c| {
    ///     let mut m: Autoencoder<f32> = arch.build().unwrap();
    ///     let r = trainer.fit_distributed(&c, &mut m, &data, None, &mut []).unwrap();
    ///     (m.to_bytes().unwrap(), r.train_loss)
    /// });
    /// for (bytes, loss) in three {
    ///     assert_eq!(bytes, one.to_bytes()?);
    ///     assert_eq!(loss, r1.train_loss);
    /// }
    /// # Ok::<(), latent_autoencoder::AutoencoderError>(())
    /// ```
    pub fn fit_distributed<T: Real, M: Trainable<T> + Clone>(
        &self,
        comm: &dyn Communicator,
        model: &mut M,
        train: &Tensor4<T>,
        validation: Option<&Tensor4<T>>,
        callbacks: &mut [&mut dyn Callback<M>],
    ) -> Result<TrainReport> {
        self.fit_impl(Some(comm), model, train, validation, callbacks)
    }

    fn fit_impl<T: Real, M: Trainable<T> + Clone>(
        &self,
        comm: Option<&dyn Communicator>,
        model: &mut M,
        train: &Tensor4<T>,
        validation: Option<&Tensor4<T>>,
        callbacks: &mut [&mut dyn Callback<M>],
    ) -> Result<TrainReport> {
        let p = &self.params;
        check_data(train, validation)?;
        // Hold out a validation share when asked and no validation set is given.
        let split;
        let (train, validation) = match (validation, p.validation_fraction > 0.0) {
            (None, true) => {
                split = split_validation(train, p.validation_fraction, p.seed)?;
                (&split.0, Some(&split.1))
            }
            _ => (train, validation),
        };
        let mut run = Run::set_up(p, model, train, validation)?;
        run.comm = comm;
        if let Some(c) = comm {
            let config = format!("{:?}, distributed_chunk: {}", RunConfig::of(p), p.distributed_chunk);
            c.agree("training parameters", fnv1a(config.as_bytes()))?;
            c.agree("training data (shape and values)", agree_fingerprint(train))?;
            c.agree("validation data (shape and values)", validation.map_or(0, agree_fingerprint))?;
            c.agree("initial model", fnv1a(&model.to_bytes()?))?;
        }
        if let Some(path) = &p.resume_from {
            let st = match comm {
                None => TrainingState::<T>::load(path)?,
                Some(c) => load_on_root(c, path)?,
            };
            run.resume(model, st)?;
        }
        run.start(model);
        for epoch in run.first_epoch..=p.epochs {
            let train_loss = run.train_epoch(model, epoch)?;
            let val_loss = run.validate_epoch(model, epoch)?;
            run.record_epoch(model, epoch, train_loss, val_loss);
            run.write_checkpoint(model, epoch)?;
            let stop = run.call_back(model, epoch, train_loss, val_loss, callbacks);
            run.write_state(model, epoch)?;
            if run.stops(model, stop) {
                break;
            }
        }
        Ok(run.finish())
    }
}

/// The start-up fingerprint of a data set that the ranks of a data-parallel run compare (shape
/// and values; the fast [`Fingerprint`], not the training-state files' byte-wise hash).
fn agree_fingerprint<T: Real>(data: &Tensor4<T>) -> u64 {
    let mut f = Fingerprint::new();
    f.words(&data.shape(), |d| d as u64);
    f.words(data.as_slice(), |v| v.as_f64().to_bits());
    f.finish()
}

/// Error for NaN/Inf in the data, an empty training set or an empty validation set.
fn check_data<T: Real>(train: &Tensor4<T>, validation: Option<&Tensor4<T>>) -> Result<()> {
    check_finite_data("training data", train.as_slice())?;
    if let Some(v) = validation {
        check_finite_data("validation data", v.as_slice())?;
        if v.n() == 0 {
            return Err(AutoencoderError::Empty { what: "validation data" });
        }
    }
    if train.n() == 0 {
        return Err(AutoencoderError::Empty { what: "training data" });
    }
    Ok(())
}

/// The learning-rate schedule of a run of `steps_per_epoch · epochs` steps.
fn schedule_of(p: &TrainParams, steps_per_epoch: usize, total_steps: usize) -> Result<Box<dyn Schedule>> {
    Ok(match p.schedule {
        LrSchedule::Constant => Box::new(Constant::new(p.lr)?),
        LrSchedule::StepDecay { gamma, every_epochs } => {
            Box::new(StepDecay::new(p.lr, gamma, every_epochs.saturating_mul(steps_per_epoch))?)
        }
        LrSchedule::Cosine { min_lr } => Box::new(CosineAnnealing::new(p.lr, min_lr, total_steps)?),
        LrSchedule::WarmupCosine { warmup_epochs, min_lr } => {
            Box::new(warmup_cosine(p.lr, min_lr, warmup_epochs.saturating_mul(steps_per_epoch), total_steps)?)
        }
    })
}

/// Everything a training run carries from epoch to epoch (the trainer's loop is
/// [`Trainer::fit_with_callbacks`]; each step of an epoch is a method here).
struct Run<'a, T: Real, M> {
    p: &'a TrainParams,
    train: &'a Tensor4<T>,
    validation: Option<&'a Tensor4<T>>,
    /// Training samples and the batch size (`<= n`).
    n: usize,
    bs: usize,
    schedule: Box<dyn Schedule>,
    opt: OptStates<T>,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    /// Reused batch buffer.
    buf: Vec<T>,
    /// What identifies the run's data in training-state files (when they are written or read).
    fingerprints: Option<(u64, Option<u64>)>,
    report: TrainReport,
    last_checkpoint: Option<PathBuf>,
    best: Option<M>,
    since_best: usize,
    lr_scale: f64,
    lr_now: f64,
    first_epoch: usize,
    pb: ProgressBar,
    started: Instant,
    /// The model at the end of the last good epoch (restored when training diverges).
    last_good: Option<M>,
    /// Data-parallel training: the ranks (None: the classic whole-batch step).
    comm: Option<&'a dyn Communicator>,
}

impl<'a, T: Real, M: Trainable<T> + Clone> Run<'a, T, M> {
    /// A fresh run: schedule, optimizer state, shuffling generator, empty report.
    fn set_up(
        p: &'a TrainParams,
        model: &mut M,
        train: &'a Tensor4<T>,
        validation: Option<&'a Tensor4<T>>,
    ) -> Result<Self> {
        let n = train.n();
        let bs = p.batch_size.min(n);
        let steps_per_epoch = n.div_ceil(bs);
        let total_steps = steps_per_epoch.saturating_mul(p.epochs);
        let schedule = schedule_of(p, steps_per_epoch, total_steps)?;
        let opt = OptStates::<T>::new(&p.optimizer, &chunk_lens(&model.params()))?;
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        rng.set_stream(1);
        let fingerprints = (p.state_checkpoint.is_some() || p.resume_from.is_some())
            .then(|| (fingerprint(train), validation.map(fingerprint)));
        Ok(Self {
            p,
            train,
            validation,
            n,
            bs,
            schedule,
            opt,
            rng,
            order: (0..n).collect(),
            buf: Vec::with_capacity(bs * train.sample_len()),
            fingerprints,
            report: TrainReport {
                train_loss: Vec::new(),
                val_loss: Vec::new(),
                epochs_run: 0,
                steps: 0,
                stop_reason: LearnStop::MaxIterations,
                best_epoch: 0,
                best_loss: f64::INFINITY,
                samples_per_s: 0.0,
                seconds: 0.0,
                train_samples: n,
            },
            last_checkpoint: None,
            best: None,
            since_best: 0,
            lr_scale: 1.0,
            lr_now: p.lr,
            first_epoch: 1,
            pb: ProgressBar::hidden(),
            started: Instant::now(),
            last_good: None,
            comm: None,
        })
    }

    /// Per-sample shape `(C, H, W)` of the training data.
    fn sample_shape(&self) -> [usize; 3] {
        let [_, c, h, w] = self.train.shape();
        [c, h, w]
    }

    /// Continue the run saved at `path`: check it against the parameters and the data, then take
    /// over its model, best model, optimizer state, generator, sample order and history. The
    /// model is unchanged on error.
    fn resume(&mut self, model: &mut M, st: TrainingState<T>) -> Result<()> {
        let p = self.p;
        let n = self.n;
        let Some((train_fp, val_fp)) = self.fingerprints else { return Ok(()) };
        RunConfig::of(p).check_resumable_from(&st.config, st.epochs_run)?;
        let shape = self.sample_shape();
        if st.train_samples != n || st.sample_shape != shape || st.train_fingerprint != train_fp {
            return Err(mismatch(format!(
                "the training data ({n} samples of shape {shape:?}) differs from the data of the saved run \
                 ({} samples of shape {:?})",
                st.train_samples, st.sample_shape
            )));
        }
        if st.validation_fingerprint != val_fp {
            return Err(mismatch("the validation data differs from that of the saved run".into()));
        }
        let mut restored = model.clone();
        restored.restore_from_bytes(&st.model)?;
        let restored_best = match &st.best_model {
            Some(b) => {
                let mut m = model.clone();
                m.restore_from_bytes(b)?;
                Some(m)
            }
            None => None,
        };
        let mut restored_opt = OptStates::<T>::new(&p.optimizer, &chunk_lens(&restored.params()))?;
        restored_opt.restore(st.optimizer)?;
        *model = restored;
        self.best = restored_best;
        self.opt = restored_opt;
        self.rng = st.rng;
        self.order = st.order;
        let report = &mut self.report;
        report.train_loss = st.train_loss;
        report.val_loss = st.val_loss;
        report.epochs_run = st.epochs_run;
        report.steps = st.steps;
        report.best_epoch = st.best_epoch;
        report.best_loss = st.best_loss;
        self.since_best = st.epochs_run - st.best_epoch;
        self.lr_scale = st.lr_scale;
        self.lr_now = st.lr_now;
        // the model checkpoint of the interrupted run, if it is still there
        self.last_checkpoint = p.checkpoint.as_ref().map(|c| c.path.clone()).filter(|p| p.is_file());
        self.first_epoch = st.epochs_run + 1;
        // The saved run had already decided to stop early: finish as it did.
        if let Some(pat) = p.patience
            && self.since_best >= pat
        {
            self.report.stop_reason = LearnStop::EarlyStopping;
            if let Some(b) = self.best.take() {
                *model = b;
            }
            self.first_epoch = p.epochs + 1;
        }
        Ok(())
    }

    /// Start the clock and the progress bar; remember the model as the last good one.
    fn start(&mut self, model: &M) {
        let steps_per_epoch = self.n.div_ceil(self.bs);
        let root = self.comm.is_none_or(|c| c.is_root());
        self.pb = progress_bar(self.p.progress && root, steps_per_epoch.saturating_mul(self.p.epochs) as u64);
        self.pb.set_position(self.report.steps as u64);
        self.started = Instant::now();
        self.last_good = Some(model.clone());
    }

    /// Give up: clear the progress bar, put back the last good model, and pass `e` on.
    fn fail(&mut self, model: &mut M, e: AutoencoderError) -> AutoencoderError {
        self.pb.finish_and_clear();
        if let Some(m) = self.last_good.take() {
            *model = m;
        }
        e
    }

    fn diverged(&self, epoch: usize, step: usize, what: &'static str, value: f64) -> AutoencoderError {
        AutoencoderError::Diverged { epoch, step, what, value, last_good_checkpoint: self.last_checkpoint.clone() }
    }

    /// One pass over the (reshuffled) training data, one optimizer step per batch; then the
    /// parameters are checked for NaN/Inf. Returns the mean training objective.
    fn train_epoch(&mut self, model: &mut M, epoch: usize) -> Result<f64> {
        if self.p.shuffle {
            self.order.shuffle(&mut self.rng);
        }
        let [c, h, w] = self.sample_shape();
        let mut sum = 0.0;
        let order = std::mem::take(&mut self.order);
        // Data-parallel runs number their chunks: dropout/noise stream of each chunk.
        let mut stream = (epoch as u64 - 1) * self.chunks_per_epoch();
        for idx in order.chunks(self.bs) {
            if let Err(e) = self.train_step(model, epoch, idx, [c, h, w], &mut sum, &mut stream) {
                self.order = order;
                return Err(e);
            }
        }
        self.order = order;
        let train_loss = sum / self.n as f64;
        let step = self.report.steps;
        let non_finite_param =
            model.params().iter().flat_map(|p| p.value.iter()).find(|v| !v.finite()).map(|v| v.as_f64());
        if let Some(v) = non_finite_param {
            let e = self.diverged(epoch, step, "parameters", v);
            return Err(self.fail(model, e));
        }
        Ok(train_loss)
    }

    /// One optimizer step on the samples `idx`, adding the batch's objective (times its size)
    /// to `sum`.
    fn train_step(
        &mut self,
        model: &mut M,
        epoch: usize,
        idx: &[usize],
        [c, h, w]: [usize; 3],
        sum: &mut f64,
        stream: &mut u64,
    ) -> Result<()> {
        // covers the optimizer step too (the model's own step opens one as well)
        let _warm = latent_linalg::product::TrainingScope::new();
        let loss = match self.comm {
            None => {
                gather(self.train, idx, &mut self.buf);
                let batch = Tensor4::from_vec([idx.len(), c, h, w], std::mem::take(&mut self.buf))?;
                let l = model.train_step(&batch);
                self.buf = batch.into_vec();
                l
            }
            Some(comm) => self.distributed_step(comm, model, idx, [c, h, w], stream),
        };
        let loss = match loss {
            Ok(l) => l,
            Err(e) => return Err(self.fail(model, e)),
        };
        let step = self.report.steps;
        if !loss.is_finite() {
            let e = self.diverged(epoch, step, "loss", loss);
            return Err(self.fail(model, e));
        }
        self.lr_now = self.schedule.lr(step) * self.lr_scale;
        let lr_t = T::lit(self.lr_now);
        if !lr_t.finite() {
            let e = self.diverged(epoch, step, "learning rate", self.lr_now);
            return Err(self.fail(model, e));
        }
        if let Err(e) = self.opt.step(model.params(), lr_t) {
            let e = match e {
                AutoencoderError::Optim(latent_optim::OptimError::Linalg(latent_linalg::LinalgError::NonFinite {
                    ..
                })) => self.diverged(epoch, step, "gradient", f64::NAN),
                other => other,
            };
            return Err(self.fail(model, e));
        }
        *sum += loss * idx.len() as f64;
        self.report.steps += 1;
        self.pb.inc(1);
        Ok(())
    }

    /// Chunks of `distributed_chunk` samples in one epoch (the data-parallel stream numbering).
    fn chunks_per_epoch(&self) -> u64 {
        let (full, last, chunk) = (self.n / self.bs, self.n % self.bs, self.p.distributed_chunk.max(1));
        (full * self.bs.div_ceil(chunk) + last.div_ceil(chunk)) as u64
    }

    /// One data-parallel evaluation of the batch `idx`: this rank's chunks through
    /// `train_step`, the size-weighted chunk gradients and losses summed in chunk order over all
    /// ranks, the sum left in the model's gradients. Returns the batch objective.
    fn distributed_step(
        &mut self,
        comm: &dyn Communicator,
        model: &mut M,
        idx: &[usize],
        [c, h, w]: [usize; 3],
        stream: &mut u64,
    ) -> Result<f64> {
        let n = idx.len();
        let chunks: Vec<&[usize]> = idx.chunks(self.p.distributed_chunk.max(1)).collect();
        let k_all = chunks.len();
        // per chunk: weighted gradients, weighted loss, length of its running-state statistics
        let len: usize = model.params().iter().map(|p| p.value.len()).sum::<usize>() + 2;
        let mine = comm.my_chunks(k_all);
        let mut local = ChunkPartials::new(comm, k_all, len);
        let mut running: Vec<(usize, Vec<T>)> = Vec::new();
        model.defer_running_updates(true);
        for k in mine {
            let part = chunks[k];
            gather(self.train, part, &mut self.buf);
            let batch = Tensor4::from_vec([part.len(), c, h, w], std::mem::take(&mut self.buf))?;
            model.set_train_stream(*stream + k as u64);
            let l = model.train_step(&batch);
            self.buf = batch.into_vec();
            let l = match l {
                Ok(l) => l,
                Err(e) => {
                    model.defer_running_updates(false);
                    return Err(e);
                }
            };
            let weight = part.len() as f64 / n as f64;
            local.begin_chunk();
            for p in model.params() {
                local.extend_mapped(p.grad, |g| g.as_f64() * weight);
            }
            local.push(l * weight);
            let stats = model.take_running_updates();
            local.push(stats.len() as f64);
            running.push((k, stats));
        }
        model.defer_running_updates(false);
        let total = local.sum_all_reduce(comm).map_err(latent_optim::OptimError::from)?;
        let mut at = 0;
        for p in model.params() {
            for (g, &t) in p.grad.iter_mut().zip(&total[at..]) {
                *g = T::lit(t);
            }
            at += p.grad.len();
        }
        replay_running_updates(comm, model, k_all, total[len - 1], running, |m, s| m.apply_running_updates(s))?;
        *stream += k_all as u64;
        model.set_train_stream(*stream);
        Ok(total[len - 2])
    }

    /// The validation objective (eval mode), if there is validation data.
    fn validate_epoch(&mut self, model: &mut M, epoch: usize) -> Result<Option<f64>> {
        let Some(v) = self.validation else { return Ok(None) };
        let l = evaluate(&*model, v, self.bs)?;
        if !l.is_finite() {
            let e = self.diverged(epoch, self.report.steps, "validation loss", l);
            return Err(self.fail(model, e));
        }
        self.report.val_loss.push(l);
        Ok(Some(l))
    }

    /// Append the epoch to the history and track the best monitored loss (keeping the best
    /// model for early stopping when asked).
    fn record_epoch(&mut self, model: &M, epoch: usize, train_loss: f64, val_loss: Option<f64>) {
        let p = self.p;
        let report = &mut self.report;
        report.train_loss.push(train_loss);
        report.epochs_run = epoch;
        let monitored = val_loss.unwrap_or(train_loss);
        if monitored < report.best_loss - p.min_delta || report.best_epoch == 0 {
            report.best_loss = monitored;
            report.best_epoch = epoch;
            self.since_best = 0;
            if p.patience.is_some() && p.restore_best {
                self.best = Some(model.clone());
            }
        } else {
            self.since_best += 1;
        }
    }

    /// The periodic model checkpoint; the model becomes the last good one.
    fn write_checkpoint(&mut self, model: &M, epoch: usize) -> Result<()> {
        if let Some(ck) = &self.p.checkpoint
            && (epoch.is_multiple_of(ck.every_epochs) || epoch == self.p.epochs)
        {
            if self.comm.is_none_or(|c| c.is_root()) {
                write_atomic(&ck.path, &model.to_bytes()?)?;
            }
            self.last_checkpoint = Some(ck.path.clone());
        }
        self.last_good = Some(model.clone());
        Ok(())
    }

    /// Show the epoch and run every callback; `true` when one asked to stop.
    fn call_back(
        &mut self,
        model: &mut M,
        epoch: usize,
        train_loss: f64,
        val_loss: Option<f64>,
        callbacks: &mut [&mut dyn Callback<M>],
    ) -> bool {
        self.pb.set_message(match val_loss {
            Some(v) => format!("epoch {epoch}: loss {train_loss:.5}, val {v:.5}"),
            None => format!("epoch {epoch}: loss {train_loss:.5}"),
        });
        let mut stop = false;
        for cb in callbacks.iter_mut() {
            let mut ctx = EpochContext {
                epoch,
                epochs: self.p.epochs,
                train_loss,
                val_loss,
                lr: self.lr_now,
                steps: self.report.steps,
                elapsed: self.started.elapsed(),
                model: &mut *model,
                lr_scale: self.lr_scale,
            };
            let ctl = cb.on_epoch_end(&mut ctx);
            self.lr_scale = ctx.lr_scale;
            if ctl == Control::Stop {
                stop = true;
            }
        }
        stop
    }

    /// The periodic training-state file.
    fn write_state(&self, model: &M, epoch: usize) -> Result<()> {
        let p = self.p;
        if let (Some(sc), Some((train_fp, val_fp))) = (&p.state_checkpoint, self.fingerprints)
            && (epoch.is_multiple_of(sc.every_epochs) || epoch == p.epochs)
            && self.comm.is_none_or(|c| c.is_root())
        {
            let report = &self.report;
            let state = TrainingState {
                config: RunConfig::of(p),
                train_samples: self.n,
                sample_shape: self.sample_shape(),
                train_fingerprint: train_fp,
                validation_fingerprint: val_fp,
                epochs_run: epoch,
                steps: report.steps,
                train_loss: report.train_loss.clone(),
                val_loss: report.val_loss.clone(),
                best_epoch: report.best_epoch,
                best_loss: report.best_loss,
                lr_scale: self.lr_scale,
                lr_now: self.lr_now,
                rng: self.rng.clone(),
                order: self.order.clone(),
                optimizer: self.opt.save(),
                model: model.to_bytes()?,
                best_model: self.best.as_ref().map(Trainable::to_bytes).transpose()?,
            };
            write_atomic(&sc.path, &state.to_bytes()?)?;
        }
        Ok(())
    }

    /// `true` when the run ends after this epoch: a callback asked to (`stop`) or early
    /// stopping ran out of patience (the best model is then restored).
    fn stops(&mut self, model: &mut M, stop: bool) -> bool {
        if stop {
            self.report.stop_reason = LearnStop::Callback;
            return true;
        }
        if let Some(pat) = self.p.patience
            && self.since_best >= pat
        {
            self.report.stop_reason = LearnStop::EarlyStopping;
            if let Some(b) = self.best.take() {
                *model = b;
            }
            return true;
        }
        false
    }

    /// The report, with timing.
    fn finish(self) -> TrainReport {
        self.pb.finish_and_clear();
        let mut report = self.report;
        report.seconds = self.started.elapsed().as_secs_f64();
        let samples = (report.epochs_run.saturating_sub(self.first_epoch - 1) * self.n) as f64;
        report.samples_per_s = if report.seconds > 0.0 { samples / report.seconds } else { 0.0 };
        report
    }
}

/// Default samples per chunk of a global mini-batch in [`Trainer::fit_distributed`]
/// ([`TrainParams::distributed_chunk`]): the partition of a batch into chunks depends on the
/// batch and the chunk only, never on the number of ranks.
pub const DISTRIBUTED_CHUNK: usize = 16;

/// Data-parallel running state (batch normalisation): every chunk's deferred statistics
/// (`running`: this rank's `(chunk, statistics)`, `total_len`: the sum over all chunks of their
/// lengths, known to every rank from the gradient sum) are gathered in chunk order through the
/// ordered sum (each chunk writes its own slot, so the sum is a concatenation) and replayed into
/// the running state chunk by chunk with `apply` on every rank. Public for trainers outside this
/// crate (the U-Net's).
///
/// # Errors
/// A failed collective, inconsistent lengths, or `apply`'s error.
pub fn replay_running_updates<T: Real, M: ?Sized>(
    comm: &dyn Communicator,
    model: &mut M,
    chunks: usize,
    total_len: f64,
    running: Vec<(usize, Vec<T>)>,
    mut apply: impl FnMut(&mut M, &[T]) -> Result<usize>,
) -> Result<()> {
    if chunks == 0 || total_len <= 0.0 {
        return Ok(());
    }
    let total = total_len as usize;
    let per = total / chunks;
    if per * chunks != total || running.iter().any(|(_, s)| s.len() != per) {
        return Err(AutoencoderError::State {
            op: "data-parallel running statistics",
            detail: format!("{total} statistics over {chunks} chunks are not one block per chunk"),
        });
    }
    let slot = chunks * per;
    let mut local = vec![0.0f64; running.len() * slot];
    for (j, (k, s)) in running.iter().enumerate() {
        for (dst, v) in local[j * slot + k * per..j * slot + (k + 1) * per].iter_mut().zip(s) {
            *dst = v.as_f64();
        }
    }
    let all = comm.sum_all_reduce(&local, slot).map_err(latent_optim::OptimError::from)?;
    let mut block = vec![T::zero(); per];
    for k in 0..chunks {
        for (b, &v) in block.iter_mut().zip(&all[k * per..(k + 1) * per]) {
            *b = T::lit(v);
        }
        apply(model, &block)?;
    }
    Ok(())
}

/// Rank 0 loads the training state at `path` and broadcasts it; every rank gets the state or
/// an error (rank 0's own, or a [`AutoencoderError::State`] saying rank 0 could not load it).
fn load_on_root<T: Real>(comm: &dyn Communicator, path: &std::path::Path) -> Result<TrainingState<T>> {
    let (mut bytes, err) = if comm.is_root() {
        match TrainingState::<T>::load(path).and_then(|s| s.to_bytes()) {
            Ok(b) => (b, None),
            Err(e) => (Vec::new(), Some(e)),
        }
    } else {
        (Vec::new(), None)
    };
    comm.broadcast(&mut bytes, 0).map_err(latent_optim::OptimError::from)?;
    if let Some(e) = err {
        return Err(e);
    }
    if bytes.is_empty() {
        return Err(AutoencoderError::State {
            op: "resume",
            detail: format!("rank 0 could not load the training state {}", path.display()),
        });
    }
    TrainingState::from_bytes(&bytes)
}

/// Split off a seeded random `fraction` of the samples as validation data.
fn split_validation<T: Real>(data: &Tensor4<T>, fraction: f64, seed: u64) -> Result<(Tensor4<T>, Tensor4<T>)> {
    let n = data.n();
    if n < 2 {
        return Err(invalid("validation_fraction", fraction, "needs at least 2 training samples"));
    }
    let n_val = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2);
    idx.shuffle(&mut rng);
    let (val_idx, train_idx) = idx.split_at(n_val);
    let [_, c, h, w] = data.shape();
    let mut a = Vec::new();
    let mut b = Vec::new();
    gather(data, train_idx, &mut a);
    gather(data, val_idx, &mut b);
    Ok((Tensor4::from_vec([train_idx.len(), c, h, w], a)?, Tensor4::from_vec([val_idx.len(), c, h, w], b)?))
}

/// A progress bar drawn only when asked for, on a terminal, with the `progress` feature.
fn progress_bar(enabled: bool, len: u64) -> ProgressBar {
    ProgressBar::with_template(enabled, len, "{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Tensor4<f64> {
        Tensor4::from_fn([n, 2, 1, 1], |[i, c, ..]| (i * 2 + c) as f64).unwrap()
    }

    #[test]
    fn batches_cover_the_data_in_order() {
        let x = data(7);
        let b: Vec<Tensor4<f64>> = batches_of(&x, 3).collect::<Result<_>>().unwrap();
        assert_eq!(b.iter().map(Tensor4::n).collect::<Vec<_>>(), vec![3, 3, 1]);
        let joined: Vec<f64> = b.iter().flat_map(|t| t.as_slice().to_vec()).collect();
        assert_eq!(joined, x.as_slice());
    }

    #[test]
    fn validation_split_is_a_seeded_partition() {
        let x = data(10);
        let (a, b) = split_validation(&x, 0.3, 5).unwrap();
        assert_eq!((a.n(), b.n()), (7, 3));
        let mut all: Vec<f64> = a.as_slice().iter().chain(b.as_slice()).copied().collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(all, x.as_slice());
        assert_eq!(split_validation(&x, 0.3, 5).unwrap(), (a, b));
        assert!(split_validation(&data(1), 0.5, 0).is_err());
    }

    #[test]
    fn schedules_and_checkpoints_are_validated() {
        let bad = |p: TrainParams| match p.check() {
            Err(AutoencoderError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        };
        assert_eq!(
            bad(TrainParams::new().schedule(LrSchedule::StepDecay { gamma: 1.5, every_epochs: 1 })),
            "schedule.gamma"
        );
        assert_eq!(bad(TrainParams::new().schedule(LrSchedule::Cosine { min_lr: 1.0 })), "schedule.min_lr");
        assert_eq!(
            bad(TrainParams::new().epochs(3).schedule(LrSchedule::WarmupCosine { warmup_epochs: 3, min_lr: 0.0 })),
            "schedule.warmup_epochs"
        );
        assert_eq!(bad(TrainParams::new().checkpoint("/tmp/x.ckpt", 0)), "checkpoint.every_epochs");
        assert_eq!(bad(TrainParams::new().state_checkpoint("/tmp/x.state", 0)), "state_checkpoint.every_epochs");
        assert_eq!(bad(TrainParams::new().state_checkpoint("/", 1)), "state_checkpoint.path");
        assert_eq!(bad(TrainParams::new().resume_from("/")), "resume_from");
        assert_eq!(bad(TrainParams::new().patience(0)), "patience");
        assert_eq!(bad(TrainParams::new().min_delta(-1.0)), "min_delta");
        assert!(
            TrainParams::new().schedule(LrSchedule::WarmupCosine { warmup_epochs: 2, min_lr: 1e-5 }).check().is_ok()
        );
    }
}
