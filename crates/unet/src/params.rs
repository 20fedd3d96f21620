//! Architecture parameters (builder → [`ParamGuard::check`] → [`Checked`] → [`Checked::build`]
//! → [`UNet`]) and the size arithmetic of the network: which inputs it accepts, how much an
//! unpadded network shrinks them, and how much context overlap-tile prediction needs.

use crate::UNet;
use crate::error::{Result, UnetError, invalid};
use latent_linalg::Real;
pub(crate) use latent_optim::fit::Checked;
use latent_optim::fit::{Build, ParamGuard};
use serde::{Deserialize, Serialize};

/// Padding of the 3×3 convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Padding {
    /// One pixel of zeros on every side: the output has the input's size; the input must be
    /// divisible by `2^(depth−1)`.
    #[default]
    Same,
    /// No padding, as in Ronneberger et al. (2015): every convolution removes a one-pixel
    /// border, skip connections are center-cropped, and the output is smaller than the input by
    /// [`Geometry::margin`] on every side.
    Valid,
}

impl Padding {
    /// `"same"` or `"valid"`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        }
    }
}

/// The spatial size arithmetic of a U-Net with `depth` resolution levels.
///
/// # Example
/// ```
/// use latent_unet::{Geometry, Padding};
/// // the paper's network: 5 levels, unpadded, 572×572 → 388×388
/// let g = Geometry::new(5, Padding::Valid);
/// assert_eq!(g.output_size(572), Some(388));
/// assert_eq!(g.margin(), 92);
/// assert_eq!(g.output_size(570), None);
/// assert_eq!(g.valid_sizes_near(570), (Some(556), Some(572)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// Resolution levels (`depth − 1` poolings).
    pub depth: usize,
    /// Convolution padding.
    pub padding: Padding,
}

impl Geometry {
    /// The geometry of a `depth`-level network.
    pub fn new(depth: usize, padding: Padding) -> Self {
        Self { depth, padding }
    }

    /// `2^(depth−1)`: the total down-sampling factor; tiles must be placed on this grid.
    pub fn stride(&self) -> usize {
        1usize << self.depth.saturating_sub(1).min(usize::BITS as usize - 2)
    }

    /// Output size for an input of size `n` along one axis, `None` when the network cannot
    /// process it (odd size before a pooling, or nothing left after the unpadded convolutions).
    pub fn output_size(&self, n: usize) -> Option<usize> {
        if self.depth == 0 || n == 0 {
            return None;
        }
        match self.padding {
            Padding::Same => n.is_multiple_of(self.stride()).then_some(n),
            Padding::Valid => {
                let mut s = n;
                for _ in 0..self.depth - 1 {
                    s = s.checked_sub(4).filter(|&s| s > 0 && s % 2 == 0)? / 2;
                }
                s = s.checked_sub(4).filter(|&s| s > 0)?;
                for _ in 0..self.depth - 1 {
                    s = s.checked_mul(2)?.checked_sub(4).filter(|&s| s > 0)?;
                }
                Some(s)
            }
        }
    }

    /// For every level `l < depth − 1` (finest first): the size of the encoder output that the
    /// shortcut carries and the size of the up-convolution output it is concatenated with (the
    /// shortcut is center-cropped to it; equal for same padding). `None` when `n` does not fit.
    ///
    /// # Example
    /// ```
    /// use latent_unet::{Geometry, Padding};
    /// // the paper: 568 → 392, 280 → 200, 136 → 104, 64 → 56
    /// let crops = Geometry::new(5, Padding::Valid).skip_crops(572).unwrap();
    /// assert_eq!(crops, vec![(568, 392), (280, 200), (136, 104), (64, 56)]);
    /// ```
    pub fn skip_crops(&self, n: usize) -> Option<Vec<(usize, usize)>> {
        self.output_size(n)?;
        let d = self.depth - 1;
        let shrink = match self.padding {
            Padding::Same => 0,
            Padding::Valid => 4,
        };
        let mut skips = Vec::with_capacity(d);
        let mut s = n;
        for _ in 0..d {
            s -= shrink;
            skips.push(s);
            s /= 2;
        }
        let mut up = vec![0; d];
        s -= shrink;
        for l in (0..d).rev() {
            up[l] = 2 * s;
            s = 2 * s - shrink;
        }
        Some(skips.into_iter().zip(up).collect())
    }

