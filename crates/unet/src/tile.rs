//! Overlap-tile prediction (Ronneberger et al. 2015, Fig. 2): images of any size are predicted
//! tile by tile; each output tile sees `context` extra pixels on every side, and the context that
//! falls outside the image is filled by mirroring it.

use crate::error::{Result, UnetError, check_finite, invalid, shape_err};
use crate::model::UNet;
use crate::params::Padding;
use latent_linalg::{Real, Tensor4};

/// Reflect index `i` into `0..n` without repeating the edge pixel (`−1 → 1`, `n → n − 2`).
pub fn mirror_index(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Mirror-pad every plane of `x` by `(top, bottom, left, right)` pixels.
///
/// # Errors
/// [`UnetError::Empty`] for an empty input.
pub fn mirror_pad<T: Real>(x: &Tensor4<T>, top: usize, bottom: usize, left: usize, right: usize) -> Result<Tensor4<T>> {
    let [n, c, h, w] = x.shape();
    if x.is_empty() {
        return Err(UnetError::Empty { what: "image to pad" });
    }
    let (ho, wo) = (h + top + bottom, w + left + right);
    let mut out = Vec::with_capacity(n * c * ho * wo);
    let cols: Vec<usize> = (0..wo).map(|j| mirror_index(j as isize - left as isize, w)).collect();
    for plane in x.as_slice().chunks(h * w) {
        for i in 0..ho {
            let row = &plane[mirror_index(i as isize - top as isize, h) * w..][..w];
            out.extend(cols.iter().map(|&j| row[j]));
        }
    }
    Ok(Tensor4::from_vec([n, c, ho, wo], out)?)
}

/// Tile origins along one axis: output tiles of `out` pixels starting on multiples of
/// `step`, covering `0..len`.
fn origins(len: usize, out: usize, step: usize) -> Vec<usize> {
    if len <= out {
        return vec![0];
    }
    let n = (len - out).div_ceil(step) + 1;
    (0..n).map(|k| k * step).collect()
}

impl<T: Real> UNet<T> {
    /// Overlap-tile prediction of a batch of images of any size `(N, in_channels, H, W)`: class
    /// logits `(N, classes, H, W)` for every pixel.
    ///
    /// `tile` is the input tile size (square; it must be a size the network accepts, e.g. 572
    /// for the paper's network). Each output tile is the centre `tile − 2·context` of its input
    /// tile (see [`crate::Geometry::context`]); tiles start on the pooling grid so that the
    /// prediction equals a whole-image prediction of the mirror-padded image, and the parts of
    /// their context outside the image are mirrored. Up to `batch` tiles go through the network
    /// at once.
    ///
    /// # Errors
    /// [`UnetError::InputSize`] when the network does not accept `tile`;
    /// [`UnetError::InvalidParameter`] when `tile` leaves no output after the context or
    /// `batch == 0`; shape and finiteness errors of the input.
    ///
    /// # Example
    /// ```
    /// use latent_linalg::Tensor4;
    /// use latent_unet::{Padding, ParamGuard, UNet, UnetParams};
    /// let net = UnetParams::new().depth(2).base_channels(4).padding(Padding::Valid).check()?.build::<UNet<f32>>()?;
    /// let image = Tensor4::from_fn([1, 1, 50, 37], |[_, _, i, j]| ((i * 7 + j * 3) % 11) as f32 / 11.0)?;
    /// let logits = net.predict_tiled(&image, 36, 4)?; // 36×36 input tiles → 20×20 output tiles
    /// assert_eq!(logits.shape(), [1, 2, 50, 37]);
    /// # Ok::<(), latent_unet::UnetError>(())
    /// ```
    pub fn predict_tiled(&self, x: &Tensor4<T>, tile: usize, batch: usize) -> Result<Tensor4<T>> {
        let g = self.geometry();
        let [n, c, h, w] = x.shape();
        if c != self.params().in_channels {
            return Err(shape_err(
                "predict_tiled",
                format!("{} channels", self.params().in_channels),
                format!("{:?}", x.shape()),
            ));
        }
        if x.is_empty() {
            return Err(UnetError::Empty { what: "image" });
        }
        if batch == 0 {
            return Err(invalid("batch", batch, "must be >= 1"));
        }
        check_finite("image", x.as_slice())?;
        let net_out = g.check_size("tile", tile)?;
        let ctx = g.context();
        let out = match g.padding {
            Padding::Valid => net_out,
            Padding::Same => tile
                .checked_sub(2 * ctx)
                .filter(|&o| o > 0)
                .ok_or_else(|| invalid("tile", tile, format!("must exceed twice the context of {ctx} pixels")))?,
        };
        // the crop of the network output that is kept, and the step between tiles
        let keep_off = match g.padding {
            Padding::Valid => 0,
            Padding::Same => ctx,
        };
        let s = g.stride();
        let step = (out / s) * s;
        if step == 0 {
            return Err(invalid(
                "tile",
                tile,
                format!("leaves {out} output pixels, fewer than the pooling grid of {s}"),
            ));
        }
        let (oy, ox) = (origins(h, out, step), origins(w, out, step));
        let ph = oy.last().map_or(0, |&o| o + out) - h;
        let pw = ox.last().map_or(0, |&o| o + out) - w;
        let padded = mirror_pad(x, ctx, ph + ctx, ctx, pw + ctx)?;
        let (hp, wp) = (padded.h(), padded.w());
        let k = self.params().classes;
        let mut result = Tensor4::zeros([n, k, h, w])?;
        let mut jobs: Vec<(usize, usize, usize)> = Vec::with_capacity(n * oy.len() * ox.len());
        for i in 0..n {
            for &y in &oy {
                jobs.extend(ox.iter().map(|&x| (i, y, x)));
            }
        }
        for chunk in jobs.chunks(batch) {
            let mut buf = Vec::with_capacity(chunk.len() * c * tile * tile);
            for &(i, y0, x0) in chunk {
                let sample = padded.sample(i).ok_or(UnetError::Empty { what: "image sample" })?;
                for ch in 0..c {
                    let plane = &sample[ch * hp * wp..(ch + 1) * hp * wp];
                    for r in y0..y0 + tile {
                        buf.extend_from_slice(&plane[r * wp + x0..r * wp + x0 + tile]);
                    }
                }
            }
            let tiles = Tensor4::from_vec([chunk.len(), c, tile, tile], buf)?;
            let logits = self.predict(&tiles)?;
            let (lh, lw) = (logits.h(), logits.w());
            for (t, &(i, y0, x0)) in chunk.iter().enumerate() {
                let src = logits.sample(t).ok_or(UnetError::Empty { what: "tile logits" })?;
                let dst = result.sample_mut(i).ok_or(UnetError::Empty { what: "result sample" })?;
                for cl in 0..k {
                    for r in 0..out.min(h.saturating_sub(y0)) {
                        let cols = out.min(w.saturating_sub(x0));
                        let s0 = cl * lh * lw + (keep_off + r) * lw + keep_off;
                        let d0 = cl * h * w + (y0 + r) * w + x0;
                        dst[d0..d0 + cols].copy_from_slice(&src[s0..s0 + cols]);
                    }
                }
            }
        }
        Ok(result)
    }
}
