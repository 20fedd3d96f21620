//! Training: batches of augmented tiles, a training step (forward, loss, backward) and Adam from
//! `latent-optim` over every parameter, with a cosine learning-rate schedule. Deterministic: the
//! same seed gives bit-identical weights on 1 or 2 rayon threads.

use crate::data::{TileAugment, random_tile};
use crate::error::{Result, UnetError, check_nonneg, check_pos, invalid, shape_err};
use crate::loss::SegLoss;
use crate::model::UNet;
use crate::weight_map::WeightMapParams;
use latent_autoencoder::train::{ModelOptimizer, OptimizerKind};
use latent_autoencoder::{AutoencoderError, Layer, Mode};
use latent_datasets::cells::CellSample;
use latent_linalg::{Real, Tensor4};
use latent_optim::collective::{ChunkPartials, Communicator, Fingerprint, fnv1a};
use latent_optim::fit::{Checked, ParamGuard};
use latent_optim::optimizer::AdamParams;
use latent_optim::schedule::{CosineAnnealing, Schedule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A training batch: inputs `(N, C, H, W)` and, per output pixel (`N·H'·W'` values), the target
/// class and optionally a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct SegBatch<T> {
    /// Input images.
    pub images: Tensor4<T>,
    /// Target class of every output pixel.
    pub labels: Vec<u8>,
    /// Per-pixel loss weights (the weight map), if any.
    pub weights: Option<Vec<T>>,
}

impl<T: Real> UNet<T> {
    /// One training evaluation: zero the gradients, forward in training mode, the loss and its
    /// gradient, backward (parameter gradients only). Returns the loss; follow with
    /// [`UnetOptimizer::step`].
    ///
    /// # Errors
    /// Shape errors of the input ([`UnetError::InputSize`] names valid sizes), a
    /// [`UnetError::ShapeMismatch`] when labels or weights do not cover the output, and the
    /// loss's errors (labels out of range, negative weights, non-finite values).
    pub fn train_step(&mut self, batch: &SegBatch<T>, loss: SegLoss) -> Result<f64> {
        // a step is a chain of short parallel loops: keep the pool's threads awake between them
        let _warm = latent_linalg::product::TrainingScope::new();
        let out = self.output_shape(batch.images.shape())?;
        let np = out[0] * out[2] * out[3];
        if batch.labels.len() != np {
            return Err(shape_err("train_step labels", format!("{np} (output {out:?})"), batch.labels.len()));
        }
        crate::error::check_finite("training images", batch.images.as_slice())?;
        self.zero_grad();
        let logits = Layer::forward(self, &batch.images, Mode::Train)?;
        let mut g = Tensor4::zeros(logits.shape())?;
        let value = loss.value_grad(&logits, &batch.labels, batch.weights.as_deref(), Some(&mut g))?;
        Layer::backward_params(self, &batch.images, &logits, &g)?;
        Ok(value)
    }

    /// The loss of a batch in evaluation mode (no gradients).
    ///
    /// # Errors
    /// As [`UNet::train_step`].
    pub fn eval_loss(&self, batch: &SegBatch<T>, loss: SegLoss) -> Result<f64> {
        let logits = self.predict(&batch.images)?;
        loss.value_grad(&logits, &batch.labels, batch.weights.as_deref(), None)
    }
}

/// Adam (from `latent-optim`) with its state for every parameter of a [`UNet`]: the
/// autoencoder crate's chunked optimizer ([`ModelOptimizer`]: fixed chunks of every parameter,
/// each with its own state, updated in parallel; the result does not depend on the number of
/// threads).
///
/// # Example
/// ```
/// use latent_linalg::Tensor4;
/// use latent_unet::{ParamGuard, SegBatch, SegLoss, UNet, UnetOptimizer, UnetParams};
/// let mut net = UnetParams::new().depth(2).base_channels(4).check()?.build::<UNet<f32>>()?;
/// let x = Tensor4::from_fn([2, 1, 8, 8], |[_, _, i, j]| if (i / 4 + j / 4) % 2 == 0 { 1.0 } else { -1.0 })?;
/// let labels: Vec<u8> = x.as_slice().iter().map(|&v| u8::from(v > 0.0)).collect();
/// let batch = SegBatch { images: x, labels, weights: None };
/// let mut opt = UnetOptimizer::new(Default::default(), &mut net)?;
/// let first = net.train_step(&batch, SegLoss::CrossEntropy)?;
/// for _ in 0..30 {
///     net.train_step(&batch, SegLoss::CrossEntropy)?;
///     opt.step(&mut net, 1e-2)?;
/// }
/// assert!(net.eval_loss(&batch, SegLoss::CrossEntropy)? < first);
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UnetOptimizer<T: Real> {
    inner: ModelOptimizer<T>,
}