    /// Pixels lost on every side by the unpadded network (`6·2^(depth−1) − 4`); 0 for same
    /// padding.
    pub fn margin(&self) -> usize {
        match self.padding {
            Padding::Same => 0,
            Padding::Valid => 6 * self.stride() - 4,
        }
    }

    /// Context (pixels on every side) that overlap-tile prediction adds around each output
    /// tile: the margin for unpadded networks; for same padding the receptive-field radius
    /// ([`Geometry::receptive_radius`]) rounded up to the pooling grid, so that tile predictions
    /// are not affected by the zeros at the tile edges.
    pub fn context(&self) -> usize {
        match self.padding {
            Padding::Valid => self.margin(),
            Padding::Same => self.receptive_radius().div_ceil(self.stride()) * self.stride(),
        }
    }

    /// Radius (input pixels) of the receptive field of one output pixel of the same-padded
    /// network, worst case over the positions on the pooling grid: how far its value can reach.
    pub fn receptive_radius(&self) -> usize {
        let top = self.depth.max(1) - 1;
        // input interval that encoder level `l` needs to produce outputs [a, b] (level-l units)
        fn enc_in(l: usize, a: i64, b: i64) -> (i64, i64) {
            let (a, b) = (a - 2, b + 2);
            if l == 0 { (a, b) } else { enc_in(l - 1, 2 * a, 2 * b + 1) }
        }
        // input interval behind outputs [a, b] of decoder level `l` (or of the bottleneck)
        fn dec_in(l: usize, top: usize, a: i64, b: i64) -> (i64, i64) {
            if l == top {
                return if top == 0 { enc_in(0, a, b) } else { enc_in(top - 1, 2 * (a - 2), 2 * (b + 2) + 1) };
            }
            let (a, b) = (a - 2, b + 2);
            let skip = enc_in(l, a, b);
            let up = dec_in(l + 1, top, a.div_euclid(2), b.div_euclid(2));
            (skip.0.min(up.0), skip.1.max(up.1))
        }
        (0..self.stride() as i64)
            .map(|x| {
                let (lo, hi) = dec_in(0, top, x, x);
                (x - lo).max(hi - x) as usize
            })
            .max()
            .unwrap_or(0)
    }

    /// The nearest valid input sizes below and above `n` (either may not exist).
    pub fn valid_sizes_near(&self, n: usize) -> (Option<usize>, Option<usize>) {
        if self.depth == 0 {
            return (None, None);
        }
        let below = (1..=n.min(1 << 20)).rev().find(|&k| self.output_size(k).is_some());
        let above =
            (n.saturating_add(1)..n.saturating_add(16 * self.stride() + 64)).find(|&k| self.output_size(k).is_some());
        (below, above)
    }

    /// The smallest input size the network accepts.
    pub fn min_input(&self) -> Option<usize> {
        (1..64 * self.stride() + 64).find(|&k| self.output_size(k).is_some())
    }

    /// The output size for `n`, or [`UnetError::InputSize`] naming the nearest valid sizes.
    ///
    /// # Errors
    /// [`UnetError::InputSize`] when `n` does not fit.
    pub fn check_size(&self, axis: &'static str, n: usize) -> Result<usize> {
        self.output_size(n).ok_or_else(|| {
            let (lo, hi) = self.valid_sizes_near(n);
            let valid = match (lo, hi) {
                (Some(a), Some(b)) => format!("{a} or {b}"),
                (None, Some(b)) => format!("{b} (the smallest)"),
                (Some(a), None) => format!("{a}"),
                (None, None) => "none".to_string(),
            };
            let rule = match self.padding {
                Padding::Same => format!(" (multiples of {})", self.stride()),
                Padding::Valid => format!(
                    " (sizes {}·m + {} with m >= {})",
                    self.stride(),
                    4 * (self.stride() - 1),
                    self.min_input().map_or(0, |k| (k - 4 * (self.stride() - 1)) / self.stride())
                ),
            };
            UnetError::InputSize {
                axis,
                size: n,
                depth: self.depth,
                padding: self.padding.name(),
                valid: valid + &rule,
            }
        })
    }
}

