//! Toy 2-D generators and the mini-batch sampler.

use latent_datasets::toy::{Manifold2d, manifold_2d, points_to_dmatrix, sparse_directions};
use latent_datasets::{BatchSampler, Dataset, DatasetError, Mnist, collect_batch};
use proptest::prelude::*;

#[test]
fn sparse_directions_are_deterministic_and_star_shaped() {
    let a = sparse_directions(3000, &[10.0, 75.0, 140.0], 1.0, 0.02, 5).unwrap();
    assert_eq!(a, sparse_directions(3000, &[10.0, 75.0, 140.0], 1.0, 0.02, 5).unwrap());
    assert_ne!(a.points, sparse_directions(3000, &[10.0, 75.0, 140.0], 1.0, 0.02, 6).unwrap().points);
    // x = D a + noise with small noise
    let d = a.dictionary::<f64>();
    assert_eq!(d.shape(), (2, 3));
    let mut max_res: f64 = 0.0;
    for (p, c) in a.points.iter().zip(&a.coefficients) {
        let x = c[0] * d[(0, 0)] + c[1] * d[(0, 1)] + c[2] * d[(0, 2)];
        max_res = max_res.max((p[0] - x).abs());
    }
    assert!(max_res < 0.02 * 6.0);
    // Laplace(0, 1): mean |a| = 1, and about 1 - e^{-1/2} ≈ 39% of coefficients below 0.5 in magnitude
    let all: Vec<f64> = a.coefficients.iter().flatten().copied().collect();
    let mean_abs = all.iter().map(|v| v.abs()).sum::<f64>() / all.len() as f64;
    assert!((mean_abs - 1.0).abs() < 0.05, "mean |a| = {mean_abs}");
    let small = all.iter().filter(|v| v.abs() < 0.5).count() as f64 / all.len() as f64;
    assert!((small - (1.0 - (-0.5f64).exp())).abs() < 0.03);
    assert_eq!(a.points_matrix::<f32>().shape(), (2, 3000));
    assert!(matches!(sparse_directions(5, &[], 1.0, 0.1, 0), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(sparse_directions(5, &[0.0], 0.0, 0.1, 0), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(sparse_directions(5, &[0.0], 1.0, -0.1, 0), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn manifolds_are_deterministic_with_gaussian_noise() {
    let c = manifold_2d(Manifold2d::Circle { radius: 2.0 }, 4000, 0.1, 1).unwrap();
    assert_eq!(c, manifold_2d(Manifold2d::Circle { radius: 2.0 }, 4000, 0.1, 1).unwrap());
    for p in &c.clean {
        assert!(((p[0] * p[0] + p[1] * p[1]).sqrt() - 2.0).abs() < 1e-12);
    }
    let res: Vec<f64> = c.clean.iter().zip(&c.noisy).flat_map(|(a, b)| [b[0] - a[0], b[1] - a[1]]).collect();
    let sd = (res.iter().map(|v| v * v).sum::<f64>() / res.len() as f64).sqrt();
    assert!((sd - 0.1).abs() < 0.005, "noise sd {sd}");
    let s = manifold_2d(Manifold2d::Spiral { turns: 2.0, r_max: 1.0 }, 500, 0.0, 2).unwrap();
    assert_eq!(s.clean, s.noisy);
    assert!(s.clean.iter().all(|p| {
        let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
        (0.1 - 1e-12..=1.0 + 1e-12).contains(&r)
    }));
    assert_eq!(points_to_dmatrix::<f64>(&s.clean)[(1, 7)], s.clean[7][1]);
    assert!(matches!(
        manifold_2d(Manifold2d::Circle { radius: 0.0 }, 5, 0.1, 0),
        Err(DatasetError::InvalidParameter { .. })
    ));
    assert!(matches!(
        manifold_2d(Manifold2d::Spiral { turns: -1.0, r_max: 1.0 }, 5, 0.1, 0),
        Err(DatasetError::InvalidParameter { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_index_once_per_epoch(len in 0usize..200, bs in 1usize..40, drop_last in any::<bool>(), seed in any::<u64>(), epoch in 0u64..5) {
        let s = BatchSampler::new(len, bs, drop_last, seed).unwrap();
        let batches: Vec<Vec<usize>> = s.epoch(epoch).collect();
        prop_assert_eq!(batches.len(), s.num_batches());
        let sizes_ok = batches.iter().all(|b| if drop_last { b.len() == bs } else { !b.is_empty() && b.len() <= bs });
        prop_assert!(sizes_ok);
        let mut seen: Vec<usize> = batches.concat();
        let n_seen = seen.len();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), n_seen, "an index repeated");
        if drop_last {
            prop_assert_eq!(n_seen, len - len % bs);
        } else {
            prop_assert_eq!(seen, (0..len).collect::<Vec<_>>());
        }
        // same seed and epoch → same batches
        prop_assert_eq!(s.epoch(epoch).collect::<Vec<_>>(), batches);
    }
}

#[test]
fn epochs_reshuffle_and_batches_fetch_samples() {
    let s = BatchSampler::new(1000, 32, false, 9).unwrap();
    assert_ne!(s.permutation(0), s.permutation(1));
    assert_ne!(s.permutation(0), BatchSampler::new(1000, 32, false, 10).unwrap().permutation(0));
    assert_ne!(s.permutation(0), (0..1000).collect::<Vec<_>>());
    assert!(matches!(BatchSampler::new(10, 0, false, 0), Err(DatasetError::InvalidParameter { .. })));
    let m = Mnist::load_small().unwrap();
    let sampler = BatchSampler::new(m.test.len(), 100, true, 1).unwrap();
    let first = sampler.epoch(0).next().unwrap();
    let items = collect_batch(&m.test, &first).unwrap();
    assert_eq!(items.len(), 100);
    for (i, (img, label)) in first.iter().zip(&items) {
        assert_eq!(img.as_slice(), m.test.image(*i).unwrap());
        assert_eq!(Some(*label), m.test.label(*i));
    }
    assert!(matches!(collect_batch(&m.test, &[0, 5000]), Err(DatasetError::OutOfRange { index: 5000, .. })));
    assert_eq!(m.test.len(), Dataset::len(&m.test));
}
