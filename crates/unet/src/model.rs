//! The U-Net: contracting path, bottleneck, expanding path with shortcut connections, 1×1 head —
//! assembled from `latent-autoencoder` layers, itself a [`Layer`] (forward, backward, params).

use crate::error::{Result, UnetError, check_finite, shape_err};
use crate::params::{Checked, Geometry, Padding, UnetParams, check_hw};
use latent_autoencoder::layers::batchnorm::BatchNorm;
use latent_autoencoder::layers::conv::{Conv2d, ConvGeometry, ConvTranspose2d};
use latent_autoencoder::layers::dropout::Dropout;
use latent_autoencoder::layers::pool::MaxPool2d;
use latent_autoencoder::{Activation, ActivationLayer, AnyLayer, AutoencoderError, Layer, Mode, Param, Sequential};
use latent_linalg::pool::{center_crop, center_crop_backward, concat_channels, split_channels};
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::ParamGuard;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Two 3×3 convolutions with ReLU (batch norm between convolution and ReLU when asked).
fn conv_block<T: Real>(cin: usize, cout: usize, p: &UnetParams, rng: &mut ChaCha8Rng) -> Result<Sequential<T>> {
    let pad = match p.padding {
        Padding::Same => 1,
        Padding::Valid => 0,
    };
    let mut s = Sequential::new();
    for (i, o) in [(cin, cout), (cout, cout)] {
        let g = ConvGeometry::new(i, o, 3, 1, pad);
        if p.batch_norm {
            s.push(Conv2d::new(g, Activation::Identity, false, rng)?);
            s.push(BatchNorm::<T>::new(o)?);
            s.push(ActivationLayer::new(Activation::Relu)?);
        } else {
            s.push(Conv2d::new(g, Activation::Relu, true, rng)?);
        }
    }
    Ok(s)
}

/// What a training forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
struct Cache<T> {
    input_shape: [usize; 4],
    /// Layer outputs of encoder block `l` (the last is the shortcut source).
    enc: Vec<Vec<Tensor4<T>>>,
    /// Output of pooling `l`.
    pooled: Vec<Tensor4<T>>,
    /// Layer outputs of the bottleneck.
    bott: Vec<Tensor4<T>>,
    /// Output of up-convolution `l`.
    ups: Vec<Tensor4<T>>,
    /// Input of decoder block `l` when it differs from `ups[l]` (skips on).
    cat: Vec<Option<Tensor4<T>>>,
    /// Layer outputs of decoder block `l`.
    dec: Vec<Vec<Tensor4<T>>>,
}

fn no_dx() -> UnetError {
    UnetError::State { op: "U-Net backward", detail: "input gradient was not computed".into() }
}

/// The last layer output of a block (its output).
fn block_out<T>(acts: &[Tensor4<T>]) -> Result<&Tensor4<T>> {
    acts.last().ok_or_else(|| UnetError::State { op: "U-Net", detail: "empty block".into() })
}

/// Evaluation-mode pass through a block.
fn block_infer<T: Real>(block: &Sequential<T>, x: &Tensor4<T>) -> Result<Tensor4<T>> {
    let mut cur: Option<Tensor4<T>> = None;
    for layer in block.layers() {
        cur = Some(layer.infer(cur.as_ref().unwrap_or(x))?);
    }
    Ok(cur.unwrap_or_else(|| x.clone()))
}

/// Training-mode pass through a block, keeping every layer's output.
fn block_forward<T: Real>(block: &mut Sequential<T>, x: &Tensor4<T>, mode: Mode) -> Result<Vec<Tensor4<T>>> {
    let mut acts: Vec<Tensor4<T>> = Vec::with_capacity(block.len());
    for layer in block.layers_mut() {
        let y = layer.forward(acts.last().unwrap_or(x), mode)?;
        acts.push(y);
    }
    if acts.is_empty() {
        acts.push(x.clone());
    }
    Ok(acts)
}