/// U-Net architecture (builder).
///
/// Level `l` (0-based) has `base_channels·2^l` channels; each level is two 3×3 convolutions with
/// ReLU; between levels a 2×2 max-pool (down) or a 2×2 stride-2 transposed convolution (up); the
/// decoder concatenates the (center-cropped) encoder output of its level — the *shortcut
/// connection* — unless `skips` is off; a 1×1 convolution maps to class logits.
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `in_channels` | `1` | input channels | `>= 1` |
/// | `classes` | `2` | output classes (2: background/cell; 3: background/cell/border) | `2..=255` |
/// | `depth` | `3` | resolution levels (`depth − 1` poolings; 1 = no down-sampling at all) | `1..=8` |
/// | `base_channels` | `16` | channels of the first level (the paper: 64) | `1..=4096` |
/// | `padding` | `Same` | see [`Padding`] | — |
/// | `skips` | `true` | shortcut connections by channel concatenation | — |
/// | `batch_norm` | `false` | batch normalisation between every 3×3 convolution and its ReLU | — |
/// | `dropout` | `0` | dropout probability at the end of the bottleneck (the paper: 0.5) | `[0, 1)` |
/// | `seed` | `0` | weight initialisation (PyTorch's default, `U(±1/√fan_in)`) and dropout | any |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UnetParams {
    /// Input channels.
    pub in_channels: usize,
    /// Output classes.
    pub classes: usize,
    /// Resolution levels.
    pub depth: usize,
    /// Channels of the first level.
    pub base_channels: usize,
    /// Convolution padding.
    pub padding: Padding,
    /// Shortcut connections.
    pub skips: bool,
    /// Batch normalisation.
    pub batch_norm: bool,
    /// Bottleneck dropout probability.
    pub dropout: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for UnetParams {
    fn default() -> Self {
        Self {
            in_channels: 1,
            classes: 2,
            depth: 3,
            base_channels: 16,
            padding: Padding::Same,
            skips: true,
            batch_norm: false,
            dropout: 0.0,
            seed: 0,
        }
    }
}

impl UnetParams {
    /// Defaults (see the table).
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the input channels.
        in_channels: usize,
        /// Set the number of classes.
        classes: usize,
        /// Set the number of resolution levels.
        depth: usize,
        /// Set the channels of the first level.
        base_channels: usize,
        /// Set the padding.
        padding: Padding,
        /// Turn the shortcut connections on or off.
        skips: bool,
        /// Turn batch normalisation on or off.
        batch_norm: bool,
        /// Set the bottleneck dropout probability.
        dropout: f64,
        /// Set the seed.
        seed: u64,
    }

    /// The size arithmetic of this architecture.
    pub fn geometry(&self) -> Geometry {
        Geometry::new(self.depth, self.padding)
    }

    /// Channels of level `l`.
    pub fn channels(&self, l: usize) -> usize {
        self.base_channels << l
    }
}

/// `check()` validates the architecture; `build()` then makes the network.
///
/// # Example
/// ```
/// use latent_unet::{ParamGuard, UNet, UnetError, UnetParams};
/// let e = UnetParams::new().classes(1).check().unwrap_err();
/// assert!(matches!(e, UnetError::InvalidParameter { name: "classes", .. }));
/// let net: UNet<f32> = UnetParams::new().depth(2).base_channels(4).check()?.build()?;
/// assert_eq!(net.params().classes, 2);
/// # Ok::<(), UnetError>(())
/// ```
impl ParamGuard for UnetParams {
    type Error = UnetError;

