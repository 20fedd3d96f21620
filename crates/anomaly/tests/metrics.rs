//! Metrics against brute force and hand-computed cases; bad input is a typed error.

use latent_anomaly::AnomalyError;
use latent_anomaly::metrics::{
    Connectivity, aupro, auroc, connected_components, f1_max, pixel_auroc, pro_curve, quantile, roc_curve,
};
use proptest::prelude::*;

/// P(score⁺ > score⁻) + ½·P(tie) by counting every (anomalous, normal) pair.
fn brute_auroc(s: &[f64], l: &[bool]) -> f64 {
    let (mut num, mut pairs) = (0.0, 0.0);
    for i in 0..s.len() {
        for j in 0..s.len() {
            if l[i] && !l[j] {
                pairs += 1.0;
                if s[i] > s[j] {
                    num += 1.0;
                } else if s[i] == s[j] {
                    num += 0.5;
                }
            }
        }
    }
    num / pairs
}

fn brute_f1(s: &[f64], l: &[bool]) -> f64 {
    let pos = l.iter().filter(|&&x| x).count() as f64;
    s.iter()
        .map(|&t| {
            let tp = s.iter().zip(l).filter(|(v, y)| **v >= t && **y).count() as f64;
            let fp = s.iter().zip(l).filter(|(v, y)| **v >= t && !**y).count() as f64;
            let (p, r) = (tp / (tp + fp), tp / pos);
            if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }
        })
        .fold(0.0, f64::max)
}

