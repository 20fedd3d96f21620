//! Layers defined outside this crate: implement [`CustomLayer`] for your type, put it in a
//! [`Sequential`](crate::Sequential) with [`Sequential::with_custom`](crate::Sequential::with_custom)
//! and the model trains with the [`Trainer`](crate::Trainer), is gradient-checked like any layer,
//! and is checkpointed and saved in the ordinary model files.
//!
//! A custom layer is stored in a model file as its kind tag ([`CustomLayer::KIND`]) and its own
//! serialised form (serde + bincode). Loading resolves the tag through a [`LayerRegistry`] the
//! caller passes ([`Autoencoder::load_with`](crate::Autoencoder::load_with),
//! [`Autoencoder::from_bytes_with`](crate::Autoencoder::from_bytes_with)); there is no
//! process-wide registry. A file holding a kind the registry does not know is a typed error
//! ([`AutoencoderError::UnknownLayer`]) naming the kind. Resuming training needs no registry:
//! the trainer decodes the saved model with the custom layers of the model it is given.
//!
//! Files of models made of built-in layers only are byte-identical to those of earlier builds;
//! the custom variant is the last one of [`AnyLayer`](crate::AnyLayer).
//!
//! # Example
//! ```
//! use latent_autoencoder::custom::{CustomLayer, LayerRegistry};
//! use latent_autoencoder::layers::dense::Dense;
//! use latent_autoencoder::{Activation, Autoencoder, AutoencoderError, Layer, Mode, Objective, Result, Sequential};
//! use latent_linalg::{Real, Tensor4};
//! use rand::SeedableRng;
//! use serde::{Deserialize, Serialize};
//!
//! /// `y = scale·x`, a fixed (not trained) scaling.
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Scale {
//!     scale: f64,
//! }
//! impl<T: Real> Layer<T> for Scale {
//!     fn forward(&mut self, x: &Tensor4<T>, _mode: Mode) -> Result<Tensor4<T>> {
//!         self.infer(x)
//!     }
//!     fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
//!         let mut y = x.clone();
//!         y.as_mut_slice().iter_mut().for_each(|v| *v = *v * T::lit(self.scale));
//!         Ok(y)
//!     }
//!     fn backward(&mut self, _x: &Tensor4<T>, _y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
//!         self.infer(dy)
//!     }
//! }
//! impl<T: Real> CustomLayer<T> for Scale {
//!     const KIND: &'static str = "doc.scale";
//!     fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
//!         Ok(input)
//!     }
//! }
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let encoder = Sequential::new().with(Dense::new(4, 2, Activation::Identity, true, &mut rng)?);
//! let decoder = Sequential::new()
//!     .with(Dense::new(2, 4, Activation::Identity, true, &mut rng)?)
//!     .with_custom(Scale { scale: 0.5 });
//! let model = Autoencoder::<f64>::new([4, 1, 1], encoder, Activation::Relu, decoder, Objective::default())?;
//! let bytes = model.to_bytes()?;
//! // without the registry the file does not load, and the error names the kind …
//! match Autoencoder::<f64>::from_bytes(&bytes) {
//!     Err(AutoencoderError::UnknownLayer { kind }) => assert_eq!(kind, "doc.scale"),
//!     other => panic!("{other:?}"),
//! }
//! // … with it, the model comes back whole
//! let registry = LayerRegistry::new().register::<Scale>()?;
//! let back = Autoencoder::<f64>::from_bytes_with(&bytes, &registry)?;
//! let x = Tensor4::from_fn([3, 4, 1, 1], |[n, c, ..]| (n + c) as f64 * 0.1)?;
//! assert_eq!(back.reconstruct(&x)?, model.reconstruct(&x)?);
//! # Ok::<(), AutoencoderError>(())
//! ```

use crate::error::{AutoencoderError, Result, format_err, invalid};
use crate::layer::{Layer, Mode, Param};
use latent_linalg::{Real, Tensor4};
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::{Any, TypeId};
use std::fmt;

/// Longest kind tag ([`CustomLayer::KIND`]) in bytes; longer tags in a file are rejected while
/// reading, before anything is allocated for them.
pub const MAX_KIND_LEN: usize = 64;

/// A layer defined outside this crate that models can hold, train, checkpoint and save.
///
/// Beyond [`Layer`] (the forward and backward passes), `Clone` and serde's `Serialize` /
/// `Deserialize` (usually derived), an implementation supplies its kind tag and its output
/// shape; [`CustomLayer::validate`] and [`CustomLayer::weight_values`] have defaults.
///
/// | item | required | meaning |
/// |---|---|---|
/// | `KIND` | yes | stable tag stored in model files: 1 to [`MAX_KIND_LEN`] bytes of ASCII letters, digits and `_ - . : /`; unique within a [`LayerRegistry`] (prefix it with your crate name) |
/// | `output_shape` | yes | per-sample output shape `(C, H, W)` for an input shape, without computing anything |
/// | `validate` | no | consistency check run after loading (default: nothing to check) |
/// | `weight_values` | no | values of every [`ParamKind::Weight`](crate::ParamKind::Weight) parameter, in [`Layer::params`] order, so the Frobenius penalty of the evaluation loss matches training (default: none) |
///
/// The serialised form is the layer's own business; it is stored as an opaque payload. The
/// payload of a hostile file is decoded by the layer's `Deserialize` and then checked by
/// [`CustomLayer::validate`]: make that check every invariant `forward` relies on.
pub trait CustomLayer<T: Real>: Layer<T> + Clone + Serialize + DeserializeOwned + 'static {
    /// The kind tag stored in model files.
    const KIND: &'static str;

    /// Per-sample output shape `(C, H, W)` for a per-sample input shape.
    ///
    /// # Errors
    /// A typed shape error when the layer does not accept the input.
    fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]>;

    /// Check internal consistency (after loading).
    ///
    /// # Errors
    /// A typed error describing the inconsistency (it is reported as
    /// [`AutoencoderError::Format`] naming the layer).
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The values of the layer's weight parameters (those of kind
    /// [`ParamKind::Weight`](crate::ParamKind::Weight)), in [`Layer::params`] order.
    fn weight_values(&self) -> Vec<&[T]> {
        Vec::new()
    }
}

