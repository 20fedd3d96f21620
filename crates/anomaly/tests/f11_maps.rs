//! The map, image score and ensemble F11's restoring autoencoder uses: `SquaredWithLocalMean`,
//! `ContrastNorm`, `ImageScore::TopPercent` and `MeanEnsemble`.

use latent_anomaly::maps::{MapConfig, pool_scores};
use latent_anomaly::{
    AnomalyError, ContrastNorm, ImageScore, MapKind, MapParams, MeanEnsemble, ParamGuard, Reconstructor, Result,
};
use latent_linalg::Tensor4;

/// Multiplies its input by a constant.
struct Scale(f64);

impl Reconstructor<f64> for Scale {
    fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
        let mut y = x.clone();
        y.as_mut_slice().iter_mut().for_each(|v| *v *= self.0);
        Ok(y)
    }
}

fn varied(n: usize, h: usize, w: usize) -> Tensor4<f64> {
    Tensor4::from_fn([n, 1, h, w], |[a, _, i, j]| ((3 * a + 7 * i + 11 * j) % 13) as f64 / 13.0).unwrap()
}

#[test]
fn local_mean_map_with_weight_zero_is_the_squared_error() {
    let x = varied(2, 9, 11);
    let xh = Tensor4::from_fn([2, 1, 9, 11], |[a, _, i, j]| ((a + i * j) % 5) as f64 / 5.0).unwrap();
    let plain = MapConfig::from(MapParams::new().smoothing(1.0).check().unwrap()).maps(&x, &xh).unwrap();
    let zero = MapConfig::from(
        MapParams::new()
            .kind(MapKind::SquaredWithLocalMean { sigma: 2.0, weight: 0.0 })
            .smoothing(1.0)
            .check()
            .unwrap(),
    )
    .maps(&x, &xh)
    .unwrap();
    assert_eq!(plain.as_slice(), zero.as_slice());
}

#[test]
fn local_mean_map_of_a_constant_residual_is_one_plus_weight_times_its_square() {
    // a constant residual d: e² = d², its (renormalised) local mean is d, so the map is (1 + w)·d²
    let x = Tensor4::<f64>::from_fn([1, 1, 12, 12], |_| 0.7).unwrap();
    let xh = Tensor4::from_fn([1, 1, 12, 12], |_| 0.4).unwrap();
    let m = MapConfig::from(
        MapParams::new().kind(MapKind::SquaredWithLocalMean { sigma: 2.0, weight: 3.0 }).check().unwrap(),
    )
    .maps(&x, &xh)
    .unwrap();
    for &v in m.as_slice() {
        assert!((v - 4.0 * 0.09).abs() < 1e-9, "{v}");
    }
}

#[test]
fn local_mean_map_finds_a_soft_shift_that_the_squared_error_hides_in_texture() {
    // residual: a checkerboard of signs with magnitudes 0.1–0.5 (a busy texture's residual) plus
    // a 0.15 shift in a 6×6 square; the local-mean term separates the square better than the
    // squared error alone
    let (h, w) = (24, 24);
    let inside = |i: usize, j: usize| (9..15).contains(&i) && (9..15).contains(&j);
    let x = Tensor4::from_fn([1, 1, h, w], |[_, _, i, j]| {
        let mag = 0.1 + 0.1 * ((7 * i + 13 * j) % 5) as f64;
        let tex = if (i + j) % 2 == 0 { mag } else { -mag };
        0.5 + tex + if inside(i, j) { 0.15 } else { 0.0 }
    })
    .unwrap();
    let xh = Tensor4::from_fn([1, 1, h, w], |_| 0.5).unwrap();
    let auroc_of = |kind: MapKind| {
        let m = MapConfig::from(MapParams::new().kind(kind).smoothing(1.0).check().unwrap()).maps(&x, &xh).unwrap();
        let labels: Vec<bool> = (0..h * w).map(|p| inside(p / w, p % w)).collect();
        latent_anomaly::auroc(m.as_slice(), &labels).unwrap()
    };
    let plain = auroc_of(MapKind::SquaredError);
    let local = auroc_of(MapKind::SquaredWithLocalMean { sigma: 2.0, weight: 4.0 });
    assert!(local > 0.75 && local > plain + 0.15, "local {local}, plain {plain}");
}

#[test]
fn local_mean_map_rejects_bad_settings() {
    for (sigma, weight) in [(0.0, 1.0), (-1.0, 1.0), (f64::NAN, 1.0), (2000.0, 1.0), (2.0, -1.0), (2.0, f64::INFINITY)]
    {
        let e = MapParams::new().kind(MapKind::SquaredWithLocalMean { sigma, weight }).check().unwrap_err();
        assert!(matches!(e, AnomalyError::InvalidParameter { .. }), "{sigma} {weight}: {e}");
    }
}

#[test]
fn top_percent_lies_between_max_and_mean() {
    let maps = varied(3, 10, 10);
    let max = pool_scores(&maps, ImageScore::Max).unwrap();
    let mean = pool_scores(&maps, ImageScore::Mean).unwrap();
    // 1 % of 100 pixels is one pixel: the maximum; 100 %: the mean
    assert_eq!(pool_scores(&maps, ImageScore::TopPercent(1)).unwrap(), max);
    let all = pool_scores(&maps, ImageScore::TopPercent(100)).unwrap();
    for (a, m) in all.iter().zip(&mean) {
        assert!((a - m).abs() < 1e-12);
    }
    let top5 = pool_scores(&maps, ImageScore::TopPercent(5)).unwrap();
    for i in 0..3 {
        assert!(top5[i] <= max[i] && top5[i] >= mean[i]);
        // the mean of the five largest values, computed by sorting
        let mut v = maps.as_slice()[i * 100..(i + 1) * 100].to_vec();
        v.sort_by(|a, b| b.total_cmp(a));
        assert!((top5[i] - v[..5].iter().sum::<f64>() / 5.0).abs() < 1e-12);
    }
}

