#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[cfg(feature = "conv-coding")]
pub mod csc;
pub mod detector;
pub mod error;
pub mod evaluate;
pub mod filter;
pub mod heatmap;
pub mod maps;
pub mod metrics;
pub mod normalize;
#[cfg(feature = "sparse-coding")]
pub mod patch_dict;
pub mod reconstructor;
#[cfg(feature = "autoencoder")]
pub mod restore;
pub mod ssim;
#[cfg(feature = "autoencoder")]
pub mod ssim_ae;

#[cfg(feature = "conv-coding")]
pub use csc::CscReconstructor;
pub use detector::{Analysis, Calibration, Detector, DetectorParams, Tiling};
pub use error::{AnomalyError, Result};
pub use evaluate::{
    DefectReport, EvalParams, EvalReport, Evaluation, TestSet, evaluate, evaluate_mvtec, load_mvtec_test,
    load_mvtec_train, random_crops,
};
pub use heatmap::{RgbImage, heatmap_panel, jet};
/// Re-exported from `latent-linalg`, so that using this crate needs no other latent dependency.
pub use latent_linalg::{Real, Tensor4};
pub use latent_optim::fit::{Build, Checked, Fit, ParamGuard};
pub use maps::{ContrastNorm, ImageScore, MapConfig, MapKind, MapParams};
pub use metrics::{Connectivity, F1Max, aupro, auroc, f1_max, pixel_auroc, quantile};
pub use normalize::{MapNormalizer, NormalizerParams, Scope, Side};
#[cfg(feature = "sparse-coding")]
pub use patch_dict::{PatchCoder, PatchDictionary, PatchDictionaryParams};
pub use reconstructor::{MeanEnsemble, Reconstructor, Symmetries, SymmetryAverage};
#[cfg(feature = "autoencoder")]
pub use restore::{RestorationCheck, corrupted_pixel_auroc, restoration_check};
pub use ssim::{Ssim, SsimParams};
#[cfg(feature = "autoencoder")]
pub use ssim_ae::SsimAutoencoder;
