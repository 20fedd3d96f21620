//! Files written by an earlier build must keep loading. `tests/fixtures/` holds model files and a
//! training-state file written by the code before layers became open (commit `1a25134`), with the
//! reconstructions that build computed; the current build must read them and compute the same
//! bits, and resuming the saved training state must end where the old build's uninterrupted run
//! ended.
//!
//! `cargo test -p latent-autoencoder --test fixtures -- --ignored write_fixtures` rewrites the
//! files with the current build (only do that on purpose: they are the compatibility record).

use latent_autoencoder::ParamGuard;
use latent_autoencoder::models::{ConvAeParams, ConvStage, MlpAeParams};
use latent_autoencoder::resume::TrainingState;
use latent_autoencoder::train::{Control, EpochContext, TrainParams, Trainer};
use latent_autoencoder::{Autoencoder, NoiseModel};
use latent_linalg::{Real, Tensor4};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// Deterministic data in `[0, 1]`.
fn data<T: Real>(shape: [usize; 4]) -> Tensor4<T> {
    Tensor4::from_fn(shape, |[n, c, h, w]| T::lit(((n * 7 + c * 5 + h * 3 + w * 11) % 13) as f64 / 13.0)).unwrap()
}

fn bits<T: Real>(x: &Tensor4<T>) -> Vec<u8> {
    x.as_slice().iter().flat_map(|v| v.as_f64().to_bits().to_le_bytes()).collect()
}

const MLP_SHAPE: [usize; 4] = [24, 12, 1, 1];
const CONV_SHAPE: [usize; 4] = [10, 1, 8, 8];

fn mlp_arch() -> latent_autoencoder::Checked<MlpAeParams> {
    MlpAeParams::new(vec![12, 8, 3])
        .batch_norm(true)
        .dropout(0.25)
        .denoising(NoiseModel::Gaussian { std: 0.1 })
        .seed(3)
        .check()
        .unwrap()
}

fn mlp_train() -> TrainParams {
    TrainParams::new().epochs(3).batch_size(8).lr(1e-2).seed(5).progress(false)
}

fn conv_arch() -> latent_autoencoder::Checked<ConvAeParams> {
    ConvAeParams::new([1, 8, 8])
        .encoder_stage(ConvStage::new(4, 3, 2, 1))
        .encoder_stage(ConvStage::new(6, 3, 2, 1))
        .batch_norm(true)
        .denoising(NoiseModel::Masking { fraction: 0.2 })
        .seed(9)
        .epochs(2)
        .batch_size(4)
        .lr(1e-2)
        .progress(false)
        .check()
        .unwrap()
}

#[test]
#[ignore = "rewrites the compatibility fixtures; run on purpose only"]
fn write_fixtures() {
    std::fs::create_dir_all(dir()).unwrap();
    // f32 MLP with batch norm, dropout and Gaussian noise: an uninterrupted 3-epoch run …
    let x = data::<f32>(MLP_SHAPE);
    let mut whole = mlp_arch().build::<Autoencoder<f32>>().unwrap();
    Trainer::new(mlp_train().check().unwrap()).fit(&mut whole, &x, None).unwrap();
    whole.save(dir().join("mlp_f32.ltae")).unwrap();
    std::fs::write(dir().join("mlp_f32.expected"), bits(&whole.reconstruct(&x).unwrap())).unwrap();
    // … and the training state after epoch 2 of the same run.
    let state = dir().join("mlp_f32.ltts");
    let mut first = mlp_arch().build::<Autoencoder<f32>>().unwrap();
    let mut stop =
        |ctx: &mut EpochContext<'_, Autoencoder<f32>>| if ctx.epoch == 2 { Control::Stop } else { Control::Continue };
    Trainer::new(mlp_train().state_checkpoint(&state, 1).check().unwrap())
        .fit_with_callbacks(&mut first, &x, None, &mut [&mut stop])
        .unwrap();
    // f64 convolutional AE with batch norm and masking noise.
    let x = data::<f64>(CONV_SHAPE);
    let fitted = conv_arch().fit(&x).unwrap();
    fitted.model.save(dir().join("conv_f64.ltae")).unwrap();
    std::fs::write(dir().join("conv_f64.expected"), bits(&fitted.model.reconstruct(&x).unwrap())).unwrap();
}

#[test]
fn model_files_of_the_previous_build_load_and_reconstruct_identically() {
    let x = data::<f32>(MLP_SHAPE);
    let mlp = Autoencoder::<f32>::load(dir().join("mlp_f32.ltae")).unwrap();
    assert_eq!(bits(&mlp.reconstruct(&x).unwrap()), std::fs::read(dir().join("mlp_f32.expected")).unwrap());
    let x = data::<f64>(CONV_SHAPE);
    let conv = Autoencoder::<f64>::load(dir().join("conv_f64.ltae")).unwrap();
    assert_eq!(bits(&conv.reconstruct(&x).unwrap()), std::fs::read(dir().join("conv_f64.expected")).unwrap());
    // the current build trains the same model to the same bits
    let again = conv_arch().fit(&x).unwrap().model;
    assert_eq!(again.to_bytes().unwrap(), conv.to_bytes().unwrap());
}

#[test]
fn a_training_state_of_the_previous_build_resumes_to_the_same_weights() {
    let x = data::<f32>(MLP_SHAPE);
    let state = dir().join("mlp_f32.ltts");
    let saved = TrainingState::<f32>::load(&state).unwrap();
    assert_eq!(saved.epochs_run(), 2);
    let mut resumed = mlp_arch().build::<Autoencoder<f32>>().unwrap();
    let report = Trainer::new(mlp_train().resume_from(&state).check().unwrap()).fit(&mut resumed, &x, None).unwrap();
    assert_eq!(report.epochs_run, 3);
    let expected = Autoencoder::<f32>::load(dir().join("mlp_f32.ltae")).unwrap();
    assert_eq!(resumed.to_bytes().unwrap(), expected.to_bytes().unwrap());
    assert_eq!(bits(&resumed.reconstruct(&x).unwrap()), std::fs::read(dir().join("mlp_f32.expected")).unwrap());
}
