//! F12 "inpainting": restore missing pixels and remove a text overlay with a patch dictionary.

use super::common::{columns_f32, err, natural_images, psnr};
use super::plot::{Canvas, linear, tile_sheet};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_datasets::patches::extract_random_patches;
use latent_linalg::DMatrix;
use latent_sparse_coding::{Omp, OnlineParams, ParamGuard, inpaint_image};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const FIGURE: Figure = Figure {
    id: "F12",
    title: "Restoring missing pieces of an image",
    claim: "Sparse codes computed from the observed pixels only reconstruct the missing ones: a dictionary learned \
            on natural patches restores an image with 50 % of its pixels missing and removes a text overlay.",
    run,
};

/// A mask of pixels covered by text, drawn with the embedded font.
fn text_mask(w: usize, h: usize) -> Result<Vec<bool>, String> {
    let mut c = Canvas::new(w, h, [255, 255, 255]);
    let size = (h as f64 / 7.0).max(10.0);
    for (i, line) in ["latent restores", "missing pixels", "from sparse codes"].iter().enumerate() {
        c.text(4, (8.0 + i as f64 * size * 1.6) as i32, line, size)?;
    }
    Ok((0..w * h).map(|k| c.rgb[3 * k] < 128).collect())
}

/// Baseline: fill each missing pixel with the mean of the observed pixels in its 5×5 window.
fn local_mean_fill(img: &[f32], obs: &[bool], w: usize, h: usize) -> Vec<f32> {
    (0..w * h)
        .map(|k| {
            if obs[k] {
                return img[k];
            }
            let (x, y) = (k % w, k / w);
            let (mut s, mut n) = (0.0f32, 0u32);
            for yy in y.saturating_sub(2)..(y + 3).min(h) {
                for xx in x.saturating_sub(2)..(x + 3).min(w) {
                    if obs[yy * w + xx] {
                        s += img[yy * w + xx];
                        n += 1;
                    }
                }
            }
            if n > 0 { s / n as f32 } else { 0.5 }
        })
        .collect()
}

