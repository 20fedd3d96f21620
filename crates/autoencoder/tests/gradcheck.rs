//! Every layer, loss and penalty against the shared finite-difference checker
//! (`latent_optim::gradcheck`), as property tests over random small shapes, in f64.

use latent_autoencoder::layers::batchnorm::BatchNorm;
use latent_autoencoder::layers::conv::{Conv2d, ConvGeometry, ConvTranspose2d};
use latent_autoencoder::layers::dense::Dense;
use latent_autoencoder::layers::dropout::Dropout;
use latent_autoencoder::layers::noise::Noise;
use latent_autoencoder::layers::pool::{AvgPool2d, MaxPool2d, Upsample, UpsampleMode};
use latent_autoencoder::layers::shape::{Flatten, Reshape};
use latent_autoencoder::loss::{frobenius_penalty, kl_sparsity_penalty, l1_penalty};
use latent_autoencoder::models::{ConvAeParams, ConvStage, MlpAeParams, Penalties};
use latent_autoencoder::{
    Activation, ActivationLayer, KlSparsity, Layer, Loss, Mode, NoiseModel, Trainable, WeightSet,
};
use latent_autoencoder::{Autoencoder, CheckedModel, ParamGuard};
use latent_linalg::Tensor4;
use latent_optim::gradcheck::{GradCheck, check_gradient, check_vjp};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f64 = 1e-5;

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x001a_7e27), failure_persistence: None, ..Config::default() }
}

fn rand_tensor(shape: [usize; 4], seed: u64, lo: f64, hi: f64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor4::from_fn(shape, |_| lo + (hi - lo) * rng.random::<f64>()).unwrap()
}

fn tensor_like(x: &Tensor4<f64>, v: &[f64]) -> Tensor4<f64> {
    Tensor4::from_vec(x.shape(), v.to_vec()).unwrap()
}

/// Check the input gradient and every parameter gradient of `layer` at `x` (training mode).
/// A fresh clone runs every evaluation, so layers with randomness reuse the same draw.
fn check_layer<L: Layer<f64> + Clone>(layer: &L, x: &Tensor4<f64>, seed: u64) -> Result<(), TestCaseError> {
    let mut l = layer.clone();
    let y = l.forward(x, Mode::Train).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let dy = rand_tensor(y.shape(), seed ^ 0xd1, -1.0, 1.0);
    let dx = l.backward(x, &y, &dy).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(dx.shape(), x.shape());
    let f = |z: &[f64]| layer.clone().forward(&tensor_like(x, z), Mode::Train).unwrap().into_vec();
    let rep = check_vjp(f, x.as_slice(), dy.as_slice(), dx.as_slice(), &GradCheck::default()).unwrap();
    prop_assert!(rep.passes(TOL), "input gradient of {:?}: {}", layer, rep);

    let grads: Vec<(Vec<f64>, Vec<f64>)> =
        l.params().into_iter().map(|p| (p.value.to_vec(), p.grad.to_vec())).collect();
    for (k, (theta, g)) in grads.iter().enumerate() {
        let f = |t: &[f64]| {
            let mut m = layer.clone();
            m.params()[k].value.copy_from_slice(t);
            m.forward(x, Mode::Train).unwrap().into_vec()
        };
        let rep = check_vjp(f, theta, dy.as_slice(), g, &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(TOL), "parameter {} of {:?}: {}", k, layer, rep);
    }
    // backward_params accumulates the same parameter gradients
    let mut l2 = layer.clone();
    let y2 = l2.forward(x, Mode::Train).unwrap();
    l2.backward_params(x, &y2, &dy).unwrap();
    let g2: Vec<Vec<f64>> = l2.params().into_iter().map(|p| p.grad.to_vec()).collect();
    prop_assert_eq!(g2, grads.into_iter().map(|(_, g)| g).collect::<Vec<_>>());
    Ok(())
}

/// Values with gaps of at least 0.02 between them (no ties, no kinks within the step).
fn distinct_tensor(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| (i as f64 - n as f64 / 2.0) * 0.02 + 0.013).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..n).rev() {
        v.swap(i, rng.random_range(0..=i));
    }
    Tensor4::from_vec(shape, v).unwrap()
}

fn activations() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Relu),
        Just(Activation::LeakyRelu(0.1)),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
    ]
}

