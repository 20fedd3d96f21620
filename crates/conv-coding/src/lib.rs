#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod admm;
mod coder;
mod dictupd;
mod error;
mod filters;
mod fista;
mod geometry;
mod learn;
mod online;
mod operator;
mod params;
mod spectral;
mod spectrum;

pub use coder::{Csc, CscCodes};
pub use dictupd::FilterConstraint;
pub use error::{ConvCodingError, Result};
pub use filters::Filters;
pub use geometry::Boundary;
pub use latent_linalg::Tensor4;
pub use latent_linalg::fft::FftReal;
pub use latent_optim::fit::{Build, Checked, Fit, ParamGuard};
pub use learn::{CdlCallback, CdlIter, CdlLearner, CdlParams, CdlProgress, DictSolver, FittedCdl, LearnStop};
pub use online::{OnlineCdl, OnlineCdlParams, OnlineCdlState};
pub use operator::{Backend, ConvOperator};
pub use params::{AdmmParams, AutoRho, CscParams, FistaParams, IterStat, SolveInfo, Solver, StopReason};
