//! The network: gradients (via the shared `latent_optim::gradcheck`), shapes at every depth,
//! typed size errors, overlap-tile prediction, save/load and thread-count determinism.

use latent_autoencoder::{Layer, Mode};
use latent_linalg::Tensor4;
use latent_optim::gradcheck::{GradCheck, check_gradient, check_vjp};
use latent_unet::ParamGuard;
use latent_unet::loss::{cross_entropy, dice_loss};
use latent_unet::{Padding, SegBatch, SegLoss, UNet, UnetError, UnetOptimizer, UnetParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_tensor(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor4::from_fn(shape, |_| rng.random::<f64>() * 2.0 - 1.0).unwrap()
}

fn rand_labels(n: usize, k: u8, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..k)).collect()
}

/// Full-network gradient check in f64: parameters through a weighted cross-entropy (or Dice)
/// loss, and the input through a vector–Jacobian product.
fn gradcheck_net(params: UnetParams, size: usize, loss: SegLoss) {
    let checked = params.check().unwrap();
    let mut net = checked.build::<UNet<f64>>().unwrap();
    let x = rand_tensor([2, 1, size, size], 11);
    let out = net.output_shape(x.shape()).unwrap();
    let np = out[0] * out[2] * out[3];
    let labels = rand_labels(np, params.classes as u8, 12);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let weights: Vec<f64> = (0..np).map(|_| 0.5 + rng.random::<f64>() * 3.0).collect();
    let batch = SegBatch { images: x.clone(), labels: labels.clone(), weights: Some(weights.clone()) };
    net.train_step(&batch, loss).unwrap();
    let theta = net.flat_params();
    let grad = net.flat_grads();
    assert_eq!(theta.len(), grad.len());
    let mut probe = net.clone();
    let f = |t: &[f64]| -> f64 {
        probe.set_flat_params(t).unwrap();
        let z = Layer::forward(&mut probe, &x, Mode::Train).unwrap();
        loss.value_grad(&z, &labels, Some(&weights), None).unwrap()
    };
    let rep = check_gradient(f, &theta, &grad, &GradCheck::default()).unwrap();
    assert!(rep.passes(1e-5), "{params:?} parameter gradient: {rep}");

    // input gradient: dx = Jᵀ dy of the logits
    let y = Layer::forward(&mut net, &x, Mode::Train).unwrap();
    let dy = rand_tensor(y.shape(), 14);
    let dx = Layer::backward(&mut net, &x, &y, &dy).unwrap();
    let mut probe = net.clone();
    let fx = |v: &[f64]| -> Vec<f64> {
        let xi = Tensor4::from_vec(x.shape(), v.to_vec()).unwrap();
        Layer::forward(&mut probe, &xi, Mode::Train).unwrap().into_vec()
    };
    let rep = check_vjp(fx, x.as_slice(), dy.as_slice(), dx.as_slice(), &GradCheck::default()).unwrap();
    assert!(rep.passes(1e-5), "{params:?} input gradient: {rep}");
}

#[test]
fn gradient_of_full_unet_same_padding_with_skips() {
    gradcheck_net(UnetParams::new().depth(3).base_channels(2).classes(3).seed(1), 8, SegLoss::CrossEntropy);
}

#[test]
fn gradient_of_full_unet_valid_padding_cropped_skips() {
    gradcheck_net(
        UnetParams::new().depth(2).base_channels(2).padding(Padding::Valid).seed(2),
        20,
        SegLoss::CrossEntropy,
    );
}

#[test]
fn gradient_without_skips_with_batch_norm_and_dice() {
    gradcheck_net(
        UnetParams::new().depth(2).base_channels(2).skips(false).batch_norm(true).seed(3),
        8,
        SegLoss::CrossEntropyDice,
    );
}

#[test]
fn loss_gradients_match_finite_differences() {
    let z = rand_tensor([2, 3, 3, 4], 5);
    let labels = rand_labels(24, 3, 6);
    let w: Vec<f64> = (0..24).map(|i| 0.5 + (i % 5) as f64).collect();
    for (name, weighted) in [("ce", false), ("weighted ce", true)] {
        let wt = weighted.then_some(&w[..]);
        let mut g = Tensor4::zeros(z.shape()).unwrap();
        cross_entropy(&z, &labels, wt, Some(&mut g)).unwrap();
        let f =
            |v: &[f64]| cross_entropy(&Tensor4::from_vec(z.shape(), v.to_vec()).unwrap(), &labels, wt, None).unwrap();
        let rep = check_gradient(f, z.as_slice(), g.as_slice(), &GradCheck::default()).unwrap();
        assert!(rep.passes(1e-6), "{name}: {rep}");
    }
    let mut g = Tensor4::zeros(z.shape()).unwrap();
    dice_loss(&z, &labels, Some(&mut g)).unwrap();
    let f = |v: &[f64]| dice_loss(&Tensor4::from_vec(z.shape(), v.to_vec()).unwrap(), &labels, None).unwrap();
    let rep = check_gradient(f, z.as_slice(), g.as_slice(), &GradCheck::default()).unwrap();
    assert!(rep.passes(1e-6), "dice: {rep}");
}

