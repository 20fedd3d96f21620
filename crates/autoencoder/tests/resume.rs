//! Resuming training from a training-state file: a run interrupted after `k` epochs and resumed
//! from its last state file ends bit-identical (weights, loss history, counters) to a run that was
//! never interrupted, on 1 and 2 threads; hostile or mismatched state files are typed errors.

use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::resume::{STATE_FORMAT_VERSION, TrainingState};
use latent_autoencoder::train::{Control, EpochContext, LearnStop, LrSchedule, OptimizerKind, TrainParams, Trainer};
use latent_autoencoder::{Autoencoder, AutoencoderError, NoiseModel, Param, Trainable};
use latent_autoencoder::{CheckedModel, ParamGuard};
use latent_linalg::Tensor4;
use latent_optim::optimizer::SgdParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

fn data(n: usize, d: usize, seed: u64) -> Tensor4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base: Vec<f32> = (0..d).map(|_| rng.random::<f32>()).collect();
    Tensor4::from_fn([n, d, 1, 1], |[i, c, ..]| {
        let phase = (i % 7) as f32 / 7.0;
        (base[c] * phase + 0.3 * ((c + i) % 5) as f32 / 5.0).clamp(0.0, 1.0)
    })
    .unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-ae-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Everything a run produces that must not depend on the interruption.
#[derive(Debug, PartialEq)]
struct Outcome {
    model: Vec<u8>,
    train_loss: Vec<u64>,
    val_loss: Vec<u64>,
    epochs_run: usize,
    steps: usize,
    best_epoch: usize,
    best_loss: u64,
    stop_reason: LearnStop,
}

fn outcome(model: &Autoencoder<f32>, r: &latent_autoencoder::TrainReport) -> Outcome {
    Outcome {
        model: model.to_bytes().unwrap(),
        train_loss: r.train_loss.iter().map(|v| v.to_bits()).collect(),
        val_loss: r.val_loss.iter().map(|v| v.to_bits()).collect(),
        epochs_run: r.epochs_run,
        steps: r.steps,
        best_epoch: r.best_epoch,
        best_loss: r.best_loss.to_bits(),
        stop_reason: r.stop_reason,
    }
}

/// `(uninterrupted, resumed)` for a model builder and parameters: the resumed run is stopped by a
/// callback after `stop_at` epochs (state files every `every` epochs) and continued from the
/// file in a fresh process-like setting (a freshly built model).
fn both_ways(
    threads: usize,
    arch: &latent_autoencoder::Checked<MlpAeParams>,
    params: &TrainParams,
    x: &Tensor4<f32>,
    stop_at: usize,
    every: usize,
    state: &Path,
) -> (Outcome, Outcome, usize) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        // every run halves the learning rate after epoch 2 (the multiplier is part of the state)
        let mut halve = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
            if ctx.epoch == 2 {
                ctx.lr_scale *= 0.5;
            }
            Control::Continue
        };
        let mut whole = arch.build_for::<f32>([x.c(), 1, 1]).unwrap();
        let full = Trainer::new(params.clone().check().unwrap())
            .fit_with_callbacks(&mut whole, x, None, &mut [&mut halve])
            .unwrap();

        let mut first = arch.build_for::<f32>([x.c(), 1, 1]).unwrap();
        let mut stop = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
            if ctx.epoch == stop_at { Control::Stop } else { Control::Continue }
        };
        let saving = params.clone().state_checkpoint(state, every).check().unwrap();
        let part = Trainer::new(saving).fit_with_callbacks(&mut first, x, None, &mut [&mut halve, &mut stop]).unwrap();
        assert_eq!(part.epochs_run, stop_at);
        let saved_epochs = TrainingState::<f32>::load(state).unwrap().epochs_run();

        // another architecture, initialised differently: resuming replaces it entirely
        let mut resumed = MlpAeParams::new(vec![x.c(), 4]).seed(99).check().unwrap().build_for([x.c(), 1, 1]).unwrap();
        let rest = Trainer::new(params.clone().resume_from(state).check().unwrap())
            .fit_with_callbacks(&mut resumed, x, None, &mut [&mut halve])
            .unwrap();
        (outcome(&whole, &full), outcome(&resumed, &rest), saved_epochs)
    })
}

