//! The sparse-coding reconstructors (patch dictionary, convolutional sparse coding) plug into the
//! detector like an autoencoder and localise what the normal data does not contain.

use latent_anomaly::ParamGuard;
use latent_anomaly::{
    AnomalyError, CscReconstructor, Detector, DetectorParams, MapParams, PatchCoder, PatchDictionaryParams,
    Reconstructor, metrics,
};
use latent_conv_coding::{CscParams, Filters};
use latent_linalg::Tensor4;

/// Diagonal stripes of period 4 with a per-image phase.
fn stripes(n: usize, phase0: usize) -> Tensor4<f64> {
    Tensor4::from_fn([n, 1, 20, 20], |[i, _, y, x]| ((y + x + i + phase0) % 4) as f64 / 3.0).unwrap()
}

#[test]
fn patch_dictionary_localises_a_foreign_square() {
    let dict = PatchDictionaryParams::new()
        .patch(4)
        .stride(1)
        .atoms(12)
        .coder(PatchCoder::Omp { k: 3 })
        .train_patches(3000)
        .seed(3)
        .check()
        .unwrap()
        .fit(&stripes(4, 0))
        .unwrap();
    let mut test = stripes(2, 1);
    let mut mask = vec![false; 2 * 400];
    for (y, x) in (8..12).flat_map(|y| (3..7).map(move |x| (y, x))) {
        *test.get_mut([1, 0, y, x]).unwrap() = 1.5;
        mask[400 + y * 20 + x] = true;
    }
    // exact on normal data (a stripe patch is a combination of at most 3 learned atoms)
    let err = dict.reconstruction_errors(&test).unwrap();
    assert!(err[0] < 1e-12, "{err:?}");
    let det = Detector::new(&dict, DetectorParams::new().map(MapParams::new().smoothing(1.0)).check().unwrap());
    let a = det.analyze(&test).unwrap();
    assert!(a.scores[1] > 100.0 * a.scores[0].max(1e-12));
    assert!(metrics::pixel_auroc(a.maps.as_slice(), &mask, [2, 20, 20]).unwrap() > 0.95);
    // f32 gives the same picture; a too-small image and NaN are typed errors
    let d32 = PatchDictionaryParams::new().patch(4).atoms(12).train_patches(2000).check().unwrap();
    let dict32 =
        d32.fit(&Tensor4::<f32>::from_fn([2, 1, 8, 8], |[_, _, y, x]| ((y + x) % 4) as f32 / 3.0).unwrap()).unwrap();
    assert_eq!(dict32.reconstruct(&Tensor4::<f32>::zeros([1, 1, 8, 8]).unwrap()).unwrap().shape(), [1, 1, 8, 8]);
    assert!(dict32.reconstruct(&Tensor4::<f32>::zeros([1, 1, 3, 8]).unwrap()).is_err());
    assert!(matches!(
        dict.reconstruct(&Tensor4::full([1, 1, 6, 6], f64::NAN).unwrap()),
        Err(AnomalyError::NonFinite { index: 0, .. })
    ));
    assert!(matches!(d32.fit(&Tensor4::<f32>::zeros([1, 1, 3, 3]).unwrap()), Err(AnomalyError::ShapeMismatch { .. })));
}

#[test]
fn patch_dictionary_is_deterministic() {
    let p = PatchDictionaryParams::new().patch(4).atoms(8).train_patches(500).seed(9).check().unwrap();
    let a = p.fit(&stripes(3, 0)).unwrap();
    let b = p.fit(&stripes(3, 0)).unwrap();
    assert_eq!(a.dictionary, b.dictionary);
    assert_eq!(a.reconstruct(&stripes(1, 2)).unwrap(), b.reconstruct(&stripes(1, 2)).unwrap());
}

#[test]
fn convolutional_sparse_coding_plugs_in() {
    // normal images: sparse sums of a "plus" filter; the anomaly is a filled square
    let plus: Vec<f64> = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0].iter().map(|v| v / 5f64.sqrt()).collect();
    let d = Filters::from_vec(1, 1, 3, 3, plus.clone()).unwrap();
    let mut x = Tensor4::<f64>::zeros([2, 1, 16, 16]).unwrap();
    for n in 0..2 {
        for (i, j) in [(1, 2), (6, 9), (11, 4)] {
            for (k, v) in plus.iter().enumerate() {
                *x.get_mut([n, 0, i + k / 3, j + k % 3]).unwrap() += v;
            }
        }
    }
    let mut mask = vec![false; 2 * 256];
    for (i, j) in (10..13).flat_map(|i| (11..14).map(move |j| (i, j))) {
        *x.get_mut([1, 0, i, j]).unwrap() += 0.8;
        mask[256 + i * 16 + j] = true;
    }
    let csc = CscReconstructor::new(d, CscParams::new(0.01).max_iter(400).tol(1e-7)).unwrap().remove_mean(false);
    let det = Detector::new(csc, DetectorParams::new().check().unwrap());
    let a = det.analyze(&x).unwrap();
    assert!(a.scores[0] < 1e-3 && a.scores[1] > 0.01, "{:?}", a.scores);
    assert!(metrics::pixel_auroc(a.maps.as_slice(), &mask, [2, 16, 16]).unwrap() > 0.95);
    let two_channels = Tensor4::<f64>::zeros([1, 2, 16, 16]).unwrap();
    // the model's own shape error, not a conversion through another crate's error type
    assert!(matches!(det.analyze(&two_channels), Err(AnomalyError::ShapeMismatch { op: "csc reconstruction", .. })));
    assert!(matches!(
        CscReconstructor::new(Filters::<f64>::random(2, 1, 3, 3, 0).unwrap(), CscParams::new(-1.0)),
        Err(AnomalyError::ConvCoding(_))
    ));
}

#[test]
fn autoencoders_plug_in_and_keep_their_typed_errors() {
    use latent_autoencoder::Autoencoder;
    use latent_autoencoder::models::MlpAeParams;
    use latent_autoencoder::{AutoencoderError, Composed};
    let ae = MlpAeParams::new(vec![16, 4]).seed(5).check().unwrap().build::<Autoencoder<f64>>().unwrap();
    let x = Tensor4::from_fn([3, 16, 1, 1], |[n, c, ..]| ((n * 7 + c * 3) % 5) as f64 / 5.0).unwrap();
    let det = Detector::new(&ae, DetectorParams::new().check().unwrap());
    let a = det.analyze(&x).unwrap();
    assert_eq!(a.reconstruction.shape(), x.shape());
    // any encoder followed by any decoder: the autoencoder's own halves reconstruct the same
    let composed = Composed::new(ae.clone(), ae.clone());
    assert_eq!(Detector::new(composed, DetectorParams::new().check().unwrap()).analyze(&x).unwrap(), a);
    let errs = Reconstructor::reconstruction_errors(&ae, &x).unwrap();
    assert_eq!(errs.len(), 3);
    // a batch of the wrong size comes back as the autoencoder crate's error, unchanged
    let wrong = Tensor4::<f64>::zeros([2, 8, 1, 1]).unwrap();
    let e = det.analyze(&wrong).unwrap_err();
    assert!(matches!(e, AnomalyError::Autoencoder(AutoencoderError::ShapeMismatch { .. })), "{e:?}");
}