/// Scores drawn from a few levels (many ties) or continuous, with both classes present.
fn scored_labels() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    (2usize..40, any::<bool>()).prop_flat_map(|(n, few_levels)| {
        let score = if few_levels { (0u8..4).prop_map(f64::from).boxed() } else { (-1e3f64..1e3).boxed() };
        (prop::collection::vec(score, n), prop::collection::vec(any::<bool>(), n)).prop_map(|(s, mut l)| {
            l[0] = true;
            l[1] = false;
            (s, l)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn auroc_matches_the_pairwise_count((s, l) in scored_labels()) {
        let a = auroc(&s, &l).unwrap();
        let b = brute_auroc(&s, &l);
        prop_assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        // the trapezoidal area under the exact ROC curve is the same number
        let r = roc_curve(&s, &l).unwrap();
        prop_assert!((r.area() - b).abs() < 1e-12);
        prop_assert_eq!((r.fpr[0], r.tpr[0]), (0.0, 0.0));
        prop_assert_eq!((*r.fpr.last().unwrap(), *r.tpr.last().unwrap()), (1.0, 1.0));
        // f32 scores give the same answer when they are exactly representable
        let s32: Vec<f32> = s.iter().map(|&v| v.round() as f32).collect();
        let s64: Vec<f64> = s32.iter().map(|&v| f64::from(v)).collect();
        prop_assert!((auroc(&s32, &l).unwrap() - brute_auroc(&s64, &l)).abs() < 1e-12);
    }

    #[test]
    fn f1_max_matches_brute_force((s, l) in scored_labels()) {
        let f = f1_max(&s, &l).unwrap();
        prop_assert!((f.f1 - brute_f1(&s, &l)).abs() < 1e-12);
        // the reported threshold reproduces the reported F1
        let tp = s.iter().zip(&l).filter(|(v, y)| **v >= f.threshold && **y).count() as f64;
        let fp = s.iter().zip(&l).filter(|(v, y)| **v >= f.threshold && !**y).count() as f64;
        let pos = l.iter().filter(|&&x| x).count() as f64;
        prop_assert!((2.0 * tp / (tp + fp + pos) - f.f1).abs() < 1e-12);
    }

    #[test]
    fn auroc_is_invariant_to_monotone_maps((s, l) in scored_labels()) {
        let t: Vec<f64> = s.iter().map(|v| (v / 100.0).exp()).collect();
        prop_assert!((auroc(&s, &l).unwrap() - auroc(&t, &l).unwrap()).abs() < 1e-12);
    }
}

#[test]
fn auroc_extremes_and_ties() {
    assert_eq!(auroc(&[2.0f64, 1.0], &[true, false]).unwrap(), 1.0);
    assert_eq!(auroc(&[1.0f64, 2.0], &[true, false]).unwrap(), 0.0);
    assert_eq!(auroc(&[1.0f64, 1.0, 1.0], &[true, false, false]).unwrap(), 0.5);
}

#[test]
fn aupro_of_a_hand_computed_case() {
    // Two 1×6 images. Image 0 holds two components: A = pixels {0, 1}, B = pixel {4}.
    // Image 1 is normal. Normal pixels: 2, 3, 5 of image 0 and all 6 of image 1 → 9.
    let masks = [true, true, false, false, true, false, false, false, false, false, false, false];
    let maps = [0.9, 0.5, 0.7, 0.1, 0.8, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1, 0.6f64];
    // Thresholds, descending (PRO = mean of overlap(A), overlap(B)):
    //   0.9 → A ½, B 0 → PRO ¼, FPR 0
    //   0.8 → A ½, B 1 → PRO ¾, FPR 0
    //   0.7 → FPR 1/9 (pixel 2), PRO ¾
    //   0.6 → FPR 2/9 (image 1, pixel 5), PRO ¾
    //   0.5 → A 1 → PRO 1, FPR 2/9
    //   then only normal pixels: 0.3 → 3/9, 0.2 → 4/9, 0.1 → 1
    let c = pro_curve(&maps, &masks, [2, 1, 6], Connectivity::Eight).unwrap();
    assert_eq!(c.regions, 2);
    let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(close(&c.fpr, &[0.0, 0.0, 0.0, 1.0 / 9.0, 2.0 / 9.0, 2.0 / 9.0, 3.0 / 9.0, 4.0 / 9.0, 1.0]), "{:?}", c.fpr);
    assert!(close(&c.pro, &[0.0, 0.25, 0.75, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0]), "{:?}", c.pro);
    // Area up to FPR 0.3: ¾·(2/9) (flat at ¾ from 0 to 2/9) + 1·(0.3 − 2/9) (the vertical step
    // from ¾ to 1 at FPR 2/9 adds no area); divided by 0.3.
    let expected = (0.75 * 2.0 / 9.0 + (0.3 - 2.0 / 9.0)) / 0.3;
    let a = aupro(&maps, &masks, [2, 1, 6], 0.3, Connectivity::Eight).unwrap();
    assert!((a - expected).abs() < 1e-12, "{a} vs {expected}");
    // with the whole curve: the interpolation at the limit and the tail are exact too
    let full = aupro(&maps, &masks, [2, 1, 6], 1.0, Connectivity::Eight).unwrap();
    let expected_full = 0.75 * 2.0 / 9.0 + (1.0 - 2.0 / 9.0);
    assert!((full - expected_full).abs() < 1e-12);
    // a perfect map gives 1, an inverted one 0
    let perfect: Vec<f64> = masks.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    assert_eq!(aupro(&perfect, &masks, [2, 1, 6], 0.3, Connectivity::Eight).unwrap(), 1.0);
    let inverted: Vec<f64> = perfect.iter().map(|v| 1.0 - v).collect();
    assert_eq!(aupro(&inverted, &masks, [2, 1, 6], 0.3, Connectivity::Eight).unwrap(), 0.0);
}

#[test]
fn components_follow_the_connectivity() {
    // a diagonal pair is one component with 8-connectivity and two with 4-connectivity,
    // and AUPRO weighs components equally whatever their size
    let masks = [true, false, false, true];
    let maps = [1.0, 0.0, 0.5, 0.0f64];
    let four = pro_curve(&maps, &masks, [1, 2, 2], Connectivity::Four).unwrap();
    let eight = pro_curve(&maps, &masks, [1, 2, 2], Connectivity::Eight).unwrap();
    assert_eq!((four.regions, eight.regions), (2, 1));
    let (labels, n) = connected_components(&[true, true, false, true], 4, 1, Connectivity::Eight).unwrap();
    assert_eq!((labels, n), (vec![1, 1, 0, 2], 2));
}

#[test]
fn pixel_auroc_counts_every_pixel() {
    let maps = [0.1f32, 0.9, 0.2, 0.3];
    let masks = [false, true, false, true];
    assert_eq!(pixel_auroc(&maps, &masks, [1, 2, 2]).unwrap(), 1.0);
    assert!(matches!(
        pixel_auroc(&maps, &masks, [1, 3, 2]),
        Err(AnomalyError::LengthMismatch { expected: 6, got: 4, .. })
    ));
}

#[test]
fn quantile_interpolates_like_numpy() {
    let v = [10.0f64, 20.0, 30.0, 40.0, 50.0];
    assert_eq!(quantile(&v, 0.0).unwrap(), 10.0);
    assert_eq!(quantile(&v, 0.1).unwrap(), 14.0);
    assert_eq!(quantile(&v, 0.99).unwrap(), 49.6);
    assert!(matches!(quantile(&v, 1.5), Err(AnomalyError::InvalidParameter { name: "q", .. })));
}

#[test]
fn bad_input_is_a_typed_error() {
    let nan = [0.1, f64::NAN, 0.3];
    let l = [true, false, true];
    assert!(matches!(auroc(&nan, &l), Err(AnomalyError::NonFinite { index: 1, .. })));
    assert!(matches!(f1_max(&[f64::INFINITY, 0.0], &[true, false]), Err(AnomalyError::NonFinite { index: 0, .. })));
    assert!(matches!(auroc(&[0.1f64, 0.2], &l), Err(AnomalyError::LengthMismatch { expected: 2, got: 3, .. })));
    assert!(matches!(auroc(&[0.1f64, 0.2], &[true, true]), Err(AnomalyError::SingleClass { anomalous: true, .. })));
    assert!(matches!(auroc(&[0.1f64, 0.2], &[false, false]), Err(AnomalyError::SingleClass { anomalous: false, .. })));
    assert!(matches!(roc_curve::<f64>(&[], &[]), Err(AnomalyError::Empty { .. })));
    assert!(matches!(f1_max(&[0.1f64, 0.2], &[false, false]), Err(AnomalyError::SingleClass { .. })));
    assert!(matches!(
        aupro(&[0.1f64, 0.2], &[false, false], [1, 1, 2], 0.3, Connectivity::Eight),
        Err(AnomalyError::SingleClass { .. })
    ));
    assert!(matches!(
        aupro(&[0.1f64, 0.2], &[true, false], [1, 1, 2], 0.0, Connectivity::Eight),
        Err(AnomalyError::InvalidParameter { name: "fpr_limit", .. })
    ));
    // messages name the problem
    let e = auroc(&[0.1f64, 0.2], &[true, true]).unwrap_err().to_string();
    assert!(e.contains("auroc") && e.contains("anomalous"), "{e}");
}