/// The optimizer's errors in this crate's terms.
fn from_optimizer(e: AutoencoderError) -> UnetError {
    match e {
        AutoencoderError::Optim(e) => UnetError::Optim(e),
        AutoencoderError::State { op, detail } => UnetError::State { op, detail },
        other => UnetError::Autoencoder(other),
    }
}

impl<T: Real> UnetOptimizer<T> {
    /// Fresh state for every parameter of `model`.
    ///
    /// # Errors
    /// [`UnetError::Optim`] for invalid hyperparameters.
    pub fn new(params: AdamParams, model: &mut UNet<T>) -> Result<Self> {
        let inner =
            ModelOptimizer::for_params(&OptimizerKind::Adam(params), &Layer::params(model)).map_err(from_optimizer)?;
        Ok(Self { inner })
    }

    /// One update of every parameter from the gradients the last [`UNet::train_step`] left.
    ///
    /// # Errors
    /// [`UnetError::Optim`] for a bad `lr` or a non-finite gradient, [`UnetError::State`] when
    /// the model's parameters differ from those the optimizer was built for.
    pub fn step(&mut self, model: &mut UNet<T>, lr: f64) -> Result<()> {
        self.inner.step_params(Layer::params(model), T::lit(lr)).map_err(from_optimizer)
    }
}

/// Training hyperparameters (builder).
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `steps` | `300` | optimizer steps | `>= 1` |
/// | `batch_size` | `8` | tiles per step | `>= 1` |
/// | `tile` | `64` | input tile side (must be a size the network accepts) | `>= 1` |
/// | `lr` | `1e-3` | initial learning rate | finite, `> 0` |
/// | `final_lr` | `1e-4` | learning rate reached by cosine annealing at the last step | `[0, lr]` |
/// | `adam` | β = (0.9, 0.999), ε = 1e-8 | Adam hyperparameters | validated by `latent-optim` |
/// | `loss` | `CrossEntropy` | see [`SegLoss`] | — |
/// | `weight_map` | `Some(w₀ = 10, σ = 5, class balance)` | per-pixel loss weights, see [`WeightMapParams`]; `None`: unweighted | — |
/// | `augment` | flips/rotations, elastic (3, 10 px) | see [`TileAugment`] | grid `>= 2`, σ finite `>= 0` |
/// | `seed` | `0` | tile sampling and augmentation | any |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainParams {
    /// Optimizer steps.
    pub steps: usize,
    /// Tiles per step.
    pub batch_size: usize,
    /// Input tile side.
    pub tile: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub final_lr: f64,
    /// Adam hyperparameters.
    pub adam: AdamParams,
    /// Loss.
    pub loss: SegLoss,
    /// Weight map settings.
    pub weight_map: Option<WeightMapParams>,
    /// Augmentation.
    pub augment: TileAugment,
    /// Seed.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            steps: 300,
            batch_size: 8,
            tile: 64,
            lr: 1e-3,
            final_lr: 1e-4,
            adam: AdamParams::default(),
            loss: SegLoss::CrossEntropy,
            weight_map: Some(WeightMapParams::default()),
            augment: TileAugment::default(),
            seed: 0,
        }
    }
}

impl TrainParams {
    /// Defaults (see the table).
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the number of steps.
        steps: usize,
        /// Set the batch size.
        batch_size: usize,
        /// Set the input tile side.
        tile: usize,
        /// Set the initial learning rate.
        lr: f64,
        /// Set the final learning rate.
        final_lr: f64,
        /// Set Adam's hyperparameters.
        adam: AdamParams,
        /// Set the loss.
        loss: SegLoss,
        /// Set (or remove) the weight map.
        weight_map: Option<WeightMapParams>,
        /// Set the augmentation.
        augment: TileAugment,
        /// Set the seed.
        seed: u64,
    }
}

