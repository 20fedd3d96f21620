//! Map normalisation by the statistics of normal data: calibration on normal data, both
//! directions of anomaly, exact regions, per-pixel statistics, scale invariance, validation and
//! the detector integration.

use latent_anomaly::ParamGuard;
use latent_anomaly::{
    AnomalyError, Detector, DetectorParams, MapNormalizer, NormalizerParams, Reconstructor, Result, Scope, Side,
    metrics::pixel_auroc,
};
use latent_linalg::Tensor4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Squared-error-like maps: `(level · g)²` with `g` standard normal and a per-image level in
/// `[0.5, 1.5]` (busy texture that is never reconstructed exactly, varying contrast).
fn normal_maps(n: usize, h: usize, w: usize, seed: u64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let levels: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
    Tensor4::from_fn([n, 1, h, w], |[i, _, _, _]| {
        // Box–Muller
        let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
        let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (levels[i] * g).powi(2)
    })
    .unwrap()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

#[test]
fn z_scores_of_fresh_normal_maps_are_standardised() {
    let norm = NormalizerParams::new().check().unwrap().fit(&normal_maps(40, 24, 24, 1)).unwrap();
    // on the fitting data: median 0 by construction
    let z_fit = norm.z_scores(&normal_maps(40, 24, 24, 1)).unwrap();
    let mut v: Vec<f64> = z_fit.as_slice().to_vec();
    v.sort_unstable_by(f64::total_cmp);
    assert!(v[v.len() / 2].abs() < 1e-2, "median {}", v[v.len() / 2]);
    // on fresh normal maps: about zero mean and unit spread
    let z = norm.z_scores(&normal_maps(40, 24, 24, 2)).unwrap();
    let (m, s) = mean_std(z.as_slice());
    assert!(m.abs() < 0.15, "mean {m}");
    assert!((0.8..1.25).contains(&s), "std {s}");
    // the two-sided map is |z|
    let a = norm.apply(&normal_maps(2, 24, 24, 3)).unwrap();
    let zz = norm.z_scores(&normal_maps(2, 24, 24, 3)).unwrap();
    for (x, y) in a.as_slice().iter().zip(zz.as_slice()) {
        assert_eq!(*x, y.abs());
    }
}

#[test]
fn too_much_and_too_little_error_are_both_anomalous() {
    let normal = normal_maps(20, 32, 32, 4);
    let mut test = normal_maps(1, 32, 32, 5);
    let mut truth = vec![false; 32 * 32];
    // an exactly reconstructed (flat, missing-texture) block and a block with 20× the error
    for y in 4..12 {
        for x in 4..12 {
            *test.get_mut([0, 0, y, x]).unwrap() = 0.0;
            truth[y * 32 + x] = true;
        }
        for x in 20..28 {
            *test.get_mut([0, 0, y + 16, x]).unwrap() *= 20.0;
            truth[(y + 16) * 32 + x] = true;
        }
    }
    let two = NormalizerParams::new().check().unwrap().fit(&normal).unwrap();
    let a = two.apply(&test).unwrap();
    let auc = pixel_auroc(a.as_slice(), &truth, [1, 32, 32]).unwrap();
    assert!(auc > 0.97, "two-sided pixel AUROC {auc}");
    // the raw map only sees the high block: the flat block scores below every normal pixel
    let raw = pixel_auroc(test.as_slice(), &truth, [1, 32, 32]).unwrap();
    assert!(raw < auc);
    // the centre of the exact block is strongly anomalous two-sided and exactly zero one-sided-high
    assert!(a.get([0, 0, 8, 8]).unwrap() > 3.0);
    let high = NormalizerParams::new().side(Side::High).check().unwrap().fit(&normal).unwrap();
    let h = high.apply(&test).unwrap();
    assert_eq!(h.get([0, 0, 8, 8]), Some(0.0));
    assert!(h.get([0, 0, 24, 24]).unwrap() > 3.0);
    let low = NormalizerParams::new().side(Side::Low).check().unwrap().fit(&normal).unwrap();
    let l = low.apply(&test).unwrap();
    assert_eq!(l.get([0, 0, 24, 24]), Some(0.0));
    assert!(l.get([0, 0, 8, 8]).unwrap() > 3.0);
    assert!(a.as_slice().iter().chain(h.as_slice()).chain(l.as_slice()).all(|&v| v >= 0.0));
}

#[test]
fn a_map_at_the_normal_median_scores_zero() {
    // constant normal error: every log-energy equals the median, spread at its floor
    let normal = Tensor4::<f64>::full([3, 1, 8, 8], 0.25).unwrap();
    let norm = NormalizerParams::new().check().unwrap().fit(&normal).unwrap();
    assert!((norm.median() - (0.25f64 + 0.0025).ln()).abs() < 1e-12);
    assert!((norm.energy_floor() - 0.0025).abs() < 1e-15);
    let z = norm.apply(&Tensor4::<f64>::full([2, 1, 8, 8], 0.25).unwrap()).unwrap();
    assert!(z.as_slice().iter().all(|&v| v.abs() < 1e-9), "{:?}", &z.as_slice()[..4]);
    // and it stays finite for an exactly reconstructed image
    let z0 = norm.apply(&Tensor4::<f64>::zeros([1, 1, 8, 8]).unwrap()).unwrap();
    assert!(z0.as_slice().iter().all(|v| v.is_finite() && *v > 100.0));
}

#[test]
fn normalised_maps_do_not_depend_on_the_units_of_the_map() {
    let normal = normal_maps(10, 16, 16, 6);
    let test = normal_maps(2, 16, 16, 7);
    let scaled = |t: &Tensor4<f64>, c: f64| {
        let mut u = t.clone();
        u.map_inplace(|v| v * c);
        u
    };
    for side in [Side::TwoSided, Side::High, Side::Low] {
        let cfg = NormalizerParams::new().side(side).window(1.5).check().unwrap();
        let a = cfg.fit(&normal).unwrap().apply(&test).unwrap();
        let b = cfg.fit(&scaled(&normal, 1e3)).unwrap().apply(&scaled(&test, 1e3)).unwrap();
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert!((x - y).abs() < 1e-9, "{x} vs {y}");
        }
    }
}

