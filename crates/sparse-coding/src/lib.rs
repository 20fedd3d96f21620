#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod cd;
mod code;
mod dictionary;
mod encoder;
mod error;
mod lars;
mod learn;
mod masked;
mod omp;
mod prox_encoders;
mod topographic;

pub use cd::CoordinateDescent;
pub use code::SparseCode;
pub use dictionary::{
    BlockCoordinate, DictionaryUpdate, Frobenius, LagrangeDual, Stats, UnitNormProjected, UpdateInfo,
    quadratic_objective,
};
pub use encoder::{CodeInfo, Codes, Encoder, Prepared, StopReason};
pub use error::{Result, SparseCodingError};
pub use lars::{Lars, PathPoint};
/// Re-exported from `latent-linalg`, so that using this crate needs no other latent dependency.
pub use latent_linalg::{DMatrix, DVector, Real};
pub use latent_optim::fit::{Checked, Fit, ParamGuard};
pub use learn::{
    BatchLearner, BatchParams, Callback, DISTRIBUTED_CHUNK, FittedDictionary, L1Solver, LearnStop, OnlineLearner,
    OnlineParams, OnlineState, Progress, init_from_data,
};
pub use masked::{encode_masked, inpaint, inpaint_image};
pub use omp::{Omp, OmpRule};
pub use prox_encoders::{FeatureSign, Iht, L0Rule, ProxGradient, Scheme, Threshold, ThresholdRule};
pub use topographic::{
    FittedTopographic, TopographicEncoder, TopographicLearner, TopographicParams, TopographicPenalty, Torus,
    grid_smoothness,
};
