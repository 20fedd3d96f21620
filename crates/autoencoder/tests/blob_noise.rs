//! `NoiseModel::Blobs`: the blob-shaped region corruption for restoring autoencoders.

use latent_autoencoder::{AutoencoderError, BlobNoise, Layer, Mode, Noise, NoiseModel};
use latent_linalg::Tensor4;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A textured batch in `[0.1, 0.9]`.
fn texture(shape: [usize; 4]) -> Vec<f64> {
    let [n, c, h, w] = shape;
    (0..n * c * h * w)
        .map(|i| {
            let (x, y) = ((i % w) as f64, ((i / w) % h) as f64);
            0.5 + 0.4 * ((0.9 * x + 0.3 * y + i as f64 / (h * w) as f64).sin() * (0.7 * y).cos())
        })
        .collect()
}

fn corrupted(model: &NoiseModel, clean: &[f64], shape: [usize; 4], seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut x = clean.to_vec();
    let mut keep = Vec::new();
    model.corrupt_images(&mut x, shape, Some(&mut keep), &mut ChaCha8Rng::seed_from_u64(seed));
    (x, keep)
}

fn always(b: BlobNoise) -> NoiseModel {
    NoiseModel::Blobs(BlobNoise { probability: 1.0, ..b })
}

#[test]
fn deterministic_for_a_seed_and_different_across_seeds() {
    let shape = [6, 2, 24, 24];
    let clean = texture(shape);
    let m = always(BlobNoise::default());
    let (a, ka) = corrupted(&m, &clean, shape, 11);
    let (b, kb) = corrupted(&m, &clean, shape, 11);
    assert_eq!(a, b);
    assert_eq!(ka, kb);
    let (c, _) = corrupted(&m, &clean, shape, 12);
    assert_ne!(a, c);
    assert_ne!(a, clean);
}

#[test]
fn touches_only_blob_pixels_shared_by_channels() {
    let (h, w) = (20, 28);
    for seed in 0..20u64 {
        let shape = [1, 3, h, w];
        let clean = texture(shape);
        let m = BlobNoise { probability: 1.0, max_coverage: 0.6, ..BlobNoise::default() };
        // the mask is the first draw of a sample's stream
        let mask = m.draw_mask(h, w, &mut ChaCha8Rng::seed_from_u64(seed)).expect("probability 1 corrupts");
        let (x, keep) = corrupted(&NoiseModel::Blobs(m), &clean, shape, seed);
        for ch in 0..3 {
            for i in 0..h * w {
                let j = ch * h * w + i;
                if !mask[i] {
                    assert_eq!(x[j], clean[j], "seed {seed}: pixel {i} outside the blobs changed");
                    assert_eq!(keep[j], 1.0);
                } else {
                    assert!((0.0..=0.7 + 1e-12).contains(&keep[j]), "keep {} inside a blob", keep[j]);
                }
            }
        }
    }
}

#[test]
fn probability_zero_and_coverage_zero_change_nothing() {
    let shape = [4, 1, 16, 16];
    let clean = texture(shape);
    for m in [
        BlobNoise { probability: 0.0, ..BlobNoise::default() },
        BlobNoise { probability: 1.0, max_coverage: 0.0, ..BlobNoise::default() },
    ] {
        let (x, keep) = corrupted(&NoiseModel::Blobs(m), &clean, shape, 3);
        assert_eq!(x, clean);
        assert!(keep.iter().all(|&k| k == 1.0));
    }
}

#[test]
fn flat_slice_is_one_row_image() {
    let clean = texture([1, 1, 1, 300]);
    let m = always(BlobNoise { max_coverage: 0.5, ..BlobNoise::default() });
    let mut a = clean.clone();
    m.corrupt(&mut a, None, &mut ChaCha8Rng::seed_from_u64(5));
    let (b, _) = corrupted(&m, &clean, [1, 1, 1, 300], 5);
    assert_eq!(a, b);
    assert_ne!(a, clean);
}

