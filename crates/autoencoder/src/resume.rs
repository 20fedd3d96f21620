//! Training-state files: everything the [`Trainer`](crate::train::Trainer) needs to continue a run
//! exactly where it stopped, so that a resumed run is bit-identical to an uninterrupted one.
//!
//! A state file holds the model (as [`Trainable::to_bytes`](crate::Trainable::to_bytes) writes it, which for an
//! [`Autoencoder`](crate::Autoencoder) includes the call counters that seed its noise and dropout
//! layers), the best model kept for early stopping, the optimizer's moments and step counts for
//! every parameter chunk, the shuffling generator (ChaCha8: seed, stream and word position) and the
//! current sample order, the epoch and step counters (which fix the position in the learning-rate
//! schedule), the callbacks' learning-rate multiplier, the loss history, the hyperparameters of the
//! run and a fingerprint of its data.
//!
//! The container is the shared `latent_linalg::persist` one: magic (`LTTS-f32` or `LTTS-f64`), a
//! format version, the payload length (checked against the file length before anything is
//! decoded), an FNV-1a checksum, then the payload in bincode 2. Files are written atomically
//! (temporary file in the same directory, `fsync`, rename). Loading checks the container, then
//! the internal consistency of the state (lengths, counters, finiteness, that the sample order
//! is a permutation); resuming checks the state against the model, the data and the parameters.
//! Every failure is a typed error, never a panic.

use crate::custom::LayerRegistry;
use crate::error::{AutoencoderError, Result, format_err};
use crate::train::{LrSchedule, OptimizerKind, TrainParams};
use latent_linalg::persist;
use latent_linalg::{Real, Tensor4};
use latent_optim::optimizer::{AdamState, SgdState};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Newest training-state format version written and read by this build.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// Largest training-state file [`TrainingState::load`] reads (4 GiB: a model, the best model and
/// two optimizer moments per parameter).
pub const MAX_STATE_FILE_LEN: u64 = 1 << 32;

/// The training-state file magic for scalar type `T` (`LTTS-f32` or `LTTS-f64`).
pub fn state_magic<T: Real>() -> [u8; 8] {
    let mut m = *b"LTTS-f00";
    m[5..8].copy_from_slice(&T::NAME.as_bytes()[..3.min(T::NAME.len())]);
    m
}

/// The hyperparameters that decide what a run computes (a resumed run must use the same ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub schedule: LrSchedule,
    pub shuffle: bool,
    pub seed: u64,
    pub validation_fraction: f64,
    pub patience: Option<usize>,
    pub min_delta: f64,
    pub restore_best: bool,
}

impl RunConfig {
    pub(crate) fn of(p: &TrainParams) -> Self {
        Self {
            epochs: p.epochs,
            batch_size: p.batch_size,
            lr: p.lr,
            optimizer: p.optimizer,
            schedule: p.schedule,
            shuffle: p.shuffle,
            seed: p.seed,
            validation_fraction: p.validation_fraction,
            patience: p.patience,
            min_delta: p.min_delta,
            restore_best: p.restore_best,
        }
    }

    /// Error naming the first setting of `self` (the current run) that differs from `saved` (the
    /// run that wrote the state). `epochs` may grow when the schedule does not depend on the run
    /// length.
    pub(crate) fn check_resumable_from(&self, saved: &RunConfig, epochs_run: usize) -> Result<()> {
        let differ = |name: &str, saved: String, now: String| {
            Err(mismatch(format!("{name} is {now}, the run that wrote the state used {saved}")))
        };
        macro_rules! same {
            ($($f:ident),*) => {$(
                if saved.$f != self.$f {
                    return differ(stringify!($f), format!("{:?}", saved.$f), format!("{:?}", self.$f));
                }
            )*};
        }
        same!(
            batch_size,
            lr,
            optimizer,
            schedule,
            shuffle,
            seed,
            validation_fraction,
            patience,
            min_delta,
            restore_best
        );
        let length_dependent = matches!(saved.schedule, LrSchedule::Cosine { .. } | LrSchedule::WarmupCosine { .. });
        if length_dependent && saved.epochs != self.epochs {
            return differ(
                "epochs (the cosine schedule depends on it)",
                saved.epochs.to_string(),
                self.epochs.to_string(),
            );
        }
        if self.epochs < epochs_run {
            return Err(mismatch(format!("epochs is {}, but the saved run has already run {epochs_run}", self.epochs)));
        }
        Ok(())
    }
}