#[test]
fn mlp_resumed_run_is_bit_identical_on_one_and_two_threads() {
    // Large enough for the parallel paths (GEMM, optimizer chunks of > 2^15 values).
    let x = data(192, 160, 1);
    let arch = MlpAeParams::new(vec![160, 128, 16]).check().unwrap();
    let params = TrainParams::new()
        .progress(false)
        .epochs(6)
        .batch_size(32)
        .lr(2e-3)
        .seed(4)
        .validation_fraction(0.2)
        .patience(100) // keeps a best model in the state
        .schedule(LrSchedule::WarmupCosine { warmup_epochs: 2, min_lr: 1e-5 });
    let state = temp("mlp.state");
    let mut per_thread = Vec::new();
    for threads in [1, 2] {
        let (whole, resumed, saved) = both_ways(threads, &arch, &params, &x, 3, 1, &state);
        assert_eq!(saved, 3);
        assert_eq!(whole.epochs_run, 6);
        assert_eq!(whole.val_loss.len(), 6);
        assert_eq!(whole.steps, 6 * 5); // 154 training samples in batches of 32
        assert!(whole == resumed, "{threads} threads: resumed run differs from the uninterrupted one");
        per_thread.push(whole);
    }
    assert!(per_thread[0] == per_thread[1], "1 and 2 threads differ");
    std::fs::remove_file(&state).ok();
}

#[test]
fn denoising_resumed_run_is_bit_identical_on_one_and_two_threads() {
    let x = data(160, 48, 2);
    // Masking noise and dropout draw from seeded streams indexed by call counters that live in
    // the model; SGD with Nesterov momentum keeps a velocity per parameter.
    let arch = MlpAeParams::new(vec![48, 32, 8])
        .dropout(0.1)
        .denoising(NoiseModel::Masking { fraction: 0.3 })
        .seed(7)
        .check()
        .unwrap();
    let params = TrainParams::new()
        .progress(false)
        .epochs(7)
        .batch_size(24)
        .lr(5e-2)
        .seed(7)
        .optimizer(OptimizerKind::Sgd(SgdParams::new().momentum(0.9).nesterov(true)))
        .schedule(LrSchedule::StepDecay { gamma: 0.5, every_epochs: 3 });
    let state = temp("denoising.state");
    let mut per_thread = Vec::new();
    for threads in [1, 2] {
        // stopped after epoch 5, the last state file is from epoch 4: one epoch is redone
        let (whole, resumed, saved) = both_ways(threads, &arch, &params, &x, 5, 2, &state);
        assert_eq!(saved, 4);
        assert_eq!(whole.epochs_run, 7);
        assert!(whole == resumed, "{threads} threads: resumed run differs from the uninterrupted one");
        per_thread.push(whole);
    }
    assert!(per_thread[0] == per_thread[1], "1 and 2 threads differ");

    // The noise is really drawn anew at every call (so its position in the sequence matters).
    let mut again = arch.build_for::<f32>([48, 1, 1]).unwrap();
    let a = again.train_step(&x).unwrap();
    let b = again.train_step(&x).unwrap();
    assert_ne!(a.to_bits(), b.to_bits(), "noise draws must differ between calls");
    std::fs::remove_file(&state).ok();
}

