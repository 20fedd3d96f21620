//! Masked coding for inpainting: code only the observed entries of a signal, then reconstruct
//! the missing ones from the code (the lecture's "restore missing pieces of an image").

use crate::encoder::{CodeInfo, Encoder};
use crate::error::{Result, SparseCodingError, dim, finite};
use latent_linalg::{DMatrix, Real};

/// Code `x` using only the entries where `observed[i]` is true:
/// `min ½‖M(x − Ws)‖² + penalty(s)` with any encoder, by coding against the dictionary's observed
/// rows. Returns the code and its diagnostics.
///
/// # Errors
/// Length mismatches, no observed entry, NaN in observed entries, encoder errors.
pub fn encode_masked<T: Real, E: Encoder<T> + ?Sized>(
    enc: &E,
    w: &DMatrix<T>,
    x: &[T],
    observed: &[bool],
) -> Result<(Vec<T>, CodeInfo)> {
    if x.len() != w.nrows() || observed.len() != w.nrows() {
        return Err(dim(
            "encode_masked",
            format!("signal {} and mask {} vs atoms of length {}", x.len(), observed.len(), w.nrows()),
        ));
    }
    let rows: Vec<usize> = (0..x.len()).filter(|&i| observed[i]).collect();
    if rows.is_empty() {
        return Err(SparseCodingError::Empty("observed entries"));
    }
    let xo: Vec<T> = rows.iter().map(|&i| x[i]).collect();
    finite("observed entries", &xo)?;
    let wo = DMatrix::from_fn(rows.len(), w.ncols(), |r, c| w[(rows[r], c)]);
    enc.encode(&wo, &xo, None)
}

/// Fill the unobserved entries of `x` with the reconstruction `Ws` of its masked code; observed
/// entries are kept as they are.
///
/// # Errors
/// As [`encode_masked`].
pub fn inpaint<T: Real, E: Encoder<T> + ?Sized>(enc: &E, w: &DMatrix<T>, x: &[T], observed: &[bool]) -> Result<Vec<T>> {
    let (s, _) = encode_masked(enc, w, x, observed)?;
    let xhat = crate::SparseCode::from_dense(&s).reconstruct(w)?;
    Ok(x.iter().zip(&xhat).zip(observed).map(|((&xi, &ri), &o)| if o { xi } else { ri }).collect())
}

/// Inpaint a grayscale image (row-major `height × width`) with a dictionary of `p × p` patches
/// (atoms of length p², row-major): every patch position with stride `stride` is coded from its
/// observed pixels, and each missing pixel is the average of its reconstructions. Pixels that no
/// patch covers keep their value.
///
/// # Errors
/// Size mismatches (`p` larger than the image, mask/image lengths) and encoder errors.
pub fn inpaint_image<T: Real, E: Encoder<T> + Sync + ?Sized>(
    enc: &E,
    w: &DMatrix<T>,
    image: &[T],
    observed: &[bool],
    height: usize,
    width: usize,
    stride: usize,
) -> Result<Vec<T>> {
    use rayon::prelude::*;
    let p = (w.nrows() as f64).sqrt().round() as usize;
    if p * p != w.nrows() || p == 0 {
        return Err(dim("inpaint_image", format!("atoms of length {} are not square patches", w.nrows())));
    }
    if image.len() != height * width || observed.len() != image.len() {
        return Err(dim(
            "inpaint_image",
            format!("image {} and mask {} vs {height}x{width}", image.len(), observed.len()),
        ));
    }
    if p > height || p > width || stride == 0 {
        return Err(dim("inpaint_image", format!("patch {p} and stride {stride} do not fit a {height}x{width} image")));
    }
    let mut ys: Vec<usize> = (0..=height - p).step_by(stride).collect();
    if *ys.last().unwrap_or(&0) != height - p {
        ys.push(height - p);
    }
    let mut xs: Vec<usize> = (0..=width - p).step_by(stride).collect();
    if *xs.last().unwrap_or(&0) != width - p {
        xs.push(width - p);
    }
    let positions: Vec<(usize, usize)> = ys.iter().flat_map(|&y| xs.iter().map(move |&x| (y, x))).collect();
    let patches: Vec<Option<Vec<T>>> = positions
        .par_iter()
        .map(|&(y, x)| {
            let mut v = Vec::with_capacity(p * p);
            let mut m = Vec::with_capacity(p * p);
            for i in 0..p {
                for j in 0..p {
                    v.push(image[(y + i) * width + x + j]);
                    m.push(observed[(y + i) * width + x + j]);
                }
            }
            if m.iter().all(|&o| o) || !m.iter().any(|&o| o) {
                return Ok(None);
            }
            inpaint(enc, w, &v, &m).map(Some)
        })
        .collect::<Result<_>>()?;
    let mut sum = vec![0.0f64; image.len()];
    let mut cnt = vec![0u32; image.len()];
    for (&(y, x), patch) in positions.iter().zip(&patches) {
        if let Some(v) = patch {
            for i in 0..p {
                for j in 0..p {
                    let k = (y + i) * width + x + j;
                    sum[k] += v[i * p + j].as_f64();
                    cnt[k] += 1;
                }
            }
        }
    }
    Ok(image
        .iter()
        .enumerate()
        .map(|(k, &v)| if observed[k] || cnt[k] == 0 { v } else { T::lit(sum[k] / cnt[k] as f64) })
        .collect())
}
