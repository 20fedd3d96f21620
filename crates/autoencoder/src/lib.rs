#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod custom;
pub mod error;
pub mod io;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod model;
pub mod models;
mod par;
pub mod resume;
pub mod sequential;
pub mod train;

pub use custom::{CustomLayer, LayerRegistry, UserLayer};
pub use error::{AutoencoderError, Result};
/// Make the calling thread one of the global rayon pool's threads: call it first thing in `main`
/// of a program that trains (see [`Trainer`]'s "Speed" section). Re-exported from
/// `latent_linalg::product`.
pub use latent_linalg::product::init_threads;
/// Re-exported from `latent-linalg`, so that using this crate needs no other latent dependency.
pub use latent_linalg::{Real, Tensor4};
pub use latent_optim::fit::{Build, Checked, Fit, LearnStop, ParamGuard};
pub use layer::{Activation, ActivationLayer, Layer, Mode, Param, ParamKind};
pub use layers::noise::{BlobNoise, Noise, NoiseModel};
pub use loss::{DeadUnitCounter, Loss};
pub use model::{
    Autoencoder, Composed, Decoder, Encoder, KlSparsity, ModelKind, Objective, Trainable, WeightSet, per_sample_mse,
};
pub use models::{
    CheckedModel, ConvAeParams, ConvStage, Fitted, LinearAeParams, MlpAeParams, ModelParams, Penalties,
    SparseReluAeParams,
};
pub use resume::TrainingState;
pub use sequential::{AnyLayer, Sequential};
pub use train::{
    Callback, Control, EpochContext, LrSchedule, ModelOptimizer, OptimizerKind, TrainParams, TrainReport, Trainer,
};