#[test]
fn more_epochs_continue_a_finished_run_exactly() {
    // With a constant rate the schedule does not depend on the run length: a 3-epoch run resumed
    // to 5 epochs equals a 5-epoch run.
    let x = data(64, 12, 3);
    let arch = MlpAeParams::new(vec![12, 6]).check().unwrap();
    let p = TrainParams::new().progress(false).batch_size(16).lr(1e-2).seed(1);
    let state = temp("grow.state");
    let mut a = arch.build_for::<f32>([12, 1, 1]).unwrap();
    Trainer::new(p.clone().epochs(3).state_checkpoint(&state, 10).check().unwrap()).fit(&mut a, &x, None).unwrap();
    assert_eq!(TrainingState::<f32>::load(&state).unwrap().epochs_run(), 3); // written after the last epoch
    let mut b = arch.build_for::<f32>([12, 1, 1]).unwrap();
    let rb = Trainer::new(p.clone().epochs(5).resume_from(&state).check().unwrap()).fit(&mut b, &x, None).unwrap();
    let mut c = arch.build_for::<f32>([12, 1, 1]).unwrap();
    let rc = Trainer::new(p.clone().epochs(5).check().unwrap()).fit(&mut c, &x, None).unwrap();
    assert_eq!(outcome(&b, &rb), outcome(&c, &rc));
    assert_eq!(rb.train_loss.len(), 5);
    std::fs::remove_file(&state).ok();
}

fn saved_state() -> (Vec<u8>, Tensor4<f32>, TrainParams, PathBuf) {
    let x = data(40, 10, 4);
    let p = TrainParams::new().progress(false).epochs(4).batch_size(8).lr(1e-2).seed(2);
    let path = temp(&format!("hostile-{:?}.state", std::thread::current().id()));
    let mut m = MlpAeParams::new(vec![10, 5]).check().unwrap().build_for::<f32>([10, 1, 1]).unwrap();
    let mut stop = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
        if ctx.epoch == 2 { Control::Stop } else { Control::Continue }
    };
    Trainer::new(p.clone().state_checkpoint(&path, 1).check().unwrap())
        .fit_with_callbacks(&mut m, &x, None, &mut [&mut stop])
        .unwrap();
    (std::fs::read(&path).unwrap(), x, p, path)
}

#[test]
fn corrupt_truncated_and_newer_state_files_are_typed_errors() {
    let (bytes, x, p, path) = saved_state();
    assert!(TrainingState::<f32>::from_bytes(&bytes).is_ok());

    // every truncation
    for len in 0..bytes.len() {
        match TrainingState::<f32>::from_bytes(&bytes[..len]) {
            Err(AutoencoderError::Format { .. }) => {}
            other => panic!("truncated to {len} bytes: expected Format, got {other:?}"),
        }
    }
    // every single-byte corruption (the version field excepted, checked below)
    for i in (0..bytes.len()).filter(|i| !(8..12).contains(i)) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        match TrainingState::<f32>::from_bytes(&b) {
            Err(AutoencoderError::Format { .. }) => {}
            other => panic!("byte {i} flipped: expected Format, got {other:?}"),
        }
    }
    // a newer format version
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(STATE_FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        TrainingState::<f32>::from_bytes(&newer),
        Err(AutoencoderError::UnsupportedVersion { found, supported })
            if found == STATE_FORMAT_VERSION + 1 && supported == STATE_FORMAT_VERSION
    ));
    // another scalar type, a model file, garbage
    assert!(matches!(TrainingState::<f64>::from_bytes(&bytes), Err(AutoencoderError::Format { .. })));
    let model = MlpAeParams::new(vec![10, 5]).check().unwrap().build_for::<f32>([10, 1, 1]).unwrap();
    assert!(matches!(
        TrainingState::<f32>::from_bytes(&model.to_bytes().unwrap()),
        Err(AutoencoderError::Format { .. })
    ));
    assert!(matches!(TrainingState::<f32>::from_bytes(&[0xff; 100]), Err(AutoencoderError::Format { .. })));

    // the same through resume_from: a typed error, and the model is left untouched
    let fit = |file: &[u8]| {
        std::fs::write(&path, file).unwrap();
        let mut m = MlpAeParams::new(vec![10, 5]).seed(5).check().unwrap().build_for::<f32>([10, 1, 1]).unwrap();
        let before = m.to_bytes().unwrap();
        let r = Trainer::new(p.clone().resume_from(&path).check().unwrap()).fit(&mut m, &x, None);
        if r.is_err() {
            assert_eq!(m.to_bytes().unwrap(), before, "the model changed on a failed resume");
        }
        r
    };
    assert!(matches!(fit(&bytes[..bytes.len() / 2]), Err(AutoencoderError::Format { .. })));
    assert!(matches!(fit(&newer), Err(AutoencoderError::UnsupportedVersion { .. })));
    assert!(fit(&bytes).is_ok());
    std::fs::remove_file(&path).ok();
    let mut m = MlpAeParams::new(vec![10, 5]).check().unwrap().build_for::<f32>([10, 1, 1]).unwrap();
    let missing = Trainer::new(p.resume_from(&path).check().unwrap()).fit(&mut m, &x, None);
    assert!(matches!(missing, Err(AutoencoderError::Io { .. })), "{missing:?}");
}