/// Backward pass through a block from the gradient `g` of its output; parameter gradients are
/// accumulated, the input gradient is returned when `need_dx`.
fn block_backward<T: Real>(
    block: &mut Sequential<T>,
    x: &Tensor4<T>,
    acts: &[Tensor4<T>],
    g: Tensor4<T>,
    need_dx: bool,
) -> Result<Option<Tensor4<T>>> {
    let layers = block.layers_mut();
    if layers.is_empty() {
        return Ok(need_dx.then_some(g));
    }
    if acts.len() != layers.len() {
        return Err(UnetError::State {
            op: "U-Net backward",
            detail: "block activations do not match its layers".into(),
        });
    }
    let mut g = g;
    for i in (0..layers.len()).rev() {
        let input = if i == 0 { x } else { &acts[i - 1] };
        let output = &acts[i];
        let layer = &mut layers[i];
        if i == 0 && !need_dx {
            layer.backward_params(input, output, &g)?;
            return Ok(None);
        }
        g = layer.backward(input, output, &g)?;
    }
    Ok(Some(g))
}

/// A U-Net for semantic segmentation (Ronneberger et al. 2015), see [`UnetParams`].
///
/// Input `(N, in_channels, H, W)`, output class logits `(N, classes, H', W')` with `H' = H` for
/// same padding and `H' = H − 2·margin` for the paper's unpadded convolutions. As a
/// [`Layer`], `forward(x, Mode::Train)` keeps what `backward` needs and `backward` accumulates
/// every parameter gradient; errors crossing that trait are [`AutoencoderError`]s (an
/// [`UnetError::InputSize`] arrives as a shape mismatch carrying its message), while the
/// inherent methods ([`UNet::predict`], [`UNet::train_step`], ...) return [`UnetError`].
///
/// # Example
/// ```
/// use latent_autoencoder::{Layer, Mode};
/// use latent_linalg::Tensor4;
/// use latent_unet::{Padding, ParamGuard, UNet, UnetParams};
/// let params = UnetParams::new().depth(3).base_channels(4).padding(Padding::Valid).check()?;
/// let net: UNet<f32> = params.build()?;
/// let x = Tensor4::from_fn([2, 1, 44, 44], |[n, _, i, j]| ((n + i * j) % 5) as f32 / 5.0)?;
/// let logits = net.infer(&x)?;
/// assert_eq!(logits.shape(), [2, 2, 4, 4]); // 44 − 2·20
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct UNet<T> {
    params: UnetParams,
    down: Vec<Sequential<T>>,
    pools: Vec<MaxPool2d>,
    bottleneck: Sequential<T>,
    up: Vec<ConvTranspose2d<T>>,
    dec: Vec<Sequential<T>>,
    head: Conv2d<T>,
    #[serde(skip)]
    cache: Option<Cache<T>>,
}

impl<T: Real> UNet<T> {
    /// A randomly initialised network (PyTorch's default initialisation, seeded by
    /// `params.seed`); users call `params.build()` (`Build<UNet<T>>` for [`UnetParams`]).
    ///
    /// # Errors
    /// [`UnetError::Autoencoder`] when a layer rejects its geometry (cannot happen for checked
    /// parameters).
    pub(crate) fn new(params: &Checked<UnetParams>) -> Result<Self> {
        let p = *params.get();
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let d = p.depth - 1;
        let mut down = Vec::with_capacity(d);
        let mut pools = Vec::with_capacity(d);
        let mut cin = p.in_channels;
        for l in 0..d {
            down.push(conv_block(cin, p.channels(l), &p, &mut rng)?);
            pools.push(MaxPool2d::new((2, 2), (2, 2))?);
            cin = p.channels(l);
        }
        let mut bottleneck = conv_block(cin, p.channels(d), &p, &mut rng)?;
        if p.dropout > 0.0 {
            bottleneck.push(Dropout::<T>::new(p.dropout, p.seed ^ 0x005e_edd0)?);
        }
        let mut up = Vec::with_capacity(d);
        let mut dec = Vec::with_capacity(d);
        for l in 0..d {
            let (hi, lo) = (p.channels(l + 1), p.channels(l));
            up.push(ConvTranspose2d::new(ConvGeometry::new(hi, lo, 2, 2, 0), Activation::Identity, true, &mut rng)?);
            let din = if p.skips { 2 * lo } else { lo };
            dec.push(conv_block(din, lo, &p, &mut rng)?);
        }
        let head =
            Conv2d::new(ConvGeometry::new(p.channels(0), p.classes, 1, 1, 0), Activation::Identity, true, &mut rng)?;
        Ok(Self { params: p, down, pools, bottleneck, up, dec, head, cache: None })
    }