    /// # Errors
    /// [`UnetError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        if self.in_channels == 0 {
            return Err(invalid("in_channels", self.in_channels, "must be >= 1"));
        }
        if !(2..=255).contains(&self.classes) {
            return Err(invalid("classes", self.classes, "must be in 2..=255 (background and at least one class)"));
        }
        if !(1..=8).contains(&self.depth) {
            return Err(invalid("depth", self.depth, "must be in 1..=8"));
        }
        if !(1..=4096).contains(&self.base_channels) {
            return Err(invalid("base_channels", self.base_channels, "must be in 1..=4096"));
        }
        if self.channels(self.depth - 1) > 1 << 16 {
            return Err(invalid(
                "base_channels",
                self.base_channels,
                format!("base_channels·2^(depth−1) = {} exceeds 65536", self.channels(self.depth - 1)),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(invalid("dropout", self.dropout, "must be in [0, 1)"));
        }
        Ok(())
    }
}

impl<T: Real> Build<UNet<T>> for UnetParams {
    /// A randomly initialised network (PyTorch's default initialisation, seeded by `seed`).
    ///
    /// # Errors
    /// [`UnetError::Autoencoder`] when a layer rejects its geometry (cannot happen for checked
    /// parameters).
    fn build_checked(params: &Checked<Self>) -> Result<UNet<T>> {
        UNet::new(params)
    }
}

impl From<Checked<UnetParams>> for UnetParams {
    fn from(c: Checked<UnetParams>) -> Self {
        c.into_inner()
    }
}

/// Error unless `(h, w)` fits the geometry; returns the output size.
pub(crate) fn check_hw(g: &Geometry, h: usize, w: usize) -> Result<(usize, usize)> {
    Ok((g.check_size("height", h)?, g.check_size("width", w)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_geometry_matches_the_paper_and_closed_forms() {
        let g = Geometry::new(5, Padding::Valid);
        assert_eq!(g.output_size(572), Some(388));
        assert_eq!(572 - 388, 2 * g.margin());
        for depth in 1..=5 {
            let g = Geometry::new(depth, Padding::Valid);
            let s = g.stride();
            for n in 1..400 {
                if let Some(o) = g.output_size(n) {
                    assert_eq!(n - o, 2 * g.margin(), "depth {depth}, n {n}");
                    assert_eq!((n - 4 * (s - 1)) % s, 0);
                }
            }
        }
    }

    #[test]
    fn same_geometry_needs_multiples_of_the_stride() {
        let g = Geometry::new(3, Padding::Same);
        assert_eq!(g.output_size(64), Some(64));
        assert_eq!(g.output_size(66), None);
        assert_eq!(g.valid_sizes_near(66), (Some(64), Some(68)));
        assert_eq!(g.context() % g.stride(), 0);
        assert_eq!(Geometry::new(1, Padding::Same).receptive_radius(), 2);
        // depth 2, output x = 0: decoder convs reach [−2, 2]; the up path reads level-1 pixels [−1, 1],
        // the bottleneck convs [−3, 3], i.e. encoder outputs [−6, 7], i.e. inputs [−8, 9]
        assert_eq!(Geometry::new(2, Padding::Same).receptive_radius(), 9);
        assert!(g.receptive_radius() <= g.context());
        let e = g.check_size("width", 66).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("64 or 68") && msg.contains("multiples of 4"), "{msg}");
    }

    #[test]
    fn check_names_bad_values() {
        let bad = [
            (UnetParams::new().in_channels(0), "in_channels"),
            (UnetParams::new().depth(0), "depth"),
            (UnetParams::new().depth(9), "depth"),
            (UnetParams::new().base_channels(0), "base_channels"),
            (UnetParams::new().dropout(1.0), "dropout"),
            (UnetParams::new().dropout(f64::NAN), "dropout"),
        ];
        for (p, name) in bad {
            match p.check() {
                Err(UnetError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(UnetParams::new().check().is_ok());
    }
}