#[test]
fn resuming_with_other_parameters_data_or_model_type_is_refused() {
    let (bytes, x, p, path) = saved_state();
    let arch = MlpAeParams::new(vec![10, 5]).check().unwrap();
    let refuse = |params: TrainParams, data: &Tensor4<f32>| {
        std::fs::write(&path, &bytes).unwrap();
        let mut m = arch.build_for::<f32>([data.c(), 1, 1]).unwrap();
        let before = m.to_bytes().unwrap();
        let r = Trainer::new(params.resume_from(&path).check().unwrap()).fit(&mut m, data, None);
        assert_eq!(m.to_bytes().unwrap(), before);
        match r {
            Err(AutoencoderError::State { op: "resume", detail }) => detail,
            other => panic!("expected a resume State error, got {other:?}"),
        }
    };
    assert!(refuse(p.clone().batch_size(4), &x).contains("batch_size"));
    assert!(refuse(p.clone().seed(3), &x).contains("seed"));
    assert!(refuse(p.clone().optimizer(OptimizerKind::Sgd(SgdParams::new())), &x).contains("optimizer"));
    assert!(refuse(p.clone().epochs(1), &x).contains("already run 2"));
    assert!(refuse(p.clone(), &data(40, 10, 5)).contains("training data"));
    assert!(refuse(p.clone(), &data(41, 10, 4)).contains("training data"));
    let v = data(8, 10, 9);
    std::fs::write(&path, &bytes).unwrap();
    let mut m = arch.build_for::<f32>([10, 1, 1]).unwrap();
    let r = Trainer::new(p.clone().resume_from(&path).check().unwrap()).fit(&mut m, &x, Some(&v));
    assert!(matches!(r, Err(AutoencoderError::State { op: "resume", .. })), "{r:?}");

    // a cosine run cannot change its length
    let cos = p.clone().schedule(LrSchedule::Cosine { min_lr: 0.0 });
    let mut m = arch.build_for::<f32>([10, 1, 1]).unwrap();
    Trainer::new(cos.clone().state_checkpoint(&path, 1).check().unwrap()).fit(&mut m, &x, None).unwrap();
    let mut m = arch.build_for::<f32>([10, 1, 1]).unwrap();
    let r = Trainer::new(cos.epochs(6).resume_from(&path).check().unwrap()).fit(&mut m, &x, None);
    assert!(matches!(&r, Err(AutoencoderError::State { detail, .. }) if detail.contains("cosine")), "{r:?}");

    // a model type that cannot restore itself
    std::fs::write(&path, &bytes).unwrap();
    let mut opaque = Opaque(arch.build_for::<f32>([10, 1, 1]).unwrap());
    let r = Trainer::new(p.resume_from(&path).check().unwrap()).fit(&mut opaque, &x, None);
    assert!(matches!(r, Err(AutoencoderError::State { op: "restore_from_bytes", .. })), "{r:?}");
    std::fs::remove_file(&path).ok();
}

/// A `Trainable` that keeps the trait's default `restore_from_bytes`.
#[derive(Clone)]
struct Opaque(Autoencoder<f32>);