impl ParamGuard for TrainParams {
    type Error = UnetError;

    /// # Errors
    /// [`UnetError::InvalidParameter`] naming the first bad value, [`UnetError::Optim`] for bad
    /// Adam hyperparameters.
    fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(invalid("steps", self.steps, "must be >= 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", self.batch_size, "must be >= 1"));
        }
        if self.tile == 0 {
            return Err(invalid("tile", self.tile, "must be >= 1"));
        }
        check_pos("lr", self.lr)?;
        check_nonneg("final_lr", self.final_lr)?;
        if self.final_lr > self.lr {
            return Err(invalid("final_lr", self.final_lr, format!("must be <= lr = {}", self.lr)));
        }
        self.adam.check()?;
        if let Some(w) = &self.weight_map {
            w.validate()?;
        }
        if let Some((grid, sigma)) = self.augment.elastic {
            if grid < 2 {
                return Err(invalid("augment.elastic.grid", grid, "must be >= 2"));
            }
            check_nonneg("augment.elastic.sigma", sigma)?;
        }
        Ok(())
    }
}

/// What happened in a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Loss of every step (on the step's batch, before the update).
    pub losses: Vec<f64>,
    /// Steps taken.
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Training tiles per second.
    pub tiles_per_s: f64,
}

/// Progress of a training run, passed to the callback after every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Step just taken (1-based).
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// Loss of the step.
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
}

/// Trains a [`UNet`] on random augmented tiles of cell images.
///
/// Each step draws `batch_size` tiles: the source image with probability proportional to its
/// area, a random position, flips/rotations and an elastic deformation (see
/// [`crate::data::random_tile`]); targets are the class map of the model's class count
/// (2: background/cell, 3: with borders) and the weight map.
///
/// # Example
/// ```
/// use latent_datasets::cells::{SynthCells, synth_cell_set};
/// use latent_unet::data::standardize;
/// use latent_unet::{ParamGuard, SegTrainer, TrainParams, UNet, UnetParams};
/// let cells = synth_cell_set(&SynthCells { width: 48, height: 48, ..Default::default() }, 4, 1)?;
/// let sources = cells.iter().map(standardize).collect::<Result<Vec<_>, _>>()?;
/// let mut net = UnetParams::new().depth(2).base_channels(4).check()?.build::<UNet<f32>>()?;
/// let trainer = SegTrainer::new(TrainParams::new().steps(3).batch_size(2).tile(32).check()?);
/// let report = trainer.fit(&mut net, &sources)?;
/// assert_eq!(report.losses.len(), 3);
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegTrainer {
    params: TrainParams,
}

impl SegTrainer {
    /// A trainer with validated parameters.
    pub fn new(params: Checked<TrainParams>) -> Self {
        Self { params: params.into_inner() }
    }

    /// The parameters.
    pub fn params(&self) -> &TrainParams {
        &self.params
    }

    /// Draw the batch of step `step` (deterministic in the seed and the step).
    ///
    /// # Errors
    /// [`UnetError::Empty`] without sources; errors of [`random_tile`]; shape errors when the
    /// tile does not fit the model.
    pub fn batch<T: Real>(&self, model: &UNet<T>, sources: &[CellSample], step: usize) -> Result<SegBatch<T>> {
        let p = &self.params;
        if sources.is_empty() {
            return Err(UnetError::Empty { what: "training images" });
        }
        let out = model.geometry().check_size("tile", p.tile)?;
        let margin = (p.tile - out) / 2;
        let c = model.params().in_channels;
        if c != 1 {
            return Err(shape_err("training tiles", "a model with 1 input channel (cell images are gray)", c));
        }
        let areas: Vec<f64> = sources.iter().map(|s| (s.width() * s.height()) as f64).collect();
        let total: f64 = areas.iter().sum();
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        rng.set_stream(step as u64 + 1);
        let picks: Vec<(usize, u64)> = (0..p.batch_size)
            .map(|_| {
                let mut u = rng.random::<f64>() * total;
                let mut k = 0;
                while k + 1 < areas.len() && u >= areas[k] {
                    u -= areas[k];
                    k += 1;
                }
                (k, rng.random::<u64>())
            })
            .collect();
        let classes = model.params().classes;
        let tiles: Vec<_> = picks
            .par_iter()
            .map(|&(k, seed)| {
                random_tile(&sources[k], p.tile, margin, classes, &p.augment, p.weight_map.as_ref(), seed)
            })
            .collect::<Result<_>>()?;
        let mut img = Vec::with_capacity(p.batch_size * p.tile * p.tile);
        let mut labels = Vec::with_capacity(p.batch_size * out * out);
        let mut weights = p.weight_map.map(|_| Vec::with_capacity(p.batch_size * out * out));
        for t in tiles {
            img.extend(t.image.iter().map(|&v| T::lit(f64::from(v))));
            labels.extend_from_slice(&t.labels);
            if let (Some(w), Some(tw)) = (weights.as_mut(), t.weights.as_ref()) {
                w.extend(tw.iter().map(|&v| T::lit(f64::from(v))));
            }
        }
        Ok(SegBatch { images: Tensor4::from_vec([p.batch_size, 1, p.tile, p.tile], img)?, labels, weights })
    }