/// `Ok` for a valid kind tag.
fn check_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "CustomLayer::KIND",
            format!("{kind:?}"),
            "must be 1 to 64 bytes of ASCII letters, digits and _ - . : /",
        ))
    }
}

/// Decodes a payload into a layer of one registered type.
type DecodeFn<T> = fn(&[u8]) -> Result<Box<dyn ErasedLayer<T>>>;

/// The object-safe face of a [`CustomLayer`] (implemented for every one).
trait ErasedLayer<T>: fmt::Debug + Send + Sync {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>>;
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>>;
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>>;
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()>;
    fn params(&mut self) -> Vec<Param<'_, T>>;
    fn set_train_stream(&mut self, stream: u64);
    fn defer_running_updates(&mut self, on: bool);
    fn take_running_updates(&mut self) -> Vec<T>;
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize>;
    fn kind(&self) -> &'static str;
    fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]>;
    fn validate(&self) -> Result<()>;
    fn weight_values(&self) -> Vec<&[T]>;
    fn clone_box(&self) -> Box<dyn ErasedLayer<T>>;
    fn encode(&self) -> Result<Vec<u8>>;
    fn entry(&self) -> Entry<T>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Real, L: CustomLayer<T>> ErasedLayer<T> for L {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        Layer::forward(self, x, mode)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Layer::infer(self, x)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        Layer::backward(self, x, y, dy)
    }
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
        Layer::backward_params(self, x, y, dy)
    }
    fn params(&mut self) -> Vec<Param<'_, T>> {
        Layer::params(self)
    }
    fn set_train_stream(&mut self, stream: u64) {
        Layer::set_train_stream(self, stream);
    }
    fn defer_running_updates(&mut self, on: bool) {
        Layer::defer_running_updates(self, on);
    }
    fn take_running_updates(&mut self) -> Vec<T> {
        Layer::take_running_updates(self)
    }
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        Layer::apply_running_updates(self, stats)
    }
    fn kind(&self) -> &'static str {
        L::KIND
    }
    fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        CustomLayer::output_shape(self, input)
    }
    fn validate(&self) -> Result<()> {
        check_kind(L::KIND)?;
        CustomLayer::validate(self)
    }
    fn weight_values(&self) -> Vec<&[T]> {
        CustomLayer::weight_values(self)
    }
    fn clone_box(&self) -> Box<dyn ErasedLayer<T>> {
        Box::new(self.clone())
    }
    fn encode(&self) -> Result<Vec<u8>> {
        check_kind(L::KIND)?;
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| format_err(format!("cannot encode custom layer {}: {e}", L::KIND)))
    }
    fn entry(&self) -> Entry<T> {
        Entry::of::<L>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Decode a payload as an `L`; every byte must be used.
fn decode<T: Real, L: CustomLayer<T>>(payload: &[u8]) -> Result<Box<dyn ErasedLayer<T>>> {
    let cfg = bincode::config::standard().with_limit::<{ 1 << 40 }>();
    let (layer, used): (L, usize) = bincode::serde::decode_from_slice(payload, cfg)
        .map_err(|e| format_err(format!("custom layer {}: cannot decode its payload: {e}", L::KIND)))?;
    if used != payload.len() {
        return Err(format_err(format!(
            "custom layer {}: {} trailing bytes after its payload",
            L::KIND,
            payload.len() - used
        )));
    }
    Ok(Box::new(layer))
}

/// One registered layer type.
struct Entry<T> {
    kind: &'static str,
    type_id: TypeId,
    decode: DecodeFn<T>,
}

impl<T: Real> Entry<T> {
    fn of<L: CustomLayer<T>>() -> Self {
        Entry { kind: L::KIND, type_id: TypeId::of::<L>(), decode: decode::<T, L> }
    }
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Entry { kind: self.kind, type_id: self.type_id, decode: self.decode }
    }
}

