//! Detector, maps, tiling, evaluation and heatmaps with reconstructors whose behaviour is known.

use latent_anomaly::ParamGuard;
use latent_anomaly::heatmap::{compare_masks, heatmap_panel};
use latent_anomaly::{
    AnomalyError, Detector, DetectorParams, EvalParams, ImageScore, MapParams, Reconstructor, Result, RgbImage,
    SsimParams, TestSet, evaluate,
};
use latent_linalg::Tensor4;

/// Exact on images whose rows are constant: replaces every pixel by its row mean.
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

/// Returns its input.
struct Identity;

impl Reconstructor<f64> for Identity {
    fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
        Ok(x.clone())
    }
}

/// Returns a tensor of the wrong size.
struct Broken;

impl Reconstructor<f64> for Broken {
    fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
        Ok(Tensor4::zeros([x.n(), 1, 1, 1])?)
    }
}

/// Horizontal stripes: normal images for [`RowMean`] (values k/4, so row means are exact).
fn stripes(n: usize, h: usize, w: usize) -> Tensor4<f64> {
    Tensor4::from_fn([n, 1, h, w], |[i, _, y, _]| ((y * 3 + i) % 4) as f64 / 4.0).unwrap()
}

fn map_settings() -> Vec<MapParams> {
    vec![
        MapParams::new(),
        MapParams::new().smoothing(1.5).score(ImageScore::Mean),
        MapParams::new().ssim(SsimParams::new()),
        MapParams::new().ssim(SsimParams::new().window(7).uniform()).smoothing(2.0),
    ]
}

#[test]
fn maps_of_an_exact_reconstructor_are_zero_on_normal_data() {
    let normal = stripes(3, 20, 24);
    let mut odd = normal.clone();
    for y in 8..11 {
        for x in 5..8 {
            *odd.get_mut([1, 0, y, x]).unwrap() += 0.5;
        }
    }
    for map in map_settings() {
        for tiles in [None, Some((12, 16, 5))] {
            let mut p = DetectorParams::new().map(map).batch_size(4);
            if let Some((h, w, s)) = tiles {
                p = p.tiles(h, w, s);
            }
            let det = Detector::new(RowMean, p.check().unwrap());
            let a = det.analyze(&normal).unwrap();
            assert_eq!(a.maps.shape(), [3, 1, 20, 24]);
            assert!(a.maps.as_slice().iter().all(|&v| v == 0.0), "{map:?} {tiles:?}");
            assert!(a.scores.iter().all(|&s| s == 0.0));
            // the defect: the image with it scores above the normal ones, and its map peaks on it
            let b = det.analyze(&odd).unwrap();
            assert!(b.scores[1] > 0.0 && b.scores[0] == 0.0 && b.scores[2] == 0.0, "{:?}", b.scores);
            let m = b.maps.sample(1).unwrap();
            let argmax = (0..m.len()).max_by(|&i, &j| m[i].total_cmp(&m[j])).unwrap();
            let (y, x) = (argmax / 24, argmax % 24);
            assert!(y.abs_diff(9) <= 3, "{map:?} {tiles:?}: peak at ({y}, {x})");
        }
    }
}

#[test]
fn tiling_covers_every_pixel_and_averages_overlaps() {
    let x = Tensor4::from_fn([2, 2, 13, 17], |[n, c, i, j]| (n * 1000 + c * 100 + i * 17 + j) as f64).unwrap();
    for (th, tw, s) in [(5, 5, 2), (13, 17, 1), (4, 6, 4), (7, 3, 3)] {
        let det = Detector::new(Identity, DetectorParams::new().tiles(th, tw, s).batch_size(3).check().unwrap());
        assert_eq!(det.reconstruct(&x).unwrap(), x, "tiles {th}x{tw} stride {s}");
    }
    let det = Detector::new(Identity, DetectorParams::new().tiles(14, 5, 2).check().unwrap());
    assert!(matches!(det.reconstruct(&x), Err(AnomalyError::ShapeMismatch { .. })));
}