    /// Train `model` on tiles of `sources` (standardised cell images, see
    /// [`crate::data::standardize`]).
    ///
    /// # Errors
    /// As [`SegTrainer::fit_with`].
    pub fn fit<T: Real>(&self, model: &mut UNet<T>, sources: &[CellSample]) -> Result<TrainReport> {
        self.fit_with(model, sources, &mut |_| {})
    }

    /// The tile fits the model and every source is at least one tile.
    fn check_sources<T: Real>(&self, model: &UNet<T>, sources: &[CellSample]) -> Result<()> {
        let p = &self.params;
        model.geometry().check_size("tile", p.tile)?;
        if sources.is_empty() {
            return Err(UnetError::Empty { what: "training images" });
        }
        if let Some((i, s)) = sources.iter().enumerate().find(|(_, s)| s.width().min(s.height()) < p.tile) {
            return Err(invalid("tile", p.tile, format!("source {i} is only {}x{}", s.width(), s.height())));
        }
        Ok(())
    }

    /// The training loop shared by [`SegTrainer::fit_with`] and [`SegTrainer::fit_distributed`]:
    /// `grad_step` leaves the gradients of one batch in the model and returns its loss; then the
    /// cosine-annealed Adam step, with the model restored when the step fails.
    fn run_steps<T: Real>(
        &self,
        model: &mut UNet<T>,
        sources: &[CellSample],
        on_step: &mut dyn FnMut(StepInfo),
        mut grad_step: impl FnMut(&mut UNet<T>, &SegBatch<T>) -> Result<f64>,
    ) -> Result<TrainReport> {
        let p = &self.params;
        let schedule = CosineAnnealing::new(p.lr, p.final_lr, p.steps)?;
        let mut opt = UnetOptimizer::new(p.adam, model)?;
        let start = Instant::now();
        let mut losses = Vec::with_capacity(p.steps);
        for step in 0..p.steps {
            let batch = self.batch(model, sources, step)?;
            let loss = grad_step(model, &batch)?;
            if !loss.is_finite() {
                return Err(UnetError::Diverged { step, what: "loss", value: loss });
            }
            let lr = schedule.lr(step);
            let backup = model.flat_params();
            if let Err(e) = opt.step(model, lr) {
                model.set_flat_params(&backup)?;
                return Err(match e {
                    UnetError::Optim(latent_optim::OptimError::Linalg(latent_linalg::LinalgError::NonFinite {
                        ..
                    })) => UnetError::Diverged { step, what: "gradient", value: f64::NAN },
                    other => other,
                });
            }
            losses.push(loss);
            on_step(StepInfo { step: step + 1, steps: p.steps, loss, lr });
        }
        let seconds = start.elapsed().as_secs_f64();
        Ok(TrainReport {
            steps: losses.len(),
            losses,
            seconds,
            tiles_per_s: if seconds > 0.0 { (p.steps * p.batch_size) as f64 / seconds } else { 0.0 },
        })
    }

