//! Denoising autoencoder (Vincent et al. 2010) on MNIST: the MLP autoencoder behind masking,
//! salt-and-pepper or Gaussian noise (training mode only); compares how well each model cleans
//! corrupted test digits against the plain autoencoder.
//!
//! `cargo run --release -p latent-autoencoder --example denoising_ae`

use latent_autoencoder::NoiseModel;
use latent_autoencoder::ParamGuard;
use latent_autoencoder::models::MlpAeParams;
use rand::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = latent_datasets::Mnist::from_dir(latent_datasets::data_dir().join("mnist-10k-10k"))?;
    let all = |n: usize| (0..n).collect::<Vec<usize>>();
    let x = m.train.to_tensor4::<f32>(&all(m.train.len()))?;
    let clean = m.test.to_tensor4::<f32>(&all(2000))?;
    let mut corrupted = clean.clone();
    let test_noise = NoiseModel::Masking { fraction: 0.3 };
    test_noise.corrupt(corrupted.as_mut_slice(), None, &mut rand_chacha::ChaCha8Rng::seed_from_u64(99));
    let per_pixel = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(u, v)| (u - v).powi(2)).sum::<f32>() / a.len() as f32;
    println!(
        "corrupted test digits: MSE/pixel to the clean ones {:.4}",
        per_pixel(corrupted.as_slice(), clean.as_slice())
    );
    let models = [
        ("plain", None),
        ("masking 0.3", Some(NoiseModel::Masking { fraction: 0.3 })),
        ("salt-and-pepper 0.2", Some(NoiseModel::salt_and_pepper(0.2))),
        ("gaussian 0.3", Some(NoiseModel::Gaussian { std: 0.3 })),
    ];
    for (name, noise) in models {
        let mut p = MlpAeParams::new(vec![784, 256, 64]).lr(1e-3).batch_size(128).epochs(5);
        if let Some(n) = noise {
            p = p.denoising(n);
        }
        let fitted = p.check()?.fit(&x)?;
        let out = fitted.model.reconstruct(&corrupted)?;
        println!("{name:>20}: denoised MSE/pixel {:.4}", per_pixel(out.as_slice(), clean.as_slice()));
    }
    Ok(())
}