/// Skip draws where a ReLU-like pre-activation sits on its kink.
fn away_from_kink(act: Activation, pre: &[f64]) -> bool {
    match act {
        Activation::Relu | Activation::LeakyRelu(_) => pre.iter().all(|v| v.abs() > 1e-4),
        _ => true,
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn dense(n in 1usize..4, i in 1usize..6, o in 1usize..5, act in activations(), bias in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layer = Dense::new(i, o, act, bias, &mut rng).unwrap();
        let x = rand_tensor([n, i, 1, 1], seed, -1.0, 1.0);
        let lin = Dense::from_weights(i, o, Activation::Identity, layer.weight().to_vec(), layer.bias().map(<[f64]>::to_vec)).unwrap();
        prop_assume!(away_from_kink(act, lin.infer(&x).unwrap().as_slice()));
        check_layer(&layer, &x, seed)?;
    }

    #[test]
    fn dense_on_images(n in 1usize..3, c in 1usize..3, hw in 2usize..4, o in 1usize..4, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layer = Dense::new(c * hw * hw, o, Activation::Tanh, true, &mut rng).unwrap();
        check_layer(&layer, &rand_tensor([n, c, hw, hw], seed, -1.0, 1.0), seed)?;
    }

    #[test]
    fn conv2d(n in 1usize..3, c in 1usize..3, o in 1usize..3, k in 1usize..4, s in 1usize..3, p in 0usize..2,
              h in 4usize..7, act in activations(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let g = ConvGeometry::new(c, o, k, s, p);
        let layer = Conv2d::new(g, act, true, &mut rng).unwrap();
        let x = rand_tensor([n, c, h, h + 1], seed, -1.0, 1.0);
        let lin = Conv2d::from_weights(g, Activation::Identity, layer.weight().clone(), layer.bias().map(<[f64]>::to_vec)).unwrap();
        prop_assume!(away_from_kink(act, lin.infer(&x).unwrap().as_slice()));
        check_layer(&layer, &x, seed)?;
    }

    #[test]
    fn conv_transpose2d(n in 1usize..3, c in 1usize..3, o in 1usize..3, k in 2usize..5, s in 1usize..3, p in 0usize..2,
                        h in 2usize..5, act in activations(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let g = ConvGeometry::new(c, o, k, s, p).output_padding(usize::from(s > 1));
        prop_assume!(g.transposed_output(h, h).is_ok());
        let layer = ConvTranspose2d::new(g, act, true, &mut rng).unwrap();
        let x = rand_tensor([n, c, h, h], seed, -1.0, 1.0);
        let lin = ConvTranspose2d::from_weights(g, Activation::Identity, layer.weight().clone(), layer.bias().map(<[f64]>::to_vec)).unwrap();
        prop_assume!(away_from_kink(act, lin.infer(&x).unwrap().as_slice()));
        check_layer(&layer, &x, seed)?;
    }

    #[test]
    fn pools_and_upsampling(n in 1usize..3, c in 1usize..3, h in 4usize..7, k in 1usize..4, s in 1usize..3,
                            f in 1usize..3, seed in any::<u64>()) {
        let x = distinct_tensor([n, c, h, h + 1], seed);
        check_layer(&MaxPool2d::new((k, k), (s, s)).unwrap(), &x, seed)?;
        check_layer(&AvgPool2d::new((k, k + 1), (s, s)).unwrap(), &x, seed)?;
        check_layer(&Upsample::new((f, f + 1), UpsampleMode::Nearest).unwrap(), &x, seed)?;
        check_layer(&Upsample::new((f + 1, f), UpsampleMode::Bilinear).unwrap(), &x, seed)?;
    }

    #[test]
    fn activation_layers(n in 1usize..4, c in 1usize..4, act in activations(), seed in any::<u64>()) {
        let x = distinct_tensor([n, c, 2, 3], seed);
        check_layer(&ActivationLayer::new(act).unwrap(), &x, seed)?;
    }

    #[test]
    fn dropout_noise_and_shapes(n in 1usize..4, c in 1usize..3, p in 0.0f64..0.9, seed in any::<u64>()) {
        let x = rand_tensor([n, c, 3, 2], seed, -1.0, 1.0);
        check_layer(&Dropout::<f64>::new(p, seed).unwrap(), &x, seed)?;
        check_layer(&Noise::<f64>::new(NoiseModel::Masking { fraction: p }, seed).unwrap(), &x, seed)?;
        check_layer(&Noise::<f64>::new(NoiseModel::Gaussian { std: p }, seed).unwrap(), &x, seed)?;
        check_layer(&Noise::<f64>::new(NoiseModel::salt_and_pepper(p), seed).unwrap(), &x, seed)?;
        check_layer(&Flatten, &x, seed)?;
        check_layer(&Reshape::new([6, c, 1]).unwrap(), &x, seed)?;
    }

    #[test]
    fn batch_norm(n in 2usize..5, c in 1usize..4, hw in 1usize..3, seed in any::<u64>()) {
        let mut bn = BatchNorm::<f64>::new(c).unwrap();
        // non-trivial γ, β
        for (k, p) in bn.params().into_iter().enumerate() {
            p.value.iter_mut().enumerate().for_each(|(i, v)| *v = 0.5 + 0.3 * (i + k) as f64);
        }
        check_layer(&bn, &rand_tensor([n, c, hw, hw + 1], seed, -2.0, 2.0), seed)?;
    }

    #[test]
    fn losses(n in 1usize..4, d in 1usize..6, seed in any::<u64>()) {
        let t = rand_tensor([n, d, 1, 1], seed, 0.0, 1.0);
        for loss in [Loss::Mse, Loss::SumSquared, Loss::Bce, Loss::BceWithLogits] {
            let p = rand_tensor([n, d, 1, 1], seed ^ 7, 0.05, 0.95);
            let mut g = vec![0.0; p.len()];
            loss.value_grad(p.as_slice(), t.as_slice(), n, Some(&mut g)).unwrap();
            let f = |z: &[f64]| loss.value(z, t.as_slice(), n).unwrap();
            let rep = check_gradient(f, p.as_slice(), &g, &GradCheck::default()).unwrap();
            prop_assert!(rep.passes(TOL), "{:?}: {}", loss, rep);
        }
    }

    #[test]
    fn penalties(n in 1usize..4, c in 1usize..5, hw in 1usize..3, lambda in 0.01f64..2.0, rho in 0.02f64..0.5, tau in 0.05f64..2.0, seed in any::<u64>()) {
        let s = rand_tensor([n, c, hw, hw], seed, -1.0, 1.0);
        prop_assume!(s.as_slice().iter().all(|v| v.abs() > 1e-4));
        let mut g = vec![0.0; s.len()];
        l1_penalty(lambda, s.as_slice(), n, Some(&mut g)).unwrap();
        let rep = check_gradient(|z: &[f64]| l1_penalty(lambda, z, n, None).unwrap(), s.as_slice(), &g, &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(TOL), "l1: {}", rep);

        let mut g = vec![0.0; s.len()];
        frobenius_penalty(lambda, s.as_slice(), Some(&mut g)).unwrap();
        let rep = check_gradient(|z: &[f64]| frobenius_penalty(lambda, z, None).unwrap(), s.as_slice(), &g, &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(TOL), "frobenius: {}", rep);

        let z = rand_tensor([n, c, hw, hw], seed ^ 3, -3.0, 3.0);
        let mut gz = Tensor4::zeros(z.shape()).unwrap();
        let kl = KlSparsity::new(rho, lambda).temperature(tau);
        kl_sparsity_penalty(&kl, &z, Some(&mut gz)).unwrap();
        let f = |v: &[f64]| kl_sparsity_penalty(&kl, &tensor_like(&z, v), None).unwrap();
        let rep = check_gradient(f, z.as_slice(), gz.as_slice(), &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(TOL), "kl: {}", rep);
    }
}

/// The full objective of a model (loss + penalties) against all its parameters at once.
fn check_model_gradient<M: Trainable<f64> + Clone>(model: &M, x: &Tensor4<f64>) {
    let mut m = model.clone();
    m.train_step(x).unwrap();
    let theta: Vec<f64> = m.params().iter().flat_map(|p| p.value.to_vec()).collect();
    let grad: Vec<f64> = m.params().iter().flat_map(|p| p.grad.to_vec()).collect();
    let f = |t: &[f64]| {
        let mut m = model.clone();
        let mut off = 0;
        for p in m.params() {
            let l = p.value.len();
            p.value.copy_from_slice(&t[off..off + l]);
            off += l;
        }
        m.train_step(x).unwrap()
    };
    let rep = check_gradient(f, &theta, &grad, &GradCheck::default()).unwrap();
    assert!(rep.passes(TOL), "{rep}");
}

#[test]
fn whole_models_with_all_penalties() {
    let pen = Penalties {
        l1: 0.05,
        kl: Some(KlSparsity::new(0.1, 0.2).temperature(0.5)),
        frobenius: 0.01,
        frobenius_on: WeightSet::All,
    };
    let x = rand_tensor([5, 1, 2, 3], 11, 0.0, 1.0);
    for loss in [Loss::Mse, Loss::BceWithLogits] {
        let mlp = MlpAeParams::new(vec![6, 5, 3])
            .hidden_activation(Activation::Tanh)
            .code_activation(Activation::Sigmoid)
            .output_activation(if loss == Loss::Mse { Activation::Sigmoid } else { Activation::Identity })
            .loss(loss)
            .penalties(pen)
            .check()
            .unwrap()
            .build_for::<f64>([1, 2, 3])
            .unwrap();
        check_model_gradient(&mlp, &x);
    }
    let bn = MlpAeParams::new(vec![6, 4, 2])
        .hidden_activation(Activation::Tanh)
        .code_activation(Activation::Tanh)
        .batch_norm(true)
        .penalties(pen);
    check_model_gradient(&bn.check().unwrap().build_for::<f64>([1, 2, 3]).unwrap(), &x);

    let conv = ConvAeParams::new([1, 6, 6])
        .encoder_stage(ConvStage::new(2, 3, 2, 1))
        .encoder_stage(ConvStage::new(3, 2, 1, 0))
        .hidden_activation(Activation::Tanh)
        .code_activation(Activation::Sigmoid)
        .penalties(pen)
        .check()
        .unwrap()
        .build::<Autoencoder<f64>>()
        .unwrap();
    check_model_gradient(&conv, &rand_tensor([3, 1, 6, 6], 5, 0.0, 1.0));
}
