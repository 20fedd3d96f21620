//! Training behaviour: loss decreases, determinism across thread counts, the NaN guard and
//! checkpoints, early stopping, callbacks, denoising mode, parameter validation.

use latent_autoencoder::models::{ConvAeParams, ConvStage, LinearAeParams, MlpAeParams, SparseReluAeParams};
use latent_autoencoder::train::{Control, EpochContext, LearnStop, LrSchedule, OptimizerKind, TrainParams, Trainer};
use latent_autoencoder::{Autoencoder, AutoencoderError, Mode, NoiseModel, Trainable};
use latent_autoencoder::{CheckedModel, ParamGuard};
use latent_linalg::Tensor4;
use latent_optim::optimizer::SgdParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Images in [0, 1] with structure (a few blobs), deterministic.
fn images(n: usize, h: usize, w: usize, seed: u64) -> Tensor4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centers: Vec<(f32, f32)> =
        (0..n).map(|_| (rng.random::<f32>() * h as f32, rng.random::<f32>() * w as f32)).collect();
    Tensor4::from_fn([n, 1, h, w], |[k, _, i, j]| {
        let (ci, cj) = centers[k];
        let d2 = (i as f32 - ci).powi(2) + (j as f32 - cj).powi(2);
        (-d2 / 6.0).exp()
    })
    .unwrap()
}

fn quiet() -> TrainParams {
    TrainParams::new().progress(false)
}

#[test]
fn every_model_decreases_the_loss() {
    let x = images(96, 6, 6, 1);
    let lin = LinearAeParams::new(36, 8)
        .lambda(1e-3)
        .eta(1e-4)
        .train(quiet().epochs(20).lr(1e-2).batch_size(16))
        .check()
        .unwrap()
        .fit(&x)
        .unwrap();
    let sp = SparseReluAeParams::new(36, 12)
        .train(quiet().epochs(20).lr(1e-2).batch_size(16))
        .check()
        .unwrap()
        .fit(&x)
        .unwrap();
    let mlp = MlpAeParams::new(vec![36, 24, 8])
        .train(quiet().epochs(20).lr(1e-2).batch_size(16))
        .check()
        .unwrap()
        .fit(&x)
        .unwrap();
    let conv = ConvAeParams::new([1, 6, 6])
        .encoder_stage(ConvStage::new(4, 3, 2, 1))
        .encoder_stage(ConvStage::new(8, 3, 1, 1))
        .train(quiet().epochs(20).lr(1e-2).batch_size(16))
        .check()
        .unwrap()
        .fit(&x)
        .unwrap();
    for (name, f) in [("linear", &lin), ("sparse", &sp), ("mlp", &mlp), ("conv", &conv)] {
        let r = &f.report;
        assert_eq!(r.epochs_run, 20, "{name}");
        assert_eq!(r.stop_reason, LearnStop::MaxIterations);
        assert_eq!(r.train_loss.len(), 20);
        assert!(r.train_loss[19] < 0.7 * r.train_loss[0], "{name}: {:?}", r.train_loss);
        assert!(r.samples_per_s > 0.0 && r.steps == 20 * 6);
    }
    // Linear AE: reconstruction error well below the data variance.
    let err: f32 = lin.model.reconstruction_errors(&x).unwrap().iter().sum::<f32>() / 96.0;
    let mean: f32 = x.as_slice().iter().sum::<f32>() / x.len() as f32;
    let var: f32 = x.as_slice().iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
    assert!(err < 0.5 * var, "{err} vs {var}");
}

fn trained_bytes(threads: usize) -> (Vec<u8>, Vec<u8>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        // Large enough for the parallel paths (GEMM, element-wise, optimizer chunks).
        let x = images(512, 8, 20, 3);
        let mlp = MlpAeParams::new(vec![160, 96, 32])
            .dropout(0.1)
            .denoising(NoiseModel::Masking { fraction: 0.2 })
            .train(quiet().epochs(2).batch_size(256).lr(1e-3).seed(9))
            .check()
            .unwrap()
            .fit(&x)
            .unwrap();
        let conv = ConvAeParams::new([1, 8, 20])
            .encoder_stage(ConvStage::new(4, 3, 2, 1))
            .batch_norm(true)
            .encoder_stage(ConvStage::new(6, 3, 2, 1))
            .train(quiet().epochs(1).batch_size(64).lr(1e-3).seed(9))
            .check()
            .unwrap()
            .fit(&x)
            .unwrap();
        (mlp.model.to_bytes().unwrap(), conv.model.to_bytes().unwrap())
    })
}

