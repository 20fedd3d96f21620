//! The linear autoencoder `s = Vx`, `x̂ = Ws` with loss `‖x − WVx‖² + λ‖Vx‖₁ + η‖W‖²_F` on
//! synthetic data that lies near a 3-dimensional subspace of R¹⁶.
//!
//! `cargo run --release -p latent-autoencoder --example linear_ae`

use latent_autoencoder::Encoder;
use latent_autoencoder::ParamGuard;
use latent_autoencoder::models::LinearAeParams;
use latent_linalg::Tensor4;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), latent_autoencoder::AutoencoderError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let basis: Vec<f32> = (0..16 * 3).map(|_| rng.random::<f32>() - 0.5).collect();
    let coeffs: Vec<f32> = (0..1000 * 3).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let x = Tensor4::from_fn([1000, 16, 1, 1], |[n, d, ..]| {
        (0..3).map(|k| basis[d * 3 + k] * coeffs[n * 3 + k]).sum::<f32>() + 0.01 * (rng.random::<f32>() - 0.5)
    })?;
    let fitted =
        LinearAeParams::new(16, 3).lambda(1e-3).eta(1e-4).epochs(60).batch_size(50).lr(5e-3).check()?.fit(&x)?;
    let r = &fitted.report;
    println!("epochs {}, stop {:?}", r.epochs_run, r.stop_reason);
    println!("objective: first {:.5}, last {:.5}", r.train_loss[0], r.train_loss[r.epochs_run - 1]);
    let err: f32 = fitted.model.reconstruction_errors(&x)?.iter().sum::<f32>() / 1000.0;
    println!("mean reconstruction MSE {err:.3e}");
    println!("code of the first sample: {:?}", fitted.model.encode(&x)?.sample(0));
    Ok(())
}
