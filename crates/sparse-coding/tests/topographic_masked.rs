//! Topographic coding and masked (inpainting) coding.

use latent_linalg::DMatrix;
use latent_optim::gradcheck::{GradCheck, check_gradient};
use latent_sparse_coding::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn topographic_penalty_gradient_checks(rows in 2usize..5, cols in 2usize..5, size in 1usize..3, lambda in 0.01f64..2.0, seed in any::<u64>()) {
        let torus = Torus::new(rows, cols, size.min(rows).min(cols)).unwrap();
        let pen = TopographicPenalty { torus, lambda, eps: 1e-2 };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s: Vec<f64> = (0..rows * cols).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
        let mut g = vec![0.0; s.len()];
        pen.value_grad(&s, &mut g);
        let f = |v: &[f64]| { let mut t = vec![0.0; v.len()]; pen.value_grad(v, &mut t) };
        let rep = check_gradient(f, &s, &g, &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(1e-6), "{rep:?}");
    }

    #[test]
    fn masked_ormp_restores_missing_entries_of_one_sparse_signals(seed in any::<u64>()) {
        // ORMP recovers any 1-sparse signal exactly from any observed subset on which its atom is
        // not collinear with another (the score αⱼ²/‖wⱼ‖² is maximal exactly at the true atom)
        let (d, h) = (40, 50);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = DMatrix::from_fn(d, h, |_, _| rng.random::<f64>() - 0.5);
        latent_linalg::ops::normalize_columns(&mut w, 0.0).unwrap();
        let mut s0 = vec![0.0; h];
        s0[rng.random_range(0..h)] = 1.5;
        let x = SparseCode::from_dense(&s0).reconstruct(&w).unwrap();
        let observed: Vec<bool> = (0..d).map(|_| rng.random::<f64>() < 0.6).collect();
        prop_assume!(observed.iter().filter(|o| **o).count() >= 8);
        let mut corrupted = x.clone();
        for (v, &o) in corrupted.iter_mut().zip(&observed) { if !o { *v = 0.0; } }
        let restored = inpaint(&Omp::new(1).rule(OmpRule::OrderRecursive), &w, &corrupted, &observed).unwrap();
        for (a, b) in restored.iter().zip(&x) { prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}"); }
    }
}

/// Oriented sinusoidal gratings on 8×8 patches: a continuous family (orientation, phase) that a
/// topographic map should lay out smoothly.
fn gratings(n: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = DMatrix::zeros(64, n);
    for c in 0..n {
        let th = rng.random::<f64>() * std::f64::consts::PI;
        let ph = rng.random::<f64>() * 2.0 * std::f64::consts::PI;
        let f = 0.6 + 0.4 * rng.random::<f64>();
        for k in 0..64 {
            let (i, j) = ((k / 8) as f64, (k % 8) as f64);
            x[(k, c)] = (f * (i * th.cos() + j * th.sin()) + ph).sin();
        }
    }
    x
}

#[test]
fn topographic_learning_orders_filters_on_the_grid() {
    let x = gratings(1500, 4);
    let torus = Torus::new(6, 6, 3).unwrap();
    let p = TopographicParams::new(torus.clone(), 0.3).batch_size(100).epochs(2);
    let fit = p.check().unwrap().fit(&x).unwrap();
    let (nb, rand_pairs) = grid_smoothness(&fit.dictionary, &torus).unwrap();
    assert!(nb > rand_pairs + 0.1, "neighbour similarity {nb} vs other pairs {rand_pairs}");
    // plain online learning (no topography) has no such order
    let q = OnlineParams::new(36, 0.3).batch_size(100);
    let plain = q.check().unwrap().fit(&x).unwrap();
    let (nb2, rp2) = grid_smoothness(&plain.dictionary, &torus).unwrap();
    assert!(nb - rand_pairs > 2.0 * (nb2 - rp2).abs(), "topographic {nb}/{rand_pairs} vs plain {nb2}/{rp2}");
}

#[test]
fn masked_omp_restores_a_two_sparse_signal() {
    let (d, h) = (64, 40);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut w = DMatrix::from_fn(d, h, |_, _| rng.random::<f64>() - 0.5);
    latent_linalg::ops::normalize_columns(&mut w, 0.0).unwrap();
    let mut s0 = vec![0.0; h];
    s0[3] = 1.5;
    s0[17] = -2.0;
    let x = SparseCode::from_dense(&s0).reconstruct(&w).unwrap();
    let observed: Vec<bool> = (0..d).map(|i| i % 3 != 0).collect();
    let restored = inpaint(&Omp::new(2), &w, &x, &observed).unwrap();
    for (a, b) in restored.iter().zip(&x) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
}

#[test]
fn masked_coding_errors() {
    let w = DMatrix::<f64>::identity(3, 3);
    assert!(matches!(
        encode_masked(&Lars::new(0.1), &w, &[1.0, 2.0, 3.0], &[false; 3]),
        Err(SparseCodingError::Empty(_))
    ));
    assert!(encode_masked(&Lars::new(0.1), &w, &[1.0, 2.0], &[true; 2]).is_err());
    assert!(Torus::new(3, 3, 4).is_err());
    assert!(Torus::new(0, 3, 1).is_err());
}

#[test]
fn topographic_learning_is_thread_count_independent() {
    let x = gratings(300, 8);
    let torus = Torus::new(4, 4, 2).unwrap();
    let run = |t| {
        rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| {
            let p = TopographicParams::new(torus.clone(), 0.3).batch_size(50).epochs(1);
            p.check().unwrap().fit(&x).unwrap().dictionary
        })
    };
    assert_eq!(run(1), run(2));
}
