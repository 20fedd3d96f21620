//! Convolutional dictionary learning: batch (consensus ADMM and FISTA updates) and online.

use latent_conv_coding::{
    Backend, Boundary, CdlLearner, CdlParams, ConvCodingError, ConvOperator, Csc, CscParams, DictSolver,
    FilterConstraint, Filters, FittedCdl, LearnStop, OnlineCdl, OnlineCdlParams, OnlineCdlState, ParamGuard, Tensor4,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Images synthesised from `truth` with sparse random maps, plus a little noise.
fn synthetic(truth: &Filters<f64>, k: usize, h: usize, w: usize, seed: u64) -> Tensor4<f64> {
    synthetic_density(truth, k, h, w, seed, 0.02)
}

fn synthetic_density(truth: &Filters<f64>, k: usize, h: usize, w: usize, seed: u64, density: f64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = truth.count();
    let s = Tensor4::from_fn([k, m, h, w], |_| {
        if rng.random::<f64>() < density { rng.random::<f64>() * 2.0 - 1.0 } else { 0.0 }
    })
    .unwrap();
    let mut x = ConvOperator::new(truth, h, w, Boundary::Periodic, Backend::Fft).unwrap().apply(&s).unwrap();
    x.as_mut_slice().iter_mut().for_each(|v| *v += 0.01 * (rng.random::<f64>() - 0.5));
    x
}

fn assert_decreasing(h: &[f64], slack: f64, what: &str) {
    for (i, w) in h.windows(2).enumerate() {
        assert!(
            w[1] <= w[0] * (1.0 + slack),
            "{what}: objective rose from {} to {} at iteration {}",
            w[0],
            w[1],
            i + 2
        );
    }
    assert!(h.last().unwrap() < &(0.8 * h[0]), "{what}: objective only went from {} to {}", h[0], h.last().unwrap());
}

/// The dictionary objective decreases with either dictionary update, and the filters stay feasible.
#[test]
fn batch_objective_decreases() {
    let truth = Filters::<f64>::random(4, 1, 5, 5, 1).unwrap();
    let x = synthetic(&truth, 4, 24, 20, 2);
    for solver in [DictSolver::default(), DictSolver::Fista { eta: 2.0 }] {
        let mut p = CdlParams::new(4, (5, 5), 0.05);
        p.iterations = 25;
        p.code_iters = 10;
        p.dict_iters = 5;
        p.dict_solver = solver;
        p.seed = 3;
        let fit = p.check().unwrap().fit(&x).unwrap();
        let h: Vec<f64> = fit.history.iter().map(|s| s.objective).collect();
        assert_decreasing(&h, 1e-3, &format!("{solver:?}"));
        assert_eq!((fit.iterations, fit.stop), (25, LearnStop::MaxIterations));
        for n in fit.filters.norms() {
            assert!((n - 1.0).abs() < 1e-12, "filter norm {n}");
        }
        // the reported objective is the objective of the filters it returns, with their codes
        let last = fit.history.last().unwrap();
        assert!((last.objective - last.data_fidelity - last.regularizer).abs() < 1e-9 * last.objective);
    }
}

/// Interleaved learning (one coding and one dictionary iteration per outer iteration, SPORCO's
/// scheme) also drives the objective down, with the zero-padded boundary too.
#[test]
fn interleaved_and_zero_padded_learning() {
    let truth = Filters::<f64>::random(3, 2, 4, 3, 5).unwrap();
    let x = synthetic(&truth, 2, 18, 16, 6);
    let mut p = CdlParams::new(3, (4, 3), 0.05);
    p.iterations = 40;
    let fit = p.clone().check().unwrap().fit(&x).unwrap();
    let h: Vec<f64> = fit.history.iter().map(|s| s.objective).collect();
    assert!(h[39] < 0.7 * h[0], "{h:?}");
    assert_eq!(fit.filters.channels(), 2);
    let mut z = p.clone();
    z.boundary = Boundary::ZeroPad;
    assert!(matches!(z.clone().check(), Err(ConvCodingError::InvalidParameter { name: "dict_solver", .. })));
    z.dict_solver = DictSolver::Fista { eta: 2.0 };
    z.code_iters = 5;
    z.constraint = FilterConstraint::UnitBall;
    z.zero_mean = true;
    let fit = z.check().unwrap().fit(&x).unwrap();
    let h: Vec<f64> = fit.history.iter().map(|s| s.objective).collect();
    assert!(h[39] < 0.7 * h[0], "{h:?}");
    for (m, n) in fit.filters.norms().iter().enumerate() {
        assert!(*n <= 1.0 + 1e-12);
        let f = fit.filters.filter(m).unwrap();
        for ch in f.chunks(12) {
            assert!(ch.iter().sum::<f64>().abs() < 1e-12, "zero-mean constraint violated");
        }
    }
}

/// Learned filters code held-out images from the same source far better than random filters.
#[test]
fn learned_filters_generalise() {
    let truth = Filters::<f64>::random(4, 1, 6, 6, 11).unwrap();
    let train = synthetic_density(&truth, 6, 32, 32, 12, 0.008);
    let test = synthetic_density(&truth, 2, 32, 32, 13, 0.008);
    let mut p = CdlParams::new(4, (6, 6), 0.05);
    p.iterations = 60;
    p.code_iters = 5;
    p.dict_iters = 3;
    p.dict_solver = DictSolver::Fista { eta: 2.0 };
    let fit = p.check().unwrap().fit(&train).unwrap();
    let coder = Csc::from(CscParams::new(0.05).max_iter(300).check().unwrap());
    let learned = coder.encode(&fit.filters, &test).unwrap().objective();
    let random = coder.encode(&Filters::random(4, 1, 6, 6, 99).unwrap(), &test).unwrap().objective();
    let oracle = coder.encode(&truth, &test).unwrap().objective();
    // CDL is non-convex: from random filters it finds a good local minimum, not the truth
    assert!(learned < 0.8 * random && learned < 2.0 * oracle, "learned {learned}, random {random}, truth {oracle}");
}

/// Online learning: a stream of images from one source lowers the per-batch objective, a restored
/// state continues exactly, and the filters stay unit-norm.
#[test]
fn online_learning_and_warm_restart() {
    let truth = Filters::<f64>::random(4, 1, 5, 5, 21).unwrap();
    let batches: Vec<Tensor4<f64>> =
        (0..12).map(|i| synthetic(&truth, 1, 24 + 4 * (i % 3), 24, 100 + i as u64)).collect();
    let params = || {
        let mut p = OnlineCdlParams::new(4, (5, 5), 0.05);
        p.code_iters = 60;
        p.shuffle = false;
        p
    };
    let mut full = OnlineCdl::from(params().check().unwrap());
    let fit = full.fit(&batches).unwrap();
    assert_eq!(fit.history.len(), 12);
    // held-out image: the learned filters code it much better than the initial ones
    let held = synthetic(&truth, 1, 28, 28, 999);
    let coder = Csc::from(CscParams::new(0.05).max_iter(300).check().unwrap());
    let init = Filters::<f64>::random(4, 1, 5, 5, 0).unwrap();
    let (learned, initial) =
        (coder.encode(&fit.filters, &held).unwrap().objective(), coder.encode(&init, &held).unwrap().objective());
    assert!(
        learned < 0.8 * initial,
        "held-out objective {learned} with learned filters, {initial} with the initial ones"
    );
    for n in fit.filters.norms() {
        assert!((n - 1.0).abs() < 1e-9);
    }
    // stop after 6 batches, save, load, continue: identical to the uninterrupted run
    let dir = std::env::temp_dir().join(format!("latent-cdl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("online.state");
    let mut a = OnlineCdl::from(params().check().unwrap());
    for b in &batches[..6] {
        a.partial_fit(b).unwrap();
    }
    a.state().unwrap().save(&path).unwrap();
    let restored = OnlineCdlState::<f64>::load(&path).unwrap();
    assert_eq!(&restored, a.state().unwrap());
    let mut b = OnlineCdl::from(params().check().unwrap()).with_state(restored).unwrap();
    for x in &batches[6..] {
        b.partial_fit(x).unwrap();
    }
    assert_eq!(b.state().unwrap().filters, full.state().unwrap().filters);
    // a state for another dictionary shape is refused
    let other = OnlineCdl::from(OnlineCdlParams::<f64>::new(3, (5, 5), 0.05).check().unwrap());
    assert!(matches!(other.with_state(b.state().unwrap().clone()), Err(ConvCodingError::Shape { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

/// Models save and load (versioned, checksummed); corrupt and foreign files are typed errors.
#[test]
fn save_and_load() {
    let truth = Filters::<f64>::random(2, 1, 3, 3, 31).unwrap();
    let x = synthetic(&truth, 1, 12, 12, 32);
    let mut p = CdlParams::new(2, (3, 3), 0.1);
    p.iterations = 5;
    let fit = p.check().unwrap().fit(&x).unwrap();
    let dir = std::env::temp_dir().join(format!("latent-cdl-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dict.bin");
    fit.save(&path).unwrap();
    assert_eq!(FittedCdl::<f64>::load(&path).unwrap(), fit);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(FittedCdl::<f64>::load(&path), Err(ConvCodingError::Format(_))));
    std::fs::write(&path, &bytes[..20]).unwrap();
    assert!(matches!(FittedCdl::<f64>::load(&path), Err(ConvCodingError::Format(_))));
    // an online state file is not a dictionary file
    let mut o = OnlineCdl::from(OnlineCdlParams::new(2, (3, 3), 0.1).check().unwrap());
    o.partial_fit(&x).unwrap();
    o.state().unwrap().save(&path).unwrap();
    assert!(matches!(FittedCdl::<f64>::load(&path), Err(ConvCodingError::Format(_))));
    assert!(matches!(FittedCdl::<f64>::load(dir.join("missing")), Err(ConvCodingError::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

/// Batch learning is bit-identical on 1 and 2 threads.
#[test]
fn learning_is_deterministic_across_thread_counts() {
    let truth = Filters::<f32>::random(4, 1, 5, 4, 41).unwrap().cast::<f64>().unwrap();
    let x = synthetic(&truth, 3, 20, 22, 42);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            let mut out = Vec::new();
            for solver in [DictSolver::default(), DictSolver::Fista { eta: 2.0 }] {
                let mut p = CdlParams::new(4, (5, 4), 0.05);
                p.iterations = 6;
                p.dict_solver = solver;
                let fit = p.check().unwrap().fit(&x).unwrap();
                out.push(fit.filters.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            let mut o = OnlineCdl::from(OnlineCdlParams::new(4, (5, 4), 0.05).check().unwrap());
            o.partial_fit(&x).unwrap();
            out.push(o.state().unwrap().filters.as_slice().iter().map(|v| v.to_bits()).collect());
            out
        })
    };
    assert_eq!(run(1), run(2));
}

/// Bad learning parameters and inputs are typed errors.
#[test]
fn learning_validation() {
    assert!(matches!(
        CdlParams::new(0, (3, 3), 0.1).check(),
        Err(ConvCodingError::InvalidParameter { name: "filters", .. })
    ));
    assert!(matches!(
        CdlParams::new(2, (3, 3), -1.0).check(),
        Err(ConvCodingError::InvalidParameter { name: "lambda", .. })
    ));
    let mut p = CdlParams::new(2, (3, 3), 0.1);
    p.dict_solver = DictSolver::Fista { eta: 1.0 };
    assert!(matches!(p.check(), Err(ConvCodingError::InvalidParameter { name: "eta", .. })));
    let learner = CdlLearner::from(CdlParams::new(2, (9, 9), 0.1).check().unwrap());
    let x = Tensor4::<f64>::zeros([1, 1, 8, 8]).unwrap();
    assert!(matches!(learner.fit(&x), Err(ConvCodingError::Shape { .. })));
    let mut nan = Tensor4::<f64>::zeros([1, 1, 12, 12]).unwrap();
    nan.as_mut_slice()[3] = f64::NAN;
    assert!(matches!(learner.fit(&nan), Err(ConvCodingError::NonFinite { .. })));
    let wrong = Filters::<f64>::random(3, 1, 9, 9, 0).unwrap();
    let ok = Tensor4::<f64>::zeros([1, 1, 12, 12]).unwrap();
    assert!(matches!(learner.fit_with(&ok, Some(&wrong), None), Err(ConvCodingError::Shape { .. })));
    let mut online = OnlineCdl::from(OnlineCdlParams::new(2, (3, 3), 0.1).check().unwrap());
    assert!(matches!(online.fit(&[]), Err(ConvCodingError::Empty(_))));
    assert!(matches!(OnlineCdlParams::new(2, (3, 3), 0.1f64).check().map(|_| ()), Ok(())));
}

/// Data-parallel online CDL: each rank codes its images of every batch and the per-image
/// statistics are summed in image order, so 1, 2 and 3 ranks (threads here, MPI in
/// `cargo xtask distributed-check`) give exactly the filters and surrogate of one process's
/// `partial_fit`.
#[test]
fn distributed_online_cdl_matches_partial_fit_bit_for_bit() {
    use latent_optim::collective::run_threads;
    let truth = Filters::<f64>::random(3, 1, 4, 4, 5).unwrap();
    let batches: Vec<Tensor4<f64>> = (0..3).map(|i| synthetic(&truth, 4, 16, 16, 50 + i)).collect();
    let params = || {
        let mut p = OnlineCdlParams::new(3, (4, 4), 0.05);
        p.code_iters = 30;
        p.check().unwrap()
    };
    let mut one = OnlineCdl::from(params());
    for b in &batches {
        one.partial_fit(b).unwrap();
    }
    let reference = one.state().unwrap().clone();
    for ranks in [1, 2, 3] {
        let states = run_threads(ranks, |c| {
            let mut l = OnlineCdl::from(params());
            for b in &batches {
                l.partial_fit_distributed(&c, b).unwrap();
            }
            l.state().unwrap().clone()
        });
        for s in states {
            assert_eq!(s.filters.as_slice(), reference.filters.as_slice(), "{ranks} ranks");
            assert_eq!(s.a, reference.a);
            assert_eq!(s.b, reference.b);
            assert_eq!(s.history, reference.history);
        }
    }
}