/// Restore the missing pixels (`observed[k] == false`) of a `side × side` image from its observed
/// pixels only: every 8×8 patch position is coded by `enc` on its observed pixels against `w`, each
/// missing pixel is the mean of its patches' reconstructions, clamped to [0, 1]. Observed pixels
/// are returned as given; the values of `corrupted` at missing pixels are never read (the solver
/// gets 0 there, which a pixel no partly observed patch covers would keep).
fn restore(enc: &Omp, w: &DMatrix<f64>, corrupted: &[f32], observed: &[bool], side: usize) -> Result<Vec<f32>, String> {
    let img: Vec<f64> = corrupted.iter().zip(observed).map(|(&v, &o)| if o { v as f64 } else { 0.0 }).collect();
    let r = inpaint_image(enc, w, &img, observed, side, side, 1).map_err(err)?;
    Ok(r.iter().map(|&v| (v as f32).clamp(0.0, 1.0)).collect())
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = 8;
    let all = natural_images()?;
    let (test_name, test_img) =
        all.iter().find(|(n, _)| n == "skimage_camera").cloned().ok_or("skimage_camera.png missing")?;
    let train: Vec<_> = all.into_iter().filter(|(n, _)| *n != test_name).map(|(_, i)| i).collect();
    let side = if ctx.quick { 96 } else { 256 };
    let crop = test_img.crop((test_img.width - side) / 2, (test_img.height - side) / 4, side, side).map_err(err)?;
    // dictionary of raw (unwhitened) 8×8 patches, DC included, learned on the other images
    let count = if ctx.quick { 6000 } else { 40000 };
    let mut ps = extract_random_patches(&train, p, p, count, ctx.seed).map_err(err)?;
    ps.remove_mean();
    let x: DMatrix<f64> = ps.to_dmatrix_cols();
    let spin = ctx.spinner("F12 dictionary");
    let op = OnlineParams::new(256, 0.02).epochs(if ctx.quick { 1 } else { 2 }).seed(ctx.seed);
    let fit = op.check().map_err(err)?.fit(&x).map_err(err)?;
    spin.finish_and_clear();
    // the learned atoms model the patch structure; a constant atom carries each patch's mean
    let h = fit.dictionary.ncols();
    let w = DMatrix::from_fn(p * p, h + 1, |i, j| if j == 0 { 1.0 / p as f64 } else { fit.dictionary[(i, j - 1)] });
    let truth: Vec<f32> = crop.data.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed + 7);
    let random_obs: Vec<bool> = (0..side * side).map(|_| rng.random::<f64>() >= 0.5).collect();
    let text_obs: Vec<bool> = text_mask(side, side)?.iter().map(|t| !t).collect();
    let enc = Omp::new(5);
    let mut rows = Canvas::new(4 * (side + 6) + 6, 2 * (side + 6) + 6, [255, 255, 255]);
    let map = linear(0.0, 1.0);
    for (r, (name, obs)) in [("random50", &random_obs), ("text", &text_obs)].into_iter().enumerate() {
        let bar = ctx.spinner(&format!("F12 inpaint {name}"));
        let corrupted: Vec<f32> = truth
            .iter()
            .zip(obs.iter())
            .map(|(&v, &o)| if o { v } else { if name == "text" { 1.0 } else { 0.0 } })
            .collect();
        // the solver sees the corrupted image and the mask, never the ground truth
        let restored = restore(&enc, &w, &corrupted, obs, side)?;
        bar.finish_and_clear();
        let baseline = local_mean_fill(&truth, obs, side, side);
        let missing: Vec<usize> = (0..side * side).filter(|&k| !obs[k]).collect();
        let on = |v: &[f32]| -> Vec<f32> { missing.iter().map(|&k| v[k]).collect() };
        ctx.metric(&format!("{name}_missing_fraction"), missing.len() as f64 / (side * side) as f64);
        ctx.metric(&format!("{name}_psnr_corrupted_db"), psnr(&corrupted, &truth));
        ctx.metric(&format!("{name}_psnr_local_mean_db"), psnr(&baseline, &truth));
        ctx.metric(&format!("{name}_psnr_restored_db"), psnr(&restored, &truth));
        ctx.metric(&format!("{name}_psnr_restored_missing_only_db"), psnr(&on(&restored), &on(&truth)));
        ctx.check(
            &format!("{name}_restored_beats_local_mean"),
            &format!("{name}_psnr_restored_db"),
            Cmp::Gt,
            Rhs::Metric(&format!("{name}_psnr_local_mean_db")),
        )?;
        let y0 = 6 + r * (side + 6);
        for (q, v) in [&truth, &corrupted, &baseline, &restored].into_iter().enumerate() {
            rows.gray_tile(6 + q * (side + 6), y0, side, side, v, 1, &map);
        }
    }
    ctx.canvas(
        "inpainting.png",
        "Rows: 50 % random pixels missing; text overlay. Columns: original, corrupted, local-mean fill (baseline), restored from masked sparse codes (OMP, 5 atoms incl. a constant one, 8×8 patches, every position).",
        &rows,
    )?;
    ctx.canvas(
        "dictionary.png",
        "The constant atom and the 256 learned atoms (8×8, mean-removed patches) used for inpainting.",
        &tile_sheet(&columns_f32(&w), p, p, 16, 4, true),
    )?;
    ctx.config("test_image", format!("{test_name}, {side}x{side} crop (not used for learning)"));
    ctx.config("dictionary", "constant atom + 256 atoms learned online on 8x8 mean-removed patches, λ = 0.02");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The restored image is the same, bit for bit, whatever the missing pixels hold (the ground
    /// truth, a fill value, garbage or NaN): the restoration never reads them.
    fn never_reads_missing(observed: &[bool], side: usize, p: usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let truth: Vec<f32> = (0..side * side)
            .map(|k| 0.5 + 0.3 * ((k % side) as f32 * 0.3).sin() * ((k / side) as f32 * 0.2).cos())
            .collect();
        let w = DMatrix::from_fn(p * p, 20, |_, j| if j == 0 { 1.0 / p as f64 } else { rng.random::<f64>() - 0.5 });
        let enc = Omp::new(2);
        let garbage: Vec<f32> = (0..side * side).map(|_| 1e6 * (rng.random::<f32>() - 0.5)).collect();
        let fills: [&dyn Fn(usize) -> f32; 4] = [&|k| truth[k], &|_| 0.0, &|_| f32::NAN, &|k| garbage[k]];
        let outs: Vec<Vec<u32>> = fills
            .iter()
            .map(|fill| {
                let given: Vec<f32> = (0..side * side).map(|k| if observed[k] { truth[k] } else { fill(k) }).collect();
                restore(&enc, &w, &given, observed, side).unwrap().iter().map(|v| v.to_bits()).collect()
            })
            .collect();
        for o in &outs[1..] {
            assert_eq!(o, &outs[0]);
        }
        // the observed pixels come back as given
        for k in (0..side * side).filter(|&k| observed[k]) {
            assert_eq!(outs[0][k], truth[k].clamp(0.0, 1.0).to_bits());
        }
    }

    #[test]
    fn restoration_never_reads_the_missing_pixels() {
        let side = 24;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let random: Vec<bool> = (0..side * side).map(|_| rng.random::<f64>() >= 0.5).collect();
        never_reads_missing(&random, side, 6);
        let text = text_mask(side, side).unwrap().iter().map(|t| !t).collect::<Vec<_>>();
        never_reads_missing(&text, side, 6);
        // a hole wider than two patches: its centre is covered by no partly observed patch
        let hole: Vec<bool> =
            (0..side * side).map(|k| !((6..18).contains(&(k % side)) && (6..18).contains(&(k / side)))).collect();
        never_reads_missing(&hole, side, 6);
    }
}