#[test]
fn per_pixel_statistics_follow_position_dependent_normal_error() {
    // aligned objects: the left half is always reconstructed badly, the right half well
    let normal = {
        let base = normal_maps(12, 16, 16, 8);
        Tensor4::from_fn([12, 1, 16, 16], |[i, _, y, x]| {
            base.get([i, 0, y, x]).unwrap() * if x < 8 { 1.0 } else { 0.01 }
        })
        .unwrap()
    };
    // a fresh map whose right half is reconstructed as badly as the left half: anomalous for
    // aligned objects
    let fresh = normal_maps(1, 16, 16, 9);
    let per = NormalizerParams::new().scope(Scope::PerPixel).window(1.0).check().unwrap().fit(&normal).unwrap();
    let global = NormalizerParams::new().window(1.0).check().unwrap().fit(&normal).unwrap();
    let half_means = |m: &MapNormalizer| {
        let a = m.apply(&fresh).unwrap();
        let half = |right: bool| {
            let v: Vec<f64> = (0..16 * 16)
                .filter(|k| (k % 16 >= 10) == right && (k % 16 < 6 || right))
                .map(|k| a.as_slice()[k])
                .collect();
            mean_std(&v).0
        };
        (half(false), half(true))
    };
    let (pl, pr) = half_means(&per);
    let (_, gr) = half_means(&global);
    // per-pixel statistics know that the right half is normally reconstructed well; pooled
    // statistics see an error level that is common in the normal data
    assert!(pr > 3.0 && pl < 1.5, "per-pixel: left {pl}, right {pr}");
    assert!(pr > 2.0 * gr, "per-pixel {pr} vs global {gr}");
    // per-pixel maps must have the fitted size
    assert!(matches!(
        per.apply(&Tensor4::<f64>::full([1, 1, 16, 12], 1.0).unwrap()),
        Err(AnomalyError::ShapeMismatch { .. })
    ));
    // pooled maps may have any size
    assert!(global.apply(&Tensor4::<f64>::full([1, 1, 16, 12], 1.0).unwrap()).is_ok());
    // per-pixel statistics need at least three maps
    let cfg = NormalizerParams::new().scope(Scope::PerPixel).check().unwrap();
    assert!(matches!(
        cfg.fit(&normal_maps(2, 8, 8, 1)),
        Err(AnomalyError::InvalidParameter { name: "normal maps", .. })
    ));
}

