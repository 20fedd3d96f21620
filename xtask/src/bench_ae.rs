//! `ae_mlp` and `conv_ae_step` of `../shared/bench/WORKLOADS.md`, on `latent-autoencoder`.
//!
//! Needs `latent-autoencoder`, `latent-datasets` and `latent-linalg` as dependencies of xtask.

use latent_autoencoder::models::{ConvAeParams, ConvStage, MlpAeParams};
use latent_autoencoder::train::{ModelOptimizer, OptimizerKind, Trainer};
use latent_autoencoder::{Autoencoder, CheckedModel, ParamGuard, Trainable};
use latent_linalg::Tensor4;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// MLP autoencoder 784-256-64-256-784 (ReLU, sigmoid output), MSE (mean over all elements, as
/// `nn.MSELoss`), Adam lr 1e-3, batch 128, 3 shuffled epochs over the MNIST train split of
/// `mnist_dir`; timed: the three epochs; reported: throughput and the test-set MSE per pixel.
///
/// `flop` (of the three epochs): per training sample, 2 flop per weight multiply-add of the
/// forward pass (784·256 + 256·64 + 64·256 + 256·784 = 434 176), the same again for the weight
/// gradients and for the input gradients except the first layer's (nothing needs the gradient
/// of the data): 2·(3·434 176 − 784·256). Not counted: biases, activations, the loss, Adam (a
/// few flops per parameter per step), shuffling.
pub fn ae_mlp(mnist_dir: &Path) -> Result<Value, String> {
    let m = latent_datasets::Mnist::from_dir(mnist_dir).map_err(err)?;
    let all = |n: usize| (0..n).collect::<Vec<usize>>();
    let train: Tensor4<f32> = m.train.to_tensor4(&all(m.train.len())).map_err(err)?;
    let test: Tensor4<f32> = m.test.to_tensor4(&all(m.test.len())).map_err(err)?;
    let epochs = 3;
    let params = MlpAeParams::new(vec![784, 256, 64])
        .lr(1e-3)
        .batch_size(128)
        .epochs(epochs)
        .seed(0)
        .progress(false)
        .check()
        .map_err(err)?;
    let mut model = params.build_for::<f32>([1, 28, 28]).map_err(err)?;
    let trainer = Trainer::new(params.train.check_ref().map_err(err)?);
    let t0 = Instant::now();
    let report = trainer.fit(&mut model, &train, None).map_err(err)?;
    let seconds = t0.elapsed().as_secs_f64();
    let xh = model.reconstruct(&test).map_err(err)?;
    let sse: f64 = xh.as_slice().iter().zip(test.as_slice()).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    let n = train.n();
    let macs: f64 = [(784.0, 256.0), (256.0, 64.0), (64.0, 256.0), (256.0, 784.0)].iter().map(|(a, b)| a * b).sum();
    let flop = (report.epochs_run * n) as f64 * 2.0 * (3.0 * macs - 784.0 * 256.0);
    Ok(json!({
        "dtype": "float32",
        "flop": flop,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "samples_per_s": ((report.epochs_run * n) as f64 / seconds * 10.0).round() / 10.0,
        "test_mse_per_pixel": sse / test.len() as f64,
        "epochs": report.epochs_run,
        "train_samples": n,
    }))
}

/// One training step of the convolutional autoencoder on a random (64, 1, 28, 28) batch:
/// conv 1→16 (3×3, s2, p1) ReLU, conv 16→32 (3×3, s2, p1) ReLU, convT 32→16 (4, s2, p1) ReLU,
/// convT 16→1 (4, s2, p1) sigmoid; MSE; Adam step. Median of 20 steps after 3 warm-up steps.
///
/// `flop` (of one step): 2 per multiply-add of the four convolutions, forward (per image: conv
/// 1→16 at 14×14 outputs: 196·16·9; conv 16→32 at 7×7: 49·32·16·9; the transposed convs scatter
/// every input pixel through every tap: 49·32·16·16 and 196·16·1·16), the same again for the
/// weight gradients and for the input gradients except the first layer's; × 64 images. Not
/// counted: biases, activations, the loss, Adam.
pub fn conv_ae_step() -> Result<Value, String> {
    let params = ConvAeParams::new([1, 28, 28])
        .encoder_stage(ConvStage::new(16, 3, 2, 1))
        .encoder_stage(ConvStage::new(32, 3, 2, 1))
        .decoder_stage(ConvStage::new(16, 4, 2, 1))
        .decoder_stage(ConvStage::new(1, 4, 2, 1))
        .seed(0)
        .check()
        .map_err(err)?;
    let mut model = params.build::<Autoencoder<f32>>().map_err(err)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let x = Tensor4::from_fn([64, 1, 28, 28], |_| rng.random::<f32>()).map_err(err)?;
    let mut opt = ModelOptimizer::new(&OptimizerKind::default(), &mut model).map_err(err)?;
    let mut times = Vec::with_capacity(20);
    for k in 0..23 {
        let t0 = Instant::now();
        model.train_step(&x).map_err(err)?;
        opt.step(&mut model, 1e-3).map_err(err)?;
        if k >= 3 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = 0.5 * (times[9] + times[10]);
    let fwd = [196.0 * 16.0 * 9.0, 49.0 * 32.0 * 16.0 * 9.0, 49.0 * 32.0 * 16.0 * 16.0, 196.0 * 16.0 * 16.0];
    let macs = 3.0 * fwd.iter().sum::<f64>() - fwd[0];
    Ok(
        json!({ "ms_per_step": (median * 1e6).round() / 1e3, "batch": 64, "dtype": "float32", "flop": 2.0 * 64.0 * macs }),
    )
}
