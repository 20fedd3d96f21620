//! Fully connected layer with fused bias and activation.

use crate::error::{AutoencoderError, Result, format_err, invalid, shape_err};
use crate::layer::{Activation, Layer, Mode, Param, ParamKind};
use crate::layers::{ensure_len, init_uniform};
use crate::par;
use latent_linalg::{MatMut, MatRef, Real, Tensor4, gemm_view};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Dense layer `y = f(x·Wᵀ + b)` on a batch: every sample (any `(C, H, W)` with
/// `C·H·W = in_features`) is one row; the output is `(N, out_features, 1, 1)`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `in_features` | — | inputs per sample | `>= 1` |
/// | `out_features` | — | outputs per sample | `>= 1` |
/// | `activation` | `Identity` | fused activation `f` | see [`Activation`] |
/// | `bias` | `true` | learn an additive bias `b` | — |
///
/// The weight `W` is `out × in`, row-major (PyTorch's `nn.Linear` layout), initialised like
/// PyTorch: `W, b ~ U(−1/√in, 1/√in)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct Dense<T> {
    in_features: usize,
    out_features: usize,
    activation: Activation,
    weight: Vec<T>,
    bias: Option<Vec<T>>,
    #[serde(skip)]
    grad_w: Vec<T>,
    #[serde(skip)]
    grad_b: Vec<T>,
    #[serde(skip)]
    scratch: Vec<T>,
}

impl<T: Real> Dense<T> {
    /// A randomly initialised layer (PyTorch's default initialisation, seeded by `rng`).
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] for a zero size or an invalid activation.
    pub fn new(
        in_features: usize,
        out_features: usize,
        activation: Activation,
        bias: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        check_sizes(in_features, out_features)?;
        activation.validate()?;
        let bound = 1.0 / (in_features as f64).sqrt();
        let len = in_features
            .checked_mul(out_features)
            .ok_or_else(|| invalid("out_features", out_features, "in_features·out_features overflows"))?;
        let weight = init_uniform(rng, len, bound);
        let bias = bias.then(|| init_uniform(rng, out_features, bound));
        Ok(Self::assemble(in_features, out_features, activation, weight, bias))
    }

    /// A layer with given weights (`out × in`, row-major) and optional bias (`out`).
    ///
    /// # Errors
    /// [`AutoencoderError::ShapeMismatch`] when the lengths do not fit,
    /// [`AutoencoderError::NonFiniteInput`] for NaN/Inf values.
    pub fn from_weights(
        in_features: usize,
        out_features: usize,
        activation: Activation,
        weight: Vec<T>,
        bias: Option<Vec<T>>,
    ) -> Result<Self> {
        let l = Self::assemble(in_features, out_features, activation, weight, bias);
        l.validate()?;
        crate::error::check_finite_data("dense weight", &l.weight)?;
        crate::error::check_finite_data("dense bias", l.bias.as_deref().unwrap_or(&[]))?;
        Ok(l)
    }

    fn assemble(
        in_features: usize,
        out_features: usize,
        activation: Activation,
        weight: Vec<T>,
        bias: Option<Vec<T>>,
    ) -> Self {
        Self {
            in_features,
            out_features,
            activation,
            weight,
            bias,
            grad_w: Vec::new(),
            grad_b: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] describing the inconsistency.
    pub fn validate(&self) -> Result<()> {
        check_sizes(self.in_features, self.out_features).map_err(|e| format_err(format!("dense layer: {e}")))?;
        self.activation.validate().map_err(|e| format_err(format!("dense layer: {e}")))?;
        let need = self.in_features.checked_mul(self.out_features);
        if need != Some(self.weight.len()) {
            return Err(format_err(format!(
                "dense {}→{} weight has {} values",
                self.in_features,
                self.out_features,
                self.weight.len()
            )));
        }
        if let Some(b) = &self.bias
            && b.len() != self.out_features
        {
            return Err(format_err(format!(
                "dense {}→{} bias has {} values",
                self.in_features,
                self.out_features,
                b.len()
            )));
        }
        Ok(())
    }

    /// Inputs per sample.
    pub fn in_features(&self) -> usize {
        self.in_features
    }
    /// Outputs per sample.
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    /// The fused activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }
    /// The weight, `out × in` row-major.
    pub fn weight(&self) -> &[T] {
        &self.weight
    }
    /// The bias, if any.
    pub fn bias(&self) -> Option<&[T]> {
        self.bias.as_deref()
    }

    fn rows(&self, op: &'static str, x: &Tensor4<T>) -> Result<usize> {
        if x.sample_len() != self.in_features {
            return Err(shape_err(op, format!("(N, C, H, W) with C·H·W = {}", self.in_features), x.shape()));
        }
        Ok(x.n())
    }

    fn apply(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let n = self.rows("dense forward", x)?;
        let (i, o) = (self.in_features, self.out_features);
        let mut y = Tensor4::zeros([n, o, 1, 1])?;
        gemm_view(
            T::one(),
            MatRef::row_major(x.as_slice(), n, i)?,
            MatRef::row_major(&self.weight, o, i)?.t(),
            T::zero(),
            MatMut::row_major(y.as_mut_slice(), n, o)?,
        )?;
        bias_act_rows(y.as_mut_slice(), o, self.bias.as_deref(), self.activation);
        Ok(y)
    }

    fn backward_impl(
        &mut self,
        x: &Tensor4<T>,
        y: &Tensor4<T>,
        dy: &Tensor4<T>,
        need_dx: bool,
    ) -> Result<Option<Tensor4<T>>> {
        let n = self.rows("dense backward (x)", x)?;
        let (i, o) = (self.in_features, self.out_features);
        for (what, t) in [("dense backward (y)", y), ("dense backward (dy)", dy)] {
            if t.shape() != [n, o, 1, 1] {
                return Err(shape_err(what, [n, o, 1, 1], t.shape()));
            }
        }
        ensure_len(&mut self.grad_w, self.weight.len());
        ensure_len(&mut self.grad_b, o);
        let dz: &[T] = if self.activation == Activation::Identity {
            dy.as_slice()
        } else {
            self.scratch.resize(n * o, T::zero());
            self.activation.backward_into(y.as_slice(), dy.as_slice(), &mut self.scratch);
            &self.scratch
        };
        // dW (o × i) += dZᵀ (o × n) · X (n × i)
        gemm_view(
            T::one(),
            MatRef::row_major(dz, n, o)?.t(),
            MatRef::row_major(x.as_slice(), n, i)?,
            T::one(),
            MatMut::row_major(&mut self.grad_w, o, i)?,
        )?;
        if self.bias.is_some() {
            par::add_col_sums(dz, o, &mut self.grad_b);
        }
        if !need_dx {
            return Ok(None);
        }
        let mut dx = Tensor4::zeros(x.shape())?;
        gemm_view(
            T::one(),
            MatRef::row_major(dz, n, o)?,
            MatRef::row_major(&self.weight, o, i)?,
            T::zero(),
            MatMut::row_major(dx.as_mut_slice(), n, i)?,
        )?;
        Ok(Some(dx))
    }
}

