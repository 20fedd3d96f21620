//! The SSIM autoencoder (Bergmann et al. 2019): any autoencoder architecture trained on
//! `1 − mean SSIM(x̂, x)` instead of a per-pixel loss.
//!
//! The autoencoder crate's [`Autoencoder`] fixes its loss to a per-pixel [`latent_autoencoder::Loss`];
//! its [`Trainer`] however trains anything [`Trainable`]. [`SsimAutoencoder`] takes the layers of
//! a built (untrained or pre-trained) autoencoder and implements [`Trainable`] with the SSIM
//! objective and its exact gradient, so the same trainer (seeded batches, Adam, schedules, early
//! stopping, divergence guard) trains it. The original model's penalties (L1, KL, Frobenius) are
//! not used; an optional `mse_weight` adds `mse_weight · MSE(x̂, x)`.

use crate::error::{AnomalyError, Result, check_finite, invalid, shape_err};
use crate::reconstructor::Reconstructor;
use crate::ssim::{Ssim, SsimParams};
use latent_autoencoder::train::{TrainParams, TrainReport, Trainer};
use latent_autoencoder::{
    Activation, Autoencoder, AutoencoderError, Checked, Layer, Loss, Mode, Objective, Param, Sequential, Trainable,
};
use latent_linalg::{Real, Tensor4};

/// An autoencoder trained with the SSIM loss. Build with [`SsimAutoencoder::new`], train with
/// [`SsimAutoencoder::fit`] (or the autoencoder crate's [`Trainer`]), use as a [`Reconstructor`].
///
/// # Example
/// ```
/// use latent_anomaly::{Reconstructor, SsimAutoencoder, ssim::SsimParams};
/// use latent_autoencoder::{Autoencoder, ParamGuard, models::{ConvAeParams, ConvStage}, train::TrainParams};
/// use latent_linalg::Tensor4;
/// let x = Tensor4::<f32>::from_fn([32, 1, 8, 8], |[n, _, i, j]| ((i + j + n) % 4 == 0) as u8 as f32)?;
/// let ae: Autoencoder<f32> = ConvAeParams::new([1, 8, 8]).encoder_stage(ConvStage::new(4, 3, 2, 1)).check()?.build()?;
/// let mut model = SsimAutoencoder::new(ae, SsimParams::new().window(3).check()?)?;
/// let report = model.fit(&x, TrainParams::new().epochs(20).lr(1e-2).batch_size(16).progress(false).check()?)?;
/// assert!(report.train_loss[19] < report.train_loss[0]);
/// assert_eq!(model.reconstruct(&x)?.shape(), x.shape());
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SsimAutoencoder<T> {
    input_shape: [usize; 3],
    encoder: Sequential<T>,
    code_activation: Activation,
    decoder: Sequential<T>,
    ssim: Ssim,
    mse_weight: f64,
}

impl<T: Real> SsimAutoencoder<T> {
    /// Take the layers of `model` and train them on the SSIM loss with the checked window settings
    /// `ssim` (`SsimParams::new().window(7).check()?`).
    ///
    /// # Errors
    /// [`crate::AnomalyError::InvalidParameter`] for a model whose decoder outputs logits (`Loss::BceWithLogits`: give it a sigmoid output instead).
    pub fn new(model: Autoencoder<T>, ssim: Checked<SsimParams>) -> Result<Self> {
        if model.objective().loss == Loss::BceWithLogits {
            return Err(invalid("model.loss", "BceWithLogits", "the decoder must output images, not logits"));
        }
        Ok(Self {
            input_shape: model.input_shape(),
            encoder: model.encoder().clone(),
            code_activation: model.code_activation(),
            decoder: model.decoder().clone(),
            ssim: Ssim::from(ssim),
            mse_weight: 0.0,
        })
    }

