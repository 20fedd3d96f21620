//! F2 "dictionary of natural images": 256 atoms learned online on whitened 12×12 patches.

use super::common::{batch_progress, columns_f32, energy_concentration, err, natural_images, whitened_patches};
use super::plot::{Chart, Kind, Series, tile_sheet};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_linalg::DMatrix;
use latent_sparse_coding::{Encoder, Lars, OnlineLearner, OnlineParams, ParamGuard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

pub const FIGURE: Figure = Figure {
    id: "F2",
    title: "Sparse coding of natural images",
    claim: "Sparse coding of natural image patches learns localised, oriented, band-pass (Gabor-like) atoms \
            (Olshausen & Field 1996); sources correspond to spatially well-defined visual patterns.",
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let (p, atoms) = (12, 256);
    let count = if ctx.quick { 8000 } else { 60000 };
    let epochs = if ctx.quick { 1 } else { 3 };
    let lambda = 0.8;
    let imgs: Vec<_> = natural_images()?.into_iter().map(|(_, i)| i).collect();
    let spin = ctx.spinner("F2 patches");
    let x = whitened_patches(&imgs, p, count, ctx.seed)?;
    spin.finish_and_clear();
    let params = OnlineParams::new(atoms, lambda).epochs(epochs).seed(ctx.seed);
    let mut learner = OnlineLearner::from(params.check().map_err(err)?);
    let bar = ctx.progress((epochs * count.div_ceil(256)) as u64, "F2 online learning");
    let fit = learner.fit(&x, Some(batch_progress(&bar))).map_err(err)?;
    bar.finish_and_clear();
    // held-out evaluation on fresh patches
    let held = whitened_patches(&imgs, p, 2000, ctx.seed + 99)?;
    let codes = Lars::new(lambda).encode_batch(&fit.dictionary, &held, None).map_err(err)?;
    // order atoms by usage for display
    let mut usage: Vec<(usize, f64)> =
        (0..atoms).map(|j| (j, codes.codes.row(j).iter().map(|v| v.abs()).sum::<f64>())).collect();
    usage.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ordered = DMatrix::from_fn(p * p, atoms, |i, k| fit.dictionary[(i, usage[k].0)]);
    ctx.canvas(
        "atoms.png",
        "The 256 learned atoms (12×12), most used first; each scaled to its own range, gray = 0.",
        &tile_sheet(&columns_f32(&ordered), p, p, 16, 4, true),
    )?;
    // localisation: energy concentration vs random atoms (i.i.d. uniform pixels)
    let conc: Vec<f64> = (0..atoms).map(|j| energy_concentration(fit.dictionary.column(j).as_slice())).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let random_atoms: Vec<Vec<f64>> =
        (0..atoms).map(|_| (0..p * p).map(|_| rng.random::<f64>() - 0.5).collect()).collect();
    let rand_conc: Vec<f64> = random_atoms.iter().map(|v| energy_concentration(v)).collect();
    // orientation and frequency: the same random atoms rescaled to each learned atom's norm
    let learned_spec: Vec<Spectral> = (0..atoms).map(|j| spectral(fit.dictionary.column(j).as_slice(), p)).collect();
    let random_spec: Vec<Spectral> = random_atoms
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let target = fit.dictionary.column(j).iter().map(|a| a * a).sum::<f64>().sqrt();
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
            spectral(&v.iter().map(|a| a * target / norm).collect::<Vec<_>>(), p)
        })
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let hist = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut h = [0.0; 20];
        for &c in v {
            h[((c * 20.0) as usize).min(19)] += 1.0;
        }
        h.iter().enumerate().map(|(i, &n)| (i as f64 / 20.0 + 0.025, n)).collect()
    };
    let chart = Chart {
        title: "Spatial localisation of atoms".into(),
        x_label: "energy fraction in the 20 % strongest pixels".into(),
        y_label: "atoms".into(),
        series: vec![
            Series::new("learned atoms", hist(&conc), Kind::Bars(0.045), 0),
            Series::new("random atoms", hist(&rand_conc), Kind::Bars(0.045), 1),
        ],
        ..Chart::default()
    };
    ctx.chart(
        "localisation",
        "Learned atoms concentrate their energy in few pixels (localised); random atoms do not.",
        &chart,
        (620, 400),
    )?;
    let hist_obj: Vec<(f64, f64)> = fit.history.iter().enumerate().map(|(i, &o)| (i as f64, o)).collect();
    ctx.chart(
        "objective",
        "Mini-batch objective ½‖x − Ws‖² + λ‖s‖₁ during online learning.",
        &Chart {
            title: "Online learning".into(),
            x_label: "mini-batch".into(),
            y_label: "objective per patch".into(),
            series: vec![Series::new("", hist_obj, Kind::Line, 0)],
            ..Chart::default()
        },
        (620, 380),
    )?;
    ctx.metric("heldout_objective", codes.mean_objective());
    ctx.metric("heldout_mean_nnz", codes.mean_nnz());
    ctx.metric("heldout_nnz_fraction", codes.mean_nnz() / atoms as f64);
    ctx.metric("mean_energy_concentration_learned", mean(&conc));
    ctx.metric("mean_energy_concentration_random", mean(&rand_conc));
    ctx.metric("resampled_atoms", fit.resampled as u64);
    let avg = |v: &[Spectral], f: fn(&Spectral) -> f64| v.iter().map(f).sum::<f64>() / v.len().max(1) as f64;
    ctx.metric("orientation_selectivity_learned", avg(&learned_spec, |s| s.orientation_selectivity));
    ctx.metric("orientation_selectivity_random", avg(&random_spec, |s| s.orientation_selectivity));
    ctx.metric("octave_band_power_fraction_learned", avg(&learned_spec, |s| s.octave_band_fraction));
    ctx.metric("octave_band_power_fraction_random", avg(&random_spec, |s| s.octave_band_fraction));
    ctx.metric("lowest_octave_power_fraction_learned", avg(&learned_spec, |s| s.low_fraction));
    ctx.metric("lowest_octave_power_fraction_random", avg(&random_spec, |s| s.low_fraction));
    ctx.metric("peak_frequency_cycles_per_pixel_learned", avg(&learned_spec, |s| s.peak_frequency));
    ctx.metric("peak_frequency_cycles_per_pixel_random", avg(&random_spec, |s| s.peak_frequency));
    ctx.check(
        "learned_atoms_more_localised_than_random",
        "mean_energy_concentration_learned",
        Cmp::Gt,
        Rhs::Metric("mean_energy_concentration_random"),
    )?;
    ctx.check(
        "learned_atoms_more_oriented_than_random",
        "orientation_selectivity_learned",
        Cmp::Gt,
        Rhs::Metric("orientation_selectivity_random"),
    )?;
    ctx.check(
        "learned_atoms_more_band_pass_than_random",
        "octave_band_power_fraction_learned",
        Cmp::Gt,
        Rhs::Metric("octave_band_power_fraction_random"),
    )?;
    let scatter = |v: &[Spectral]| -> Vec<(f64, f64)> {
        v.iter().map(|s| (s.orientation_selectivity, s.octave_band_fraction)).collect()
    };
    ctx.chart(
        "orientation_bandpass",
        "Each atom's orientation selectivity |Σ P(f) e^{2iθ(f)}| / Σ P(f) against the fraction of its power in the \
         octave around its peak frequency (P = power spectrum of the atom zero-padded to 32×32, DC excluded): learned \
         atoms are oriented and band-pass, random atoms of the same norm are neither.",
        &Chart {
            title: "Orientation and band-pass of the atoms".into(),
            x_label: "orientation selectivity (0 isotropic, 1 one orientation)".into(),
            y_label: "power fraction in the octave around the peak".into(),
            series: vec![
                Series::new("learned atoms", scatter(&learned_spec), Kind::Points, 0),
                Series::new("random atoms", scatter(&random_spec), Kind::Points, 1),
            ],
            x_range: Some((0.0, 1.0)),
            y_range: Some((0.0, 1.0)),
            ..Chart::default()
        },
        (620, 480),
    )?;
    ctx.config(
        "spectral_measures",
        "power spectrum P of each atom zero-padded to 32×32, DC excluded; orientation selectivity = |Σ P e^{2iθ}| / Σ P \
         (θ the frequency's angle); octave band fraction = share of P with radial frequency within a factor √2 of the \
         peak's; lowest octave = share of P below 1/16 cycle/pixel; random atoms: i.i.d. uniform pixels rescaled to \
         each learned atom's norm",
    );
    ctx.config("patch", format!("{p}x{p}, 1/f-whitened (f0 = 0.4 cycles/pixel), mean removed, unit variance"));
    ctx.config("atoms", atoms as u64);
    ctx.config("lambda", lambda);
    ctx.config("patches", count as u64);
    ctx.config("epochs", epochs as u64);
    ctx.raw("history", &json!(fit.history))?;
    fit.save(ctx.dir.join("dictionary.bin")).map_err(err)?;
    Ok(())
}