#[test]
fn bit_identical_on_one_and_two_threads() {
    let (a1, b1) = trained_bytes(1);
    let (a2, b2) = trained_bytes(2);
    assert!(a1 == a2, "MLP weights differ between 1 and 2 threads");
    assert!(b1 == b2, "conv weights differ between 1 and 2 threads");
    // and a different seed gives different weights
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let other = pool.install(|| {
        MlpAeParams::new(vec![160, 96, 32])
            .train(quiet().epochs(1).batch_size(256).seed(10))
            .check()
            .unwrap()
            .fit(&images(512, 8, 20, 3))
            .unwrap()
    });
    assert!(other.model.to_bytes().unwrap() != a1);
}

#[test]
fn nan_guard_keeps_the_last_good_checkpoint() {
    let dir = std::env::temp_dir().join(format!("latent-ae-nan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("model.ckpt");
    let x = images(64, 6, 6, 2);
    // Linear units cannot saturate, so a huge step makes the loss overflow.
    let mut model = LinearAeParams::new(36, 4).bias(true).check().unwrap().build_for::<f32>([1, 6, 6]).unwrap();
    let params = TrainParams::new()
        .progress(false)
        .epochs(10)
        .batch_size(16)
        .optimizer(OptimizerKind::Sgd(SgdParams::new().momentum(0.9)))
        .lr(1e-3)
        .checkpoint(&ckpt, 1);
    let trainer = Trainer::new(params.check().unwrap());
    let mut at_epoch2: Option<Vec<u8>> = None;
    let mut blow_up = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
        if ctx.epoch == 2 {
            at_epoch2 = Some(ctx.model.to_bytes().unwrap());
            ctx.lr_scale = 1e30; // a huge learning rate from epoch 3 on
        }
        Control::Continue
    };
    let err = trainer.fit_with_callbacks(&mut model, &x, None, &mut [&mut blow_up]).unwrap_err();
    match &err {
        AutoencoderError::Diverged { epoch, last_good_checkpoint, value, .. } => {
            assert_eq!(*epoch, 3, "{err}");
            assert_eq!(last_good_checkpoint.as_deref(), Some(ckpt.as_path()));
            assert!(!value.is_finite() || *epoch == 3);
        }
        other => panic!("expected Diverged, got {other}"),
    }
    let good = at_epoch2.expect("callback ran");
    // The file on disk is the epoch-2 model, it loads, and the in-memory model was restored too.
    let on_disk = std::fs::read(&ckpt).unwrap();
    assert_eq!(on_disk, good);
    let loaded = Autoencoder::<f32>::load(&ckpt).unwrap();
    assert_eq!(loaded.to_bytes().unwrap(), good);
    assert_eq!(model.to_bytes().unwrap(), good);
    assert!(loaded.reconstruct(&x).unwrap().as_slice().iter().all(|v| v.is_finite()));
    // no temporary files left behind
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name() != "model.ckpt").collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn divergence_before_any_checkpoint_restores_the_initial_model() {
    let x = images(32, 4, 4, 5);
    let mut model = LinearAeParams::new(16, 4).check().unwrap().build_for::<f32>([1, 4, 4]).unwrap();
    let initial = model.to_bytes().unwrap();
    let p = quiet().optimizer(OptimizerKind::Sgd(SgdParams::new())).lr(1e30).epochs(3).batch_size(8);
    let err = Trainer::new(p.check().unwrap()).fit(&mut model, &x, None).unwrap_err();
    assert!(matches!(err, AutoencoderError::Diverged { epoch: 1, last_good_checkpoint: None, .. }), "{err}");
    assert_eq!(model.to_bytes().unwrap(), initial);
}

#[test]
fn nan_and_inf_in_data_are_typed_errors() {
    let mut x = images(16, 4, 4, 7);
    x.as_mut_slice()[37] = f32::NAN;
    let p = MlpAeParams::new(vec![16, 4]).train(quiet().epochs(1)).check().unwrap();
    let err = p.fit(&x).unwrap_err();
    assert!(matches!(err, AutoencoderError::NonFiniteInput { what: "training data", index: 37 }), "{err}");
    let model = p.build_for::<f32>([1, 4, 4]).unwrap();
    assert!(matches!(model.reconstruct(&x), Err(AutoencoderError::NonFiniteInput { index: 37, .. })));
    let clean = images(16, 4, 4, 7);
    let mut val = clean.clone();
    val.as_mut_slice()[0] = f32::INFINITY;
    assert!(matches!(
        p.fit_validated(&clean, Some(&val)),
        Err(AutoencoderError::NonFiniteInput { what: "validation data", .. })
    ));
    // wrong per-sample shape
    assert!(matches!(model.reconstruct(&images(2, 5, 5, 1)), Err(AutoencoderError::ShapeMismatch { .. })));
}

#[test]
fn early_stopping_validation_and_callbacks() {
    let x = images(80, 5, 5, 11);
    // A min_delta no epoch can beat: stops after `patience` epochs without improvement.
    let f = MlpAeParams::new(vec![25, 8])
        .train(quiet().epochs(50).batch_size(16).lr(1e-2).validation_fraction(0.25).patience(2).min_delta(1e9))
        .check()
        .unwrap()
        .fit(&x)
        .unwrap();
    let r = &f.report;
    assert_eq!(r.stop_reason, LearnStop::EarlyStopping);
    assert_eq!((r.epochs_run, r.best_epoch), (3, 1));
    assert_eq!(r.val_loss.len(), 3);
    assert_eq!(r.train_samples, 60);
    assert!(r.val_loss.iter().all(|v| v.is_finite()));

    // Step decay halves the rate every epoch; a callback sees it and stops at epoch 3.
    let mut lrs = Vec::new();
    let mut model = MlpAeParams::new(vec![25, 8]).check().unwrap().build_for::<f32>([1, 5, 5]).unwrap();
    let p = quiet().epochs(10).batch_size(80).lr(0.1).schedule(LrSchedule::StepDecay { gamma: 0.5, every_epochs: 1 });
    let mut cb = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
        lrs.push(ctx.lr);
        if ctx.epoch == 3 { Control::Stop } else { Control::Continue }
    };
    let r = Trainer::new(p.check().unwrap()).fit_with_callbacks(&mut model, &x, Some(&x), &mut [&mut cb]).unwrap();
    assert_eq!(r.stop_reason, LearnStop::Callback);
    assert_eq!(lrs, vec![0.1, 0.05, 0.025]);
}

