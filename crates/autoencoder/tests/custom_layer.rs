//! Layers defined outside the crate: gradient-checked with the shared checker, trained by the
//! standard `Trainer`, checkpointed, resumed, saved and loaded through a `LayerRegistry`; hostile
//! or unregistered kinds are typed errors.

use latent_autoencoder::ParamGuard;
use latent_autoencoder::layers::dense::Dense;
use latent_autoencoder::resume::TrainingState;
use latent_autoencoder::train::{Control, EpochContext, TrainParams, Trainer};
use latent_autoencoder::{
    Activation, AnyLayer, Autoencoder, AutoencoderError, CustomLayer, Layer, LayerRegistry, Mode, Objective, Param,
    ParamKind, Result, Sequential, Trainable, WeightSet,
};
use latent_linalg::{Real, Tensor4};
use latent_optim::gradcheck::{GradCheck, check_vjp};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn shape_error(op: &'static str, expected: [usize; 4], got: [usize; 4]) -> AutoencoderError {
    AutoencoderError::ShapeMismatch { op, expected: format!("{expected:?}"), got: format!("{got:?}") }
}

/// Keeps the `k` largest values of every sample (ties to the lower index), zeroes the rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopK {
    k: usize,
}

impl TopK {
    fn masked<T: Real>(&self, x: &Tensor4<T>, src: &Tensor4<T>) -> Result<Tensor4<T>> {
        if src.shape() != x.shape() {
            return Err(shape_error("top-k", x.shape(), src.shape()));
        }
        if self.k == 0 {
            return Err(AutoencoderError::InvalidParameter { name: "k", value: "0".into(), reason: "must be >= 1" });
        }
        let d = x.sample_len().max(1);
        let mut out = Tensor4::zeros(x.shape())?;
        let rows = x.as_slice().chunks_exact(d).zip(src.as_slice().chunks_exact(d));
        for ((xs, ss), os) in rows.zip(out.as_mut_slice().chunks_exact_mut(d)) {
            let mut idx: Vec<usize> = (0..d).collect();
            if self.k < d {
                idx.select_nth_unstable_by(self.k - 1, |&a, &b| {
                    xs[b].as_f64().total_cmp(&xs[a].as_f64()).then(a.cmp(&b))
                });
                idx.truncate(self.k);
            }
            for i in idx {
                os[i] = ss[i];
            }
        }
        Ok(out)
    }
}

impl<T: Real> Layer<T> for TopK {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.masked(x, x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.masked(x, x)
    }
    fn backward(&mut self, x: &Tensor4<T>, _y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.masked(x, dy)
    }
}

impl<T: Real> CustomLayer<T> for TopK {
    const KIND: &'static str = "test.top_k";
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

/// `y[n, c, ..] = γ_c · x[n, c, ..]` with a trained per-channel weight γ (covered by the
/// Frobenius penalty).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChannelScale<T> {
    gamma: Vec<T>,
    #[serde(skip)]
    grad: Vec<T>,
}

impl<T: Real> ChannelScale<T> {
    fn new(channels: usize) -> Self {
        Self { gamma: (0..channels).map(|c| T::lit(1.0 + 0.1 * c as f64)).collect(), grad: vec![T::zero(); channels] }
    }
    fn check(&self, x: &Tensor4<T>) -> Result<()> {
        if x.c() != self.gamma.len() {
            return Err(shape_error("channel scale", [x.n(), self.gamma.len(), x.h(), x.w()], x.shape()));
        }
        Ok(())
    }
    fn scaled(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.check(x)?;
        let plane = x.h() * x.w();
        let mut y = x.clone();
        for (i, v) in y.as_mut_slice().iter_mut().enumerate() {
            *v *= self.gamma[(i / plane.max(1)) % self.gamma.len()];
        }
        Ok(y)
    }
}

impl<T: Real> Layer<T> for ChannelScale<T> {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.scaled(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.scaled(x)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.check(x)?;
        if y.shape() != x.shape() || dy.shape() != x.shape() {
            return Err(shape_error("channel scale backward", x.shape(), dy.shape()));
        }
        self.grad.resize(self.gamma.len(), T::zero());
        let plane = x.h() * x.w();
        let c = self.gamma.len();
        let mut dx = dy.clone();
        for (i, (g, &xv)) in dx.as_mut_slice().iter_mut().zip(x.as_slice()).enumerate() {
            let ch = (i / plane.max(1)) % c;
            self.grad[ch] += *g * xv;
            *g *= self.gamma[ch];
        }
        Ok(dx)
    }
    fn params(&mut self) -> Vec<Param<'_, T>> {
        self.grad.resize(self.gamma.len(), T::zero());
        vec![Param { name: "gamma", kind: ParamKind::Weight, value: &mut self.gamma, grad: &mut self.grad }]
    }
}