/// The custom layer types a load may meet, by kind tag. Passed explicitly to
/// [`Autoencoder::load_with`](crate::Autoencoder::load_with) and
/// [`Autoencoder::from_bytes_with`](crate::Autoencoder::from_bytes_with) (and
/// [`TrainingState::model_with`](crate::TrainingState::model_with)); an empty registry loads
/// models of built-in layers only.
///
/// # Example
/// ```
/// # use latent_autoencoder::custom::{CustomLayer, LayerRegistry};
/// # use latent_autoencoder::{Layer, Mode, Result};
/// # use latent_linalg::{Real, Tensor4};
/// # #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
/// # struct Id;
/// # impl<T: Real> Layer<T> for Id {
/// #     fn forward(&mut self, x: &Tensor4<T>, _: Mode) -> Result<Tensor4<T>> { Ok(x.clone()) }
/// #     fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> { Ok(x.clone()) }
/// #     fn backward(&mut self, _: &Tensor4<T>, _: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> { Ok(dy.clone()) }
/// # }
/// # impl<T: Real> CustomLayer<T> for Id {
/// #     const KIND: &'static str = "doc.id";
/// #     fn output_shape(&self, s: [usize; 3]) -> Result<[usize; 3]> { Ok(s) }
/// # }
/// let registry = LayerRegistry::<f32>::new().register::<Id>()?;
/// assert_eq!(registry.kinds().collect::<Vec<_>>(), vec!["doc.id"]);
/// # Ok::<(), latent_autoencoder::AutoencoderError>(())
/// ```
pub struct LayerRegistry<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Clone for LayerRegistry<T> {
    fn clone(&self) -> Self {
        Self { entries: self.entries.clone() }
    }
}

impl<T> Default for LayerRegistry<T> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<T> fmt::Debug for LayerRegistry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerRegistry")
            .field("kinds", &self.entries.iter().map(|e| e.kind).collect::<Vec<_>>())
            .finish()
    }
}

impl<T: Real> LayerRegistry<T> {
    /// An empty registry (built-in layers only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the layer type `L` under its [`CustomLayer::KIND`]. Registering the same type twice
    /// changes nothing.
    ///
    /// # Errors
    /// [`AutoencoderError::InvalidParameter`] naming `CustomLayer::KIND` when the tag is not
    /// valid (see [`CustomLayer`]) or another type is registered under it.
    pub fn register<L: CustomLayer<T>>(mut self) -> Result<Self> {
        self.add(Entry::of::<L>())?;
        Ok(self)
    }

    fn add(&mut self, entry: Entry<T>) -> Result<()> {
        check_kind(entry.kind)?;
        match self.entries.iter().find(|e| e.kind == entry.kind) {
            Some(e) if e.type_id == entry.type_id => Ok(()),
            Some(_) => Err(invalid(
                "CustomLayer::KIND",
                format!("{:?}", entry.kind),
                "another layer type is already registered under this kind",
            )),
            None => {
                self.entries.push(entry);
                Ok(())
            }
        }
    }

