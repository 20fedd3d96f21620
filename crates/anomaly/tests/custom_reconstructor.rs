//! A reconstructor defined outside the crate — a local-mean filter with its own error type —
//! runs through the whole detector (tiling, maps, calibration, evaluation with image AUROC,
//! pixel AUROC and AUPRO), and its failures come back with the model's typed error as the source.

use latent_anomaly::ParamGuard;
use latent_anomaly::{
    AnomalyError, Detector, DetectorParams, EvalParams, MapParams, Reconstructor, Result, TestSet, evaluate, metrics,
};
use latent_linalg::Tensor4;
use std::error::Error as _;

/// The model's own error type (not `AnomalyError`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum LocalMeanError {
    /// The image is smaller than the window.
    #[error("a {window}×{window} window does not fit in a {h}×{w} image")]
    TooSmall { window: usize, h: usize, w: usize },
}

/// Reconstructs every pixel by the mean of its `(2r + 1) × (2r + 1)` neighbourhood (indices
/// clamped at the border): nearly exact on smooth images, poor on small spots.
struct LocalMean {
    radius: usize,
}

impl LocalMean {
    fn filter(&self, x: &Tensor4<f64>) -> std::result::Result<Tensor4<f64>, LocalMeanError> {
        let [_, _, h, w] = x.shape();
        let (r, window) = (self.radius as isize, 2 * self.radius + 1);
        if h < window || w < window {
            return Err(LocalMeanError::TooSmall { window, h, w });
        }
        let mut y = x.clone();
        for (src, dst) in x.as_slice().chunks_exact(h * w).zip(y.as_mut_slice().chunks_exact_mut(h * w)) {
            for i in 0..h as isize {
                for j in 0..w as isize {
                    let mut s = 0.0;
                    for di in -r..=r {
                        for dj in -r..=r {
                            let (ii, jj) = ((i + di).clamp(0, h as isize - 1), (j + dj).clamp(0, w as isize - 1));
                            s += src[ii as usize * w + jj as usize];
                        }
                    }
                    dst[i as usize * w + j as usize] = s / (window * window) as f64;
                }
            }
        }
        Ok(y)
    }
}

impl Reconstructor<f64> for LocalMean {
    fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
        self.filter(x).map_err(|e| AnomalyError::reconstructor("local mean", e))
    }
}

/// Smooth normal images: slow sinusoids of varying orientation and phase.
fn smooth(n: usize, side: usize, seed: usize) -> Tensor4<f64> {
    Tensor4::from_fn([n, 1, side, side], |[k, _, i, j]| {
        let t = (k + seed) as f64;
        let (c, s) = ((0.7 * t).cos(), (0.7 * t).sin());
        0.5 + 0.3 * (std::f64::consts::TAU * (c * i as f64 + s * j as f64) / 16.0 + t).sin()
    })
    .unwrap()
}

/// 4 normal test images and 4 defective ones (two bright 3×3 spots, two dark 2×4 bars), masks and
/// defect names.
fn test_set(side: usize) -> TestSet<f64> {
    let mut images = smooth(8, side, 100);
    let mut masks = vec![false; 8 * side * side];
    let mut defects = vec!["good".to_string(); 4];
    for (k, (kind, y0, x0, hh, ww, delta)) in
        [("spot", 5, 7, 3, 3, 0.6), ("spot", 15, 3, 3, 3, 0.6), ("bar", 9, 12, 2, 4, -0.5), ("bar", 2, 2, 2, 4, -0.5)]
            .into_iter()
            .enumerate()
    {
        let n = 4 + k;
        defects.push(kind.to_string());
        for y in y0..y0 + hh {
            for x in x0..x0 + ww {
                *images.get_mut([n, 0, y, x]).unwrap() += delta;
                masks[(n * side + y) * side + x] = true;
            }
        }
    }
    TestSet { images, masks, defects }
}

