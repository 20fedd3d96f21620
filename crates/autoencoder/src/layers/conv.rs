//! 2-D convolution and transposed convolution with fused activation, on the `latent-linalg`
//! im2col + GEMM kernels (parallel across images, bit-deterministic for any thread count).

use crate::error::{Result, format_err, invalid, shape_err};
use crate::layer::{Activation, Layer, Mode, Param, ParamKind};
use crate::layers::{check_tensor, ensure_len, init_uniform};
use latent_linalg::conv::{
    Conv2dSpec, conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_output_size, conv2d,
    conv2d_backward_input, conv2d_backward_weight,
};
use latent_linalg::{Real, Tensor4};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Largest kernel size, stride or padding accepted (keeps every size computation far from
/// overflow).
pub const MAX_GEOMETRY: usize = 1 << 20;

/// Geometry of a (transposed) convolution.
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `in_channels` | — | input channels | `>= 1` |
/// | `out_channels` | — | output channels | `>= 1` |
/// | `kernel` | — | kernel size (rows, cols) | `>= 1` |
/// | `stride` | 1 | step (both directions) | `>= 1` |
/// | `pad` | 0 | zero padding on each side | `>= 0` |
/// | `output_padding` | 0 | extra rows/cols on one side of a transposed output | `< stride` |
///
/// Kernel, stride and padding are at most 2²⁰.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size (rows, cols).
    pub kernel: (usize, usize),
    /// Stride (rows, cols).
    pub stride: (usize, usize),
    /// Zero padding (rows, cols).
    pub pad: (usize, usize),
    /// Output padding of a transposed convolution (ignored by [`Conv2d`]).
    pub output_padding: (usize, usize),
}

impl ConvGeometry {
    /// Square kernel `k`, stride `s`, padding `p`, no output padding.
    pub fn new(in_channels: usize, out_channels: usize, k: usize, s: usize, p: usize) -> Self {
        Self { in_channels, out_channels, kernel: (k, k), stride: (s, s), pad: (p, p), output_padding: (0, 0) }
    }
    /// Set the output padding (transposed convolutions).
    pub fn output_padding(mut self, op: usize) -> Self {
        self.output_padding = (op, op);
        self
    }
    fn spec(&self) -> Conv2dSpec {
        Conv2dSpec { stride: self.stride, pad: self.pad }
    }
    /// Validate.
    ///
    /// # Errors
    /// [`crate::AutoencoderError::InvalidParameter`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels == 0 {
            return Err(invalid("in_channels", self.in_channels, "must be >= 1"));
        }
        if self.out_channels == 0 {
            return Err(invalid("out_channels", self.out_channels, "must be >= 1"));
        }
        if self.kernel.0 == 0 || self.kernel.1 == 0 {
            return Err(invalid("kernel", format!("{:?}", self.kernel), "must be >= 1"));
        }
        if self.stride.0 == 0 || self.stride.1 == 0 {
            return Err(invalid("stride", format!("{:?}", self.stride), "must be >= 1"));
        }
        for (name, v) in [
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("pad", self.pad),
            ("output_padding", self.output_padding),
        ] {
            if v.0 > MAX_GEOMETRY || v.1 > MAX_GEOMETRY {
                return Err(invalid(name, format!("{v:?}"), "must be <= 2^20"));
            }
        }
        if self.output_padding.0 >= self.stride.0 || self.output_padding.1 >= self.stride.1 {
            return Err(invalid("output_padding", format!("{:?}", self.output_padding), "must be < stride"));
        }
        Ok(())
    }
    /// Output `(H, W)` of the forward convolution on an `h × w` input.
    ///
    /// # Errors
    /// When the kernel exceeds the padded input.
    pub fn conv_output(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        Ok(self.spec().output_size(h, w, self.kernel.0, self.kernel.1)?)
    }
    /// Output `(H, W)` of the transposed convolution on an `h × w` input.
    ///
    /// # Errors
    /// When the output padding is not below the stride or the output would be empty.
    pub fn transposed_output(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        Ok(conv_transpose2d_output_size(h, w, self.kernel.0, self.kernel.1, &self.spec(), self.output_padding)?)
    }
}