#[test]
fn noise_is_applied_in_training_mode_only() {
    let x = images(8, 5, 5, 13);
    let clean = MlpAeParams::new(vec![25, 10]).check().unwrap().build_for::<f32>([1, 5, 5]).unwrap();
    let noisy = clean.clone().with_noise(NoiseModel::Masking { fraction: 0.5 }, 1).unwrap();
    let via_builder = MlpAeParams::new(vec![25, 10])
        .denoising(NoiseModel::salt_and_pepper(0.3))
        .check()
        .unwrap()
        .build_for::<f32>([1, 5, 5])
        .unwrap();
    assert_eq!(via_builder.encoder().layers()[0].kind(), "noise");
    let mut noisy_mut = noisy.clone();
    let eval = noisy_mut.forward(&x, Mode::Eval).unwrap();
    assert_eq!(eval, clean.reconstruct(&x).unwrap());
    assert_eq!(noisy.reconstruct(&x).unwrap(), eval);
    let train = noisy_mut.forward(&x, Mode::Train).unwrap();
    assert_ne!(train, eval);
    // the clean model is deterministic in training mode (no noise, no dropout)
    assert_eq!(clean.clone().forward(&x, Mode::Train).unwrap(), eval);
    // the denoising objective compares with the clean input
    let mut m = noisy.clone();
    let j = m.train_step(&x).unwrap();
    assert!(j.is_finite() && j > 0.0);
}

#[test]
fn params_check_names_the_bad_value() {
    let name = |e: AutoencoderError| match e {
        AutoencoderError::InvalidParameter { name, .. } => name.to_string(),
        AutoencoderError::Optim(o) => format!("optim: {o}"),
        other => format!("other: {other}"),
    };
    assert_eq!(name(MlpAeParams::new(vec![4, 2]).lr(0.0).check().unwrap_err()), "lr");
    assert_eq!(name(MlpAeParams::new(vec![4, 2]).lr(f64::NAN).check().unwrap_err()), "lr");
    assert_eq!(name(MlpAeParams::new(vec![4, 2]).batch_size(0).check().unwrap_err()), "batch_size");
    assert_eq!(name(MlpAeParams::new(vec![4, 2]).epochs(0).check().unwrap_err()), "epochs");
    assert_eq!(name(MlpAeParams::new(vec![4]).check().unwrap_err()), "widths");
    assert_eq!(name(MlpAeParams::new(vec![4, 0]).check().unwrap_err()), "widths");
    assert_eq!(name(MlpAeParams::new(vec![4, 2]).dropout(1.0).check().unwrap_err()), "dropout");
    assert_eq!(
        name(MlpAeParams::new(vec![4, 2]).denoising(NoiseModel::Masking { fraction: 1.5 }).check().unwrap_err()),
        "noise_fraction"
    );
    assert_eq!(
        name(MlpAeParams::new(vec![4, 2]).denoising(NoiseModel::Gaussian { std: -1.0 }).check().unwrap_err()),
        "noise_std"
    );
    assert_eq!(name(LinearAeParams::new(4, 0).check().unwrap_err()), "code_dim");
    assert_eq!(name(LinearAeParams::new(4, 2).lambda(-1.0).check().unwrap_err()), "lambda");
    assert_eq!(name(SparseReluAeParams::new(4, 2).kl(1.0, 0.1).check().unwrap_err()), "kl_rho");
    assert_eq!(name(LinearAeParams::new(4, 2).validation_fraction(1.0).check().unwrap_err()), "validation_fraction");
    assert!(
        name(
            LinearAeParams::new(4, 2)
                .optimizer(OptimizerKind::Sgd(SgdParams::new().momentum(2.0)))
                .check()
                .unwrap_err()
        )
        .starts_with("optim")
    );
    assert_eq!(name(ConvAeParams::new([1, 8, 8]).check().unwrap_err()), "encoder");
    // a decoder that does not restore the input shape
    let e = ConvAeParams::new([1, 8, 8])
        .encoder_stage(ConvStage::new(2, 3, 2, 1))
        .decoder_stage(ConvStage::new(1, 3, 1, 1))
        .check()
        .unwrap_err();
    assert!(matches!(e, AutoencoderError::ShapeMismatch { .. }), "{e}");
    // data of the wrong size for the widths
    let e = MlpAeParams::new(vec![10, 2]).train(quiet()).check().unwrap().fit(&images(4, 3, 3, 0)).unwrap_err();
    assert!(matches!(e, AutoencoderError::ShapeMismatch { .. }), "{e}");
}