#[test]
fn detector_errors_are_typed() {
    assert!(matches!(
        DetectorParams::new().batch_size(0).check(),
        Err(AnomalyError::InvalidParameter { name: "batch_size", .. })
    ));
    assert!(matches!(
        DetectorParams::new().tiles(4, 4, 5).check(),
        Err(AnomalyError::InvalidParameter { name: "tiling.stride", .. })
    ));
    assert!(matches!(
        MapParams::new().smoothing(0.0).check(),
        Err(AnomalyError::InvalidParameter { name: "smoothing", .. })
    ));
    let det = Detector::new(Identity, DetectorParams::new().check().unwrap());
    let mut x = stripes(1, 4, 4);
    *x.get_mut([0, 0, 2, 3]).unwrap() = f64::INFINITY;
    assert!(matches!(det.analyze(&x), Err(AnomalyError::NonFinite { index: 11, .. })));
    let broken = Detector::new(Broken, DetectorParams::new().check().unwrap());
    assert!(matches!(broken.analyze(&stripes(1, 4, 4)), Err(AnomalyError::ShapeMismatch { .. })));
    assert!(matches!(det.calibrate(&stripes(1, 4, 4), 2.0), Err(AnomalyError::InvalidParameter { name: "q", .. })));
}

#[test]
fn calibration_takes_quantiles_of_normal_data() {
    let det =
        Detector::new(RowMean, DetectorParams::new().map(MapParams::new().score(ImageScore::Mean)).check().unwrap());
    // normal data with one noisy pixel per image of growing size
    let mut x = stripes(5, 6, 6);
    for i in 0..5 {
        *x.get_mut([i, 0, 2, 2]).unwrap() += 0.1 * (i + 1) as f64;
    }
    let scores = det.scores(&x).unwrap();
    let cal = det.calibrate(&x, 1.0).unwrap();
    assert_eq!(cal.image, scores.iter().copied().fold(f64::MIN, f64::max));
    let cal = det.calibrate(&x, 0.5).unwrap();
    let mut s = scores.clone();
    s.sort_by(f64::total_cmp);
    assert_eq!(cal.image, s[2]);
    assert!(cal.pixel >= 0.0);
}

#[test]
fn evaluation_of_a_perfect_detector() {
    let mut images = stripes(6, 10, 10);
    let mut masks = vec![false; 6 * 100];
    let defects: Vec<String> = ["good", "good", "good", "spot", "spot", "line"].iter().map(|s| s.to_string()).collect();
    for (i, pixels) in [(3, vec![(2, 2), (2, 3)]), (4, vec![(7, 7)]), (5, (0..10).map(|y| (y, 5)).collect::<Vec<_>>())]
    {
        for (y, x) in pixels {
            // a column of bright pixels breaks the row structure wherever it is
            *images.get_mut([i, 0, y, x]).unwrap() = 5.0;
            masks[i * 100 + y * 10 + x] = true;
        }
    }
    // the row mean spreads a defect over its row, but the error is largest on the defect itself
    let det = Detector::new(RowMean, DetectorParams::new().check().unwrap());
    let test = TestSet { images, masks, defects };
    let e = evaluate(&det, &test, &EvalParams::new().check().unwrap()).unwrap();
    let r = &e.report;
    assert_eq!((r.n_normal, r.n_anomalous), (3, 3));
    assert_eq!(r.image_auroc, 1.0);
    assert_eq!((r.pixel_auroc, r.aupro, r.image_f1.f1, r.pixel_f1.f1), (1.0, 1.0, 1.0, 1.0));
    assert_eq!(
        r.per_defect.iter().map(|d| (d.defect.as_str(), d.count)).collect::<Vec<_>>(),
        vec![("spot", 2), ("line", 1)]
    );
    assert_eq!(e.maps.shape(), [6, 1, 10, 10]);
    assert_eq!(e.scores.len(), 6);
    // an inconsistent test set is rejected
    let bad = TestSet { images: stripes(2, 4, 4), masks: vec![false; 31], defects: vec!["good".into(); 2] };
    assert!(matches!(
        evaluate(&det, &bad, &EvalParams::new().check().unwrap()),
        Err(AnomalyError::LengthMismatch { .. })
    ));
    let normal_only = TestSet { images: stripes(2, 4, 4), masks: vec![false; 32], defects: vec!["good".into(); 2] };
    assert!(matches!(
        evaluate(&det, &normal_only, &EvalParams::new().check().unwrap()),
        Err(AnomalyError::SingleClass { .. })
    ));
}