#[test]
fn crop_and_concat_shapes_at_every_depth() {
    for depth in 1..=5 {
        for padding in [Padding::Same, Padding::Valid] {
            for skips in [true, false] {
                let p = UnetParams::new().depth(depth).base_channels(1).padding(padding).skips(skips).check().unwrap();
                let g = p.geometry();
                let n = g.min_input().unwrap();
                let crops = g.skip_crops(n).unwrap();
                assert_eq!(crops.len(), depth - 1);
                for (l, &(skip, up)) in crops.iter().enumerate() {
                    assert!(up <= skip, "depth {depth} level {l}: up {up} > skip {skip}");
                    assert_eq!((skip - up) % 2, 0, "centered crop must be symmetric");
                    if padding == Padding::Same {
                        assert_eq!(skip, up);
                    }
                }
                let mut net = p.build::<UNet<f32>>().unwrap();
                let x = Tensor4::from_fn([1, 1, n, n + g.stride()], |[_, _, i, j]| ((i + 2 * j) % 5) as f32).unwrap();
                let y = Layer::forward(&mut net, &x, Mode::Train).unwrap();
                let (ho, wo) = (g.output_size(n).unwrap(), g.output_size(n + g.stride()).unwrap());
                assert_eq!(y.shape(), [1, 2, ho, wo], "depth {depth} {padding:?}");
                if padding == Padding::Valid {
                    assert_eq!(n - ho, 2 * g.margin());
                }
                let dx = Layer::backward(&mut net, &x, &y, &Tensor4::full(y.shape(), 1.0).unwrap()).unwrap();
                assert_eq!(dx.shape(), x.shape());
                assert_eq!(net.infer(&x).unwrap(), y, "training and inference forward agree without dropout/BN");
            }
        }
    }
}

#[test]
fn bad_input_sizes_are_typed_errors_naming_valid_sizes() {
    let net = UnetParams::new().depth(3).base_channels(2).check().unwrap().build::<UNet<f32>>().unwrap();
    let x = Tensor4::<f32>::zeros([1, 1, 30, 32]).unwrap();
    match net.predict(&x) {
        Err(UnetError::InputSize { axis, size, depth, padding, valid }) => {
            assert_eq!((axis, size, depth, padding), ("height", 30, 3, "same"));
            assert!(valid.contains("28 or 32"), "{valid}");
        }
        other => panic!("{other:?}"),
    }
    let valid_net = UnetParams::new()
        .depth(3)
        .base_channels(2)
        .padding(Padding::Valid)
        .check()
        .unwrap()
        .build::<UNet<f32>>()
        .unwrap();
    let x = Tensor4::<f32>::zeros([1, 1, 44, 45]).unwrap();
    let e = valid_net.predict(&x).unwrap_err();
    assert!(matches!(e, UnetError::InputSize { axis: "width", size: 45, .. }), "{e}");
    assert!(e.to_string().contains("44 or 48"), "{e}");
    // wrong channels, NaN input, empty batch
    assert!(matches!(net.predict(&Tensor4::zeros([1, 2, 32, 32]).unwrap()), Err(UnetError::ShapeMismatch { .. })));
    let mut nan = Tensor4::<f32>::zeros([1, 1, 8, 8]).unwrap();
    nan.as_mut_slice()[5] = f32::NAN;
    assert!(matches!(net.predict(&nan), Err(UnetError::NonFinite { index: 5, .. })));
    assert!(matches!(net.predict(&Tensor4::zeros([0, 1, 8, 8]).unwrap()), Err(UnetError::Empty { .. })));
    // labels that do not cover the output
    let mut net = net;
    let b = SegBatch { images: Tensor4::zeros([1, 1, 8, 8]).unwrap(), labels: vec![0; 63], weights: None };
    assert!(matches!(net.train_step(&b, SegLoss::CrossEntropy), Err(UnetError::ShapeMismatch { .. })));
    let b = SegBatch { images: Tensor4::zeros([1, 1, 8, 8]).unwrap(), labels: vec![2; 64], weights: None };
    assert!(matches!(
        net.train_step(&b, SegLoss::CrossEntropy),
        Err(UnetError::InvalidParameter { name: "labels", .. })
    ));
}