/// Convolution layer `y = f(conv(x, W) + b)`, weight `(C_out, C_in, kh, kw)` (PyTorch layout),
/// initialised like PyTorch: `U(−1/√fan_in, 1/√fan_in)` with `fan_in = C_in·kh·kw`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct Conv2d<T> {
    geom: ConvGeometry,
    activation: Activation,
    weight: Tensor4<T>,
    bias: Option<Vec<T>>,
    #[serde(skip)]
    grad_w: Vec<T>,
    #[serde(skip)]
    grad_b: Vec<T>,
}

/// Transposed convolution layer, weight `(C_in, C_out, kh, kw)` (PyTorch layout), initialised
/// like PyTorch (`fan_in = C_out·kh·kw`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct ConvTranspose2d<T> {
    geom: ConvGeometry,
    activation: Activation,
    weight: Tensor4<T>,
    bias: Option<Vec<T>>,
    #[serde(skip)]
    grad_w: Vec<T>,
    #[serde(skip)]
    grad_b: Vec<T>,
}

/// `y ← f(y + b[c])` over the `(N, C, P)` planes of a batch, parallel over planes.
fn bias_act_planes<T: Real>(y: &mut [T], c: usize, p: usize, bias: Option<&[T]>, act: Activation) {
    use rayon::prelude::*;
    if c == 0 || p == 0 {
        return;
    }
    let Some(b) = bias else {
        act.apply(y);
        return;
    };
    let kernel = |(k, plane): (usize, &mut [T])| {
        let bk = b[k % c];
        plane.iter_mut().for_each(|v| *v += bk);
        act.apply(plane);
    };
    if y.len() >= 1 << 15 && rayon::current_num_threads() > 1 {
        y.par_chunks_mut(p).enumerate().for_each(kernel);
    } else {
        y.chunks_mut(p).enumerate().for_each(kernel);
    }
}

fn dz_of<T: Real>(act: Activation, y: &Tensor4<T>, dy: &Tensor4<T>) -> Option<Tensor4<T>> {
    if act == Activation::Identity {
        return None;
    }
    let mut dz = dy.clone();
    act.backward_inplace(y.as_slice(), dz.as_mut_slice());
    Some(dz)
}