#[test]
fn heatmaps_render_and_write() {
    let (w, h) = (6, 5);
    let img: Vec<f64> = (0..w * h).map(|k| k as f64 / 30.0).collect();
    let mut map = vec![0.0; w * h];
    map[7] = 2.0;
    let mut truth = vec![false; w * h];
    truth[7] = true;
    let p = heatmap_panel(&img, &img, &map, w, h, (0.0, 2.0), 1.0, Some(&truth)).unwrap();
    assert_eq!((p.width, p.height), (4 * w + 5 * 2, h + 4));
    assert_eq!(p.data.len(), 3 * p.width * p.height);
    let cmp = compare_masks(&[true, true, false, false], &[true, false, true, false], 2, 2).unwrap();
    assert_eq!(&cmp.data[..3], &[255, 220, 0]);
    let big = p.upscale(3).unwrap();
    assert_eq!((big.width, big.height), (3 * p.width, 3 * p.height));
    let dir = std::env::temp_dir().join(format!("latent_anomaly_heat_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("panel.png");
    big.write_png(&path).unwrap();
    assert_eq!(latent_datasets::png_size(&path).unwrap(), (big.width, big.height));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(RgbImage::from_gray(&img, 5, 5, 0.0, 1.0), Err(AnomalyError::LengthMismatch { .. })));
    assert!(matches!(
        RgbImage::from_heat(&img, w, h, 1.0, 0.0),
        Err(AnomalyError::InvalidParameter { name: "range", .. })
    ));
}

#[test]
fn downscaling_and_crops() {
    use latent_anomaly::evaluate::{downscale_image, downscale_mask};
    use latent_anomaly::random_crops;
    use latent_datasets::GrayImage;
    let img = GrayImage::from_fn(5, 4, |x, y| (x + 10 * y) as f32);
    let small = downscale_image(&img, 2).unwrap();
    assert_eq!((small.width, small.height), (2, 2));
    assert_eq!(small.data, vec![5.5, 7.5, 25.5, 27.5]);
    assert!(matches!(downscale_image(&img, 0), Err(AnomalyError::InvalidParameter { name: "downscale", .. })));
    // a 2×2 block is anomalous when at least 2 of its 4 pixels are
    let mask = [true, true, false, false, true, false, false, false];
    assert_eq!(downscale_mask(&mask, 4, 2, 2).unwrap(), vec![true, false]);
    assert!(matches!(downscale_mask(&mask, 3, 2, 2), Err(AnomalyError::LengthMismatch { .. })));
    let x = stripes(2, 6, 6);
    assert!(matches!(random_crops(&x, 7, 2, 3, 0), Err(AnomalyError::ShapeMismatch { .. })));
    assert!(matches!(random_crops(&x, 2, 2, 0, 0), Err(AnomalyError::InvalidParameter { name: "count", .. })));
    let c = random_crops(&x, 6, 6, 4, 1).unwrap();
    // full-size crops are whole images
    for i in 0..4 {
        let s = c.sample(i).unwrap();
        assert!(s == x.sample(0).unwrap() || s == x.sample(1).unwrap());
    }
}
