//! Boundary handling: where the image, the maps and the FFT domain sit relative to each other.

use crate::error::{Result, invalid, shape};
use serde::{Deserialize, Serialize};

/// How the image border is handled.
///
/// | boundary | maps | reconstruction `x̂ = Σ_m d_m * s_m` |
/// |---|---|---|
/// | [`Boundary::Periodic`] | `H × W`, like the image | circular convolution on the `H × W` torus: `x̂[i, j] = Σ_m Σ_{u,v} d_m[u, v] · s_m[(i − u) mod H, (j − v) mod W]`; a filter placed near the right edge wraps around to the left. Fast and exact in the DFT domain, but it treats the image as a tile of a periodic pattern. |
/// | [`Boundary::ZeroPad`] | `(H + kh − 1) × (W + kw − 1)` | linear ("full") convolution cropped to the image: `x̂[i, j] = Σ_m Σ_{u,v} d_m[u, v] · s_m[i + kh − 1 − u, j + kw − 1 − v]`. Every filter placement that overlaps the image has its own coefficient, nothing wraps, and pixels outside the image are unconstrained. Map entry `s_m[p, q]` places the filter's top-left tap at image pixel `(p − kh + 1, q − kw + 1)`. The solvers implement it as the periodic problem on a zero-padded domain (padded further to a fast FFT size) with a mask on the data term that is 1 on the image and 0 on the padding, and the maps constrained to zero beyond their support. |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Boundary {
    /// Circular convolution on the image's torus (SPORCO's convention).
    #[default]
    Periodic,
    /// Zero padding with a crop: linear convolution, maps larger than the image by the filter size − 1.
    ZeroPad,
}

impl Boundary {
    /// The map size for an `h × w` image and `kh × kw` filters.
    pub fn map_size(self, h: usize, w: usize, kh: usize, kw: usize) -> (usize, usize) {
        match self {
            Boundary::Periodic => (h, w),
            Boundary::ZeroPad => (h + kh - 1, w + kw - 1),
        }
    }
}

/// Sizes and offsets of image, maps and computational domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Image size.
    pub h: usize,
    pub w: usize,
    /// Filter size.
    pub kh: usize,
    pub kw: usize,
    /// Map support size.
    pub mh: usize,
    pub mw: usize,
    /// Computational (FFT or direct) domain size.
    pub dh: usize,
    pub dw: usize,
    /// Offset of the image inside the domain.
    pub oy: usize,
    pub ox: usize,
    pub boundary: Boundary,
}

/// Smallest even `n >= m` whose prime factors are 2, 3, 5 and 7 (fast for rustfft / realfft).
pub(crate) fn fast_len(m: usize) -> usize {
    let mut n = m.max(2);
    loop {
        if n.is_multiple_of(2) {
            let mut r = n;
            for p in [2, 3, 5, 7] {
                while r.is_multiple_of(p) {
                    r /= p;
                }
            }
            if r == 1 {
                return n;
            }
        }
        n += 1;
    }
}

impl Geometry {
    /// Geometry for `h × w` images and `kh × kw` filters. `fast` pads the zero-padded domain up to
    /// a fast FFT length (the spatial backend uses the exact padded size).
    pub fn new(h: usize, w: usize, kh: usize, kw: usize, boundary: Boundary, fast: bool) -> Result<Self> {
        if h == 0 || w == 0 {
            return Err(invalid("image size", format!("{h}x{w}"), "must be non-empty"));
        }
        if kh == 0 || kw == 0 {
            return Err(invalid("filter size", format!("{kh}x{kw}"), "must be non-empty"));
        }
        if kh > h || kw > w {
            return Err(shape("geometry", format!("filters {kh}x{kw} are larger than the image {h}x{w}")));
        }
        Ok(match boundary {
            Boundary::Periodic => Self { h, w, kh, kw, mh: h, mw: w, dh: h, dw: w, oy: 0, ox: 0, boundary },
            Boundary::ZeroPad => {
                let (mh, mw) = (h + kh - 1, w + kw - 1);
                let (dh, dw) = if fast { (fast_len(mh), fast_len(mw)) } else { (mh, mw) };
                Self { h, w, kh, kw, mh, mw, dh, dw, oy: kh - 1, ox: kw - 1, boundary }
            }
        })
    }
    pub fn image_len(&self) -> usize {
        self.h * self.w
    }
    pub fn map_len(&self) -> usize {
        self.mh * self.mw
    }
    pub fn dom_len(&self) -> usize {
        self.dh * self.dw
    }
    /// Does the domain hold anything besides the image (so a mask is implied)?
    pub fn padded(&self) -> bool {
        self.boundary == Boundary::ZeroPad
    }
    /// Does the domain extend beyond the map support (maps must be held at zero there)?
    pub fn map_padded(&self) -> bool {
        self.dh != self.mh || self.dw != self.mw
    }
    /// Image plane → domain plane (zero outside the image).
    pub fn embed_image<T: Copy + Default>(&self, img: &[T], dom: &mut [T]) {
        if !self.padded() {
            dom.copy_from_slice(img);
            return;
        }
        dom.iter_mut().for_each(|v| *v = T::default());
        for i in 0..self.h {
            let d = (self.oy + i) * self.dw + self.ox;
            dom[d..d + self.w].copy_from_slice(&img[i * self.w..(i + 1) * self.w]);
        }
    }
    /// Domain plane → image plane.
    pub fn crop_image<T: Copy>(&self, dom: &[T], img: &mut [T]) {
        if !self.padded() {
            img.copy_from_slice(dom);
            return;
        }
        for i in 0..self.h {
            let d = (self.oy + i) * self.dw + self.ox;
            img[i * self.w..(i + 1) * self.w].copy_from_slice(&dom[d..d + self.w]);
        }
    }
    /// Map plane → domain plane (zero beyond the support).
    pub fn embed_map<T: Copy + Default>(&self, map: &[T], dom: &mut [T]) {
        if !self.map_padded() {
            dom.copy_from_slice(map);
            return;
        }
        dom.iter_mut().for_each(|v| *v = T::default());
        for i in 0..self.mh {
            dom[i * self.dw..i * self.dw + self.mw].copy_from_slice(&map[i * self.mw..(i + 1) * self.mw]);
        }
    }
    /// Domain plane → map plane.
    pub fn crop_map<T: Copy>(&self, dom: &[T], map: &mut [T]) {
        if !self.map_padded() {
            map.copy_from_slice(dom);
            return;
        }
        for i in 0..self.mh {
            map[i * self.mw..(i + 1) * self.mw].copy_from_slice(&dom[i * self.dw..i * self.dw + self.mw]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_lengths_are_even_and_smooth() {
        assert_eq!(fast_len(263), 270);
        assert_eq!(fast_len(256), 256);
        assert_eq!(fast_len(11), 12);
        assert_eq!(fast_len(1), 2);
        for m in 1..300 {
            let n = fast_len(m);
            assert!(n >= m && n.is_multiple_of(2));
        }
    }

    #[test]
    fn embed_and_crop_round_trip() {
        let g = Geometry::new(3, 4, 2, 3, Boundary::ZeroPad, true).unwrap();
        assert_eq!((g.mh, g.mw, g.oy, g.ox), (4, 6, 1, 2));
        let img: Vec<f64> = (0..12).map(f64::from).collect();
        let mut dom = vec![9.0; g.dom_len()];
        g.embed_image(&img, &mut dom);
        let mut back = vec![0.0; 12];
        g.crop_image(&dom, &mut back);
        assert_eq!(back, img);
        assert_eq!(dom.iter().sum::<f64>(), img.iter().sum::<f64>());
    }
}