/// `State` error of a resume that does not fit the current run.
pub(crate) fn mismatch(detail: String) -> AutoencoderError {
    AutoencoderError::State { op: "resume", detail }
}

/// Optimizer state of every parameter chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum SavedOptimizer<T> {
    Adam(Vec<AdamState<T>>),
    AdamW(Vec<AdamState<T>>),
    Sgd(Vec<SgdState<T>>),
}

/// FNV-1a fingerprint of a data set's shape and values (bit patterns).
pub(crate) fn fingerprint<T: Real>(data: &Tensor4<T>) -> u64 {
    let mut bytes = Vec::with_capacity(32 + 8 * data.len());
    for d in data.shape() {
        bytes.extend_from_slice(&(d as u64).to_le_bytes());
    }
    for v in data.as_slice() {
        bytes.extend_from_slice(&v.as_f64().to_bits().to_le_bytes());
    }
    persist::fnv1a64(&bytes)
}

/// The complete state of a training run at the end of an epoch, as written by
/// [`TrainParams::state_checkpoint`] and read by [`TrainParams::resume_from`].
///
/// Loading validates the file completely (see the [module docs](crate::resume)); the accessors
/// describe how far the run got. The model inside is checked when the run is resumed.
///
/// # Example
/// ```
/// use latent_autoencoder::ParamGuard;
/// use latent_autoencoder::models::MlpAeParams;
/// use latent_autoencoder::resume::TrainingState;
/// use latent_autoencoder::train::TrainParams;
/// use latent_linalg::Tensor4;
/// let data = Tensor4::from_fn([32, 6, 1, 1], |[n, c, ..]| ((n * 5 + c) % 7) as f32 / 7.0)?;
/// let path = std::env::temp_dir().join(format!("latent-state-doc-{}.bin", std::process::id()));
/// let train = TrainParams::new().epochs(3).batch_size(8).progress(false).state_checkpoint(&path, 1);
/// MlpAeParams::new(vec![6, 3]).train(train).check()?.fit(&data)?;
/// let state = TrainingState::<f32>::load(&path)?;
/// assert_eq!((state.epochs_run(), state.steps()), (3, 12));
/// assert_eq!(state.train_loss().len(), 3);
/// // a corrupt file is a typed error
/// let mut bytes = state.to_bytes()?;
/// let last = bytes.len() - 1;
/// bytes[last] ^= 1;
/// assert!(TrainingState::<f32>::from_bytes(&bytes).is_err());
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct TrainingState<T> {
    pub(crate) config: RunConfig,
    /// Training samples (after the validation split) and their per-sample shape.
    pub(crate) train_samples: usize,
    pub(crate) sample_shape: [usize; 3],
    pub(crate) train_fingerprint: u64,
    pub(crate) validation_fingerprint: Option<u64>,
    pub(crate) epochs_run: usize,
    pub(crate) steps: usize,
    pub(crate) train_loss: Vec<f64>,
    pub(crate) val_loss: Vec<f64>,
    pub(crate) best_epoch: usize,
    pub(crate) best_loss: f64,
    pub(crate) lr_scale: f64,
    pub(crate) lr_now: f64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) order: Vec<usize>,
    pub(crate) optimizer: SavedOptimizer<T>,
    pub(crate) model: Vec<u8>,
    pub(crate) best_model: Option<Vec<u8>>,
    // No strings or paths: bincode sizes a string's buffer by its declared length before reading
    // it, so a hostile length would allocate without bound (found by fuzzing).
}

impl<T: Real> TrainingState<T> {
    /// Epochs completed when the state was written.
    pub fn epochs_run(&self) -> usize {
        self.epochs_run
    }
    /// Optimizer steps taken (the position in the learning-rate schedule).
    pub fn steps(&self) -> usize {
        self.steps
    }
    /// Mean training objective per completed epoch.
    pub fn train_loss(&self) -> &[f64] {
        &self.train_loss
    }
    /// Validation objective per completed epoch (empty without validation data).
    pub fn val_loss(&self) -> &[f64] {
        &self.val_loss
    }

