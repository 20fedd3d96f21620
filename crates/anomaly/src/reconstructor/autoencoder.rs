//! [`Reconstructor`](super::Reconstructor) for the autoencoder crate's models: [`Autoencoder`] and
//! [`Composed`] (any encoder followed by any decoder). Their failures come back as
//! [`AnomalyError::Autoencoder`](crate::AnomalyError::Autoencoder), the autoencoder crate's typed
//! error unchanged.

use crate::error::Result;
use latent_autoencoder::{Autoencoder, Composed, Decoder, Encoder};
use latent_linalg::{Real, Tensor4};

impl<T: Real> super::Reconstructor<T> for Autoencoder<T> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        // the model's inherent method (inherent methods take precedence over this trait's)
        Ok(Autoencoder::reconstruct(self, x)?)
    }
}

impl<T: Real, E: Encoder<T>, D: Decoder<T>> super::Reconstructor<T> for Composed<E, D> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(Composed::reconstruct(self, x)?)
    }
}
