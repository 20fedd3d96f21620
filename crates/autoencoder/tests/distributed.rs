//! Data-parallel training over the in-process thread communicator: the same seed and data give
//! bit-identical weights and reports on 1, 2 and 3 ranks (with dropout, noise, validation and
//! early stopping); only rank 0 writes files; a run resumes on another number of ranks; ranks
//! that disagree are refused.

use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::train::{Control, EpochContext, TrainParams, TrainReport, Trainer};
use latent_autoencoder::{AnyLayer, Autoencoder, AutoencoderError, NoiseModel, ParamGuard};
use latent_linalg::Tensor4;
use latent_optim::OptimError;
use latent_optim::collective::{CommError, Communicator, SingleProcess, run_threads};

fn data(n: usize) -> Tensor4<f32> {
    Tensor4::from_fn([n, 12, 1, 1], |[n, c, ..]| ((n * 7 + c * 5) % 11) as f32 / 11.0).unwrap()
}

fn model(seed: u64) -> Autoencoder<f32> {
    MlpAeParams::new(vec![12, 10, 5])
        .dropout(0.2)
        .denoising(NoiseModel::Masking { fraction: 0.3 })
        .seed(seed)
        .check()
        .unwrap()
        .build()
        .unwrap()
}

/// The report without its timings.
fn strip(mut r: TrainReport) -> TrainReport {
    r.seconds = 0.0;
    r.samples_per_s = 0.0;
    r
}

#[test]
fn training_is_bit_identical_on_1_2_3_ranks() {
    let x = data(150);
    let params =
        TrainParams::new().epochs(5).batch_size(50).lr(5e-3).validation_fraction(0.2).patience(2).progress(false);
    let trainer = Trainer::new(params.check().unwrap());
    let mut one = model(3);
    let r1 = strip(trainer.fit_distributed(&SingleProcess, &mut one, &x, None, &mut []).unwrap());
    assert!(r1.train_loss.len() >= 3);
    for ranks in [1, 2, 3] {
        let got = run_threads(ranks, |c| {
            let mut m = model(3);
            let r = trainer.fit_distributed(&c, &mut m, &x, None, &mut []).unwrap();
            (m.to_bytes().unwrap(), strip(r))
        });
        for (r, (bytes, report)) in got.into_iter().enumerate() {
            assert_eq!(bytes, one.to_bytes().unwrap(), "{ranks} ranks, rank {r}");
            assert_eq!(report, r1, "{ranks} ranks, rank {r}");
        }
    }
    // without dropout and noise the classic whole-batch path gives the same run up to rounding
    let plain = || -> Autoencoder<f32> { MlpAeParams::new(vec![12, 10, 5]).seed(3).check().unwrap().build().unwrap() };
    let (mut classic, mut dist) = (plain(), plain());
    let rc = trainer.fit(&mut classic, &x, None).unwrap();
    let rd = trainer.fit_distributed(&SingleProcess, &mut dist, &x, None, &mut []).unwrap();
    for (a, b) in rc.train_loss.iter().zip(&rd.train_loss) {
        assert!((a - b).abs() < 1e-5 * a.abs(), "losses {a} and {b}");
    }
}