/// Frequency-domain shape of an atom.
struct Spectral {
    /// `|Σ P(f) e^{2iθ(f)}| / Σ P(f)` over non-DC frequencies: 1 = all power along one orientation.
    orientation_selectivity: f64,
    /// Share of the power within a factor √2 of the peak's radial frequency.
    octave_band_fraction: f64,
    /// Share of the power below 1/16 cycle per pixel (a low-pass atom has most of it there).
    low_fraction: f64,
    /// Radial frequency of the strongest non-DC component (cycles per pixel).
    peak_frequency: f64,
}

/// Size of the zero-padded DFT of [`spectral`].
const PAD: usize = 32;

/// The power spectrum of a `p × p` atom (row-major) zero-padded to [`PAD`]², by a separable DFT,
/// summarised as [`Spectral`].
fn spectral(atom: &[f64], p: usize) -> Spectral {
    use std::f64::consts::TAU;
    let n = PAD;
    let (cos, sin): (Vec<f64>, Vec<f64>) =
        (0..n).map(|k| ((TAU * k as f64 / n as f64).cos(), (TAU * k as f64 / n as f64).sin())).unzip();
    // rows: R[y][kx] = Σ_x a[y][x] e^{-2πi kx x / n}
    let mut rows = vec![(0.0f64, 0.0f64); p * n];
    for y in 0..p {
        for kx in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for x in 0..p {
                let t = (kx * x) % n;
                re += atom[y * p + x] * cos[t];
                im -= atom[y * p + x] * sin[t];
            }
            rows[y * n + kx] = (re, im);
        }
    }
    let freq = |k: usize| if k < n / 2 { k as f64 / n as f64 } else { (k as f64 - n as f64) / n as f64 };
    let mut bins = Vec::with_capacity(n * n);
    for ky in 0..n {
        for kx in 0..n {
            if kx == 0 && ky == 0 {
                continue;
            }
            let (mut re, mut im) = (0.0, 0.0);
            for y in 0..p {
                let t = (ky * y) % n;
                let (a, b) = rows[y * n + kx];
                // (a + ib)(cos − i sin)
                re += a * cos[t] + b * sin[t];
                im += b * cos[t] - a * sin[t];
            }
            let (fx, fy) = (freq(kx), freq(ky));
            bins.push(((fx * fx + fy * fy).sqrt(), fy.atan2(fx), re * re + im * im));
        }
    }
    let total: f64 = bins.iter().map(|b| b.2).sum::<f64>().max(1e-300);
    let (c, s) = bins.iter().fold((0.0, 0.0), |(c, s), b| (c + b.2 * (2.0 * b.1).cos(), s + b.2 * (2.0 * b.1).sin()));
    let peak = bins.iter().max_by(|a, b| a.2.total_cmp(&b.2)).map_or(0.0, |b| b.0);
    let band: f64 = bins
        .iter()
        .filter(|b| b.0 >= peak / std::f64::consts::SQRT_2 && b.0 <= peak * std::f64::consts::SQRT_2)
        .map(|b| b.2)
        .sum();
    let low: f64 = bins.iter().filter(|b| b.0 < 1.0 / 16.0).map(|b| b.2).sum();
    Spectral {
        orientation_selectivity: (c * c + s * s).sqrt() / total,
        octave_band_fraction: band / total,
        low_fraction: low / total,
        peak_frequency: peak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grating_is_oriented_and_band_pass_noise_is_not() {
        let p = 12;
        // a Gabor-like grating along x at 0.25 cycle/pixel under a Gaussian window
        let g: Vec<f64> = (0..p * p)
            .map(|k| {
                let (x, y) = ((k % p) as f64 - 5.5, (k / p) as f64 - 5.5);
                (-(x * x + y * y) / 18.0).exp() * (std::f64::consts::TAU * 0.25 * x).cos()
            })
            .collect();
        let s = spectral(&g, p);
        assert!(s.orientation_selectivity > 0.8, "{}", s.orientation_selectivity);
        assert!(s.octave_band_fraction > 0.8, "{}", s.octave_band_fraction);
        assert!((s.peak_frequency - 0.25).abs() < 0.04, "{}", s.peak_frequency);
        // white noise: no preferred orientation, power spread over all frequencies
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut osi, mut band) = (0.0, 0.0);
        for _ in 0..50 {
            let v: Vec<f64> = (0..p * p).map(|_| rng.random::<f64>() - 0.5).collect();
            let s = spectral(&v, p);
            osi += s.orientation_selectivity / 50.0;
            band += s.octave_band_fraction / 50.0;
        }
        assert!(osi < 0.3, "{osi}");
        assert!(band < 0.6, "{band}");
    }
}
