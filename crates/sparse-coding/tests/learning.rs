//! Dictionary updates and learners: monotone objectives, constraints, optimality, warm restarts.

use latent_linalg::{DMatrix, Trans, matmul};
use latent_optim::gradcheck;
use latent_sparse_coding::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Signals that really are sparse in a hidden dictionary, plus noise.
fn sparse_data(d: usize, h: usize, n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = DMatrix::from_fn(d, h, |_, _| rng.random::<f64>() * 2.0 - 1.0);
    latent_linalg::ops::normalize_columns(&mut w, 0.0).unwrap();
    let s =
        DMatrix::from_fn(h, n, |_, _| if rng.random::<f64>() < 0.15 { rng.random::<f64>() * 4.0 - 2.0 } else { 0.0 });
    let x =
        matmul(&w, Trans::N, &s, Trans::N).unwrap() + DMatrix::from_fn(d, n, |_, _| 0.01 * (rng.random::<f64>() - 0.5));
    (w, x)
}

fn objective(w: &DMatrix<f64>, x: &DMatrix<f64>, lambda: f64) -> f64 {
    Lars::new(lambda).encode_batch(w, x, None).unwrap().mean_objective()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn batch_objective_never_increases(seed in any::<u64>(), solver in prop_oneof![Just(L1Solver::Lars), Just(L1Solver::CoordinateDescent)]) {
        let (_, x) = sparse_data(8, 12, 120, seed);
        let p = BatchParams::new(12, 0.1).max_iter(8).seed(seed).solver(solver);
        let fit = p.check().unwrap().fit(&x).unwrap();
        prop_assert_eq!(fit.history.len(), 16);
        for w in fit.history.windows(2) {
            prop_assert!(w[1] <= w[0] + 1e-7 * w[0].abs().max(1.0), "history {:?}", fit.history);
        }
        for j in 0..12 {
            prop_assert!(fit.dictionary.column(j).norm() <= 1.0 + 1e-9);
        }
    }

    #[test]
    fn every_update_rule_decreases_the_quadratic(seed in any::<u64>()) {
        let (_, x) = sparse_data(6, 10, 80, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w0 = init_from_data(&x, 10, &mut rng);
        let codes = Lars::new(0.05).encode_batch(&w0, &x, None).unwrap();
        let st = Stats::of(&x, &codes.codes).unwrap();
        let before = quadratic_objective(&w0, &st).unwrap();
        let rules: Vec<(&str, Box<dyn DictionaryUpdate<f64>>)> = vec![
            ("bcd", Box::new(BlockCoordinate::default())),
            ("projected", Box::new(UnitNormProjected::default())),
            ("lagrange", Box::new(LagrangeDual::default())),
        ];
        for (name, r) in rules {
            let mut w = w0.clone();
            let info = r.update(&mut w, &st).unwrap();
            prop_assert!(info.objective <= before + 1e-9 * before.abs().max(1.0), "{name}: {} > {before}", info.objective);
            for j in 0..10 { prop_assert!(w.column(j).norm() <= 1.0 + 1e-9, "{name}: column {j} norm {}", w.column(j).norm()); }
        }
    }
}

#[test]
fn lagrange_dual_matches_many_bcd_passes() {
    // both solve the same convex problem (quadratic over unit-ball columns): same optimum
    let (_, x) = sparse_data(6, 8, 200, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let w0 = init_from_data(&x, 8, &mut rng);
    let codes = Lars::new(0.05).encode_batch(&w0, &x, None).unwrap();
    let st = Stats::of(&x, &codes.codes).unwrap();
    let mut a = w0.clone();
    let qa = LagrangeDual::default().update(&mut a, &st).unwrap().objective;
    let mut b = w0.clone();
    let qb = BlockCoordinate { passes: 2000, report_objective: true }.update(&mut b, &st).unwrap().objective;
    assert!((qa - qb).abs() <= 1e-6 * qa.abs().max(1.0), "{qa} vs {qb}");
}

#[test]
fn frobenius_update_is_the_minimiser_and_its_gradient_checks() {
    let (_, x) = sparse_data(5, 7, 60, 9);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let w0 = init_from_data(&x, 7, &mut rng);
    let codes = Lars::new(0.05).encode_batch(&w0, &x, None).unwrap();
    let st = Stats::of(&x, &codes.codes).unwrap();
    let rule = Frobenius { eta: 0.3 };
    let mut w = w0.clone();
    rule.update(&mut w, &st).unwrap();
    // objective (1/N)(½tr(WᵀWA) − tr(WᵀB)) + η‖W‖²: its gradient vanishes at the update
    let n = st.count;
    let f = |v: &[f64]| -> f64 {
        let wm = DMatrix::from_column_slice(5, 7, v);
        let mut g = vec![0.0; v.len()];
        latent_sparse_coding::quadratic_objective(&wm, &st).unwrap() + rule.value_grad(v, &mut g)
    };
    let grad_at = |v: &[f64]| -> Vec<f64> {
        let wm = DMatrix::from_column_slice(5, 7, v);
        let g1 = (&wm * &st.a - &st.b) / n;
        let mut g2 = vec![0.0; v.len()];
        rule.value_grad(v, &mut g2);
        g1.iter().zip(&g2).map(|(a, b)| a + b).collect()
    };
    // the shared gradient checker on the penalised objective at a random point
    let probe: Vec<f64> = w0.iter().copied().collect();
    let report = gradcheck::check_gradient(f, &probe, &grad_at(&probe), &gradcheck::GradCheck::default()).unwrap();
    assert!(report.passes(1e-6), "{report:?}");
    let g = grad_at(w.as_slice());
    assert!(g.iter().all(|v| v.abs() < 1e-9), "gradient at the closed form: {g:?}");
}

#[test]
fn online_learning_lowers_the_held_out_objective_and_restarts_exactly() {
    let (_, x) = sparse_data(8, 16, 1200, 11);
    let train = x.columns(0, 1000).into_owned();
    let held = x.columns(1000, 200).into_owned();
    let p = OnlineParams::new(16, 0.1).batch_size(50);
    let mut learner = OnlineLearner::from(p.check().unwrap());
    let mut held_out = Vec::new();
    for (i, chunk) in (0..1000).collect::<Vec<_>>().chunks(50).enumerate() {
        let b = DMatrix::from_fn(8, chunk.len(), |r, c| train[(r, chunk[c])]);
        learner.partial_fit(&b).unwrap();
        if i % 5 == 4 {
            held_out.push(objective(&learner.state().unwrap().dictionary, &held, 0.1));
        }
    }
    for w in held_out.windows(2) {
        assert!(w[1] < w[0], "held-out objectives {held_out:?}");
    }
    // warm restart from a saved state continues exactly like an uninterrupted run
    let mut a = OnlineLearner::from(p.check().unwrap());
    let mut b = OnlineLearner::from(p.check().unwrap());
    let batches: Vec<DMatrix<f64>> = (0..6).map(|i| train.columns(i * 50, 50).into_owned()).collect();
    for bt in &batches[..3] {
        a.partial_fit(bt).unwrap();
        b.partial_fit(bt).unwrap();
    }
    let path = std::env::temp_dir().join(format!("latent-online-state-{}.bin", std::process::id()));
    b.state().unwrap().save(&path).unwrap();
    let restored = OnlineState::<f64>::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut c = OnlineLearner::from(p.check().unwrap()).with_state(restored).unwrap();
    for bt in &batches[3..] {
        a.partial_fit(bt).unwrap();
        c.partial_fit(bt).unwrap();
    }
    assert_eq!(a.state().unwrap().dictionary, c.state().unwrap().dictionary);
}

#[test]
fn learners_are_deterministic_across_thread_counts() {
    let (_, x) = sparse_data(8, 12, 300, 3);
    let run = |t| {
        rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| {
            let p = OnlineParams::new(12, 0.1).batch_size(64);
            let a = p.check().unwrap().fit(&x).unwrap().dictionary;
            let q = BatchParams::new(12, 0.1).max_iter(3);
            let b = q.check().unwrap().fit(&x).unwrap().dictionary;
            (a, b)
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn learning_recovers_a_planted_dictionary() {
    // sparse signals from a known dictionary: most learned atoms match a true atom closely
    let (w_true, x) = sparse_data(10, 12, 2000, 21);
    let p = BatchParams::new(12, 0.05).max_iter(40);
    let fit = p.check().unwrap().fit(&x).unwrap();
    let corr = matmul(&w_true, Trans::T, &fit.dictionary, Trans::N).unwrap();
    let matched = (0..12).filter(|&i| (0..12).any(|j| corr[(i, j)].abs() > 0.95)).count();
    assert!(matched >= 10, "only {matched} of 12 atoms recovered");
}

#[test]
fn callbacks_stop_learning_and_bad_params_are_errors() {
    let (_, x) = sparse_data(6, 8, 100, 1);
    let mut calls = 0;
    let fit = BatchLearner::from(BatchParams::new(8, 0.1).check().unwrap())
        .fit_with(
            &x,
            None,
            Some(Box::new(|p: &Progress<'_, f64>| {
                calls += 1;
                if p.iteration >= 2 { std::ops::ControlFlow::Break(()) } else { std::ops::ControlFlow::Continue(()) }
            })),
        )
        .unwrap();
    assert_eq!(fit.stop, LearnStop::Callback);
    assert_eq!(fit.iterations, 2);
    assert_eq!(calls, 2);
    assert!(matches!(BatchParams::new(0, 0.1).check(), Err(SparseCodingError::InvalidParameter { name: "atoms", .. })));
    assert!(matches!(
        BatchParams::new(4, -1.0).check(),
        Err(SparseCodingError::InvalidParameter { name: "lambda", .. })
    ));
    let op = OnlineParams::new(4, 0.1).batch_size(0);
    assert!(matches!(op.check(), Err(SparseCodingError::InvalidParameter { name: "batch_size", .. })));
    let learner = BatchParams::new(4, 0.1).check().unwrap();
    assert!(matches!(learner.fit(&DMatrix::<f64>::zeros(6, 0)), Err(SparseCodingError::Empty(_))));
    let mut bad = x.clone();
    bad[(0, 0)] = f64::NAN;
    assert!(matches!(learner.fit(&bad), Err(SparseCodingError::NonFinite { .. })));
    assert!(Frobenius { eta: -1.0 }.update(&mut DMatrix::<f64>::zeros(6, 4), &Stats::<f64>::zeros(6, 4)).is_err());
}

#[test]
fn fitted_dictionaries_save_and_load_and_reject_corruption() {
    let (_, x) = sparse_data(6, 8, 100, 2);
    let fit = BatchParams::new(8, 0.1).check().unwrap().fit(&x).unwrap();
    let path = std::env::temp_dir().join(format!("latent-dict-{}.bin", std::process::id()));
    fit.save(&path).unwrap();
    let back = FittedDictionary::<f64>::load(&path).unwrap();
    assert_eq!(back.dictionary, fit.dictionary);
    assert_eq!(back.history, fit.history);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(FittedDictionary::<f64>::load(&path), Err(SparseCodingError::Format(_))));
    std::fs::write(&path, &bytes[..10]).unwrap();
    assert!(matches!(FittedDictionary::<f64>::load(&path), Err(SparseCodingError::Format(_))));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(FittedDictionary::<f64>::load(&path), Err(SparseCodingError::Io { .. })));
}

#[test]
fn f32_learning_is_as_fast_as_f64_and_certified() {
    // f32 tolerances follow the precision: LARS certifies at ~1e-5 relative gap instead of
    // falling back to thousands of coordinate-descent sweeps
    let (_, x) = sparse_data(8, 16, 600, 4);
    let x32 = x.map(|v| v as f32);
    let t = std::time::Instant::now();
    let p = OnlineParams::<f32>::new(16, 0.1).batch_size(50);
    let fit = p.check().unwrap().fit(&x32).unwrap();
    let codes = Lars::new(0.1f32).encode_batch(&fit.dictionary, &x32, None).unwrap();
    assert_eq!(codes.not_converged(), 0);
    assert!(t.elapsed().as_secs_f64() < 5.0, "f32 online learning took {:?}", t.elapsed());
}
