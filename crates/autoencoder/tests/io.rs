//! Model files: round trips and every kind of bad file.

use latent_autoencoder::ParamGuard;
use latent_autoencoder::models::{ConvAeParams, ConvStage, LinearAeParams, MlpAeParams};
use latent_autoencoder::{Autoencoder, AutoencoderError, Decoder, Encoder, NoiseModel};
use latent_linalg::Tensor4;

fn data() -> Tensor4<f32> {
    Tensor4::from_fn([20, 1, 6, 6], |[n, _, i, j]| ((n * 3 + i * 5 + j) % 9) as f32 / 9.0).unwrap()
}

fn trained() -> Autoencoder<f32> {
    MlpAeParams::new(vec![36, 12, 5])
        .batch_norm(true)
        .dropout(0.2)
        .denoising(NoiseModel::Gaussian { std: 0.1 })
        .epochs(2)
        .batch_size(8)
        .progress(false)
        .check()
        .unwrap()
        .fit(&data())
        .unwrap()
        .model
}

#[test]
fn save_load_gives_identical_outputs() {
    let x = data();
    let path = std::env::temp_dir().join(format!("latent-ae-io-{}.bin", std::process::id()));
    let model = trained();
    model.save(&path).unwrap();
    let back = Autoencoder::<f32>::load(&path).unwrap();
    assert_eq!(model.reconstruct(&x).unwrap(), back.reconstruct(&x).unwrap());
    assert_eq!(model.encode(&x).unwrap(), back.encode(&x).unwrap());
    let s = model.encode(&x).unwrap();
    assert_eq!(model.decode(&s).unwrap(), back.decode(&s).unwrap());
    assert_eq!(model.to_bytes().unwrap(), back.to_bytes().unwrap());
    std::fs::remove_file(&path).ok();

    // f64, convolutional
    let conv = ConvAeParams::new([1, 6, 6])
        .encoder_stage(ConvStage::new(3, 3, 2, 1))
        .check()
        .unwrap()
        .build::<Autoencoder<f64>>()
        .unwrap();
    let back = Autoencoder::<f64>::from_bytes(&conv.to_bytes().unwrap()).unwrap();
    let x64 = Tensor4::from_fn([3, 1, 6, 6], |[n, _, i, j]| (n + i * j) as f64 / 30.0).unwrap();
    assert_eq!(conv.reconstruct(&x64).unwrap(), back.reconstruct(&x64).unwrap());
}

#[test]
fn bad_files_are_typed_errors_never_panics() {
    let bytes = trained().to_bytes().unwrap();
    let is_format = |r: Result<Autoencoder<f32>, AutoencoderError>| matches!(r, Err(AutoencoderError::Format { .. }));
    // every truncation
    for cut in [0, 1, 7, 8, 12, 27, 28, 29, bytes.len() / 2, bytes.len() - 1] {
        assert!(is_format(Autoencoder::from_bytes(&bytes[..cut])), "cut at {cut}");
    }
    // trailing garbage
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(is_format(Autoencoder::from_bytes(&longer)));
    // every single flipped byte in the payload is caught (checksum), in the header too
    for at in (0..bytes.len()).step_by(97) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        let r = Autoencoder::<f32>::from_bytes(&b);
        assert!(
            matches!(r, Err(AutoencoderError::Format { .. } | AutoencoderError::UnsupportedVersion { .. })),
            "flip at {at}"
        );
    }
    // a newer version
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&7u32.to_le_bytes());
    assert!(matches!(
        Autoencoder::<f32>::from_bytes(&newer),
        Err(AutoencoderError::UnsupportedVersion { found: 7, supported: 1 })
    ));
    // a huge declared length is rejected before any allocation
    let mut huge = bytes.clone();
    huge[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(is_format(Autoencoder::from_bytes(&huge)));
    // the other scalar type
    assert!(matches!(Autoencoder::<f64>::from_bytes(&bytes), Err(AutoencoderError::Format { .. })));
    // not a model file
    assert!(is_format(Autoencoder::from_bytes(b"definitely not a model file, just some text here")));
    // missing file
    assert!(matches!(Autoencoder::<f32>::load("/nonexistent/dir/model.bin"), Err(AutoencoderError::Io { .. })));
}

#[test]
fn inconsistent_payloads_fail_validation() {
    // A well-formed container whose model does not fit together: swap the decoder of a model
    // with another input size into its file (via serde_json surgery on the serialised model).
    let a = LinearAeParams::new(6, 2).check().unwrap().build::<Autoencoder<f32>>().unwrap();
    let mut v: serde_json::Value = serde_json::to_value(&a).unwrap();
    // shorten the encoder weight so it no longer matches its declared 6 → 2 shape
    let w = v.pointer_mut("/encoder/layers/0/Dense/weight").and_then(|w| w.as_array_mut()).unwrap();
    w.pop();
    let broken: Autoencoder<f32> = serde_json::from_value(v.clone()).unwrap();
    let bytes = broken.to_bytes().unwrap();
    assert!(matches!(Autoencoder::<f32>::from_bytes(&bytes), Err(AutoencoderError::Format { .. })));
    // a decoder that maps back to another size
    let mut v2: serde_json::Value = serde_json::to_value(&a).unwrap();
    *v2.pointer_mut("/input_shape/0").unwrap() = serde_json::json!(7);
    let broken: Autoencoder<f32> = serde_json::from_value(v2).unwrap();
    assert!(matches!(
        Autoencoder::<f32>::from_bytes(&broken.to_bytes().unwrap()),
        Err(AutoencoderError::Format { .. })
    ));
    // loaded from a file, the error names the file (never `<memory>`)
    let path = std::env::temp_dir().join(format!("latent-ae-io-broken-{}.bin", std::process::id()));
    std::fs::write(&path, broken.to_bytes().unwrap()).unwrap();
    let e = Autoencoder::<f32>::load(&path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, AutoencoderError::Format { .. }) && msg.contains(&*path.to_string_lossy()), "{msg}");
    assert!(!msg.contains("<memory>"), "{msg}");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let msg = Autoencoder::<f32>::load(&path).unwrap_err().to_string();
    assert!(msg.contains(&*path.to_string_lossy()) && !msg.contains("<memory>"), "{msg}");
    std::fs::remove_file(&path).ok();
    // and using the broken model directly is an error, not a panic
    let x = Tensor4::<f32>::zeros([2, 7, 1, 1]).unwrap();
    assert!(broken.reconstruct(&x).is_err());
}
