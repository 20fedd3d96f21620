#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cd;
mod code;
mod encoder;
mod dictionary;
mod error;
mod learn;
mod lars;
mod omp;
mod prox_encoders;

pub use cd::CoordinateDescent;
pub use code::SparseCode;
pub use encoder::{CodeInfo, Codes, Encoder, Prepared, StopReason};
pub use dictionary::{BlockCoordinate, DictionaryUpdate, Frobenius, LagrangeDual, Stats, UnitNormProjected, UpdateInfo, quadratic_objective};
pub use error::{Result, SparseCodingError};
pub use learn::{BatchLearner, BatchParams, Callback, FittedDictionary, L1Solver, LearnStop, OnlineLearner, OnlineParams, OnlineState, Progress, init_from_data};
pub use lars::{Lars, PathPoint};
pub use omp::{Omp, OmpRule};
pub use prox_encoders::{FeatureSign, Iht, L0Rule, ProxGradient, Scheme, Threshold, ThresholdRule};
