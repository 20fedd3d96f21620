//! SSIM: identity, symmetry, its gradient (the shared gradient checker), and the SSIM
//! autoencoder's parameter gradients.

use latent_anomaly::ParamGuard;
use latent_anomaly::ssim::{Ssim, SsimParams};
use latent_anomaly::{AnomalyError, Reconstructor, SsimAutoencoder};
use latent_autoencoder::Autoencoder;
use latent_autoencoder::Trainable;
use latent_autoencoder::models::{ConvAeParams, ConvStage};
use latent_autoencoder::train::TrainParams;
use latent_linalg::Tensor4;
use latent_optim::gradcheck::{GradCheck, check_gradient};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor4::from_fn(shape, |_| rng.random::<f64>()).unwrap()
}

#[test]
fn ssim_of_an_image_with_itself_is_one() {
    let ssim = Ssim::from(SsimParams::new().check().unwrap());
    for x in [random([2, 3, 13, 9], 1), Tensor4::full([1, 1, 5, 5], 0.3).unwrap()] {
        let m = ssim.map(&x, &x).unwrap();
        assert_eq!(m.shape(), [x.n(), 1, x.h(), x.w()]);
        assert!(m.as_slice().iter().all(|&v| v == 1.0), "{:?}", &m.as_slice()[..4]);
        assert!(ssim.mean(&x, &x).unwrap().iter().all(|&v| v == 1.0));
        assert_eq!(ssim.loss(&x, &x).unwrap(), 0.0);
    }
    let x32 = Tensor4::<f32>::from_fn([1, 1, 16, 16], |[_, _, i, j]| ((i * j) % 7) as f32 / 7.0).unwrap();
    assert!(ssim.map(&x32, &x32).unwrap().as_slice().iter().all(|&v| (v - 1.0).abs() < 1e-6));
}

#[test]
fn ssim_is_symmetric_bounded_and_structural() {
    let ssim = Ssim::from(SsimParams::new().check().unwrap());
    let x = random([1, 1, 20, 20], 2);
    let y = random([1, 1, 20, 20], 3);
    let (a, b) = (ssim.map(&x, &y).unwrap(), ssim.map(&y, &x).unwrap());
    assert!(a.as_slice().iter().zip(b.as_slice()).all(|(u, v)| (u - v).abs() < 1e-12));
    assert!(a.as_slice().iter().all(|&v| (-1.0..=1.0).contains(&v)));
    // a small brightness shift keeps the structure (high SSIM); inverting it does not
    let mut shifted = x.clone();
    shifted.map_inplace(|v| v + 0.05);
    let mut inverted = x.clone();
    inverted.map_inplace(|v| 1.0 - v);
    let s_shift = ssim.mean(&x, &shifted).unwrap()[0];
    let s_inv = ssim.mean(&x, &inverted).unwrap()[0];
    assert!(s_shift > 0.95 && s_inv < -0.5, "{s_shift} {s_inv}");
}

#[test]
fn ssim_loss_gradient_passes_the_shared_gradient_check() {
    for (params, shape, seed) in [
        (SsimParams::new(), [2, 2, 9, 12], 4u64),
        (SsimParams::new().window(5).uniform(), [1, 1, 7, 6], 5),
        (SsimParams::new().window(3).gaussian(0.8).dynamic_range(2.0), [3, 1, 5, 5], 6),
    ] {
        let ssim = Ssim::from(params.check().unwrap());
        let target = random(shape, seed);
        let mut pred = random(shape, seed + 100);
        pred.as_mut_slice().iter_mut().zip(target.as_slice()).for_each(|(p, t)| *p = 0.5 * *p + 0.5 * t);
        let m = pred.len() as f64;
        let mut g = vec![0.0; pred.len()];
        let l = ssim.loss_grad(&pred, &target, &mut g).unwrap();
        assert!((l - ssim.loss(&pred, &target).unwrap()).abs() < 1e-12);
        // checked on the summed form so that derivatives are of order 1
        let f = |y: &[f64]| {
            let p = Tensor4::from_vec(shape, y.to_vec()).unwrap();
            m * ssim.loss(&p, &target).unwrap()
        };
        let analytic: Vec<f64> = g.iter().map(|v| v * m).collect();
        let report = check_gradient(f, pred.as_slice(), &analytic, &GradCheck::default().floor(1e-6)).unwrap();
        assert!(report.passes(1e-6), "{params:?}: {report}");
    }
}