#[test]
fn overlap_tile_equals_whole_image_prediction() {
    // unpadded: tiles of a mirror-padded image equal the whole padded image's prediction everywhere
    let p = UnetParams::new().depth(3).base_channels(2).classes(3).padding(Padding::Valid).seed(4).check().unwrap();
    let net = p.build::<UNet<f64>>().unwrap();
    let g = net.geometry();
    let m = g.margin();
    let (h, w) = (40, 36); // whole padded image: 80 × 76, valid sizes for depth 3
    let img = rand_tensor([2, 1, h, w], 21);
    let tiled = net.predict_tiled(&img, 52, 3).unwrap(); // 12×12 output tiles
    let padded = latent_unet::tile::mirror_pad(&img, m, m, m, m).unwrap();
    let whole = net.predict(&padded).unwrap();
    assert_eq!(whole.shape(), [2, 3, h, w]);
    let diff = tiled.as_slice().iter().zip(whole.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-12, "valid padding: max difference {diff}");

    // same padding: equal wherever the whole-image prediction does not see the image edge
    let p = UnetParams::new().depth(3).base_channels(2).seed(5).check().unwrap();
    let net = p.build::<UNet<f64>>().unwrap();
    let c = net.geometry().context();
    let img = rand_tensor([1, 1, 96, 88], 22);
    let tiled = net.predict_tiled(&img, 2 * c + 16, 4).unwrap();
    let whole = net.predict(&img).unwrap();
    let mut worst = 0.0f64;
    for k in 0..2 {
        for i in c..96 - c {
            for j in c..88 - c {
                let a = tiled.get([0, k, i, j]).unwrap();
                let b = whole.get([0, k, i, j]).unwrap();
                worst = worst.max((a - b).abs());
            }
        }
    }
    assert!(worst < 1e-12, "same padding interior: max difference {worst}");
    assert!(matches!(net.predict_tiled(&img, 2 * c + 2, 1), Err(UnetError::InputSize { .. })));
    assert!(matches!(net.predict_tiled(&img, 2 * c, 1), Err(UnetError::InvalidParameter { name: "tile", .. })));
}

#[test]
fn save_and_load_give_identical_predictions() {
    let p =
        UnetParams::new().depth(3).base_channels(3).classes(3).batch_norm(true).dropout(0.3).seed(7).check().unwrap();
    let mut net = p.build::<UNet<f32>>().unwrap();
    // a few training steps so batch-norm statistics and weights move away from their init
    let x = Tensor4::from_fn([2, 1, 16, 16], |[n, _, i, j]| ((n + i * j) % 7) as f32 / 7.0).unwrap();
    let b = SegBatch { images: x.clone(), labels: rand_labels(512, 3, 1), weights: None };
    let mut opt = UnetOptimizer::new(Default::default(), &mut net).unwrap();
    for _ in 0..3 {
        net.train_step(&b, SegLoss::CrossEntropy).unwrap();
        opt.step(&mut net, 1e-2).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("latent-unet-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.bin");
    net.save(&path).unwrap();
    let back = UNet::<f32>::load(&path).unwrap();
    assert_eq!(net.predict(&x).unwrap(), back.predict(&x).unwrap());
    assert_eq!(back.params(), net.params());
    // wrong scalar type, corruption, truncation, missing file
    assert!(matches!(UNet::<f64>::load(&path), Err(UnetError::Format { .. })));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(matches!(UNet::<f32>::from_bytes(&bytes), Err(UnetError::Format { .. })));
    assert!(matches!(UNet::<f32>::from_bytes(&bytes[..40]), Err(UnetError::Format { .. })));
    let mut newer = net.to_bytes().unwrap();
    newer[8..12].copy_from_slice(&9u32.to_le_bytes());
    assert!(matches!(UNet::<f32>::from_bytes(&newer), Err(UnetError::UnsupportedVersion { found: 9, .. })));
    assert!(matches!(UNet::<f32>::load(dir.join("missing.bin")), Err(UnetError::Io { .. })));
    // a well-formed file whose layers disagree with its stated architecture is rejected: the same
    // weights with the architecture switched to unpadded convolutions (identical parameter sizes)
    let mut v = serde_json::to_value(&net).unwrap();
    assert_eq!(v["params"]["padding"], "Same");
    v["params"]["padding"] = "Valid".into();
    let tampered: UNet<f32> = serde_json::from_value(v).unwrap();
    let e = UNet::<f32>::from_bytes(&tampered.to_bytes().unwrap()).unwrap_err();
    assert!(matches!(e, UnetError::Format { .. }) && e.to_string().contains("geometries"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn training_is_bit_identical_on_one_and_two_threads() {
    use latent_datasets::cells::{SynthCells, synth_cell_set};
    use latent_unet::data::standardize;
    use latent_unet::{SegTrainer, TrainParams};
    let cells = synth_cell_set(&SynthCells { width: 64, height: 64, ..Default::default() }, 2, 3).unwrap();
    let sources: Vec<_> = cells.iter().map(|c| standardize(c).unwrap()).collect();
    let run = |threads: usize| -> (Vec<f32>, Vec<f64>) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let p = UnetParams::new().depth(3).base_channels(4).classes(3).batch_norm(true).dropout(0.2).seed(9);
            let mut net = p.check().unwrap().build::<UNet<f32>>().unwrap();
            let trainer = SegTrainer::new(TrainParams::new().steps(3).batch_size(4).tile(32).seed(5).check().unwrap());
            let rep = trainer.fit(&mut net, &sources).unwrap();
            (net.flat_params(), rep.losses)
        })
    };
    let (a, la) = run(1);
    let (b, lb) = run(2);
    assert_eq!(la, lb);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "weights differ between 1 and 2 threads");
}
