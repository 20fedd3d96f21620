#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cd;
mod code;
mod encoder;
mod dictionary;
mod error;
mod learn;
mod lars;
mod masked;
mod omp;
mod prox_encoders;
mod topographic;

pub use cd::CoordinateDescent;
pub use code::SparseCode;
pub use encoder::{CodeInfo, Codes, Encoder, Prepared, StopReason};
pub use dictionary::{BlockCoordinate, DictionaryUpdate, Frobenius, LagrangeDual, Stats, UnitNormProjected, UpdateInfo, quadratic_objective};
pub use error::{Result, SparseCodingError};
pub use learn::{BatchLearner, BatchParams, Callback, FittedDictionary, L1Solver, LearnStop, OnlineLearner, OnlineParams, OnlineState, Progress, init_from_data};
pub use lars::{Lars, PathPoint};
pub use masked::{encode_masked, inpaint, inpaint_image};
pub use omp::{Omp, OmpRule};
pub use prox_encoders::{FeatureSign, Iht, L0Rule, ProxGradient, Scheme, Threshold, ThresholdRule};
pub use topographic::{FittedTopographic, TopographicEncoder, TopographicLearner, TopographicParams, TopographicPenalty, Torus, grid_smoothness};