#[test]
fn a_user_defined_reconstructor_runs_the_whole_detector() {
    let side = 20;
    let test = test_set(side);
    let model = LocalMean { radius: 1 };
    // whole images and 12×12 tiles every 4 px: the local mean of a tile differs from the one of
    // the image only near the tile borders, so both localise the defects
    for tiles in [None, Some((12, 12, 4))] {
        let mut p = DetectorParams::new().map(MapParams::new().smoothing(1.0)).batch_size(3);
        if let Some((h, w, s)) = tiles {
            p = p.tiles(h, w, s);
        }
        let det = Detector::new(&model, p.check().unwrap());
        // maps: without tiling the squared error of the model's own reconstruction, smoothed
        let a = det.analyze(&test.images).unwrap();
        assert_eq!(a.maps.shape(), [8, 1, side, side]);
        if tiles.is_none() {
            assert_eq!(a.reconstruction, model.filter(&test.images).unwrap());
        }
        // calibration on held-out normal images
        let cal = det.calibrate(&smooth(6, side, 200), 0.99).unwrap();
        assert!(cal.pixel > 0.0 && cal.image >= cal.pixel);
        // evaluation: every metric, overall and per defect type
        let e = evaluate(&det, &test, &EvalParams::new().check().unwrap()).unwrap();
        let r = &e.report;
        assert_eq!((r.n_normal, r.n_anomalous), (4, 4));
        assert_eq!(r.image_auroc, 1.0, "{tiles:?}");
        assert!(r.pixel_auroc > 0.95, "{tiles:?}: pixel AUROC {}", r.pixel_auroc);
        assert!(r.aupro > 0.8, "{tiles:?}: AUPRO {}", r.aupro);
        assert_eq!(
            r.per_defect.iter().map(|d| (d.defect.as_str(), d.count)).collect::<Vec<_>>(),
            [("spot", 2), ("bar", 2)]
        );
        // the report's numbers are the metrics of the returned maps and scores
        assert_eq!(e.maps, a.maps);
        assert_eq!(e.scores, a.scores);
        let shape = [8, side, side];
        assert_eq!(r.pixel_auroc, metrics::pixel_auroc(e.maps.as_slice(), &test.masks, shape).unwrap());
        assert_eq!(
            r.aupro,
            metrics::aupro(e.maps.as_slice(), &test.masks, shape, 0.3, metrics::Connectivity::Eight).unwrap()
        );
        assert_eq!(r.image_auroc, metrics::auroc(&e.scores, &test.anomalous()).unwrap());
    }
    // the provided per-sample error: the defective images are reconstructed worse
    let err = model.reconstruction_errors(&test.images).unwrap();
    assert!(err[..4].iter().all(|&n| err[4..].iter().all(|&d| d > n)), "{err:?}");
}

#[test]
fn a_failing_reconstructor_keeps_its_own_error_as_the_source() {
    let model = LocalMean { radius: 2 };
    let tiny = Tensor4::<f64>::zeros([2, 1, 4, 9]).unwrap();
    let expected = LocalMeanError::TooSmall { window: 5, h: 4, w: 9 };
    let check = |e: AnomalyError| {
        let AnomalyError::Reconstructor { model, source } = &e else { panic!("not a reconstructor error: {e:?}") };
        assert_eq!(*model, "local mean");
        assert_eq!(source.downcast_ref::<LocalMeanError>(), Some(&expected));
        // the standard error chain reaches the same value
        assert_eq!(e.source().unwrap().downcast_ref::<LocalMeanError>(), Some(&expected));
        assert!(e.to_string().contains("local mean") && e.to_string().contains("does not fit"), "{e}");
    };
    check(model.reconstruct(&tiny).unwrap_err());
    check(model.reconstruction_errors(&tiny).unwrap_err());
    // through a detector, its evaluation, and a boxed trait object
    let det = Detector::new(&model, DetectorParams::new().check().unwrap());
    check(det.analyze(&tiny).unwrap_err());
    let mut masks = vec![false; 2 * 4 * 9];
    masks[40] = true;
    let test = TestSet { images: tiny.clone(), masks, defects: vec!["good".into(), "spot".into()] };
    check(evaluate(&det, &test, &EvalParams::new().check().unwrap()).unwrap_err());
    let boxed: Box<dyn Reconstructor<f64>> = Box::new(LocalMean { radius: 2 });
    let det = Detector::new(boxed, DetectorParams::new().tiles(4, 9, 2).check().unwrap());
    check(det.reconstruct(&Tensor4::zeros([1, 1, 6, 12]).unwrap()).unwrap_err());
}