#[test]
fn bad_parameters_and_inputs_are_typed_errors() {
    let name = |p: NormalizerParams| match p.check() {
        Err(AnomalyError::InvalidParameter { name, .. }) => name,
        other => panic!("expected an invalid parameter, got {other:?}"),
    };
    assert_eq!(name(NormalizerParams::new().window(0.0)), "window");
    assert_eq!(name(NormalizerParams::new().window(f64::NAN)), "window");
    assert_eq!(name(NormalizerParams::new().window(2000.0)), "window");
    assert_eq!(name(NormalizerParams::new().floor(0.0)), "floor");
    assert_eq!(name(NormalizerParams::new().floor(1.5)), "floor");
    assert_eq!(name(NormalizerParams::new().floor(f64::INFINITY)), "floor");
    let cfg = NormalizerParams::new().check().unwrap();
    assert!(matches!(
        cfg.fit(&Tensor4::<f64>::zeros([2, 1, 4, 4]).unwrap()),
        Err(AnomalyError::InvalidParameter { name: "normal maps", .. })
    ));
    let mut neg = Tensor4::<f64>::full([2, 1, 4, 4], 1.0).unwrap();
    *neg.get_mut([1, 0, 2, 2]).unwrap() = -0.5;
    assert!(matches!(cfg.fit(&neg), Err(AnomalyError::InvalidParameter { name: "maps", .. })));
    let mut nan = Tensor4::<f64>::full([2, 1, 4, 4], 1.0).unwrap();
    *nan.get_mut([0, 0, 1, 1]).unwrap() = f64::NAN;
    assert!(matches!(cfg.fit(&nan), Err(AnomalyError::NonFinite { index: 5, .. })));
    let norm = cfg.fit(&normal_maps(2, 4, 4, 0)).unwrap();
    assert!(matches!(norm.apply(&nan), Err(AnomalyError::NonFinite { .. })));
    assert!(matches!(norm.apply(&neg), Err(AnomalyError::InvalidParameter { .. })));
    assert!(matches!(cfg.fit(&Tensor4::<f64>::zeros([0, 1, 4, 4]).unwrap()), Err(AnomalyError::Empty { .. })));
}

/// Replaces every pixel by its row mean: exact on images with constant rows.
struct RowMean;

impl Reconstructor<f64> for RowMean {
    fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
        let w = x.w();
        let mut y = x.clone();
        for row in y.as_mut_slice().chunks_mut(w) {
            let m = row.iter().sum::<f64>() / w as f64;
            row.iter_mut().for_each(|v| *v = m);
        }
        Ok(y)
    }
}

#[test]
fn detectors_fit_and_apply_the_normaliser() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // normal images: noise texture that RowMean never reconstructs
    let normal = Tensor4::from_fn([8, 1, 16, 16], |_| rng.random_range(0.2..0.8)).unwrap();
    let raw = Detector::new(RowMean, DetectorParams::new().check().unwrap());
    let cfg = NormalizerParams::new().check().unwrap();
    let det = raw.normalize_on(&normal, &cfg).unwrap();
    let fitted = det.normalizer().unwrap().clone();
    assert_eq!(fitted, cfg.fit(&det.with_normalizer(None).anomaly_maps(&normal).unwrap()).unwrap());
    // a test image whose rows are constant inside a block (texture lost) is flagged there
    let det = Detector::new(RowMean, DetectorParams::new().check().unwrap()).with_normalizer(Some(fitted));
    let mut test = Tensor4::from_fn([1, 1, 16, 16], |_| rng.random_range(0.2..0.8)).unwrap();
    for y in 0..16 {
        for x in 0..16 {
            if y >= 8 {
                *test.get_mut([0, 0, y, x]).unwrap() = 0.5;
            }
        }
    }
    let a = det.analyze(&test).unwrap();
    assert!(a.maps.get([0, 0, 13, 8]).unwrap() > 5.0);
    assert!(a.maps.get([0, 0, 2, 8]).unwrap() < 3.0);
    assert_eq!(a.scores[0], a.maps.as_slice().iter().copied().fold(f64::NEG_INFINITY, f64::max));
    // calibration runs on the normalised maps: the median |z| of normal data is below 1
    let cal = det.calibrate(&normal, 0.5).unwrap();
    assert!(cal.pixel < 1.0, "{}", cal.pixel);
    // an exact reconstructor has no error level to normalise by
    struct Exact;
    impl Reconstructor<f64> for Exact {
        fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
            Ok(x.clone())
        }
    }
    let exact = Detector::new(Exact, DetectorParams::new().check().unwrap());
    assert!(matches!(exact.normalize_on(&normal, &cfg), Err(AnomalyError::InvalidParameter { .. })));
}