#[test]
fn ssim_loss_is_minimal_at_the_target() {
    let ssim = Ssim::from(SsimParams::new().check().unwrap());
    let x = random([2, 1, 10, 10], 7);
    let mut g = vec![1.0; x.len()];
    assert_eq!(ssim.loss_grad(&x, &x, &mut g).unwrap(), 0.0);
    assert!(g.iter().all(|v| v.abs() < 1e-12));
}

#[test]
fn ssim_rejects_bad_input() {
    assert!(matches!(SsimParams::new().window(4).check(), Err(AnomalyError::InvalidParameter { name: "window", .. })));
    assert!(matches!(
        SsimParams::new().gaussian(-1.0).check(),
        Err(AnomalyError::InvalidParameter { name: "sigma", .. })
    ));
    assert!(matches!(
        SsimParams::new().dynamic_range(f64::NAN).check(),
        Err(AnomalyError::InvalidParameter { name: "dynamic_range", .. })
    ));
    let ssim = Ssim::from(SsimParams::new().check().unwrap());
    let x = random([1, 1, 4, 4], 1);
    let y = random([1, 1, 4, 5], 1);
    assert!(matches!(ssim.map(&x, &y), Err(AnomalyError::ShapeMismatch { .. })));
    let mut bad = x.clone();
    *bad.get_mut([0, 0, 1, 2]).unwrap() = f64::NAN;
    assert!(matches!(ssim.map(&x, &bad), Err(AnomalyError::NonFinite { index: 6, .. })));
    let mut g = vec![0.0; 3];
    assert!(matches!(ssim.loss_grad(&x, &x, &mut g), Err(AnomalyError::LengthMismatch { expected: 16, got: 3, .. })));
}

/// A tiny f64 convolutional autoencoder for gradient checks.
fn tiny_ae(seed: u64) -> SsimAutoencoder<f64> {
    let ae = ConvAeParams::new([1, 6, 6])
        .encoder_stage(ConvStage::new(2, 3, 2, 1))
        .seed(seed)
        .check()
        .unwrap()
        .build::<Autoencoder<f64>>()
        .unwrap();
    SsimAutoencoder::new(ae, SsimParams::new().window(3).check().unwrap()).unwrap().with_mse_weight(0.5).unwrap()
}

#[test]
fn ssim_autoencoder_parameter_gradients_pass_the_gradient_check() {
    let x = random([3, 1, 6, 6], 11);
    let mut model = tiny_ae(1);
    let loss = model.train_step(&x).unwrap();
    assert!((loss - model.eval_loss(&x).unwrap()).abs() < 1e-12);
    let theta: Vec<f64> = model.params().iter().flat_map(|p| p.value.to_vec()).collect();
    let analytic: Vec<f64> = model.params().iter().flat_map(|p| p.grad.to_vec()).collect();
    let f = |t: &[f64]| {
        let mut m = model.clone();
        let mut k = 0;
        for p in m.params() {
            let n = p.value.len();
            p.value.copy_from_slice(&t[k..k + n]);
            k += n;
        }
        m.eval_loss(&x).unwrap()
    };
    let report = check_gradient(f, &theta, &analytic, &GradCheck::default()).unwrap();
    assert!(report.passes(1e-5), "{report}");
}

#[test]
fn ssim_autoencoder_trains_and_reconstructs() {
    let x = Tensor4::<f32>::from_fn([24, 1, 8, 8], |[n, _, i, j]| ((i + 2 * j + n) % 5) as f32 / 5.0).unwrap();
    let ae = ConvAeParams::new([1, 8, 8])
        .encoder_stage(ConvStage::new(6, 3, 2, 1))
        .check()
        .unwrap()
        .build::<Autoencoder<f32>>()
        .unwrap();
    let mut model = SsimAutoencoder::new(ae, SsimParams::new().window(5).check().unwrap()).unwrap();
    let report =
        model.fit(&x, TrainParams::new().epochs(30).lr(1e-2).batch_size(8).progress(false).check().unwrap()).unwrap();
    let (first, last) = (report.train_loss[0], report.train_loss[report.epochs_run - 1]);
    assert!(last < 0.7 * first, "{first} → {last}");
    let rec = model.reconstruct(&x).unwrap();
    // the plain autoencoder made from the trained layers reconstructs identically
    let plain = model.clone().into_autoencoder().unwrap();
    assert_eq!(plain.reconstruct(&x).unwrap(), rec);
    assert!(model.reconstruct(&Tensor4::zeros([1, 1, 8, 9]).unwrap()).is_err());
}