    /// The registered kind tags, in registration order.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.kind)
    }

    /// `true` without registered types.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The registry of the custom layers `layers` hold (every kind a model of the same
    /// architecture needs).
    pub(crate) fn of_layers<'a>(layers: impl IntoIterator<Item = &'a UserLayer<T>>) -> Self {
        let mut r = Self::new();
        for l in layers {
            if let Inner::Resolved(b) = &l.inner {
                // Tags of layers in a model were valid when they were built or loaded; a type
                // clashing with an earlier one under the same tag is left out (its layers then
                // fail to resolve with a typed error).
                let _ = r.add(b.entry());
            }
        }
        r
    }
}

/// A custom layer inside a model (the payload of [`AnyLayer::Custom`](crate::AnyLayer::Custom)).
///
/// Built with [`UserLayer::new`] (or [`Sequential::with_custom`](crate::Sequential::with_custom));
/// read back with [`UserLayer::downcast_ref`].
pub struct UserLayer<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    /// A live layer.
    Resolved(Box<dyn ErasedLayer<T>>),
    /// Read from a file and not yet resolved through a [`LayerRegistry`] (only between
    /// decoding and resolution inside the loaders, or after deserialising a model with serde
    /// directly).
    Unresolved { kind: String, payload: Vec<u8> },
}

impl<T: Real> UserLayer<T> {
    /// Wrap a custom layer.
    pub fn new<L: CustomLayer<T>>(layer: L) -> Self {
        Self { inner: Inner::Resolved(Box::new(layer)) }
    }
}

impl<T> UserLayer<T> {
    /// The kind tag.
    pub fn kind(&self) -> &str {
        match &self.inner {
            Inner::Resolved(l) => l.kind(),
            Inner::Unresolved { kind, .. } => kind,
        }
    }

    /// The layer as an `L`, if it is one.
    pub fn downcast_ref<L: 'static>(&self) -> Option<&L> {
        match &self.inner {
            Inner::Resolved(l) => l.as_any().downcast_ref(),
            Inner::Unresolved { .. } => None,
        }
    }

    /// The layer as a mutable `L`, if it is one.
    pub fn downcast_mut<L: 'static>(&mut self) -> Option<&mut L> {
        match &mut self.inner {
            Inner::Resolved(l) => l.as_any_mut().downcast_mut(),
            Inner::Unresolved { .. } => None,
        }
    }

    /// Replace a layer read from a file by the live layer `registry` decodes it to (a live
    /// layer is left as it is).
    ///
    /// # Errors
    /// [`AutoencoderError::UnknownLayer`] when the registry does not know the kind,
    /// [`AutoencoderError::Format`] when the payload does not decode.
    pub(crate) fn resolve(&mut self, registry: &LayerRegistry<T>) -> Result<()> {
        if let Inner::Unresolved { kind, payload } = &self.inner {
            let entry = registry
                .entries
                .iter()
                .find(|e| e.kind == kind.as_str())
                .ok_or_else(|| AutoencoderError::UnknownLayer { kind: kind.clone() })?;
            self.inner = Inner::Resolved((entry.decode)(payload)?);
        }
        Ok(())
    }

    fn live(&self) -> Result<&dyn ErasedLayer<T>> {
        match &self.inner {
            Inner::Resolved(l) => Ok(l.as_ref()),
            Inner::Unresolved { kind, .. } => Err(AutoencoderError::UnknownLayer { kind: kind.clone() }),
        }
    }

    fn live_mut(&mut self) -> Result<&mut dyn ErasedLayer<T>> {
        match &mut self.inner {
            Inner::Resolved(l) => Ok(l.as_mut()),
            Inner::Unresolved { kind, .. } => Err(AutoencoderError::UnknownLayer { kind: kind.clone() }),
        }
    }

    /// See [`CustomLayer::output_shape`].
    ///
    /// # Errors
    /// As [`CustomLayer::output_shape`]; [`AutoencoderError::UnknownLayer`] for an unresolved
    /// layer.
    pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        self.live()?.output_shape(input)
    }

    /// See [`CustomLayer::validate`] (also checks the kind tag).
    ///
    /// # Errors
    /// As [`CustomLayer::validate`]; [`AutoencoderError::UnknownLayer`] for an unresolved
    /// layer.
    pub fn validate(&self) -> Result<()> {
        self.live()?.validate()
    }

    /// See [`CustomLayer::weight_values`] (empty for an unresolved layer).
    pub fn weight_values(&self) -> Vec<&[T]> {
        self.live().map(|l| l.weight_values()).unwrap_or_default()
    }
}

