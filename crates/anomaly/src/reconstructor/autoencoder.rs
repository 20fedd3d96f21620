//! [`Reconstructor`](super::Reconstructor) for the autoencoder crate's models: [`Autoencoder`] and
//! [`Composed`] (any encoder followed by any decoder). Their failures come back as
//! [`AnomalyError::Autoencoder`](crate::AnomalyError::Autoencoder), the autoencoder crate's typed
//! error unchanged.

use crate::error::Result;
use latent_autoencoder::{Autoencoder, Composed, Decoder, Encoder};
use latent_linalg::{Real, Tensor4};

impl<T: Real> super::Reconstructor<T> for Autoencoder<T> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(own::autoencoder(self, x)?)
    }
}

impl<T: Real, E: Encoder<T>, D: Decoder<T>> super::Reconstructor<T> for Composed<E, D> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(own::composed(self, x)?)
    }
}

/// The models' own `reconstruct`, called where no other `reconstruct` is in scope.
mod own {
    // The autoencoder crate's `Reconstructor` trait, while `reconstruct` is a method of it; once
    // `reconstruct` is an inherent method of both models, delete this line and nothing else.
    use latent_autoencoder::Reconstructor as _;

    use latent_autoencoder::{Autoencoder, Composed, Decoder, Encoder, Result};
    use latent_linalg::{Real, Tensor4};

    pub(super) fn autoencoder<T: Real>(model: &Autoencoder<T>, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        model.reconstruct(x)
    }

    pub(super) fn composed<T: Real, E: Encoder<T>, D: Decoder<T>>(
        model: &Composed<E, D>,
        x: &Tensor4<T>,
    ) -> Result<Tensor4<T>> {
        model.reconstruct(x)
    }
}
