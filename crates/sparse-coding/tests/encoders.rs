//! Optimality of every encoder on random problems.

use latent_linalg::{DMatrix, Trans, matmul};
use latent_sparse_coding::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn unit_dict(d: usize, h: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = DMatrix::from_fn(d, h, |_, _| rng.random::<f64>() * 2.0 - 1.0);
    latent_linalg::ops::normalize_columns(&mut w, 0.0).unwrap();
    w
}

fn signal(d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xABCD);
    (0..d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// max KKT violation of the lasso at s: |g_j| ≤ λ where s_j = 0, g_j = −λ sign(s_j) elsewhere,
/// with g = Wᵀ(Ws − x).
fn kkt(w: &DMatrix<f64>, x: &[f64], s: &[f64], lambda: f64, nonneg: bool) -> f64 {
    let sv = DMatrix::from_column_slice(s.len(), 1, s);
    let r = matmul(w, Trans::N, &sv, Trans::N).unwrap() - DMatrix::from_column_slice(x.len(), 1, x);
    let g = matmul(w, Trans::T, &r, Trans::N).unwrap();
    let mut worst = 0.0f64;
    for j in 0..s.len() {
        let v = if s[j] == 0.0 {
            if nonneg { (-g[j] - lambda).max(0.0) } else { (g[j].abs() - lambda).max(0.0) }
        } else {
            (g[j] + lambda * s[j].signum()).abs()
        };
        worst = worst.max(v);
        if nonneg {
            worst = worst.max((-s[j]).max(0.0));
        }
    }
    worst
}

fn objective(w: &DMatrix<f64>, x: &[f64], s: &[f64], lambda: f64) -> f64 {
    let sv = DMatrix::from_column_slice(s.len(), 1, s);
    let r = matmul(w, Trans::N, &sv, Trans::N).unwrap() - DMatrix::from_column_slice(x.len(), 1, x);
    0.5 * r.norm_squared() + lambda * s.iter().map(|v| v.abs()).sum::<f64>()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_l1_encoder_satisfies_kkt_and_they_agree(d in 2usize..12, h in 1usize..24, lambda in 0.01f64..0.8, seed in any::<u64>()) {
        let w = unit_dict(d, h, seed);
        let x = signal(d, seed);
        let encoders: Vec<(&str, Box<dyn Encoder<f64>>, f64)> = vec![
            ("cd", Box::new(CoordinateDescent::new(lambda)), 1e-6),
            ("lars", Box::new(Lars::new(lambda)), 1e-6),
            ("fista", Box::new(ProxGradient::fista(lambda).tol(1e-13).max_iter(200_000)), 1e-4),
            ("ista", Box::new(ProxGradient::ista(lambda).tol(1e-13).max_iter(200_000)), 1e-4),
            ("feature-sign", Box::new(FeatureSign::new(lambda)), 1e-6),
        ];
        let mut objs = Vec::new();
        for (name, e, tol) in &encoders {
            let (s, info) = e.encode(&w, &x, None).unwrap();
            let v = kkt(&w, &x, &s, lambda, false);
            prop_assert!(v <= *tol, "{name}: KKT violation {v}, info {info:?}");
            let o = objective(&w, &x, &s, lambda);
            prop_assert!((o - info.objective).abs() <= 1e-9 * (1.0 + o), "{name}: reported objective {} vs {o}", info.objective);
            objs.push((name, o));
        }
        let best = objs.iter().map(|o| o.1).fold(f64::INFINITY, f64::min);
        for (name, o) in objs {
            prop_assert!(o - best <= 1e-7 * (1.0 + best), "{name}: objective {o} vs best {best}");
        }
    }

    #[test]
    fn nonneg_encoders_satisfy_nonneg_kkt(d in 2usize..10, h in 1usize..16, lambda in 0.01f64..0.5, seed in any::<u64>()) {
        let w = unit_dict(d, h, seed);
        let x = signal(d, seed);
        for e in [Box::new(CoordinateDescent::new(lambda).nonneg(true)) as Box<dyn Encoder<f64>>,
                  Box::new(Lars::new(lambda).nonneg(true)),
                  Box::new(ProxGradient::fista(lambda).nonneg(true).tol(1e-13).max_iter(200_000))] {
            let (s, _) = e.encode(&w, &x, None).unwrap();
            prop_assert!(s.iter().all(|v| *v >= 0.0));
            prop_assert!(kkt(&w, &x, &s, lambda, true) <= 1e-4);
        }
    }

    #[test]
    fn omp_recovers_k_sparse_codes_exactly(k in 1usize..5, seed in any::<u64>()) {
        // incoherent dictionary: random unit atoms in 64 dimensions, 96 atoms (mutual coherence ≲ 0.5)
        let (d, h) = (64, 96);
        let w = unit_dict(d, h, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 77);
        let mut s0 = vec![0.0; h];
        let mut support = Vec::new();
        while support.len() < k {
            let j = rng.random_range(0..h);
            if !support.contains(&j) { support.push(j); }
        }
        for &j in &support { s0[j] = (1.0 + rng.random::<f64>()) * if rng.random::<bool>() { 1.0 } else { -1.0 }; }
        let x = SparseCode::from_dense(&s0).reconstruct(&w).unwrap();
        let (s, info) = Omp::new(k).encode(&w, &x, None).unwrap();
        for j in 0..h { prop_assert!((s[j] - s0[j]).abs() < 1e-9, "atom {j}: {} vs {}", s[j], s0[j]); }
        prop_assert!(info.objective < 1e-12 * x.iter().map(|v| v * v).sum::<f64>());
    }

    #[test]
    fn iht_never_increases_the_objective_and_keeps_k(d in 4usize..12, h in 4usize..20, seed in any::<u64>()) {
        let w = unit_dict(d, h, seed);
        let x = signal(d, seed);
        let k = 1 + (seed as usize % d.min(h).min(4));
        let (s, info) = Iht::new(L0Rule::Sparsity(k)).encode(&w, &x, None).unwrap();
        prop_assert!(latent_linalg::ops::count_nonzero(&s) <= k);
        prop_assert!(info.objective <= 0.5 * x.iter().map(|v| v * v).sum::<f64>() + 1e-12);
        let (s2, _) = Iht::new(L0Rule::Penalty(0.05)).encode(&w, &x, None).unwrap();
        prop_assert!(s2.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn dense_and_sparse_reconstructions_agree(d in 1usize..10, h in 1usize..20, seed in any::<u64>()) {
        let w = unit_dict(d, h, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s: Vec<f64> = (0..h).map(|_| if rng.random::<f64>() < 0.3 { rng.random::<f64>() - 0.5 } else { 0.0 }).collect();
        let dense = matmul(&w, Trans::N, &DMatrix::from_column_slice(h, 1, &s), Trans::N).unwrap();
        let code = SparseCode::from_dense(&s);
        let sparse = code.reconstruct(&w).unwrap();
        for (a, b) in dense.iter().zip(&sparse) { prop_assert!((a - b).abs() < 1e-12); }
        prop_assert_eq!(code.to_dense(), s);
    }
}

#[test]
fn batch_encoding_matches_single_and_is_thread_count_independent() {
    let w = unit_dict(16, 40, 3);
    let x = DMatrix::from_fn(16, 50, |i, j| ((i * 7 + j * 13) % 11) as f64 / 11.0 - 0.5);
    let enc = Lars::new(0.05);
    let run = |t| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
            .install(|| enc.encode_batch(&w, &x, None).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.codes, two.codes);
    for j in 0..50 {
        let (s, _) = enc.encode(&w, x.column(j).as_slice(), None).unwrap();
        for (a, b) in s.iter().zip(one.codes.column(j).iter()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
    assert_eq!(one.not_converged(), 0);
    assert!(one.max_duality_gap().unwrap() < 1e-9);
}

#[test]
fn lars_path_is_piecewise_exact() {
    let w = unit_dict(8, 20, 9);
    let x = signal(8, 9);
    let path = Lars::new(0.01).path(&w, &x).unwrap();
    assert!(path.len() >= 2);
    for pt in &path {
        let s = pt.code.to_dense();
        assert!(kkt(&w, &x, &s, pt.lambda, false) < 1e-8, "λ = {}", pt.lambda);
    }
    for pair in path.windows(2) {
        assert!(pair[1].lambda <= pair[0].lambda);
    }
}

#[test]
fn sparse_code_serialization_grows_with_nonzeros() {
    let mut dense = vec![0.0f64; 10_000];
    dense[3] = 1.0;
    let small = serde_json::to_string(&SparseCode::from_dense(&dense)).unwrap();
    dense.iter_mut().step_by(10).for_each(|v| *v = 2.0);
    let big = serde_json::to_string(&SparseCode::from_dense(&dense)).unwrap();
    assert!(small.len() < 100, "{}", small.len());
    assert!(big.len() > 10 * small.len());
    let back: SparseCode<f64> = serde_json::from_str(&big).unwrap();
    assert_eq!(back.to_dense(), dense);
    assert!(SparseCode::<f64>::from_pairs(5, &[(1, 1.0), (1, 2.0)]).is_err());
    assert!(SparseCode::<f64>::from_pairs(5, &[(5, 1.0)]).is_err());
    let lecture = SparseCode::from_pairs(5, &[(2, 7.0), (0, 12.0)]).unwrap();
    assert_eq!(lecture.to_dense(), vec![12.0, 0.0, 7.0, 0.0, 0.0]);
}

#[test]
fn bad_input_is_a_typed_error() {
    let w = unit_dict(4, 6, 1);
    let e = CoordinateDescent::new(0.1);
    assert!(matches!(e.encode(&w, &[1.0, f64::NAN, 0.0, 0.0], None), Err(SparseCodingError::NonFinite { .. })));
    assert!(matches!(e.encode(&w, &[1.0, 0.0], None), Err(SparseCodingError::Dimension { .. })));
    assert!(matches!(
        CoordinateDescent::new(-0.1).encode(&w, &[0.0; 4], None),
        Err(SparseCodingError::InvalidParameter { name: "lambda", .. })
    ));
    assert!(matches!(
        Omp::new(5).encode(&w, &[0.0; 4], None),
        Err(SparseCodingError::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(e.encode_batch(&w, &DMatrix::zeros(4, 0), None), Err(SparseCodingError::Empty(_))));
    assert!(matches!(e.encode(&DMatrix::zeros(0, 0), &[], None), Err(SparseCodingError::Empty(_))));
    let mut bad = w.clone();
    bad[(0, 0)] = f64::INFINITY;
    assert!(matches!(e.encode(&bad, &[0.0; 4], None), Err(SparseCodingError::NonFinite { .. })));
    assert!(e.encode(&w, &[0.0; 4], Some(&[0.0; 3])).is_err());
}