    /// Add `weight · MSE(x̂, x)` to the SSIM loss (0 by default: pure SSIM).
    ///
    /// # Errors
    /// [`crate::AnomalyError::InvalidParameter`] for a negative or non-finite weight.
    pub fn with_mse_weight(mut self, weight: f64) -> Result<Self> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(invalid("mse_weight", weight, "must be finite and >= 0"));
        }
        self.mse_weight = weight;
        Ok(self)
    }

    /// Per-sample input shape `(C, H, W)`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input_shape
    }

    /// The SSIM settings.
    pub fn ssim(&self) -> &Ssim {
        &self.ssim
    }

    /// Train on `data` with the autoencoder crate's [`Trainer`].
    ///
    /// # Errors
    /// As [`Trainer::fit`] ([`crate::AnomalyError::Autoencoder`]).
    pub fn fit(&mut self, data: &Tensor4<T>, params: Checked<TrainParams>) -> Result<TrainReport> {
        Ok(Trainer::new(params).fit(self, data, None)?)
    }

    /// The trained layers as a plain [`Autoencoder`] (same reconstructions; its objective is
    /// MSE, for saving or further training with a per-pixel loss).
    ///
    /// # Errors
    /// Shape errors from [`Autoencoder::new`] (never for a model built by [`SsimAutoencoder::new`]).
    pub fn into_autoencoder(self) -> Result<Autoencoder<T>> {
        Ok(Autoencoder::new(self.input_shape, self.encoder, self.code_activation, self.decoder, Objective::default())?)
    }

    fn check_input(&self, x: &Tensor4<T>) -> Result<()> {
        let [_, c, h, w] = x.shape();
        if [c, h, w] != self.input_shape {
            return Err(AnomalyError::ShapeMismatch {
                op: "ssim autoencoder",
                expected: format!("(N, {}, {}, {})", self.input_shape[0], self.input_shape[1], self.input_shape[2]),
                got: format!("{:?}", x.shape()),
            });
        }
        if x.n() == 0 {
            return Err(AnomalyError::Empty { what: "batch" });
        }
        Ok(())
    }

    /// The forward pass in inference mode (input checked).
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.check_input(x)?;
        check_finite("input", x.as_slice())?;
        let mut s = self.encoder.infer(x)?;
        self.code_activation.apply(s.as_mut_slice());
        let xh = self.decoder.infer(&s)?;
        if xh.shape() == x.shape() { Ok(xh) } else { Ok(xh.reshape(x.shape())?) }
    }

    /// Loss value, and its gradient with respect to the reconstruction when `grad` is given.
    fn objective(&self, xh: &Tensor4<T>, x: &Tensor4<T>, grad: Option<&mut [T]>) -> Result<f64> {
        if xh.len() != x.len() {
            return Err(shape_err("ssim autoencoder output", x.shape(), xh.shape()));
        }
        let xh_img = if xh.shape() == x.shape() { xh.clone() } else { xh.clone().reshape(x.shape())? };
        let mut value = match grad {
            Some(g) => {
                let v = self.ssim.loss_grad(&xh_img, x, g)?;
                if self.mse_weight > 0.0 {
                    let c = T::lit(2.0 * self.mse_weight / x.len() as f64);
                    for ((gi, &p), &t) in g.iter_mut().zip(xh_img.as_slice()).zip(x.as_slice()) {
                        *gi += c * (p - t);
                    }
                }
                v
            }
            None => self.ssim.loss(&xh_img, x)?,
        };
        if self.mse_weight > 0.0 {
            let mse = xh_img.as_slice().iter().zip(x.as_slice()).map(|(&p, &t)| (p - t).as_f64().powi(2)).sum::<f64>()
                / x.len() as f64;
            value += self.mse_weight * mse;
        }
        Ok(value)
    }
}

fn to_ae(e: crate::AnomalyError) -> AutoencoderError {
    crate::error::to_ae("ssim autoencoder", e)
}

impl<T: Real> Reconstructor<T> for SsimAutoencoder<T> {
    /// The reconstruction (eval mode).
    ///
    /// # Errors
    /// [`AnomalyError::ShapeMismatch`] for another sample shape than the model's,
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], and layer errors
    /// ([`AnomalyError::Autoencoder`]).
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.infer(x)
    }
}

