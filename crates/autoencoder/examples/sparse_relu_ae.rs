//! The sparse ReLU autoencoder `s = max(0, Vx)` on MNIST digits, with the L1 code penalty and the
//! KL "every unit activates sometimes" term; reports sparsity and dead units with and without
//! the KL term.
//!
//! `cargo run --release -p latent-autoencoder --example sparse_relu_ae`

use latent_autoencoder::Encoder;
use latent_autoencoder::ParamGuard;
use latent_autoencoder::models::SparseReluAeParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = latent_datasets::Mnist::from_dir(latent_datasets::data_dir().join("mnist-10k-10k"))?;
    let idx: Vec<usize> = (0..5000).collect();
    let x = m.train.to_tensor4::<f32>(&idx)?;
    let test = m.test.to_tensor4::<f32>(&idx[..2000])?;
    for kl_weight in [0.0, 0.5] {
        let fitted = SparseReluAeParams::new(784, 128)
            .lambda(0.05)
            .kl(0.05, kl_weight)
            .bias(true)
            .epochs(5)
            .batch_size(100)
            .lr(2e-3)
            .check()?
            .fit(&x)?;
        let s = fitted.model.encode(&test)?;
        let active = s.as_slice().iter().filter(|v| **v > 0.0).count() as f64 / s.len() as f64;
        let dead = fitted.model.dead_units(&test, 500, 0.0)?;
        let mse: f32 = fitted.model.reconstruction_errors(&test)?.iter().sum::<f32>() / test.n() as f32;
        println!(
            "KL weight {kl_weight}: loss {:.3} → {:.3}, test MSE/pixel {mse:.4}, active codes {:.1} %, dead units {} of 128",
            fitted.report.train_loss[0],
            fitted.report.train_loss[fitted.report.epochs_run - 1],
            100.0 * active,
            dead.num_dead()
        );
    }
    Ok(())
}
