//! Inverted dropout, seeded.

use crate::error::{AutoencoderError, Result, format_err, invalid};
use crate::layer::{Layer, Mode, check_same};
use crate::layers::noise::stream_rng;
use latent_linalg::{Real, Tensor4};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Inverted dropout: in [`Mode::Train`] each element is zeroed with probability `p` and the
/// survivors are scaled by `1/(1 − p)`; in [`Mode::Eval`] it is the identity. Call `k` of
/// `forward(·, Train)` draws from stream `k` of ChaCha8 with the seed (reproducible).
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `p` | drop probability | `[0, 1)` |
/// | `seed` | random seed | any |
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct Dropout<T> {
    p: f64,
    seed: u64,
    calls: u64,
    #[serde(skip)]
    mask: Vec<T>,
    #[serde(skip)]
    shape: Option<[usize; 4]>,
}

impl<T: Real> Dropout<T> {
    /// Dropout with probability `p`.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming `dropout` unless `p ∈ [0, 1)`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(invalid("dropout", p, "must be in [0, 1)"));
        }
        Ok(Self { p, seed, calls: 0, mask: Vec::new(), shape: None })
    }
    /// Drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
    /// Check internal consistency (used after deserialisation).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] for `p ∉ [0, 1)`.
    pub fn validate(&self) -> Result<()> {
        Self::new(self.p, self.seed).map(drop).map_err(|e| format_err(format!("dropout: {e}")))
    }
}

impl<T: Real> Layer<T> for Dropout<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        if mode == Mode::Eval {
            return self.infer(x);
        }
        let mut rng = stream_rng(self.seed, self.calls);
        self.calls = self.calls.wrapping_add(1);
        let scale = T::lit(1.0 / (1.0 - self.p));
        self.mask.clear();
        self.mask.extend((0..x.len()).map(|_| if rng.random::<f64>() < self.p { T::zero() } else { scale }));
        let mut y = x.clone();
        for (v, &m) in y.as_mut_slice().iter_mut().zip(&self.mask) {
            *v *= m;
        }
        self.shape = Some(x.shape());
        Ok(y)
    }
    fn set_train_stream(&mut self, stream: u64) {
        self.calls = stream;
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(x.clone())
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        check_same("dropout backward", x, y, dy)?;
        if self.shape != Some(x.shape()) || self.mask.len() != x.len() {
            return Err(AutoencoderError::State {
                op: "dropout backward",
                detail: format!("no training forward pass on an input of shape {:?} preceded it", x.shape()),
            });
        }
        let mut dx = dy.clone();
        for (d, &m) in dx.as_mut_slice().iter_mut().zip(&self.mask) {
            *d *= m;
        }
        Ok(dx)
    }
}