    /// As [`SegTrainer::fit`], calling `on_step` after every step.
    ///
    /// # Errors
    /// [`UnetError::InputSize`] when the tile does not fit the model, [`UnetError::Empty`]
    /// without sources, [`UnetError::InvalidParameter`] for sources smaller than the tile,
    /// [`UnetError::Diverged`] when the loss or the parameters become non-finite (the model is
    /// then restored to its state before the failing step).
    pub fn fit_with<T: Real>(
        &self,
        model: &mut UNet<T>,
        sources: &[CellSample],
        on_step: &mut dyn FnMut(StepInfo),
    ) -> Result<TrainReport> {
        let p = &self.params;
        self.check_sources(model, sources)?;
        self.run_steps(model, sources, on_step, |model, batch| model.train_step(batch, p.loss))
    }
}

/// Tiles per chunk of a global batch in [`SegTrainer::fit_distributed`]: the partition of a
/// batch into chunks depends on the batch size only, never on the number of ranks.
pub const DISTRIBUTED_CHUNK: usize = 2;

fn collective(e: latent_optim::collective::CommError) -> UnetError {
    UnetError::Optim(latent_optim::OptimError::Collective(e))
}

/// Fingerprint of the training images (sizes and pixels).
fn sources_fingerprint(sources: &[CellSample]) -> u64 {
    let mut f = Fingerprint::new();
    for s in sources {
        f.word(s.width() as u64);
        f.word(s.height() as u64);
        f.words(&s.image().data, |v| u64::from(v.to_bits()));
        f.words(&s.instances().data, u64::from);
    }
    f.finish()
}

impl SegTrainer {
    /// Data-parallel [`SegTrainer::fit_with`] (DDP style): every rank calls it with the same
    /// model, sources and parameters and draws the same batches; each batch is cut into chunks
    /// of [`DISTRIBUTED_CHUNK`] tiles, each rank runs [`UNet::train_step`] on its block of chunks,
    /// the chunk gradients and losses (weighted by their share of the batch) are summed in chunk
    /// order ([`Communicator::sum_all_reduce`]) and every rank takes the same Adam step. Batch
    /// normalisation uses each chunk's batch statistics (as DDP uses each rank's) and replays
    /// every chunk's running-statistics update in chunk order on every rank
    /// ([`latent_autoencoder::train::replay_running_updates`]). So weights, running statistics
    /// and losses are **bit-identical** on 1, 2, 3, … ranks (they differ from
    /// [`SegTrainer::fit_with`], which normalises over the whole batch). The Dice loss is a
    /// per-chunk Dice. Ranks exchange fingerprints of the parameters, the images and the model
    /// at start-up and refuse to start when one differs. `on_step` runs on every rank.
    ///
    /// # Errors
    /// As [`SegTrainer::fit_with`]; [`UnetError::Optim`] wrapping
    /// [`OptimError::Collective`](latent_optim::OptimError::Collective) for a failed collective
    /// or ranks that disagree.
    pub fn fit_distributed<T: Real>(
        &self,
        comm: &dyn Communicator,
        model: &mut UNet<T>,
        sources: &[CellSample],
        on_step: &mut dyn FnMut(StepInfo),
    ) -> Result<TrainReport> {
        let p = &self.params;
        self.check_sources(model, sources)?;
        comm.agree("U-Net training parameters", fnv1a(format!("{p:?}").as_bytes())).map_err(collective)?;
        comm.agree("training images", sources_fingerprint(sources)).map_err(collective)?;
        comm.agree("initial U-Net", fnv1a(&model.to_bytes()?)).map_err(collective)?;
        self.run_steps(model, sources, on_step, |model, batch| distributed_step(comm, model, batch, p.loss))
    }
}

