//! Element-wise and reduction helpers.

use latent_linalg::ops::*;
use latent_linalg::{DMatrix, LinalgError};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn norms_match_naive(v in proptest::collection::vec(-10.0f64..10.0, 0..70000)) {
        let l2: f64 = v.iter().map(|x| x * x).sum();
        prop_assert!((norm2_sq(&v) - l2).abs() <= 1e-9 * (1.0 + l2));
        let l1: f64 = v.iter().map(|x| x.abs()).sum();
        prop_assert!((norm1(&v) - l1).abs() <= 1e-9 * (1.0 + l1));
        prop_assert_eq!(norm_inf(&v), v.iter().fold(0.0f64, |a, x| a.max(x.abs())));
        prop_assert!((dot(&v, &v).unwrap() - l2).abs() <= 1e-9 * (1.0 + l2));
    }

    #[test]
    fn thresholds_are_what_they_say(v in proptest::collection::vec(-5.0f64..5.0, 1..200), t in 0.0f64..3.0) {
        let mut s = v.clone();
        soft_threshold(&mut s, t).unwrap();
        let mut p = v.clone();
        soft_threshold_nonneg(&mut p, t).unwrap();
        let mut h = v.clone();
        hard_threshold(&mut h, t).unwrap();
        for i in 0..v.len() {
            prop_assert!((s[i] - v[i].signum() * (v[i].abs() - t).max(0.0)).abs() < 1e-12);
            prop_assert!((p[i] - (v[i] - t).max(0.0)).abs() < 1e-12);
            prop_assert_eq!(h[i], if v[i].abs() > t { v[i] } else { 0.0 });
        }
    }

    #[test]
    fn column_normalisation(rows in 1usize..20, cols in 1usize..20, seed in any::<u32>()) {
        let mut m = DMatrix::<f64>::from_fn(rows, cols, |i, j| (((i * 31 + j * 17) as u32 ^ seed) % 97) as f64 - 48.0);
        m.column_mut(0).fill(0.0);
        let before = column_norms(&m);
        let got = normalize_columns(&mut m, 1e-12).unwrap();
        prop_assert_eq!(before, got.clone());
        for (j, n) in column_norms(&m).iter().enumerate() {
            if got[j] > 1e-12 { prop_assert!((n - 1.0).abs() < 1e-12) } else { prop_assert_eq!(*n, 0.0) }
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut v = vec![1.0f64, 2.0];
    assert!(matches!(soft_threshold(&mut v, -1.0), Err(LinalgError::InvalidParameter { .. })));
    assert!(matches!(hard_threshold(&mut v, f64::NAN), Err(LinalgError::InvalidParameter { .. })));
    assert!(matches!(dot(&[1.0f64], &[1.0, 2.0]), Err(LinalgError::ShapeMismatch { .. })));
    assert!(matches!(axpy(1.0f64, &[1.0], &mut v), Err(LinalgError::ShapeMismatch { .. })));
    let mut m = DMatrix::from_element(2, 2, f64::INFINITY);
    assert!(matches!(normalize_columns(&mut m, 0.0), Err(LinalgError::NonFinite { index: 0, .. })));
    assert!(matches!(
        latent_linalg::check_finite("x", "y", &[0.0, f64::NAN]),
        Err(LinalgError::NonFinite { index: 1, .. })
    ));
}

#[test]
fn parallel_reductions_are_thread_count_independent() {
    let v: Vec<f32> = (0..200_000).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
    let run = |t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap().install(|| (norm2_sq(&v), norm1(&v)));
    assert_eq!(run(1), run(2));
}

mod persist {
    use latent_linalg::persist::*;
    use proptest::prelude::*;

    const MAGIC: [u8; 8] = *b"LTNTTEST";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip_and_every_corruption_is_an_error(v in proptest::collection::vec(any::<f64>(), 0..50), flip in any::<usize>(), cut in any::<usize>()) {
            let bytes = to_bytes(MAGIC, 2, &v).unwrap();
            let (ver, back): (u32, Vec<f64>) = from_bytes(&bytes, MAGIC, 2, "<t>".as_ref()).unwrap();
            prop_assert_eq!(ver, 2);
            prop_assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            let mut bad = bytes.clone();
            let i = flip % bad.len();
            bad[i] ^= 0x5A;
            prop_assert!(from_bytes::<Vec<f64>>(&bad, MAGIC, 2, "<t>".as_ref()).is_err());
            let c = cut % bytes.len();
            prop_assert!(from_bytes::<Vec<f64>>(&bytes[..c], MAGIC, 2, "<t>".as_ref()).is_err());
        }
    }

    #[test]
    fn newer_versions_and_huge_claims_are_refused() {
        let bytes = to_bytes(MAGIC, 3, &vec![1.0f32; 4]).unwrap();
        assert!(matches!(
            from_bytes::<Vec<f32>>(&bytes, MAGIC, 2, "m".as_ref()),
            Err(PersistError::Version { found: 3, supported: 2, .. })
        ));
        assert!(matches!(
            from_bytes::<Vec<f32>>(&bytes, *b"OTHERMGC", 3, "m".as_ref()),
            Err(PersistError::Format { .. })
        ));
        // a payload that claims a 10^12-element vector: bincode's length prefix is bounded by the bytes present
        let mut payload = Vec::new();
        payload.push(253u8); // bincode varint tag for u64
        payload.extend_from_slice(&1_000_000_000_000u64.to_le_bytes());
        let mut file = Vec::new();
        file.extend_from_slice(&MAGIC);
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        file.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
        file.extend_from_slice(&payload);
        assert!(from_bytes::<Vec<f64>>(&file, MAGIC, 1, "m".as_ref()).is_err());
    }

    #[test]
    fn atomic_save_and_load() {
        let dir = std::env::temp_dir().join(format!("latent-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.bin");
        save(&p, MAGIC, 1, &vec![1u8, 2, 3]).unwrap();
        save(&p, MAGIC, 1, &vec![4u8, 5]).unwrap();
        let (_, v): (u32, Vec<u8>) = load(&p, MAGIC, 1).unwrap();
        assert_eq!(v, vec![4, 5]);
        assert!(std::fs::read_dir(&dir).unwrap().count() == 1, "no temporary files left behind");
        assert!(matches!(load::<Vec<u8>>(&dir.join("missing"), MAGIC, 1), Err(PersistError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