impl<T: Real> Trainable<T> for SsimAutoencoder<T> {
    fn train_step(&mut self, x: &Tensor4<T>) -> latent_autoencoder::Result<f64> {
        // a step is a chain of short parallel loops: keep the pool's threads awake between them
        let _warm = latent_linalg::product::TrainingScope::new();
        self.check_input(x).map_err(to_ae)?;
        for p in Trainable::params(self) {
            p.grad.iter_mut().for_each(|g| *g = T::zero());
        }
        let z = self.encoder.forward(x, Mode::Train)?;
        let mut s = z.clone();
        self.code_activation.apply(s.as_mut_slice());
        let xh = self.decoder.forward(&s, Mode::Train)?;
        let mut g = vec![T::zero(); xh.len()];
        let j = self.objective(&xh, x, Some(&mut g)).map_err(to_ae)?;
        let g = Tensor4::from_vec(xh.shape(), g)?;
        let mut ds = self.decoder.backward(&s, &xh, &g)?;
        self.code_activation.backward_inplace(s.as_slice(), ds.as_mut_slice());
        if !self.encoder.is_empty() {
            self.encoder.backward_params(x, &z, &ds)?;
        }
        Ok(j)
    }

    fn eval_loss(&self, x: &Tensor4<T>) -> latent_autoencoder::Result<f64> {
        let xh = self.infer(x).map_err(to_ae)?;
        self.objective(&xh, x, None).map_err(to_ae)
    }

    fn params(&mut self) -> Vec<Param<'_, T>> {
        let mut v = self.encoder.params();
        v.extend(self.decoder.params());
        v
    }

    fn to_bytes(&self) -> latent_autoencoder::Result<Vec<u8>> {
        let ae = Autoencoder::new(
            self.input_shape,
            self.encoder.clone(),
            self.code_activation,
            self.decoder.clone(),
            Objective::default(),
        )?;
        ae.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_autoencoder::ParamGuard;
    use latent_autoencoder::models::MlpAeParams;

    #[test]
    fn logits_models_are_rejected() {
        let ae = MlpAeParams::new(vec![4, 2])
            .output_activation(Activation::Identity)
            .loss(Loss::BceWithLogits)
            .check()
            .unwrap()
            .build::<Autoencoder<f64>>()
            .unwrap();
        let e = SsimAutoencoder::new(ae, SsimParams::new().check().unwrap()).unwrap_err();
        assert!(matches!(e, crate::AnomalyError::InvalidParameter { name: "model.loss", .. }), "{e}");
    }

    /// Errors crossing the `Trainable` methods keep their meaning: a non-finite input stays a
    /// typed non-finite error, and an error with no counterpart in the autoencoder crate is kept
    /// whole (no lossy string conversion).
    #[test]
    fn trainable_errors_keep_their_variant() {
        let ae = MlpAeParams::new(vec![16, 4]).check().unwrap().build::<Autoencoder<f64>>().unwrap();
        let ae4 = Autoencoder::new(
            [1, 4, 4],
            ae.encoder().clone(),
            ae.code_activation(),
            ae.decoder().clone(),
            Objective::default(),
        )
        .unwrap();
        let model = SsimAutoencoder::new(ae4, SsimParams::new().window(3).check().unwrap()).unwrap();
        let mut x = Tensor4::<f64>::from_fn([2, 1, 4, 4], |[n, _, i, j]| (n + i * 4 + j) as f64 / 20.0).unwrap();
        assert!(Trainable::eval_loss(&model, &x).unwrap().is_finite());
        x.as_mut_slice()[5] = f64::NAN;
        let e = Trainable::eval_loss(&model, &x).unwrap_err();
        assert!(matches!(e, AutoencoderError::NonFiniteInput { index: 5, .. }), "{e:?}");

        let single = AnomalyError::SingleClass { metric: "auroc", count: 3, anomalous: false };
        let e = to_ae(single);
        let AutoencoderError::Model { model: name, source } = &e else { panic!("not a model error: {e:?}") };
        assert_eq!(*name, "ssim autoencoder");
        let inner = source.downcast_ref::<AnomalyError>().expect("an AnomalyError inside");
        assert!(matches!(inner, AnomalyError::SingleClass { metric: "auroc", count: 3, anomalous: false }), "{inner}");
        assert!(e.to_string().starts_with("ssim autoencoder failed: "), "{e}");
    }
}