impl<T> Clone for UserLayer<T> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Resolved(l) => Inner::Resolved(l.clone_box()),
            Inner::Unresolved { kind, payload } => Inner::Unresolved { kind: kind.clone(), payload: payload.clone() },
        };
        Self { inner }
    }
}

impl<T> fmt::Debug for UserLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Resolved(l) => f.debug_tuple("UserLayer").field(l).finish(),
            Inner::Unresolved { kind, payload } => {
                f.debug_struct("UserLayer").field("unresolved_kind", kind).field("payload_len", &payload.len()).finish()
            }
        }
    }
}

impl<T: Real> Layer<T> for UserLayer<T> {
    fn forward(&mut self, x: &Tensor4<T>, mode: Mode) -> Result<Tensor4<T>> {
        self.live_mut()?.forward(x, mode)
    }
    fn infer(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.live()?.infer(x)
    }
    fn backward(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.live_mut()?.backward(x, y, dy)
    }
    fn backward_params(&mut self, x: &Tensor4<T>, y: &Tensor4<T>, dy: &Tensor4<T>) -> Result<()> {
        self.live_mut()?.backward_params(x, y, dy)
    }
    fn params(&mut self) -> Vec<Param<'_, T>> {
        match &mut self.inner {
            Inner::Resolved(l) => l.params(),
            Inner::Unresolved { .. } => Vec::new(),
        }
    }
    fn set_train_stream(&mut self, stream: u64) {
        if let Inner::Resolved(l) = &mut self.inner {
            l.set_train_stream(stream);
        }
    }
    fn defer_running_updates(&mut self, on: bool) {
        if let Inner::Resolved(l) = &mut self.inner {
            l.defer_running_updates(on);
        }
    }
    fn take_running_updates(&mut self) -> Vec<T> {
        match &mut self.inner {
            Inner::Resolved(l) => l.take_running_updates(),
            Inner::Unresolved { .. } => Vec::new(),
        }
    }
    fn apply_running_updates(&mut self, stats: &[T]) -> Result<usize> {
        match &mut self.inner {
            Inner::Resolved(l) => l.apply_running_updates(stats),
            Inner::Unresolved { .. } => Ok(0),
        }
    }
}

/// The kind tag, written as a sequence of bytes.
struct KindBytes<'a>(&'a str);

impl Serialize for KindBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.as_bytes())
    }
}

/// A kind tag read as a sequence of at most [`MAX_KIND_LEN`] bytes (never sized by the length
/// the file declares).
struct KindTag(String);

impl<'de> Deserialize<'de> for KindTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KindTag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a custom layer kind tag of at most {MAX_KIND_LEN} bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<KindTag, A::Error> {
                let mut bytes = Vec::with_capacity(MAX_KIND_LEN);
                while let Some(b) = seq.next_element::<u8>()? {
                    if bytes.len() == MAX_KIND_LEN {
                        return Err(serde::de::Error::custom(format!(
                            "custom layer kind tag longer than {MAX_KIND_LEN} bytes"
                        )));
                    }
                    bytes.push(b);
                }
                let kind = String::from_utf8(bytes)
                    .map_err(|_| serde::de::Error::custom("custom layer kind tag is not UTF-8"))?;
                check_kind(&kind).map_err(serde::de::Error::custom)?;
                Ok(KindTag(kind))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<T> Serialize for UserLayer<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (kind, payload) = match &self.inner {
            Inner::Resolved(l) => (l.kind(), std::borrow::Cow::Owned(l.encode().map_err(serde::ser::Error::custom)?)),
            Inner::Unresolved { kind, payload } => (kind.as_str(), std::borrow::Cow::Borrowed(payload)),
        };
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&KindBytes(kind))?;
        t.serialize_element(&*payload)?;
        t.end()
    }
}

impl<'de, T> Deserialize<'de> for UserLayer<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T> Visitor<'de> for V<T> {
            type Value = UserLayer<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a custom layer: kind tag and payload")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<UserLayer<T>, A::Error> {
                let KindTag(kind) = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let payload: Vec<u8> = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                Ok(UserLayer { inner: Inner::Unresolved { kind, payload } })
            }
        }
        d.deserialize_tuple(2, V(std::marker::PhantomData))
    }
}