    /// The model saved in the state (as it was after [`TrainingState::epochs_run`] epochs),
    /// decoding custom layers with `registry` (an empty one for built-in layers only).
    ///
    /// # Errors
    /// As [`crate::io::from_bytes_with`].
    pub fn model_with(&self, registry: &LayerRegistry<T>) -> Result<crate::Autoencoder<T>> {
        crate::io::from_bytes_with(&self.model, registry)
    }

    /// Optimizer steps per epoch of the run that wrote the state.
    pub(crate) fn steps_per_epoch(&self) -> usize {
        self.train_samples.div_ceil(self.config.batch_size.min(self.train_samples).max(1))
    }

    /// Serialise to bytes (see the [module docs](crate::resume) for the format).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] when encoding fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(persist::to_bytes(state_magic::<T>(), STATE_FORMAT_VERSION, self)?)
    }

    /// Deserialise from bytes written by [`TrainingState::to_bytes`], checking the container and
    /// the state's internal consistency.
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] for a wrong magic (including another scalar type), a truncated
    /// or corrupt file or an inconsistent state; [`AutoencoderError::UnsupportedVersion`] for a
    /// newer version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, None)
    }

    /// Decode and validate; `file` is named in every [`AutoencoderError::Format`] message.
    fn decode(bytes: &[u8], file: Option<&Path>) -> Result<Self> {
        let (_version, state): (u32, Self) = persist::from_bytes(
            bytes,
            state_magic::<T>(),
            STATE_FORMAT_VERSION,
            file.unwrap_or(Path::new("<memory>")),
        )?;
        state.validate().map_err(|e| crate::io::in_file(file, e))?;
        Ok(state)
    }

    /// Load and validate a training-state file.
    ///
    /// # Errors
    /// [`AutoencoderError::Io`] when the file cannot be read; otherwise as
    /// [`TrainingState::from_bytes`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| AutoencoderError::Io { path: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_STATE_FILE_LEN {
            return Err(format_err(format!(
                "{} is {} bytes, larger than any training-state file",
                path.display(),
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::decode(&bytes, Some(path))
    }

    /// Internal consistency, independent of the model and the data.
    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(format_err(format!("training state: {what}")));
        let c = &self.config;
        if c.epochs == 0 || c.batch_size == 0 || !(c.lr.is_finite() && c.lr > 0.0) {
            return bad("invalid hyperparameters".into());
        }
        if self.train_samples == 0 || self.sample_shape.contains(&0) {
            return bad("no training samples".into());
        }
        if self.epochs_run == 0 || self.epochs_run > c.epochs {
            return bad(format!("{} epochs run of {}", self.epochs_run, c.epochs));
        }
        if self.steps_per_epoch().checked_mul(self.epochs_run) != Some(self.steps) {
            return bad(format!(
                "{} steps after {} epochs of {} samples in batches of {}",
                self.steps, self.epochs_run, self.train_samples, c.batch_size
            ));
        }
        if self.train_loss.len() != self.epochs_run {
            return bad(format!("{} training losses for {} epochs", self.train_loss.len(), self.epochs_run));
        }
        if self.val_loss.len() != if self.validation_fingerprint.is_some() { self.epochs_run } else { 0 } {
            return bad(format!("{} validation losses for {} epochs", self.val_loss.len(), self.epochs_run));
        }
        if !self.train_loss.iter().chain(&self.val_loss).all(|v| v.is_finite()) {
            return bad("non-finite loss history".into());
        }
        if self.best_epoch == 0 || self.best_epoch > self.epochs_run {
            return bad(format!("best epoch {} of {}", self.best_epoch, self.epochs_run));
        }
        let monitored = if self.val_loss.is_empty() { &self.train_loss } else { &self.val_loss };
        if monitored[self.best_epoch - 1].to_bits() != self.best_loss.to_bits() {
            return bad("best loss does not match the loss history".into());
        }
        if !(self.lr_scale.is_finite() && self.lr_now.is_finite()) {
            return bad("non-finite learning rate".into());
        }
        if self.order.len() != self.train_samples {
            return bad(format!("sample order of length {} for {} samples", self.order.len(), self.train_samples));
        }
        let mut seen = vec![false; self.order.len()];
        for &i in &self.order {
            match seen.get_mut(i) {
                Some(s) if !*s => *s = true,
                _ => return bad("the sample order is not a permutation".into()),
            }
        }
        let steps = self.steps as u64;
        let consistent = match (&self.optimizer, &c.optimizer) {
            (SavedOptimizer::Adam(s), OptimizerKind::Adam(_)) | (SavedOptimizer::AdamW(s), OptimizerKind::AdamW(_)) => {
                s.iter().all(|a| a.t == steps && a.m.len() == a.v.len() && a.m.iter().chain(&a.v).all(|x| x.finite()))
            }
            (SavedOptimizer::Sgd(s), OptimizerKind::Sgd(_)) => {
                s.iter().all(|a| a.steps == steps && a.velocity.iter().all(|x| x.finite()))
            }
            _ => return bad("the optimizer state does not match the optimizer".into()),
        };
        if !consistent {
            return bad("inconsistent or non-finite optimizer state".into());
        }
        if self.best_model.is_some() != (c.patience.is_some() && c.restore_best) {
            return bad("best model present without early stopping, or missing with it".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::MlpAeParams;
    use latent_optim::fit::ParamGuard;

    /// A valid state of a short run.
    fn state() -> TrainingState<f64> {
        let x = Tensor4::from_fn([20, 4, 1, 1], |[n, c, ..]| ((n + 2 * c) % 5) as f64 / 5.0).unwrap();
        let path = std::env::temp_dir().join(format!("latent-ae-state-unit-{}.bin", std::process::id()));
        let train = TrainParams::new().epochs(2).batch_size(8).progress(false).state_checkpoint(&path, 1);
        MlpAeParams::new(vec![4, 2]).train(train).check().unwrap().fit(&x).unwrap();
        let s = TrainingState::load(&path).unwrap();
        std::fs::remove_file(&path).ok();
        s
    }

    #[test]
    fn a_valid_container_with_an_inconsistent_state_is_a_format_error() {
        let good = state();
        assert_eq!(TrainingState::<f64>::from_bytes(&good.to_bytes().unwrap()).unwrap(), good);
        type Edit = Box<dyn Fn(&mut TrainingState<f64>)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("steps", Box::new(|s| s.steps += 1)),
            ("epochs_run", Box::new(|s| s.epochs_run = 5)),
            ("no epochs", Box::new(|s| s.epochs_run = 0)),
            (
                "loss history",
                Box::new(|s| {
                    s.train_loss.pop();
                }),
            ),
            ("NaN loss", Box::new(|s| s.train_loss[0] = f64::NAN)),
            ("best epoch", Box::new(|s| s.best_epoch = 3)),
            ("best loss", Box::new(|s| s.best_loss = -1.0)),
            ("lr scale", Box::new(|s| s.lr_scale = f64::INFINITY)),
            ("order repeats", Box::new(|s| s.order[0] = s.order[1])),
            ("order out of range", Box::new(|s| s.order[0] = 1000)),
            ("order length", Box::new(|s| s.order.push(0))),
            ("optimizer kind", Box::new(|s| s.optimizer = SavedOptimizer::Sgd(Vec::new()))),
            (
                "step counter",
                Box::new(|s| {
                    if let SavedOptimizer::Adam(v) = &mut s.optimizer {
                        v[0].t = u64::MAX;
                    }
                }),
            ),
            (
                "moment lengths",
                Box::new(|s| {
                    if let SavedOptimizer::Adam(v) = &mut s.optimizer {
                        v[0].m.push(0.0);
                    }
                }),
            ),
            ("best model", Box::new(|s| s.best_model = Some(Vec::new()))),
            ("samples", Box::new(|s| s.train_samples = 0)),
        ];
        for (what, edit) in edits {
            let mut s = good.clone();
            edit(&mut s);
            assert_ne!(s, good, "{what}: the edit changed nothing");
            match TrainingState::<f64>::from_bytes(&s.to_bytes().unwrap()) {
                Err(AutoencoderError::Format { .. }) => {}
                other => panic!("{what}: expected Format, got {other:?}"),
            }
        }
    }
}