fn check_sizes(i: usize, o: usize) -> Result<()> {
    if i == 0 {
        return Err(invalid("in_features", i, "must be >= 1"));
    }
    if o == 0 {
        return Err(invalid("out_features", o, "must be >= 1"));
    }
    Ok(())
}

/// `y[r, j] ← f(y[r, j] + b[j])` over the rows of a row-major matrix with `cols` columns.
pub(crate) fn bias_act_rows<T: Real>(y: &mut [T], cols: usize, bias: Option<&[T]>, act: Activation) {
    fn run<T: Real>(y: &mut [T], cols: usize, bias: Option<&[T]>, f: impl Fn(T) -> T + Sync + Send) {
        if cols == 0 {
            return;
        }
        let kernel = |chunk: &mut [T]| {
            for row in chunk.chunks_exact_mut(cols) {
                match bias {
                    Some(b) => row.iter_mut().zip(b).for_each(|(v, &b)| *v = f(*v + b)),
                    None => row.iter_mut().for_each(|v| *v = f(*v)),
                }
            }
        };
        let rows_per_chunk = (par::CHUNK / cols).max(1);
        if y.len() >= par::PAR_MIN && rayon::current_num_threads() > 1 {
            y.par_chunks_mut(rows_per_chunk * cols).for_each(kernel);
        } else {
            kernel(y);
        }
    }
    match act {
        Activation::Identity => {
            if bias.is_some() {
                run(y, cols, bias, |v| v)
            }
        }
        Activation::Relu => run(y, cols, bias, |v| if v > T::zero() { v } else { T::zero() }),
        Activation::LeakyRelu(a) => {
            let a = T::lit(a);
            run(y, cols, bias, move |v| if v > T::zero() { v } else { a * v })
        }
        Activation::Sigmoid => run(y, cols, bias, crate::layer::sigmoid),
        Activation::Tanh => run(y, cols, bias, |v| v.tanh()),
    }
}

impl<T: Real> Layer<T> for Dense<T> {
    fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
        self.apply(x)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.apply(x)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.backward_impl(x, y, dy, true)?.ok_or_else(|| AutoencoderError::State {
            op: "dense backward",
            detail: "input gradient was not computed".into(),
        })
    }
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
        self.backward_impl(x, y, dy, false).map(drop)
    }
    fn params(&mut self) -> Vec<Param<'_, T>> {
        ensure_len(&mut self.grad_w, self.weight.len());
        let mut v =
            vec![Param { name: "weight", kind: ParamKind::Weight, value: &mut self.weight, grad: &mut self.grad_w }];
        if let Some(b) = self.bias.as_mut() {
            ensure_len(&mut self.grad_b, b.len());
            v.push(Param { name: "bias", kind: ParamKind::Bias, value: b, grad: &mut self.grad_b });
        }
        v
    }
}