    /// The architecture.
    pub fn params(&self) -> &UnetParams {
        &self.params
    }

    /// The size arithmetic.
    pub fn geometry(&self) -> Geometry {
        self.params.geometry()
    }

    /// Total number of trainable values.
    pub fn num_params(&mut self) -> usize {
        Layer::params(self).iter().map(|p| p.value.len()).sum()
    }

    /// Output shape `(N, classes, H', W')` for an input shape.
    ///
    /// # Errors
    /// [`UnetError::ShapeMismatch`] for the wrong channel count, [`UnetError::InputSize`] (naming
    /// the nearest valid sizes) when `H` or `W` does not fit the depth and padding.
    pub fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4]> {
        let [n, c, h, w] = input;
        if c != self.params.in_channels {
            return Err(shape_err(
                "U-Net input",
                format!("{} channels", self.params.in_channels),
                format!("{input:?}"),
            ));
        }
        if n == 0 {
            return Err(UnetError::Empty { what: "U-Net input batch" });
        }
        let (ho, wo) = check_hw(&self.geometry(), h, w)?;
        Ok([n, self.params.classes, ho, wo])
    }

    /// Class logits of a batch in evaluation mode, after checking shape and finiteness.
    ///
    /// # Errors
    /// As [`UNet::output_shape`], and [`UnetError::NonFinite`] for NaN/Inf in `x`.
    pub fn predict(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.output_shape(x.shape())?;
        check_finite("U-Net input", x.as_slice())?;
        self.run_infer(x)
    }

    fn skip_merge(&self, up: Tensor4<T>, skip: &Tensor4<T>) -> Result<Tensor4<T>> {
        if !self.params.skips {
            return Ok(up);
        }
        self.concat_skip(&up, skip)
    }

    /// `[up ‖ crop(skip)]` along channels.
    fn concat_skip(&self, up: &Tensor4<T>, skip: &Tensor4<T>) -> Result<Tensor4<T>> {
        let cropped;
        let s = if (skip.h(), skip.w()) == (up.h(), up.w()) {
            skip
        } else {
            cropped = center_crop(skip, (up.h(), up.w()))?;
            &cropped
        };
        Ok(concat_channels(up, s)?)
    }

    fn run_infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let d = self.params.depth - 1;
        let mut skips = Vec::with_capacity(d);
        let mut cur: Option<Tensor4<T>> = None;
        for l in 0..d {
            let e = block_infer(&self.down[l], cur.as_ref().unwrap_or(x))?;
            cur = Some(self.pools[l].infer(&e)?);
            skips.push(e);
        }
        let mut h = block_infer(&self.bottleneck, cur.as_ref().unwrap_or(x))?;
        for l in (0..d).rev() {
            let u = self.up[l].infer(&h)?;
            let skip =
                skips.pop().ok_or_else(|| UnetError::State { op: "U-Net infer", detail: "missing skip".into() })?;
            let m = self.skip_merge(u, &skip)?;
            drop(skip);
            h = block_infer(&self.dec[l], &m)?;
        }
        Ok(self.head.infer(&h)?)
    }

    fn run_train(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        self.cache = None;
        self.output_shape(x.shape())?;
        let d = self.params.depth - 1;
        let mut enc: Vec<Vec<Tensor4<T>>> = Vec::with_capacity(d);
        let mut pooled: Vec<Tensor4<T>> = Vec::with_capacity(d);
        for l in 0..d {
            let acts = block_forward(&mut self.down[l], pooled.last().unwrap_or(x), mode)?;
            pooled.push(self.pools[l].forward(block_out(&acts)?, mode)?);
            enc.push(acts);
        }
        let bott = block_forward(&mut self.bottleneck, pooled.last().unwrap_or(x), mode)?;
        let mut ups: Vec<Option<Tensor4<T>>> = (0..d).map(|_| None).collect();
        let mut cat: Vec<Option<Tensor4<T>>> = (0..d).map(|_| None).collect();
        let mut dec: Vec<Option<Vec<Tensor4<T>>>> = (0..d).map(|_| None).collect();
        for l in (0..d).rev() {
            let prev = match dec.get(l + 1).and_then(Option::as_ref) {
                Some(acts) => block_out(acts)?,
                None => block_out(&bott)?,
            };
            let u = self.up[l].forward(prev, mode)?;
            let acts = if self.params.skips {
                let m = self.concat_skip(&u, block_out(&enc[l])?)?;
                let a = block_forward(&mut self.dec[l], &m, mode)?;
                cat[l] = Some(m);
                a
            } else {
                block_forward(&mut self.dec[l], &u, mode)?
            };
            ups[l] = Some(u);
            dec[l] = Some(acts);
        }
        let top = match dec.first().and_then(Option::as_ref) {
            Some(acts) => block_out(acts)?,
            None => block_out(&bott)?,
        };
        let logits = self.head.forward(top, mode)?;
        let incomplete = || UnetError::State { op: "U-Net forward", detail: "incomplete decoder".into() };
        self.cache = Some(Cache {
            input_shape: x.shape(),
            enc,
            pooled,
            bott,
            ups: ups.into_iter().map(|t| t.ok_or_else(incomplete)).collect::<Result<_>>()?,
            cat,
            dec: dec.into_iter().map(|t| t.ok_or_else(incomplete)).collect::<Result<_>>()?,
        });
        Ok(logits)
    }

    fn backward_impl(
        &mut self,
        x: &Tensor4<T>,
        y: &Tensor4<T>,
        dy: &Tensor4<T>,
        need_dx: bool,
    ) -> Result<Option<Tensor4<T>>> {
        let out = self.output_shape(x.shape())?;
        let Self { params, down, pools, bottleneck, up, dec, head, cache } = self;
        let c = cache.as_ref().filter(|c| c.input_shape == x.shape()).ok_or_else(|| UnetError::State {
            op: "U-Net backward",
            detail: format!("no training forward pass on an input of shape {:?} preceded it", x.shape()),
        })?;
        if y.shape() != out || dy.shape() != out {
            return Err(shape_err(
                "U-Net backward",
                format!("y and dy of shape {out:?}"),
                format!("{:?} and {:?}", y.shape(), dy.shape()),
            ));
        }
        let d = params.depth - 1;
        let top = block_out(c.dec.first().unwrap_or(&c.bott))?;
        let mut g = head.backward(top, y, dy)?;
        let mut dskip: Vec<Option<Tensor4<T>>> = (0..d).map(|_| None).collect();
        for l in 0..d {
            let dec_in = c.cat[l].as_ref().unwrap_or(&c.ups[l]);
            let dcat = block_backward(&mut dec[l], dec_in, &c.dec[l], g, true)?.ok_or_else(no_dx)?;
            let dup = if params.skips {
                let (dup, dsk) = split_channels(&dcat, params.channels(l))?;
                let e = block_out(&c.enc[l])?;
                dskip[l] = Some(if (dsk.h(), dsk.w()) == (e.h(), e.w()) {
                    dsk
                } else {
                    center_crop_backward(&dsk, (e.h(), e.w()))?
                });
                dup
            } else {
                dcat
            };
            let up_in = block_out(if l + 1 < d { &c.dec[l + 1] } else { &c.bott })?;
            g = up[l].backward(up_in, &c.ups[l], &dup)?;
        }
        let b_in = c.pooled.last().unwrap_or(x);
        let gb = block_backward(bottleneck, b_in, &c.bott, g, need_dx || d > 0)?;
        let Some(mut g) = gb else { return Ok(None) };
        for l in (0..d).rev() {
            let mut ge = pools[l].backward(block_out(&c.enc[l])?, &c.pooled[l], &g)?;
            if let Some(s) = dskip[l].take() {
                for (a, &b) in ge.as_mut_slice().iter_mut().zip(s.as_slice()) {
                    *a += b;
                }
            }
            let e_in = if l > 0 { &c.pooled[l - 1] } else { x };
            match block_backward(&mut down[l], e_in, &c.enc[l], ge, l > 0 || need_dx)? {
                Some(next) => g = next,
                None => return Ok(None),
            }
        }
        Ok(Some(g))
    }

    /// Set every gradient accumulator to zero.
    pub fn zero_grad(&mut self) {
        for p in Layer::params(self) {
            p.grad.iter_mut().for_each(|g| *g = T::zero());
        }
    }

    /// All parameter values, flattened in [`Layer::params`] order.
    pub fn flat_params(&mut self) -> Vec<T> {
        Layer::params(self).iter().flat_map(|p| p.value.iter().copied()).collect()
    }

    /// All gradient accumulators, flattened in [`Layer::params`] order.
    pub fn flat_grads(&mut self) -> Vec<T> {
        Layer::params(self).iter().flat_map(|p| p.grad.iter().copied()).collect()
    }

    /// Overwrite all parameter values from a flat vector (as [`UNet::flat_params`] returns).
    ///
    /// # Errors
    /// [`UnetError::ShapeMismatch`] when the length differs from the parameter count,
    /// [`UnetError::NonFinite`] for NaN/Inf.
    pub fn set_flat_params(&mut self, v: &[T]) -> Result<()> {
        check_finite("parameters", v)?;
        let n = self.num_params();
        if v.len() != n {
            return Err(shape_err("set_flat_params", format!("{n} values"), v.len()));
        }
        let mut k = 0;
        for p in Layer::params(self) {
            let m = p.value.len();
            p.value.copy_from_slice(&v[k..k + m]);
            k += m;
        }
        Ok(())
    }

    /// A description of every layer's kind and geometry (not its values).
    fn signature(&self) -> Vec<String> {
        let any = |l: &AnyLayer<T>| -> String {
            match l {
                AnyLayer::Conv2d(c) => {
                    format!("conv {:?} {:?} bias {}", c.geometry(), c.activation(), c.bias().is_some())
                }
                AnyLayer::ConvTranspose2d(c) => {
                    format!("convT {:?} {:?} bias {}", c.geometry(), c.activation(), c.bias().is_some())
                }
                AnyLayer::BatchNorm(b) => format!("bn {}", b.channels()),
                AnyLayer::Dropout(d) => format!("dropout {}", d.p()),
                AnyLayer::MaxPool2d(m) => format!("maxpool {:?}", m.window()),
                AnyLayer::Activation(a) => format!("act {:?}", a.activation),
                other => other.kind().to_string(),
            }
        };
        let mut v: Vec<String> = Vec::new();
        for s in self.down.iter().chain([&self.bottleneck]).chain(self.dec.iter()) {
            v.push(format!("block of {}", s.len()));
            v.extend(s.layers().iter().map(any));
        }
        v.extend(self.pools.iter().map(|p| format!("maxpool {:?}", p.window())));
        v.extend(self.up.iter().map(|c| format!("up {:?} bias {}", c.geometry(), c.bias().is_some())));
        v.push(format!(
            "head {:?} {:?} bias {}",
            self.head.geometry(),
            self.head.activation(),
            self.head.bias().is_some()
        ));
        v
    }

    /// Check internal consistency against the architecture (used after loading).
    ///
    /// # Errors
    /// [`UnetError::Format`] describing the inconsistency.
    pub fn validate(&self) -> Result<()> {
        let fmt = |detail: String| UnetError::Format { detail };
        let checked = self.params.check().map_err(|e| fmt(format!("architecture: {e}")))?;
        let d = self.params.depth - 1;
        if self.down.len() != d || self.pools.len() != d || self.up.len() != d || self.dec.len() != d {
            return Err(fmt(format!("a depth-{} network needs {d} encoder/decoder stages", self.params.depth)));
        }
        for (what, s) in self
            .down
            .iter()
            .map(|s| ("encoder", s))
            .chain(self.dec.iter().map(|s| ("decoder", s)))
            .chain([("bottleneck", &self.bottleneck)])
        {
            s.validate().map_err(|e| fmt(format!("{what}: {e}")))?;
        }
        for p in &self.pools {
            p.validate().map_err(|e| fmt(e.to_string()))?;
        }
        for u in &self.up {
            u.validate().map_err(|e| fmt(e.to_string()))?;
        }
        self.head.validate().map_err(|e| fmt(e.to_string()))?;
        // the stored layers must have exactly the shapes the architecture prescribes
        let mut fresh = UNet::<T>::new(&checked)?;
        let want: Vec<(&str, usize)> = Layer::params(&mut fresh).iter().map(|p| (p.name, p.value.len())).collect();
        let mut me = self.clone();
        let have: Vec<(&str, usize)> = Layer::params(&mut me).iter().map(|p| (p.name, p.value.len())).collect();
        if want != have {
            return Err(fmt(format!("the layers do not match the stored architecture {:?}", self.params)));
        }
        if fresh.signature() != self.signature() {
            return Err(fmt("the layer geometries do not match the stored architecture".into()));
        }
        for p in Layer::params(&mut me) {
            check_finite(p.name, p.value).map_err(|e| fmt(e.to_string()))?;
        }
        Ok(())
    }
}

