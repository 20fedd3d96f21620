#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod collective;
pub mod error;
pub mod fit;
pub mod gradcheck;
pub mod objective;
pub mod optimizer;
pub mod progress;
pub mod prox;
pub mod schedule;
pub mod solver;

pub use collective::{ChunkPartials, CommError, Communicator, Fingerprint, SingleProcess, ThreadComm};
pub use error::{OptimError, Result};
pub use fit::{Build, Checked, Fit, LearnStop, ParamGuard};
pub use gradcheck::{GradCheck, GradCheckReport, check_gradient, check_objective, check_vjp};
pub use objective::{FnObjective, LeastSquares, Objective, Quadratic, SeparableQuadratic};
pub use optimizer::{Adam, AdamParams, AdamState, AdamW, AdamWParams, Optimizer, Sgd, SgdParams, SgdState};
pub use prox::{BoxConstraint, GroupL2, L0, L1, L1NonNeg, L2Ball, Prox, ProxConjugate, Zero, project_columns_l2_ball};
pub use schedule::{Constant, CosineAnnealing, LinearWarmup, Schedule, StepDecay, warmup_cosine};
pub use solver::{
    Criterion, IterationStat, LinearSmooth, ProxGradParams, SolveResult, StepRule, StopReason, fista, fista_linear,
    ista,
};