#[test]
fn benchmark_conv_architecture_builds_with_expected_shapes() {
    let p = ConvAeParams::new([1, 28, 28])
        .encoder_stage(ConvStage::new(16, 3, 2, 1))
        .encoder_stage(ConvStage::new(32, 3, 2, 1))
        .decoder_stage(ConvStage::new(16, 4, 2, 1))
        .decoder_stage(ConvStage::new(1, 4, 2, 1))
        .check()
        .unwrap();
    let mut m = p.build::<Autoencoder<f32>>().unwrap();
    assert_eq!(m.code_shape().unwrap(), [32, 7, 7]);
    // PyTorch parameter count of the same network
    assert_eq!(m.num_params(), (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 16 * 16 + 16) + (16 * 16 + 1));
    // mirrored decoder of the same encoder restores 28×28 too
    let mirrored = ConvAeParams::new([1, 28, 28])
        .encoder_stage(ConvStage::new(16, 3, 2, 1))
        .encoder_stage(ConvStage::new(32, 3, 2, 1))
        .check()
        .unwrap();
    let x = images(2, 28, 28, 0);
    assert_eq!(mirrored.build::<Autoencoder<f32>>().unwrap().reconstruct(&x).unwrap().shape(), [2, 1, 28, 28]);
}

#[test]
fn kl_term_revives_dead_units_and_the_counter_sees_them() {
    use latent_autoencoder::{KlSparsity, Objective};
    // Non-negative data and the lecture's bias-free s = max(0, Vx): units with negative weights
    // never fire.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let x = Tensor4::from_fn([64, 9, 1, 1], |_| rng.random::<f32>()).unwrap();
    let mut kill = SparseReluAeParams::new(9, 6).lambda(0.01).check().unwrap().build::<Autoencoder<f32>>().unwrap();
    for (i, v) in kill.params()[0].value.iter_mut().enumerate() {
        *v = if i < 3 * 9 { -v.abs() - 0.05 } else { v.abs() + 0.05 };
    }
    assert_eq!(kill.dead_units(&x, 32, 0.0).unwrap().dead_units(), vec![0, 1, 2]);
    let original = kill.params()[0].value[..27].to_vec();
    let train = |kl: Option<KlSparsity>| {
        let mut m = kill.clone();
        let o = *m.objective();
        m.set_objective(Objective { kl, ..o }).unwrap();
        Trainer::new(quiet().epochs(40).batch_size(16).lr(1e-2).check().unwrap()).fit(&mut m, &x, None).unwrap();
        let dead = m.dead_units(&x, 32, 0.0).unwrap();
        let killed_rows = m.params()[0].value[..27].to_vec();
        (dead, killed_rows)
    };
    // No gradient reaches a dead ReLU without the KL term: its weights never move.
    let (without, rows) = train(None);
    assert!([0, 1, 2].iter().all(|u| without.dead_units().contains(u)), "{:?}", without.counts());
    assert_eq!(rows, original);
    // The KL term on the pre-activation pushes them back to firing.
    let (with, rows) = train(Some(KlSparsity::new(0.1, 0.1)));
    assert_ne!(rows, original);
    assert_eq!(with.num_dead(), 0, "{:?}", with.counts());
    assert_eq!(with.samples(), 64);
}