/// One data-parallel gradient evaluation of `batch`: this rank's chunks through
/// [`UNet::train_step`], the weighted chunk gradients and losses summed in chunk order, the sum
/// left in the model's gradients, the running statistics replayed. Returns the batch loss.
fn distributed_step<T: Real>(
    comm: &dyn Communicator,
    model: &mut UNet<T>,
    batch: &SegBatch<T>,
    loss: SegLoss,
) -> Result<f64> {
    let [nb, c, h, w] = batch.images.shape();
    let out = batch.labels.len() / nb.max(1);
    let chunks = nb.div_ceil(DISTRIBUTED_CHUNK);
    let len = Layer::params(model).iter().map(|p| p.value.len()).sum::<usize>() + 2;
    let mine = comm.my_chunks(chunks);
    let mut local = ChunkPartials::new(comm, chunks, len);
    let mut running = Vec::new();
    Layer::defer_running_updates(model, true);
    for k in mine {
        let (t0, t1) = (k * DISTRIBUTED_CHUNK, ((k + 1) * DISTRIBUTED_CHUNK).min(nb));
        let d = c * h * w;
        let sub = SegBatch {
            images: Tensor4::from_vec([t1 - t0, c, h, w], batch.images.as_slice()[t0 * d..t1 * d].to_vec())?,
            labels: batch.labels[t0 * out..t1 * out].to_vec(),
            weights: batch.weights.as_ref().map(|wt| wt[t0 * out..t1 * out].to_vec()),
        };
        let l = match model.train_step(&sub, loss) {
            Ok(l) => l,
            Err(e) => {
                Layer::defer_running_updates(model, false);
                return Err(e);
            }
        };
        let weight = (t1 - t0) as f64 / nb as f64;
        local.begin_chunk();
        for p in Layer::params(model) {
            local.extend_mapped(p.grad, |g| g.as_f64() * weight);
        }
        local.push(l * weight);
        let stats = Layer::take_running_updates(model);
        local.push(stats.len() as f64);
        running.push((k, stats));
    }
    Layer::defer_running_updates(model, false);
    let total = local.sum_all_reduce(comm).map_err(collective)?;
    let mut at = 0;
    for p in Layer::params(model) {
        for (g, &t) in p.grad.iter_mut().zip(&total[at..]) {
            *g = T::lit(t);
        }
        at += p.grad.len();
    }
    latent_autoencoder::train::replay_running_updates(comm, model, chunks, total[len - 1], running, |m, s| {
        Layer::apply_running_updates(m, s)
    })?;
    Ok(total[len - 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::UnetParams;
    use latent_optim::optimizer::{Adam, Optimizer};

    /// The shared chunked optimizer updates a U-Net exactly as per-chunk Adam over chunks of
    /// 2¹⁴ values (the loop this crate ran before it used `ModelOptimizer`).
    #[test]
    fn the_shared_optimizer_matches_per_chunk_adam_bit_for_bit() {
        let mut net = UnetParams::new().depth(2).base_channels(24).check().unwrap().build::<UNet<f32>>().unwrap();
        let x = Tensor4::from_fn([2, 1, 8, 8], |[n, _, i, j]| ((n + i * 3 + j) % 5) as f32 / 5.0 - 0.4).unwrap();
        let labels: Vec<u8> = x.as_slice().iter().map(|&v| u8::from(v > 0.0)).collect();
        let batch = SegBatch { images: x, labels, weights: None };
        let mut reference = net.clone();
        let total: usize = Layer::params(&mut net).iter().map(|p| p.value.len()).sum();
        assert!(total > 2 << 14, "{total} parameters: too few for several chunks and the parallel update");

        let mut opt = UnetOptimizer::new(AdamParams::default(), &mut net).unwrap();
        let adam = Adam::new(AdamParams::default()).unwrap();
        let mut states: Vec<_> = Layer::params(&mut reference)
            .iter()
            .flat_map(|p| p.value.chunks(1 << 14).map(<[f32]>::len).collect::<Vec<_>>())
            .map(|n| Optimizer::<f32>::init_state(&adam, n))
            .collect();
        for step in 0..3 {
            let lr = 1e-2 / (step + 1) as f64;
            net.train_step(&batch, SegLoss::CrossEntropy).unwrap();
            opt.step(&mut net, lr).unwrap();
            reference.train_step(&batch, SegLoss::CrossEntropy).unwrap();
            let params = Layer::params(&mut reference);
            let chunks = params.into_iter().flat_map(|p| p.value.chunks_mut(1 << 14).zip(p.grad.chunks_mut(1 << 14)));
            for ((v, g), s) in chunks.zip(states.iter_mut()) {
                adam.step(v, g, s, f32::lit(lr)).unwrap();
            }
            let bits = |m: &mut UNet<f32>| m.flat_params().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&mut net), bits(&mut reference), "step {step}");
        }
    }
}