#[test]
fn top_percent_outside_one_to_hundred_is_rejected() {
    for p in [0u8, 101, 255] {
        let e = MapParams::new().score(ImageScore::TopPercent(p)).check().unwrap_err();
        assert!(matches!(e, AnomalyError::InvalidParameter { .. }), "{p}: {e}");
    }
}

#[test]
fn mean_ensemble_averages_its_members() {
    let x = varied(2, 4, 5);
    let e = MeanEnsemble::new(vec![Scale(1.0), Scale(2.0), Scale(6.0)]).unwrap();
    assert_eq!(e.members().len(), 3);
    let y = e.reconstruct(&x).unwrap();
    for (a, b) in y.as_slice().iter().zip(x.as_slice()) {
        assert!((a - 3.0 * b).abs() < 1e-12);
    }
    assert!(matches!(MeanEnsemble::<Scale>::new(vec![]), Err(AnomalyError::Empty { .. })));
}

#[test]
fn contrast_norm_divides_the_smoothed_map_by_local_variance_plus_floor() {
    let x = varied(2, 10, 12);
    let xh = Tensor4::from_fn([2, 1, 10, 12], |[a, _, i, j]| ((a + i * j) % 5) as f64 / 5.0).unwrap();
    let base = MapParams::new().kind(MapKind::SquaredWithLocalMean { sigma: 2.0, weight: 0.5 }).smoothing(1.0);
    let plain = MapConfig::from(base.check().unwrap()).maps(&x, &xh).unwrap();
    let normed = MapConfig::from(base.contrast(2.0, 0.03).check().unwrap()).maps(&x, &xh).unwrap();
    let var = ContrastNorm { sigma: 2.0, floor: 0.03 }.local_variance(&xh).unwrap();
    assert_eq!(var.shape(), [2, 1, 10, 12]);
    assert!(var.as_slice().iter().any(|&v| v > 0.01), "the reconstruction has contrast");
    for ((n, p), v) in normed.as_slice().iter().zip(plain.as_slice()).zip(var.as_slice()) {
        assert!((n - p / (v + 0.03)).abs() < 1e-12, "{n} {p} {v}");
    }
}

#[test]
fn contrast_norm_of_a_flat_reconstruction_is_a_constant_rescaling() {
    // no contrast in x̂: V = 0, the map is divided by the floor everywhere
    let x = varied(1, 9, 9);
    let xh = Tensor4::from_fn([1, 1, 9, 9], |_| 0.4).unwrap();
    let plain = MapConfig::from(MapParams::new().check().unwrap()).maps(&x, &xh).unwrap();
    let normed = MapConfig::from(MapParams::new().contrast(1.5, 0.25).check().unwrap()).maps(&x, &xh).unwrap();
    for (n, p) in normed.as_slice().iter().zip(plain.as_slice()) {
        assert!((n - 4.0 * p).abs() < 1e-9, "{n} {p}");
    }
}

#[test]
fn contrast_norm_ranks_an_error_on_flat_texture_above_the_same_error_on_busy_texture() {
    // the same residual 0.2 on the left (busy reconstruction: a checkerboard) and on the right
    // (flat reconstruction): raw maps tie, the contrast-normalised map is higher on the right
    let (h, w) = (16, 32);
    let xh = Tensor4::from_fn([1, 1, h, w], |[_, _, i, j]| if j < 16 { ((i + j) % 2) as f64 } else { 0.5 }).unwrap();
    let mut x = xh.clone();
    x.as_mut_slice().iter_mut().for_each(|v| *v += 0.2);
    let normed = MapConfig::from(MapParams::new().contrast(2.0, 0.01).check().unwrap()).maps(&x, &xh).unwrap();
    let m = normed.as_slice();
    let (busy, flat) = (m[8 * w + 4], m[8 * w + 28]);
    assert!(flat > 10.0 * busy, "flat {flat}, busy {busy}");
}

#[test]
fn contrast_norm_rejects_bad_settings() {
    for (sigma, floor) in [(0.0, 0.1), (f64::NAN, 0.1), (2000.0, 0.1), (2.0, 0.0), (2.0, -1.0), (2.0, f64::INFINITY)] {
        let e = MapParams::new().contrast(sigma, floor).check().unwrap_err();
        assert!(matches!(e, AnomalyError::InvalidParameter { .. }), "{sigma} {floor}: {e}");
    }
    let e = ContrastNorm { sigma: -1.0, floor: 0.1 }.local_variance(&varied(1, 4, 4)).unwrap_err();
    assert!(matches!(e, AnomalyError::InvalidParameter { .. }), "{e}");
}

#[test]
fn map_params_without_contrast_field_deserialize_as_none() {
    let old = r#"{"kind":"SquaredError","smoothing":1.0,"score":"Max"}"#;
    let p: MapParams = serde_json::from_str(old).unwrap();
    assert_eq!(p.contrast, None);
    assert_eq!(p.smoothing, Some(1.0));
}
