#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod data;
pub mod error;
pub mod io;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod params;
pub mod tile;
pub mod train;
pub mod weight_map;

pub use error::{Result, UnetError};
/// Re-exported from `latent-linalg`, so that using this crate needs no other latent dependency.
pub use latent_linalg::{Real, Tensor4};
pub use latent_optim::fit::{Build, Checked, Fit, ParamGuard};
pub use loss::SegLoss;
pub use metrics::SegMetrics;
pub use model::UNet;
pub use params::{Geometry, Padding, UnetParams};
pub use train::{DISTRIBUTED_CHUNK, SegBatch, SegTrainer, StepInfo, TrainParams, TrainReport, UnetOptimizer};
pub use weight_map::WeightMapParams;
