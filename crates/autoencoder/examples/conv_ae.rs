//! Convolutional autoencoder on MNIST (the benchmark architecture: two strided convolutions,
//! two transposed convolutions), with a cosine learning-rate schedule and a checkpoint per epoch.
//!
//! `cargo run --release -p latent-autoencoder --example conv_ae`

use latent_autoencoder::models::{ConvAeParams, ConvStage};
use latent_autoencoder::train::{LrSchedule, TrainParams};
use latent_autoencoder::{CheckedModel, ParamGuard};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    latent_linalg::product::init_threads(None)?; // the main thread trains on one of the pool's threads
    let m = latent_datasets::Mnist::from_dir(latent_datasets::data_dir().join("mnist-10k-10k"))?;
    let all = |n: usize| (0..n).collect::<Vec<usize>>();
    let x = m.train.to_tensor4::<f32>(&all(m.train.len()))?;
    let test = m.test.to_tensor4::<f32>(&all(2000))?;
    let ckpt = std::env::temp_dir().join("latent-conv-ae.ckpt");
    let train = TrainParams::new()
        .lr(2e-3)
        .batch_size(64)
        .epochs(4)
        .schedule(LrSchedule::Cosine { min_lr: 1e-4 })
        .checkpoint(&ckpt, 1);
    let fitted = ConvAeParams::new([1, 28, 28])
        .encoder_stage(ConvStage::new(16, 3, 2, 1))
        .encoder_stage(ConvStage::new(32, 3, 2, 1))
        .decoder_stage(ConvStage::new(16, 4, 2, 1))
        .decoder_stage(ConvStage::new(1, 4, 2, 1))
        .train(train)
        .check()?
        .fit_validated(&x, Some(&test))?;
    let r = &fitted.report;
    println!("code shape {:?}, {:.0} samples/s", fitted.model.code_shape()?, r.samples_per_s);
    for (e, (t, v)) in r.train_loss.iter().zip(&r.val_loss).enumerate() {
        println!("epoch {}: train {t:.5}  val {v:.5}", e + 1);
    }
    let mse: f32 = fitted.model.reconstruction_errors(&test)?.iter().sum::<f32>() / test.n() as f32;
    println!("test MSE/pixel {mse:.5}; last checkpoint at {}", ckpt.display());
    Ok(())
}
