//! A layer defined outside the crate: a k-sparse autoencoder (Makhzani & Frey 2013) whose top-k
//! activation is a [`CustomLayer`] written here. It is gradient-checked with the shared checker,
//! trained by the standard `Trainer` on MNIST, saved, and reloaded through a `LayerRegistry`
//! with identical outputs.
//!
//! `cargo run --release -p latent-autoencoder --example custom_layer`

use latent_autoencoder::ParamGuard;
use latent_autoencoder::layers::dense::Dense;
use latent_autoencoder::train::{TrainParams, Trainer};
use latent_autoencoder::{
    Activation, Autoencoder, AutoencoderError, CustomLayer, Encoder, Layer, LayerRegistry, Mode, Objective, Result,
    Sequential,
};
use latent_linalg::{Real, Tensor4};
use latent_optim::gradcheck::{GradCheck, check_vjp};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Keeps the `k` largest values of every sample and zeroes the rest; the gradient flows through
/// the kept units only.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopK {
    k: usize,
}

impl TopK {
    /// Indices of the `k` largest values of `v` (ties go to the lower index).
    fn kept<T: Real>(&self, v: &[T]) -> Result<Vec<usize>> {
        if self.k == 0 {
            return Err(AutoencoderError::InvalidParameter { name: "k", value: "0".into(), reason: "must be >= 1" });
        }
        let mut idx: Vec<usize> = (0..v.len()).collect();
        if self.k < v.len() {
            idx.select_nth_unstable_by(self.k - 1, |&a, &b| v[b].as_f64().total_cmp(&v[a].as_f64()).then(a.cmp(&b)));
            idx.truncate(self.k);
        }
        Ok(idx)
    }

    /// `out[i] = src[i]` on the kept units of `x`, 0 elsewhere, sample by sample.
    fn masked<T: Real>(&self, x: &Tensor4<T>, src: &Tensor4<T>) -> Result<Tensor4<T>> {
        if src.shape() != x.shape() {
            return Err(AutoencoderError::ShapeMismatch {
                op: "top-k",
                expected: format!("{:?}", x.shape()),
                got: format!("{:?}", src.shape()),
            });
        }
        let d = x.sample_len().max(1);
        let mut out = Tensor4::zeros(x.shape())?;
        let rows = x.as_slice().chunks_exact(d).zip(src.as_slice().chunks_exact(d));
        for ((xs, ss), os) in rows.zip(out.as_mut_slice().chunks_exact_mut(d)) {
            for i in self.kept(xs)? {
                os[i] = ss[i];
            }
        }
        Ok(out)
    }
}

impl<T: Real> Layer<T> for TopK {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.infer(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.masked(x, x)
    }
    fn backward(&mut self, x: &Tensor4<T>, _y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.masked(x, dy)
    }
}

impl<T: Real> CustomLayer<T> for TopK {
    const KIND: &'static str = "example.top_k";
    fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        Ok(input)
    }
    fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(AutoencoderError::InvalidParameter { name: "k", value: "0".into(), reason: "must be >= 1" });
        }
        Ok(())
    }
}

/// The input gradient of `TopK` against central differences, on values with distinct gaps.
fn gradient_check() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let x = Tensor4::from_fn([3, 10, 1, 1], |[n, c, ..]| ((n * 7 + c * 3) % 10) as f64 * 0.1 - 0.43)?;
    let dy = Tensor4::from_fn(x.shape(), |[n, c, ..]| ((n + 2 * c) % 5) as f64 - 2.0)?;
    let mut layer = TopK { k: 4 };
    let y = Layer::forward(&mut layer, &x, Mode::Train)?;
    let dx = Layer::backward(&mut layer, &x, &y, &dy)?;
    let f = |v: &[f64]| layer.infer(&Tensor4::from_vec(x.shape(), v.to_vec()).unwrap()).unwrap().into_vec();
    let report = check_vjp(f, x.as_slice(), dy.as_slice(), dx.as_slice(), &GradCheck::default())?;
    assert!(report.passes(1e-6), "top-k gradient: {report}");
    println!("gradient check of the top-k layer: max relative error {:.1e}", report.max_rel_error);
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    latent_linalg::product::init_threads(None)?; // the main thread trains on one of the pool's threads
    gradient_check()?;

    let m = latent_datasets::Mnist::from_dir(latent_datasets::data_dir().join("mnist-10k-10k"))?;
    let all = |n: usize| (0..n).collect::<Vec<usize>>();
    let x = m.train.to_tensor4::<f32>(&all(m.train.len()))?;
    let test = m.test.to_tensor4::<f32>(&all(m.test.len()))?;

    // 784 → 256 linear units → keep the 25 largest → 784 sigmoid outputs
    let (hidden, k) = (256, 25);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let encoder =
        Sequential::new().with(Dense::new(784, hidden, Activation::Identity, true, &mut rng)?).with_custom(TopK { k });
    let decoder = Sequential::new().with(Dense::new(hidden, 784, Activation::Sigmoid, true, &mut rng)?);
    let mut model = Autoencoder::<f32>::new([1, 28, 28], encoder, Activation::Identity, decoder, Objective::default())?;

    let trainer = Trainer::new(TrainParams::new().epochs(5).batch_size(64).lr(1e-3).progress(false).check()?);
    let report = trainer.fit(&mut model, &x, None)?;
    for (e, l) in report.train_loss.iter().enumerate() {
        println!("epoch {}: train MSE {l:.5}", e + 1);
    }
    let mse: f32 = model.reconstruction_errors(&test)?.iter().sum::<f32>() / test.n() as f32;
    let codes = model.encode(&test)?;
    let nonzero = codes.as_slice().iter().filter(|&&v| v != 0.0).count() as f64 / codes.len() as f64;
    println!("k-sparse AE ({hidden} units, k = {k}): test MSE/pixel {mse:.5}, nonzero codes {nonzero:.4}");

    let path = std::env::temp_dir().join(format!("latent-k-sparse-ae-{}.ltae", std::process::id()));
    model.save(&path)?;
    match Autoencoder::<f32>::load(&path) {
        Err(AutoencoderError::UnknownLayer { kind }) => println!("loading without a registry: unknown layer {kind:?}"),
        other => return Err(format!("expected an unknown-layer error, got {other:?}").into()),
    }
    let registry = LayerRegistry::new().register::<TopK>()?;
    let back = Autoencoder::<f32>::load_with(&path, &registry)?;
    assert_eq!(back.reconstruct(&test)?, model.reconstruct(&test)?);
    println!("saved to {} and reloaded with the registry: identical reconstructions", path.display());
    std::fs::remove_file(&path).ok();
    Ok(())
}