impl Trainable<f32> for Opaque {
    fn train_step(&mut self, x: &Tensor4<f32>) -> latent_autoencoder::Result<f64> {
        self.0.train_step(x)
    }
    fn eval_loss(&self, x: &Tensor4<f32>) -> latent_autoencoder::Result<f64> {
        self.0.eval_loss(x)
    }
    fn params(&mut self) -> Vec<Param<'_, f32>> {
        self.0.params()
    }
    fn to_bytes(&self) -> latent_autoencoder::Result<Vec<u8>> {
        Trainable::to_bytes(&self.0)
    }
}

#[test]
fn early_stopping_survives_a_resume() {
    // min_delta so large that only epoch 1 counts as an improvement: patience 2 stops after
    // epoch 3 and restores the epoch-1 model.
    let x = data(48, 10, 6);
    let arch = MlpAeParams::new(vec![10, 4]).check().unwrap();
    let p = TrainParams::new().progress(false).epochs(8).batch_size(16).lr(1e-2).patience(2).min_delta(1e9);
    let mut whole = arch.build_for::<f32>([10, 1, 1]).unwrap();
    let full = Trainer::new(p.clone().check().unwrap()).fit(&mut whole, &x, None).unwrap();
    assert_eq!((full.stop_reason, full.epochs_run, full.best_epoch), (LearnStop::EarlyStopping, 3, 1));
    let expected = outcome(&whole, &full);
    let state = temp("early.state");
    for stop_at in [2, 3] {
        // interrupted after epoch 2 (one epoch still to run), or at the stop itself (the state
        // of epoch 3 is written before the early-stopping decision)
        let mut first = arch.build_for::<f32>([10, 1, 1]).unwrap();
        let mut stop = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
            if ctx.epoch == stop_at { Control::Stop } else { Control::Continue }
        };
        Trainer::new(p.clone().state_checkpoint(&state, 1).check().unwrap())
            .fit_with_callbacks(&mut first, &x, None, &mut [&mut stop])
            .unwrap();
        assert_eq!(TrainingState::<f32>::load(&state).unwrap().epochs_run(), stop_at);
        let mut resumed = arch.build_for::<f32>([10, 1, 1]).unwrap();
        let rest = Trainer::new(p.clone().resume_from(&state).check().unwrap()).fit(&mut resumed, &x, None).unwrap();
        assert_eq!(outcome(&resumed, &rest), expected, "resumed after epoch {stop_at}");
    }
    std::fs::remove_file(&state).ok();
}

/// Regression (fuzzing, `training_state`): this payload, in a valid header, declared a 2.25 GB
/// path string (the interrupted run's checkpoint path, once part of the state) that bincode
/// allocated before reading it. The state holds no strings any more: it is a format error.
#[test]
fn a_hostile_string_length_is_a_format_error_not_an_allocation() {
    let payload: [u8; 328] = [
        3, 8, 123, 20, 174, 71, 225, 122, 132, 63, 0, 205, 204, 204, 204, 204, 204, 236, 63, 43, 135, 22, 217, 206,
        247, 255, 255, 255, 255, 255, 255, 255, 194, 239, 63, 58, 140, 48, 3, 142, 121, 69, 62, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 60, 0, 1, 24, 6, 1, 1, 253, 160, 13, 62, 0, 1, 0, 0, 0, 0, 0, 3, 60,
        0, 1, 24, 6, 1, 255, 255, 255, 194, 239, 63, 58, 140, 48, 3, 142, 121, 69, 62, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 253, 160, 13, 62, 134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 60,
        0, 1, 24, 6, 1, 1, 253, 160, 13, 62, 0, 1, 0, 0, 0, 0, 0, 3, 60, 0, 1, 24, 6, 1, 255, 255, 255, 194, 239, 63,
        58, 140, 48, 3, 142, 121, 69, 62, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 253, 160,
        13, 62, 0, 0, 0, 246,
    ];
    let mut file = b"LTTS-f32".to_vec();
    file.extend_from_slice(&STATE_FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    file.extend_from_slice(&latent_linalg::persist::fnv1a64(&payload).to_le_bytes());
    file.extend_from_slice(&payload);
    assert!(matches!(TrainingState::<f32>::from_bytes(&file), Err(AutoencoderError::Format { .. })));
}
