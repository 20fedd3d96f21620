//! Deep MLP autoencoder 784-256-64-256-784 on MNIST with validation and early stopping; saves
//! the model and checks that the reloaded model reconstructs identically.
//!
//! `cargo run --release -p latent-autoencoder --example mlp_ae`

use latent_autoencoder::Autoencoder;
use latent_autoencoder::ParamGuard;
use latent_autoencoder::models::MlpAeParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    latent_linalg::product::init_threads(None)?; // the main thread trains on one of the pool's threads
    let m = latent_datasets::Mnist::from_dir(latent_datasets::data_dir().join("mnist-10k-10k"))?;
    let all = |n: usize| (0..n).collect::<Vec<usize>>();
    let x = m.train.to_tensor4::<f32>(&all(m.train.len()))?;
    let test = m.test.to_tensor4::<f32>(&all(m.test.len()))?;
    let fitted = MlpAeParams::new(vec![784, 256, 64])
        .lr(1e-3)
        .batch_size(128)
        .epochs(20)
        .validation_fraction(0.1)
        .patience(3)
        .check()?
        .fit(&x)?;
    let r = &fitted.report;
    println!(
        "stopped after {} epochs ({:?}), best epoch {}, {:.0} samples/s",
        r.epochs_run, r.stop_reason, r.best_epoch, r.samples_per_s
    );
    for (e, (t, v)) in r.train_loss.iter().zip(&r.val_loss).enumerate() {
        println!("epoch {:2}: train {t:.5}  val {v:.5}", e + 1);
    }
    let mse: f32 = fitted.model.reconstruction_errors(&test)?.iter().sum::<f32>() / test.n() as f32;
    println!("test MSE/pixel {mse:.5}");
    let path = std::env::temp_dir().join("latent-mlp-ae.bin");
    fitted.model.save(&path)?;
    let back = Autoencoder::<f32>::load(&path)?;
    assert_eq!(back.reconstruct(&test)?, fitted.model.reconstruct(&test)?);
    println!("saved to and reloaded from {}", path.display());
    Ok(())
}