impl<T: Real> CustomLayer<T> for ChannelScale<T> {
    const KIND: &'static str = "test.channel_scale";
    fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        if input[0] != self.gamma.len() {
            return Err(AutoencoderError::ShapeMismatch {
                op: "channel scale",
                expected: format!("{} channels", self.gamma.len()),
                got: format!("{input:?}"),
            });
        }
        Ok(input)
    }
    fn validate(&self) -> Result<()> {
        match self.gamma.iter().position(|v| !v.finite()) {
            Some(index) => Err(AutoencoderError::NonFiniteInput { what: "gamma", index }),
            None if self.gamma.is_empty() => Err(AutoencoderError::Empty { what: "gamma" }),
            None => Ok(()),
        }
    }
    fn weight_values(&self) -> Vec<&[T]> {
        vec![&self.gamma]
    }
}

fn rand_tensor(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor4::from_fn(shape, |_| rng.random::<f64>() * 2.0 - 1.0).unwrap()
}

/// Input and parameter gradients of `layer` at `x` against central differences.
fn check_layer<L: Layer<f64> + Clone>(
    layer: &L,
    x: &Tensor4<f64>,
    seed: u64,
) -> std::result::Result<(), TestCaseError> {
    let mut l = layer.clone();
    let y = l.forward(x, Mode::Train).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let dy = rand_tensor(y.shape(), seed ^ 0x5eed);
    let dx = l.backward(x, &y, &dy).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let at = |v: &[f64]| Tensor4::from_vec(x.shape(), v.to_vec()).unwrap();
    let f = |v: &[f64]| layer.clone().forward(&at(v), Mode::Train).unwrap().into_vec();
    let rep = check_vjp(f, x.as_slice(), dy.as_slice(), dx.as_slice(), &GradCheck::default()).unwrap();
    prop_assert!(rep.passes(1e-6), "input gradient of {:?}: {}", layer, rep);
    let grads: Vec<(Vec<f64>, Vec<f64>)> =
        l.params().into_iter().map(|p| (p.value.to_vec(), p.grad.to_vec())).collect();
    for (k, (theta, g)) in grads.iter().enumerate() {
        let f = |t: &[f64]| {
            let mut m = layer.clone();
            m.params()[k].value.copy_from_slice(t);
            m.forward(x, Mode::Train).unwrap().into_vec()
        };
        let rep = check_vjp(f, theta, dy.as_slice(), g, &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(1e-6), "parameter {} of {:?}: {}", k, layer, rep);
    }
    Ok(())
}

/// Distinct values 0.05 apart in random order (no ties at the top-k boundary).
fn distinct(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let d = shape[1] * shape[2] * shape[3];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::new();
    for _ in 0..shape[0] {
        let mut s: Vec<f64> = (0..d).map(|i| i as f64 * 0.05 - 0.3).collect();
        for i in (1..d).rev() {
            s.swap(i, rng.random_range(0..=i));
        }
        v.extend(s);
    }
    Tensor4::from_vec(shape, v).unwrap()
}

proptest! {
    #![proptest_config(Config { cases: 24, rng_seed: RngSeed::Fixed(0x0c57_0e11), failure_persistence: None, ..Config::default() })]

    #[test]
    fn custom_layers_pass_the_shared_gradient_check(
        n in 1usize..4, c in 1usize..4, h in 1usize..4, k in 1usize..6, seed in 0u64..1000,
    ) {
        let x = distinct([n, c, h, 2], seed);
        check_layer(&TopK { k }, &x, seed)?;
        let mut scale = ChannelScale::<f64>::new(c);
        scale.gamma.iter_mut().enumerate().for_each(|(i, g)| *g -= 0.3 * i as f64);
        check_layer(&scale, &rand_tensor([n, c, h, 2], seed), seed)?;
        // as parts of a model, through the container
        let seq = Sequential::new().with_custom(scale).with_custom(TopK { k });
        check_layer(&seq, &x, seed)?;
    }
}

fn data(n: usize, d: usize) -> Tensor4<f32> {
    Tensor4::from_fn([n, d, 1, 1], |[i, c, ..]| (((i * 5 + c * 3) % 11) as f32 / 11.0 + 0.05 * (i % 3) as f32).min(1.0))
        .unwrap()
}

