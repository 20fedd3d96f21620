//! Restoring (blob-denoising) autoencoders and `restoration_check`.

use latent_anomaly::ParamGuard;
use latent_anomaly::{
    AnomalyError, Detector, DetectorParams, MapParams, Reconstructor, corrupted_pixel_auroc, restoration_check,
};
use latent_autoencoder::models::{ConvAeParams, ConvStage};
use latent_autoencoder::{Activation, BlobNoise, NoiseModel};
use latent_linalg::Tensor4;

/// Oriented stripes of period 4 px with a per-image phase: a tiny stationary "texture".
fn stripes(n: usize, side: usize, seed: usize) -> Tensor4<f32> {
    Tensor4::from_fn([n, 1, side, side], |[k, _, i, j]| {
        let phase = ((k + seed) * 37 % 100) as f32 / 100.0 * std::f32::consts::TAU;
        0.5 + 0.35 * ((i as f32 * 0.8 + j as f32 * 0.6) * std::f32::consts::FRAC_PI_2 + phase).sin()
    })
    .unwrap()
}

fn blobs() -> NoiseModel {
    NoiseModel::Blobs(BlobNoise { probability: 1.0, ..BlobNoise::default() })
}

fn conv_ae(noise: Option<NoiseModel>) -> ConvAeParams {
    let p = ConvAeParams::new([1, 16, 16])
        .encoder_stage(ConvStage::new(8, 4, 2, 1))
        .encoder_stage(ConvStage::new(16, 4, 2, 1))
        .hidden_activation(Activation::LeakyRelu(0.2))
        .code_activation(Activation::Identity)
        .epochs(40)
        .batch_size(16)
        .lr(3e-3)
        .seed(5)
        .progress(false);
    match noise {
        Some(n) => p.denoising(n),
        None => p,
    }
}

#[test]
fn restoring_autoencoder_removes_blob_corruption_of_normal_texture() {
    let train = stripes(256, 16, 0);
    let held = stripes(64, 16, 1000);
    let noise = blobs();
    let restoring = conv_ae(Some(noise)).check().unwrap().fit(&train).unwrap().model;
    let plain = conv_ae(None).check().unwrap().fit(&train).unwrap().model;
    let r = restoration_check(&restoring, &held, &noise, 77).unwrap();
    let p = restoration_check(&plain, &held, &noise, 77).unwrap();
    assert!(r.corrupted_fraction > 0.02, "{r:?}");
    assert_eq!(r.corrupted_mse, p.corrupted_mse, "same corruption for both models");
    // it restores: much closer to the clean images than its corrupted input
    assert!(r.restored_mse < 0.5 * r.corrupted_mse, "{r:?}");
    // and better than the plain autoencoder on the corrupted pixels, which it partly copies
    assert!(r.restored_mse_changed < p.restored_mse_changed, "restoring {r:?}\nplain {p:?}");
    // its error map finds the corrupted pixels, also as a tiled, smoothed detector on larger images
    assert!(r.changed_auroc > 0.8, "{r:?}");
    let params = || DetectorParams::new().map(MapParams::new().smoothing(1.0)).tiles(16, 16, 8).check().unwrap();
    let big = stripes(8, 32, 500);
    let a_restoring = corrupted_pixel_auroc(&Detector::new(&restoring, params()), &big, &noise, 8).unwrap();
    assert!(a_restoring > 0.8, "restoring {a_restoring}");
}

/// Returns its input unchanged.
struct Identity;
impl Reconstructor<f32> for Identity {
    fn reconstruct(&self, x: &Tensor4<f32>) -> latent_anomaly::Result<Tensor4<f32>> {
        Ok(x.clone())
    }
}

/// Returns a wrong shape.
struct Cropper;
impl Reconstructor<f32> for Cropper {
    fn reconstruct(&self, x: &Tensor4<f32>) -> latent_anomaly::Result<Tensor4<f32>> {
        let [n, c, h, w] = x.shape();
        Ok(Tensor4::zeros([n, c, h - 1, w])?)
    }
}

#[test]
fn identity_keeps_all_the_corruption_and_is_deterministic() {
    let x = stripes(16, 16, 3);
    let a = restoration_check(&Identity, &x, &blobs(), 4).unwrap();
    assert_eq!(a, restoration_check(&Identity, &x, &blobs(), 4).unwrap());
    assert!(a.corrupted_fraction > 0.0 && a.corrupted_fraction <= 0.3);
    assert!(a.corrupted_mse > 0.0);
    assert_eq!(a.restored_mse, a.corrupted_mse);
    assert_eq!(a.restored_mse_unchanged, 0.0);
    // the identity's map (x̃ − x̂)² is zero everywhere: no separation
    assert_eq!(a.changed_auroc, 0.5);
    // no corruption at all: metrics over changed pixels are undefined
    let none = NoiseModel::Blobs(BlobNoise { probability: 0.0, ..BlobNoise::default() });
    let b = restoration_check(&Identity, &x, &none, 4).unwrap();
    assert_eq!(b.corrupted_fraction, 0.0);
    assert!(b.restored_mse_changed.is_nan() && b.changed_auroc.is_nan());
}

#[test]
fn typed_errors() {
    let x = stripes(2, 16, 0);
    let empty = Tensor4::<f32>::zeros([0, 1, 16, 16]).unwrap();
    assert!(matches!(restoration_check(&Identity, &empty, &blobs(), 0), Err(AnomalyError::Empty { .. })));
    let mut bad = x.clone();
    bad.as_mut_slice()[5] = f32::NAN;
    assert!(matches!(restoration_check(&Identity, &bad, &blobs(), 0), Err(AnomalyError::NonFinite { index: 5, .. })));
    let wrong = NoiseModel::Blobs(BlobNoise { max_coverage: 2.0, ..BlobNoise::default() });
    assert!(matches!(
        restoration_check(&Identity, &x, &wrong, 0),
        Err(AnomalyError::InvalidParameter { name: "noise", .. })
    ));
    assert!(matches!(restoration_check(&Cropper, &x, &blobs(), 0), Err(AnomalyError::ShapeMismatch { .. })));
    let det = |r| Detector::new(r, DetectorParams::new().check().unwrap());
    assert!(matches!(corrupted_pixel_auroc(&det(&Identity), &empty, &blobs(), 0), Err(AnomalyError::Empty { .. })));
    assert!(matches!(
        corrupted_pixel_auroc(&det(&Identity), &bad, &blobs(), 0),
        Err(AnomalyError::NonFinite { index: 5, .. })
    ));
    assert!(matches!(
        corrupted_pixel_auroc(&det(&Identity), &x, &wrong, 0),
        Err(AnomalyError::InvalidParameter { name: "noise", .. })
    ));
    let none = NoiseModel::Blobs(BlobNoise { probability: 0.0, ..BlobNoise::default() });
    assert!(matches!(
        corrupted_pixel_auroc(&det(&Identity), &x, &none, 0),
        Err(AnomalyError::SingleClass { anomalous: false, .. })
    ));
}

#[test]
fn detector_check_of_the_identity_is_chance() {
    let x = stripes(8, 16, 9);
    let det = Detector::new(Identity, DetectorParams::new().check().unwrap());
    assert_eq!(corrupted_pixel_auroc(&det, &x, &blobs(), 1).unwrap(), 0.5);
}