fn add_into<T: Real>(acc: &mut [T], v: &[T]) {
    for (a, &b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

macro_rules! conv_common {
    ($ty:ident, $wshape:ident, $fan_in:ident) => {
        impl<T: Real> $ty<T> {
            /// A randomly initialised layer (PyTorch's default initialisation, seeded by `rng`).
            ///
            /// # Errors
            /// [`crate::AutoencoderError::InvalidParameter`] for an invalid geometry or activation.
            pub fn new(geom: ConvGeometry, activation: Activation, bias: bool, rng: &mut ChaCha8Rng) -> Result<Self> {
                geom.validate()?;
                activation.validate()?;
                let shape: [usize; 4] = $wshape(&geom);
                let n = shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .ok_or_else(|| invalid("kernel", format!("{shape:?}"), "weight size overflows"))?;
                let bound = 1.0 / ($fan_in(&geom) as f64).sqrt();
                let weight = Tensor4::from_vec(shape, init_uniform(rng, n, bound))?;
                let bias = bias.then(|| init_uniform(rng, geom.out_channels, bound));
                Ok(Self { geom, activation, weight, bias, grad_w: Vec::new(), grad_b: Vec::new() })
            }

            /// A layer with given weights and optional bias (`C_out` values).
            ///
            /// # Errors
            /// [`crate::AutoencoderError::Format`] when the shapes do not fit the geometry,
            /// [`crate::AutoencoderError::NonFiniteInput`] for NaN/Inf values.
            pub fn from_weights(
                geom: ConvGeometry,
                activation: Activation,
                weight: Tensor4<T>,
                bias: Option<Vec<T>>,
            ) -> Result<Self> {
                let l = Self { geom, activation, weight, bias, grad_w: Vec::new(), grad_b: Vec::new() };
                l.validate()?;
                crate::error::check_finite_data("convolution weight", l.weight.as_slice())?;
                crate::error::check_finite_data("convolution bias", l.bias.as_deref().unwrap_or(&[]))?;
                Ok(l)
            }

            /// Check internal consistency (used after deserialisation).
            ///
            /// # Errors
            /// [`crate::AutoencoderError::Format`] describing the inconsistency.
            pub fn validate(&self) -> Result<()> {
                let wrap = |e: crate::AutoencoderError| format_err(format!("{}: {e}", stringify!($ty)));
                self.geom.validate().map_err(wrap)?;
                self.activation.validate().map_err(wrap)?;
                check_tensor(stringify!($ty), &self.weight, $wshape(&self.geom))?;
                if let Some(b) = &self.bias
                    && b.len() != self.geom.out_channels
                {
                    return Err(format_err(format!(
                        "{}: bias has {} values, expected {}",
                        stringify!($ty),
                        b.len(),
                        self.geom.out_channels
                    )));
                }
                Ok(())
            }

            /// The geometry.
            pub fn geometry(&self) -> &ConvGeometry {
                &self.geom
            }
            /// The fused activation.
            pub fn activation(&self) -> Activation {
                self.activation
            }
            /// The weight tensor.
            pub fn weight(&self) -> &Tensor4<T> {
                &self.weight
            }
            /// The bias, if any.
            pub fn bias(&self) -> Option<&[T]> {
                self.bias.as_deref()
            }
        }
    };
}

fn conv_wshape(g: &ConvGeometry) -> [usize; 4] {
    [g.out_channels, g.in_channels, g.kernel.0, g.kernel.1]
}
fn conv_fan_in(g: &ConvGeometry) -> usize {
    g.in_channels.saturating_mul(g.kernel.0).saturating_mul(g.kernel.1)
}
fn convt_wshape(g: &ConvGeometry) -> [usize; 4] {
    [g.in_channels, g.out_channels, g.kernel.0, g.kernel.1]
}
fn convt_fan_in(g: &ConvGeometry) -> usize {
    g.out_channels.saturating_mul(g.kernel.0).saturating_mul(g.kernel.1)
}

conv_common!(Conv2d, conv_wshape, conv_fan_in);
conv_common!(ConvTranspose2d, convt_wshape, convt_fan_in);

impl<T: Real> Conv2d<T> {
    fn check_input(&self, op: &'static str, x: &Tensor4<T>) -> Result<[usize; 4]> {
        let [n, c, h, w] = x.shape();
        if c != self.geom.in_channels {
            return Err(shape_err(op, format!("{} input channels", self.geom.in_channels), x.shape()));
        }
        let (ho, wo) = self.geom.conv_output(h, w)?;
        Ok([n, self.geom.out_channels, ho, wo])
    }
    fn apply(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.check_input("conv2d forward", x)?;
        let mut y = conv2d(x, &self.weight, self.bias.as_deref(), &self.geom.spec())?;
        self.activation.apply(y.as_mut_slice());
        Ok(y)
    }
    fn backward_impl(
        &mut self,
        x: &Tensor4<T>,
        y: &Tensor4<T>,
        dy: &Tensor4<T>,
        need_dx: bool,
    ) -> Result<Option<Tensor4<T>>> {
        let out = self.check_input("conv2d backward", x)?;
        crate::layer::expect_shape("conv2d backward (y)", y, out)?;
        crate::layer::expect_shape("conv2d backward (dy)", dy, out)?;
        let dz_owned = dz_of(self.activation, y, dy);
        let dz = dz_owned.as_ref().unwrap_or(dy);
        let spec = self.geom.spec();
        let (dw, db) = conv2d_backward_weight(x, dz, self.geom.kernel, &spec)?;
        ensure_len(&mut self.grad_w, self.weight.len());
        add_into(&mut self.grad_w, dw.as_slice());
        if self.bias.is_some() {
            ensure_len(&mut self.grad_b, self.geom.out_channels);
            add_into(&mut self.grad_b, &db);
        }
        if !need_dx {
            return Ok(None);
        }
        Ok(Some(conv2d_backward_input(dz, &self.weight, (x.h(), x.w()), &spec)?))
    }
}

impl<T: Real> ConvTranspose2d<T> {
    fn check_input(&self, op: &'static str, x: &Tensor4<T>) -> Result<[usize; 4]> {
        let [n, c, h, w] = x.shape();
        if c != self.geom.in_channels {
            return Err(shape_err(op, format!("{} input channels", self.geom.in_channels), x.shape()));
        }
        let (ho, wo) = self.geom.transposed_output(h, w)?;
        Ok([n, self.geom.out_channels, ho, wo])
    }
    fn apply(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.check_input("conv_transpose2d forward", x)?;
        let mut y = conv_transpose2d(x, &self.weight, None, &self.geom.spec(), self.geom.output_padding)?;
        let plane = y.h() * y.w();
        bias_act_planes(y.as_mut_slice(), self.geom.out_channels, plane, self.bias.as_deref(), self.activation);
        Ok(y)
    }
    fn backward_impl(
        &mut self,
        x: &Tensor4<T>,
        y: &Tensor4<T>,
        dy: &Tensor4<T>,
        need_dx: bool,
    ) -> Result<Option<Tensor4<T>>> {
        let out = self.check_input("conv_transpose2d backward", x)?;
        crate::layer::expect_shape("conv_transpose2d backward (y)", y, out)?;
        crate::layer::expect_shape("conv_transpose2d backward (dy)", dy, out)?;
        let dz_owned = dz_of(self.activation, y, dy);
        let dz = dz_owned.as_ref().unwrap_or(dy);
        let spec = self.geom.spec();
        // Both gradients share the unfolding of dz (one pass over the batch).
        let (dx, dw) = conv_transpose2d_backward(x, &self.weight, dz, &spec, self.geom.output_padding, need_dx)?;
        ensure_len(&mut self.grad_w, self.weight.len());
        add_into(&mut self.grad_w, dw.as_slice());
        if self.bias.is_some() {
            ensure_len(&mut self.grad_b, self.geom.out_channels);
            crate::par::add_channel_sums(dz.as_slice(), self.geom.out_channels, dz.h() * dz.w(), &mut self.grad_b);
        }
        Ok(dx)
    }
}

macro_rules! conv_layer_impl {
    ($ty:ident) => {
        impl<T: Real> Layer<T> for $ty<T> {
            fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
                self.apply(x)
            }
            fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
                self.apply(x)
            }
            fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
                self.backward_impl(x, y, dy, true)?.ok_or_else(|| crate::AutoencoderError::State {
                    op: stringify!($ty),
                    detail: "input gradient was not computed".into(),
                })
            }
            fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
                self.backward_impl(x, y, dy, false).map(drop)
            }
            fn params(&mut self) -> Vec<Param<'_, T>> {
                ensure_len(&mut self.grad_w, self.weight.len());
                let mut v = vec![Param {
                    name: "weight",
                    kind: ParamKind::Weight,
                    value: self.weight.as_mut_slice(),
                    grad: &mut self.grad_w,
                }];
                if let Some(b) = self.bias.as_mut() {
                    ensure_len(&mut self.grad_b, b.len());
                    v.push(Param { name: "bias", kind: ParamKind::Bias, value: b, grad: &mut self.grad_b });
                }
                v
            }
        }
    };
}

conv_layer_impl!(Conv2d);
conv_layer_impl!(ConvTranspose2d);