/// Dense 12 → 6 (identity), top-3 | channel scale, dense 6 → 12 (sigmoid), Frobenius on all
/// weights (so the custom weight counts).
fn model(seed: u64) -> Autoencoder<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let encoder = Sequential::new()
        .with(Dense::new(12, 6, Activation::Identity, true, &mut rng).unwrap())
        .with_custom(TopK { k: 3 });
    let decoder = Sequential::new()
        .with_custom(ChannelScale::<f32>::new(6))
        .with(Dense::new(6, 12, Activation::Sigmoid, true, &mut rng).unwrap());
    let objective = Objective { frobenius: 1e-3, frobenius_on: WeightSet::All, ..Objective::default() };
    Autoencoder::new([12, 1, 1], encoder, Activation::Identity, decoder, objective).unwrap()
}

fn registry() -> LayerRegistry<f32> {
    LayerRegistry::new().register::<TopK>().unwrap().register::<ChannelScale<f32>>().unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-ae-custom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn params() -> TrainParams {
    TrainParams::new().epochs(2).batch_size(8).lr(1e-2).seed(4).progress(false)
}

#[test]
fn a_model_with_custom_layers_trains_saves_and_loads_with_the_registry() {
    let x = data(40, 12);
    let mut m = model(1);
    let gamma_before = m.decoder().layers()[0].weights()[0].to_vec();
    let report = Trainer::new(params().check().unwrap()).fit(&mut m, &x, None).unwrap();
    assert_eq!(report.epochs_run, 2);
    assert!(report.train_loss.iter().all(|l| l.is_finite()));
    // the custom layer's parameter was trained, and eval and training objectives agree on it
    let AnyLayer::Custom(u) = &m.decoder().layers()[0] else { panic!("not custom") };
    assert_eq!(u.kind(), "test.channel_scale");
    assert_ne!(u.downcast_ref::<ChannelScale<f32>>().unwrap().gamma, gamma_before);
    let train_obj = m.clone().train_step(&x).unwrap();
    assert!((m.eval_loss(&x).unwrap() - train_obj).abs() < 1e-6 * train_obj.abs().max(1.0));
    // codes are 3-sparse
    let codes = latent_autoencoder::Encoder::encode(&m, &x).unwrap();
    assert!(codes.as_slice().chunks(6).all(|s| s.iter().filter(|v| **v != 0.0).count() <= 3));

    let path = temp("model.ltae");
    m.save(&path).unwrap();
    let back = Autoencoder::<f32>::load_with(&path, &registry()).unwrap();
    assert_eq!(back.reconstruct(&x).unwrap(), m.reconstruct(&x).unwrap());
    assert_eq!(back.to_bytes().unwrap(), m.to_bytes().unwrap());
    assert_eq!(m.layer_registry().kinds().collect::<Vec<_>>(), vec!["test.top_k", "test.channel_scale"]);

    // without the registry, or with only part of it: a typed error naming the kind
    match Autoencoder::<f32>::load(&path) {
        Err(AutoencoderError::UnknownLayer { kind }) => assert_eq!(kind, "test.top_k"),
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    let partial = LayerRegistry::new().register::<TopK>().unwrap();
    match Autoencoder::<f32>::load_with(&path, &partial) {
        Err(AutoencoderError::UnknownLayer { kind }) => assert_eq!(kind, "test.channel_scale"),
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn training_with_custom_layers_resumes_bit_identically() {
    let x = data(40, 12);
    let params = params().epochs(3);
    let mut whole = model(2);
    let full = Trainer::new(params.clone().check().unwrap()).fit(&mut whole, &x, None).unwrap();

    let state = temp("run.ltts");
    let mut first = model(2);
    let mut stop =
        |ctx: &mut EpochContext<'_, Autoencoder<f32>>| if ctx.epoch == 1 { Control::Stop } else { Control::Continue };
    Trainer::new(params.clone().state_checkpoint(&state, 1).check().unwrap())
        .fit_with_callbacks(&mut first, &x, None, &mut [&mut stop])
        .unwrap();
    let saved = TrainingState::<f32>::load(&state).unwrap();
    assert_eq!(saved.model_with(&registry()).unwrap().to_bytes().unwrap(), first.to_bytes().unwrap());
    assert!(matches!(saved.model_with(&LayerRegistry::new()), Err(AutoencoderError::UnknownLayer { .. })));

    // the trainer decodes the saved model with the custom layers of the model it is given
    let mut resumed = model(7);
    let rest = Trainer::new(params.resume_from(&state).check().unwrap()).fit(&mut resumed, &x, None).unwrap();
    assert_eq!(rest.train_loss, full.train_loss);
    assert_eq!(resumed.to_bytes().unwrap(), whole.to_bytes().unwrap());
    std::fs::remove_file(&state).ok();
}

/// An identity layer stored under the tag `$kind`.
macro_rules! identity_layer {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        struct $name;
        impl<T: Real> Layer<T> for $name {
            fn forward(&mut self, x: &Tensor4<T>, _: Mode) -> Result<Tensor4<T>> {
                Ok(x.clone())
            }
            fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
                Ok(x.clone())
            }
            fn backward(&mut self, _: &Tensor4<T>, _: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
                Ok(dy.clone())
            }
        }
        impl<T: Real> CustomLayer<T> for $name {
            const KIND: &'static str = $kind;
            fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
                Ok(input)
            }
        }
    };
}

identity_layer!(
    /// A layer whose tag is not valid.
    BadKind,
    "test.top_k with spaces"
);
identity_layer!(
    /// Another type under `TopK`'s tag.
    Impostor,
    "test.top_k"
);

#[test]
fn registries_reject_bad_and_clashing_kinds() {
    let invalid = |r: Result<LayerRegistry<f32>>| matches!(r, Err(AutoencoderError::InvalidParameter { .. }));
    assert!(invalid(LayerRegistry::new().register::<BadKind>()));
    assert!(invalid(LayerRegistry::new().register::<TopK>().unwrap().register::<Impostor>()));
    // the same type twice is fine
    assert_eq!(LayerRegistry::<f32>::new().register::<TopK>().unwrap().register::<TopK>().unwrap().kinds().count(), 1);
    // a model holding a layer with an invalid tag cannot be saved
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let enc =
        Sequential::new().with(Dense::new(4, 2, Activation::Identity, true, &mut rng).unwrap()).with_custom(BadKind);
    let dec = Sequential::new().with(Dense::new(2, 4, Activation::Identity, true, &mut rng).unwrap());
    let m = Autoencoder::<f32>::new([4, 1, 1], enc, Activation::Identity, dec, Objective::default()).unwrap();
    assert!(matches!(m.to_bytes(), Err(AutoencoderError::Format { .. })), "{:?}", m.to_bytes());
}

/// The file's payload (after the 28-byte container header) re-wrapped with a valid checksum.
fn rewrap(payload: &[u8]) -> Vec<u8> {
    latent_linalg::persist::wrap_payload(latent_autoencoder::io::magic::<f32>(), 1, payload)
}

#[test]
fn hostile_custom_layer_records_are_typed_errors() {
    let bytes = model(3).to_bytes().unwrap();
    let payload = &bytes[28..];
    assert_eq!(rewrap(payload), bytes);
    let tag = b"test.top_k";
    let at = payload.windows(tag.len()).position(|w| w == tag).unwrap();
    assert_eq!(payload[at - 1] as usize, tag.len(), "the tag's length prefix");
    let reg = registry();
    let load = |p: &[u8]| Autoencoder::<f32>::from_bytes_with(&rewrap(p), &reg);

    // another (valid) tag: unknown
    let mut p = payload.to_vec();
    p[at + tag.len() - 1] = b'x';
    match load(&p) {
        Err(AutoencoderError::UnknownLayer { kind }) => assert_eq!(kind, "test.top_x"),
        other => panic!("expected UnknownLayer, got {other:?}"),
    }
    // an invalid tag, a tag claiming 250 bytes, a tag claiming 2⁶⁴ − 1 bytes: format errors
    let mut p = payload.to_vec();
    p[at] = b' ';
    assert!(matches!(load(&p), Err(AutoencoderError::Format { .. })));
    let mut p = payload.to_vec();
    p[at - 1] = 250;
    assert!(matches!(load(&p), Err(AutoencoderError::Format { .. })));
    let mut p = payload[..at - 1].to_vec();
    p.push(253); // bincode varint: a u64 follows
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    p.extend_from_slice(&payload[at..]);
    assert!(matches!(load(&p), Err(AutoencoderError::Format { .. })));
    // the layer's own payload: k = 0 fails its validation, a truncated payload does not decode
    let k_at = at + tag.len() + 1; // after the payload's length prefix: TopK { k } as a varint
    assert_eq!(payload[at + tag.len()], 1, "TopK's payload is one byte");
    assert_eq!(payload[k_at], 3);
    let mut p = payload.to_vec();
    p[k_at] = 0;
    assert!(matches!(load(&p), Err(AutoencoderError::Format { .. })), "{:?}", load(&p));
    let mut p = payload.to_vec();
    p[k_at] = 251; // a varint announcing a u16 that is not there
    assert!(matches!(load(&p), Err(AutoencoderError::Format { .. })), "{:?}", load(&p));
    // every truncation fails cleanly
    for cut in 0..payload.len() {
        assert!(load(&payload[..cut]).is_err());
    }
}