#[test]
fn check_names_every_bad_parameter() {
    let d = BlobNoise::default();
    let cases = [
        (BlobNoise { probability: 1.5, ..d }, "noise_probability"),
        (BlobNoise { max_coverage: -0.1, ..d }, "noise_max_coverage"),
        (BlobNoise { min_scale: 0.5, ..d }, "noise_min_scale"),
        (BlobNoise { min_scale: f64::NAN, ..d }, "noise_min_scale"),
        (BlobNoise { max_scale: 1.5, ..d }, "noise_max_scale"),
        (BlobNoise { blur_sigma: 0.0, ..d }, "noise_blur_sigma"),
        (BlobNoise { max_gain: -1.0, ..d }, "noise_max_gain"),
        (BlobNoise { max_shift: f64::INFINITY, ..d }, "noise_max_shift"),
        (BlobNoise { min_opacity: 2.0, ..d }, "noise_min_opacity"),
        (BlobNoise { max_feather: -1.0, ..d }, "noise_max_feather"),
        (BlobNoise { max_feather: f64::NAN, ..d }, "noise_max_feather"),
    ];
    for (b, name) in cases {
        match NoiseModel::Blobs(b).validate() {
            Err(AutoencoderError::InvalidParameter { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{b:?}: expected InvalidParameter({name}), got {other:?}"),
        }
        assert!(Noise::<f32>::new(NoiseModel::Blobs(b), 0).is_err());
    }
    assert!(NoiseModel::Blobs(d).validate().is_ok());
}

#[test]
fn noise_layer_corrupts_in_training_only_and_masks_gradients() {
    let shape = [3, 1, 16, 16];
    let x = Tensor4::from_vec(shape, texture(shape)).unwrap();
    let mut layer = Noise::<f64>::new(always(BlobNoise::default()), 9).unwrap();
    assert_eq!(layer.forward(&x, Mode::Eval).unwrap(), x);
    let y = layer.forward(&x, Mode::Train).unwrap();
    assert_ne!(y, x);
    let dy = Tensor4::from_vec(shape, vec![1.0; x.len()]).unwrap();
    let dx = layer.backward(&x, &y, &dy).unwrap();
    for ((&d, &a), &b) in dx.as_slice().iter().zip(x.as_slice()).zip(y.as_slice()) {
        assert!((0.0..=1.0).contains(&d));
        if a != b {
            assert!(d < 1.0, "a corrupted element passes the full gradient");
        }
    }
    // the layer's second call draws a different stream
    assert_ne!(layer.forward(&x, Mode::Train).unwrap(), y);
}

#[test]
fn serde_round_trip() {
    let m = NoiseModel::Blobs(BlobNoise { max_coverage: 0.2, max_gain: 1.5, ..BlobNoise::default() });
    let s = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<NoiseModel>(&s).unwrap(), m);
}

#[test]
fn files_without_max_feather_read_as_hard_edged() {
    let m = NoiseModel::Blobs(BlobNoise::default());
    let mut v: serde_json::Value = serde_json::to_value(m).unwrap();
    let fields = v.get_mut("Blobs").and_then(|b| b.as_object_mut()).expect("externally tagged");
    assert!(fields.remove("max_feather").is_some());
    assert_eq!(serde_json::from_value::<NoiseModel>(v).unwrap(), m);
}

/// Feathering keeps the hard mask as the support, leaves the blob interior as it was, and only
/// weakens the change towards a blob's edge: for one image the hard and the feathered draw share
/// mask, opacity and fill, so every change of the feathered draw is at most the hard one's, with
/// strictly smaller changes on the blob's edge.
#[test]
fn feathering_softens_edges_inside_the_mask() {
    let (h, w) = (32, 32);
    let shape = [1, 1, h, w];
    let clean = texture(shape);
    let mut softened_edges = 0;
    for seed in 0..20u64 {
        let hard = BlobNoise { probability: 1.0, max_coverage: 0.5, ..BlobNoise::default() };
        let soft = BlobNoise { max_feather: 3.0, ..hard };
        let mask = hard.draw_mask(h, w, &mut ChaCha8Rng::seed_from_u64(seed)).expect("probability 1 corrupts");
        let (xh, kh) = corrupted(&NoiseModel::Blobs(hard), &clean, shape, seed);
        let (xs, ks) = corrupted(&NoiseModel::Blobs(soft), &clean, shape, seed);
        for i in 0..h * w {
            let (dh, ds) = ((xh[i] - clean[i]).abs(), (xs[i] - clean[i]).abs());
            if !mask[i] {
                assert_eq!(xs[i], clean[i], "seed {seed}: pixel {i} outside the blobs changed");
                assert_eq!(ks[i], 1.0);
            }
            assert!(ds <= dh + 1e-12, "seed {seed}: pixel {i} changed more when feathered ({ds} > {dh})");
            assert!((0.0..=1.0).contains(&ks[i]) && ks[i] >= kh[i] - 1e-12);
            let (y, x) = (i / w, i % w);
            let edge = mask[i]
                && [(0, 1), (2, 1), (1, 0), (1, 2)].iter().any(|&(dy, dx)| {
                    let (yy, xx) = (y + dy, x + dx);
                    yy >= 1 && xx >= 1 && yy <= h && xx <= w && !mask[(yy - 1) * w + xx - 1]
                });
            if edge && dh > 1e-9 && ds < dh - 1e-9 {
                softened_edges += 1;
            }
        }
    }
    assert!(softened_edges > 100, "only {softened_edges} edge pixels were softened");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Hard-edged or feathered: coverage never exceeds `max_coverage` per sample, corrupted values stay in the clean
    /// channel's range, and every changed sample changed a connected-ish region (not single
    /// scattered pixels only): with noise cells of at least 2 px, at least one changed pixel has
    /// a changed 4-neighbour when at least 8 pixels changed.
    #[test]
    fn respects_its_parameters(
        seed in 0u64..1000,
        cov in 0.0f64..1.0,
        min_scale in 1.0f64..6.0,
        extra in 0.0f64..10.0,
        min_opacity in 0.0f64..1.0,
        h in 8usize..24,
        w in 8usize..24,
        feathered in proptest::bool::ANY,
    ) {
        let shape = [3, 2, h, w];
        let clean = texture(shape);
        let b = BlobNoise {
            probability: 1.0, max_coverage: cov, min_scale, max_scale: min_scale + extra, min_opacity,
            max_feather: if feathered { 3.0 } else { 0.0 },
            ..BlobNoise::default()
        };
        let (x, keep) = corrupted(&NoiseModel::Blobs(b), &clean, shape, seed);
        let plane = h * w;
        for s in 0..3 {
            let mut in_blob = vec![false; plane];
            for ch in 0..2 {
                let o = (s * 2 + ch) * plane;
                let (lo, hi) = clean[o..o + plane].iter().fold((f64::MAX, f64::MIN), |(l, u), &v| (l.min(v), u.max(v)));
                for i in 0..plane {
                    prop_assert!(x[o + i] >= lo && x[o + i] <= hi);
                    prop_assert!((0.0..=1.0).contains(&keep[o + i]));
                    if !feathered {
                        prop_assert!(keep[o + i] <= 1.0 - min_opacity + 1e-12 || keep[o + i] == 1.0);
                    }
                    if keep[o + i] < 1.0 || x[o + i] != clean[o + i] {
                        in_blob[i] = true;
                    }
                }
            }
            let n_in = in_blob.iter().filter(|&&m| m).count();
            prop_assert!(n_in as f64 <= (cov * plane as f64).round());
            if n_in >= 8 && min_scale >= 2.0 && !feathered {
                let adjacent = (0..plane).any(|i| in_blob[i] && ((i % w + 1 < w && in_blob[i + 1]) || (i + w < plane && in_blob[i + w])));
                prop_assert!(adjacent);
            }
        }
    }
}