#[test]
fn only_rank_0_writes_and_a_run_resumes_on_another_rank_count() {
    let x = data(120);
    let dir = std::env::temp_dir().join(format!("latent-dist-ae-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = TrainParams::new().epochs(5).batch_size(40).lr(1e-2).progress(false);
    let whole = Trainer::new(base.clone().check().unwrap());
    let mut reference = model(1);
    let full = strip(whole.fit_distributed(&SingleProcess, &mut reference, &x, None, &mut []).unwrap());

    // 2 ranks, each told to write its own files: only rank 0's appear; stop after epoch 2
    let state = |r: usize| dir.join(format!("run-{r}.state"));
    let ckpt = |r: usize| dir.join(format!("model-{r}.bin"));
    run_threads(2, |c| {
        let p = base.clone().state_checkpoint(state(c.rank()), 1).checkpoint(ckpt(c.rank()), 1);
        let mut stop = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
            if ctx.epoch == 2 { Control::Stop } else { Control::Continue }
        };
        let mut m = model(1);
        Trainer::new(p.check().unwrap()).fit_distributed(&c, &mut m, &x, None, &mut [&mut stop]).unwrap();
    });
    assert!(state(0).is_file() && ckpt(0).is_file());
    assert!(!state(1).exists() && !ckpt(1).exists(), "rank 1 must not write files");

    // resume rank 0's state on 3 ranks (only rank 0 reads it)
    let got = run_threads(3, |c| {
        let p = base.clone().resume_from(if c.rank() == 0 { state(0) } else { dir.join("absent.state") });
        let mut m = model(1);
        let r = Trainer::new(p.check().unwrap()).fit_distributed(&c, &mut m, &x, None, &mut []).unwrap();
        (m.to_bytes().unwrap(), r.train_loss, r.steps)
    });
    std::fs::remove_dir_all(&dir).ok();
    for (bytes, loss, steps) in got {
        assert_eq!(bytes, reference.to_bytes().unwrap());
        assert_eq!(loss, full.train_loss);
        assert_eq!(steps, full.steps);
    }
}

#[test]
fn ranks_that_disagree_are_refused() {
    let x = data(60);
    let trainer = Trainer::new(TrainParams::new().epochs(1).batch_size(20).progress(false).check().unwrap());
    let got = run_threads(3, |c| {
        let mut m = model(if c.rank() == 1 { 9 } else { 1 });
        trainer.fit_distributed(&c, &mut m, &x, None, &mut []).map(drop)
    });
    for g in got {
        match g {
            Err(AutoencoderError::Optim(OptimError::Collective(CommError::Mismatch { rank: 1, what, .. }))) => {
                assert_eq!(what, "initial model")
            }
            other => panic!("expected a mismatch naming rank 1, got {other:?}"),
        }
    }
    let short = data(59);
    let got = run_threads(2, |c| {
        let mut m = model(1);
        trainer.fit_distributed(&c, &mut m, if c.rank() == 1 { &short } else { &x }, None, &mut []).map(drop)
    });
    for g in got {
        assert!(
            matches!(&g, Err(AutoencoderError::Optim(OptimError::Collective(CommError::Mismatch { rank: 1, what, .. }))) if what.starts_with("training data")),
            "{g:?}"
        );
    }
}

#[test]
fn divergence_is_reported_on_every_rank() {
    let x = data(40);
    let trainer = Trainer::new(TrainParams::new().epochs(2).batch_size(20).lr(1e30).progress(false).check().unwrap());
    let got = run_threads(2, |c| {
        let mut m = model(2);
        let before = m.to_bytes().unwrap();
        let e = trainer.fit_distributed(&c, &mut m, &x, None, &mut []).unwrap_err();
        (format!("{e}"), m.to_bytes().unwrap() == before)
    });
    assert!(got[0].0.contains("diverged") || got[0].0.contains("non-finite"), "{}", got[0].0);
    assert_eq!(got[0], got[1]);
}

/// Batch normalisation: batch statistics per chunk, running statistics replayed chunk by chunk
/// on every rank, so the running mean and variance (in the model bytes) match too.
#[test]
fn batch_norm_models_are_bit_identical_on_1_2_3_ranks() {
    let x = data(100);
    let trainer = Trainer::new(TrainParams::new().epochs(3).batch_size(50).lr(1e-2).progress(false).check().unwrap());
    let bn = || -> Autoencoder<f32> {
        MlpAeParams::new(vec![12, 8, 4]).batch_norm(true).seed(4).check().unwrap().build().unwrap()
    };
    let mut one = bn();
    let before = one.to_bytes().unwrap();
    trainer.fit_distributed(&SingleProcess, &mut one, &x, None, &mut []).unwrap();
    let reference = one.to_bytes().unwrap();
    assert_ne!(reference, before);
    for ranks in [2, 3] {
        for bytes in run_threads(ranks, |c| {
            let mut m = bn();
            trainer.fit_distributed(&c, &mut m, &x, None, &mut []).unwrap();
            m.to_bytes().unwrap()
        }) {
            assert_eq!(bytes, reference, "{ranks} ranks");
        }
    }
    // the running statistics moved, and after distributed training the classic path updates
    // them again (nothing is left deferred)
    let running = |m: &Autoencoder<f32>| -> Vec<f32> {
        m.encoder()
            .layers()
            .iter()
            .filter_map(|l| match l {
                AnyLayer::BatchNorm(b) => Some(b.running_mean().to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert!(!running(&one).is_empty() && running(&one) != running(&bn()));
    let mut again = one.clone();
    Trainer::new(TrainParams::new().epochs(1).batch_size(50).progress(false).check().unwrap())
        .fit(&mut again, &x, None)
        .unwrap();
    assert_ne!(running(&again), running(&one));
}

/// The chunk is a parameter: any chunk gives the same bits on 1, 2 and 3 ranks; with one chunk
/// per batch and a model without dropout or noise the distributed step is the classic one (the
/// `f32` gradient goes through `f64` and back unchanged), so `fit_distributed` equals `fit` bit
/// for bit; a chunk of 0 is refused.
#[test]
fn the_chunk_is_a_parameter_and_one_chunk_per_batch_is_the_classic_step() {
    let x = data(120);
    let plain = || -> Autoencoder<f32> { MlpAeParams::new(vec![12, 10, 5]).seed(5).check().unwrap().build().unwrap() };
    let base = TrainParams::new().epochs(3).batch_size(40).lr(5e-3).progress(false);
    for chunk in [7, 40] {
        let trainer = Trainer::new(base.clone().distributed_chunk(chunk).check().unwrap());
        let mut one = plain();
        let r1 = strip(trainer.fit_distributed(&SingleProcess, &mut one, &x, None, &mut []).unwrap());
        for ranks in [2, 3] {
            for (bytes, report) in run_threads(ranks, |c| {
                let mut m = plain();
                let r = trainer.fit_distributed(&c, &mut m, &x, None, &mut []).unwrap();
                (m.to_bytes().unwrap(), strip(r))
            }) {
                assert_eq!(bytes, one.to_bytes().unwrap(), "chunk {chunk}, {ranks} ranks");
                assert_eq!(report, r1, "chunk {chunk}, {ranks} ranks");
            }
        }
        if chunk == 40 {
            let mut classic = plain();
            let rc = strip(trainer.fit(&mut classic, &x, None).unwrap());
            assert_eq!(classic.to_bytes().unwrap(), one.to_bytes().unwrap());
            assert_eq!(rc.train_loss, r1.train_loss);
        }
    }
    let bad = base.distributed_chunk(0).check();
    assert!(matches!(bad, Err(AutoencoderError::InvalidParameter { name: "distributed_chunk", .. })), "{bad:?}");
}