impl<T: Real> Layer<T> for UNet<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> latent_autoencoder::Result<Tensor4<T>> {
        self.run_train(x, mode).map_err(to_ae)
    }
    fn infer(&self, x: &Tensor4<T>) -> latent_autoencoder::Result<Tensor4<T>> {
        self.output_shape(x.shape()).map_err(to_ae)?;
        self.run_infer(x).map_err(to_ae)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> latent_autoencoder::Result<Tensor4<T>> {
        self.backward_impl(x, y, dy, true).map_err(to_ae)?.ok_or_else(|| AutoencoderError::State {
            op: "U-Net backward",
            detail: "input gradient was not computed".into(),
        })
    }
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> latent_autoencoder::Result<()> {
        self.backward_impl(x, y, dy, false).map(drop).map_err(to_ae)
    }
    fn params(&mut self) -> Vec<Param<'_, T>> {
        let mut v = Vec::new();
        for s in self.down.iter_mut() {
            v.extend(s.params());
        }
        v.extend(self.bottleneck.params());
        for (u, s) in self.up.iter_mut().zip(self.dec.iter_mut()) {
            v.extend(u.params());
            v.extend(s.params());
        }
        v.extend(self.head.params());
        v
    }
    fn defer_running_updates(&mut self, on: bool) {
        self.down.iter_mut().for_each(|s| s.defer_running_updates(on));
        self.bottleneck.defer_running_updates(on);
        self.dec.iter_mut().for_each(|s| s.defer_running_updates(on));
    }
    fn take_running_updates(&mut self) -> Vec<T> {
        let mut v = Vec::new();
        for s in self.down.iter_mut() {
            v.extend(s.take_running_updates());
        }
        v.extend(self.bottleneck.take_running_updates());
        for s in self.dec.iter_mut() {
            v.extend(s.take_running_updates());
        }
        v
    }
    fn apply_running_updates(&mut self, stats: &[T]) -> latent_autoencoder::Result<usize> {
        let mut used = 0;
        let seqs = self.down.iter_mut().chain(std::iter::once(&mut self.bottleneck)).chain(self.dec.iter_mut());
        for s in seqs {
            used += s.apply_running_updates(&stats[used.min(stats.len())..])?;
        }
        Ok(used)
    }
}

/// Errors crossing the [`Layer`] trait travel as [`AutoencoderError`]: those with an exact
/// counterpart map to it, any other is kept whole as [`AutoencoderError::Model`] (recoverable with
/// `downcast_ref::<UnetError>`).
fn to_ae(e: UnetError) -> AutoencoderError {
    match e {
        UnetError::Autoencoder(a) => a,
        UnetError::Linalg(l) => AutoencoderError::Linalg(l),
        UnetError::State { op, detail } => AutoencoderError::State { op, detail },
        UnetError::Empty { what } => AutoencoderError::Empty { what },
        UnetError::NonFinite { what, index } => AutoencoderError::NonFiniteInput { what, index },
        other => AutoencoderError::Model { model: "U-Net", source: Box::new(other) },
    }
}
