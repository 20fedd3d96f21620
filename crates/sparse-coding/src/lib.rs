#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cd;
mod code;
mod encoder;
mod error;
mod lars;
mod omp;
mod prox_encoders;

pub use cd::CoordinateDescent;
pub use code::SparseCode;
pub use encoder::{CodeInfo, Codes, Encoder, Prepared, StopReason};
pub use error::{Result, SparseCodingError};
pub use lars::{Lars, PathPoint};
pub use omp::Omp;
pub use prox_encoders::{FeatureSign, Iht, L0Rule, ProxGradient, Scheme, Threshold, ThresholdRule};
