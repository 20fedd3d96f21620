//! Scratch experiment (to be replaced).
use latent_anomaly::*;
use latent_autoencoder::models::{ConvAeParams, ConvStage};
use latent_autoencoder::train::TrainParams;
use latent_autoencoder::{Activation, Reconstructor};
use latent_datasets::anomaly::{AnomalyConfig, generate_anomaly_set, load_texture};
use latent_datasets::image::stack_images;
use std::time::Instant;

fn report(name: &str, e: &EvalReport, secs: f64) {
    println!(
        "  {name:10} img {:.3} pix {:.3} aupro {:.3} f1px {:.3} ({secs:.1}s)",
        e.image_auroc, e.pixel_auroc, e.aupro, e.pixel_f1.f1
    );
    for d in &e.per_defect {
        println!("      {:14} img {:.3} pix {:.3} pro {:.3}", d.defect, d.image_auroc, d.pixel_auroc, d.aupro);
    }
}

fn two_sided(maps: &[f32], normal: &[f32]) -> Vec<f32> {
    let mut v: Vec<f64> = normal.iter().map(|&x| x as f64).collect();
    v.sort_by(f64::total_cmp);
    let eps = v[v.len() / 100].max(1e-12);
    let mut l: Vec<f64> = v.iter().map(|x| (x + eps).ln()).collect();
    l.sort_by(f64::total_cmp);
    let med = l[l.len() / 2];
    let mut dev: Vec<f64> = l.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let s = 1.4826 * dev[dev.len() / 2];
    maps.iter().map(|&x| (((x as f64 + eps).ln() - med).abs() / s) as f32).collect()
}

fn eval_norm<R: Reconstructor<f32>>(name: &str, det: &Detector<f32, R>, train: &latent_linalg::Tensor4<f32>, test: &TestSet<f32>) -> Result<()> {
    let nm = det.analyze(train)?.maps;
    let e = evaluate(det, test, &EvalParams::new())?;
    let m2 = two_sided(e.maps.as_slice(), nm.as_slice());
    let [n, _, h, w] = e.maps.shape();
    let pa = metrics::pixel_auroc(&m2, &test.masks, [n, h, w])?;
    let ap = metrics::aupro(&m2, &test.masks, [n, h, w], 0.3, Connectivity::Eight)?;
    let sc: Vec<f64> = m2.chunks(h * w).map(|c| c.iter().fold(0.0f64, |a, &b| a.max(b as f64))).collect();
    let ia = metrics::auroc(&sc, &test.anomalous())?;
    println!("  {name:10} TWO-SIDED img {ia:.3} pix {pa:.3} aupro {ap:.3}");
    let plane = h * w;
    for kind in ["scratch", "crack", "hole", "stain", "missing_patch", "contamination"] {
        let idx: Vec<usize> = (0..n).filter(|&i| test.defects[i] == "good" || test.defects[i] == kind).collect();
        let m: Vec<f32> = idx.iter().flat_map(|&i| m2[i * plane..(i + 1) * plane].iter().copied()).collect();
        let g: Vec<bool> = idx.iter().flat_map(|&i| test.masks[i * plane..(i + 1) * plane].iter().copied()).collect();
        println!("      {kind:14} pix {:.3}", metrics::pixel_auroc(&m, &g, [idx.len(), h, w])?);
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).cloned().unwrap_or("all".into());
    let crop: usize = std::env::var("CROP").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    for cat in ["grass", "gravel", "brick"] {
        println!("== {cat}");
        let cfg = AnomalyConfig { crop, n_train: 60, n_test_good: 20, n_test_per_defect: 5, ..Default::default() };
        let set = generate_anomaly_set(&load_texture(cat)?, cat, &cfg, 1)?;
        let train: latent_linalg::Tensor4<f32> = stack_images(&set.train)?;
        let imgs: Vec<_> = set.test.iter().map(|s| s.image.clone()).collect();
        let test = TestSet {
            images: stack_images(&imgs)?,
            masks: set.test.iter().flat_map(|s| s.mask.iter().copied()).collect(),
            defects: set.test.iter().map(|s| s.defect.map_or("good".to_string(), |d| d.name().to_string())).collect(),
        };
        let ev = EvalParams::new();
        local_var_test(&test, &train)?;
        if which == "all" || which == "sc" {
            for (k, atoms, p, rm) in [(3, 128, 8, false)] {
                let t = Instant::now();
                let dict = PatchDictionaryParams::new()
                    .patch(p)
                    .atoms(atoms)
                    .coder(PatchCoder::Omp { k })
                    .remove_mean(rm)
                    .train_patches(20000)
                    .seed(1)
                    .check()?
                    .fit(&train)?;
                for sm in [None, Some(2.0)] {
                    let mut mp = MapParams::new();
                    if let Some(s) = sm {
                        mp = mp.smoothing(s);
                    }
                    let det = Detector::new(dict.clone(), DetectorParams::new().map(mp).check()?);
                    let e = evaluate(&det, &test, &ev)?;
                    report(&format!("sc k{k} a{atoms} rm{rm} s{sm:?}"), &e.report, t.elapsed().as_secs_f64());
                    if sm.is_some() {
                        eval_norm("sc", &det, &train, &test)?;
                    }
                }
            }
        }
        if which == "all" || which == "ae" {
          for code in [16usize] {
            println!(" code {code}");
            let t = Instant::now();
            let side = 32;
            let crops = random_crops(&train, side, side, 4000, 3)?;
            let params = ConvAeParams::new([1, side, side])
                .encoder_stage(ConvStage::new(16, 4, 2, 1))
                .encoder_stage(ConvStage::new(32, 4, 2, 1))
                .encoder_stage(ConvStage::new(32, 4, 2, 1))
                .encoder_stage(ConvStage::new(code, 3, 1, 1))
                .code_activation(Activation::Identity)
                .hidden_activation(Activation::LeakyRelu(0.2))
                .epochs(10)
                .batch_size(32)
                .lr(2e-3)
                .seed(1)
                .progress(false)
                .check()?;
            let fitted = params.fit(&crops)?;
            println!("  l2 AE trained {:.1}s loss {:?}", t.elapsed().as_secs_f64(), fitted.report.train_loss.last());
            for (name, mp) in [
                ("ae-l2 s2", MapParams::new().smoothing(2.0)),
                ("ae-l2 s4", MapParams::new().smoothing(4.0)),
            ] {
                let det = Detector::new(&fitted.model, DetectorParams::new().map(mp).tiles(side, side, 16).check()?);
                let e = evaluate(&det, &test, &ev)?;
                report(name, &e.report, t.elapsed().as_secs_f64());
                eval_norm(name, &det, &train, &test)?;
            }
            let t = Instant::now();
            let ae = params.build_for::<f32>([1, side, side])?;
            let mut sae = SsimAutoencoder::new(ae, SsimParams::new())?;
            let rep = sae.fit(&crops, TrainParams::new().epochs(10).batch_size(32).lr(2e-3).seed(1).progress(false).check()?)?;
            println!("  ssim AE trained {:.1}s loss {:?}", t.elapsed().as_secs_f64(), rep.train_loss.last());
            for (name, mp) in [("ssim-ae s2", MapParams::new().ssim(SsimParams::new()).smoothing(2.0)), ("ssim-ae l2s2", MapParams::new().smoothing(2.0))] {
                let det = Detector::new(&sae, DetectorParams::new().map(mp).tiles(side, side, 16).check()?);
                let e = evaluate(&det, &test, &ev)?;
                report(name, &e.report, t.elapsed().as_secs_f64());
                eval_norm(name, &det, &train, &test)?;
            }
            let _ = sae.reconstruct(&crops);
          }
        }
    }
    Ok(())
}

#[allow(dead_code)]
fn local_var_test(test: &TestSet<f32>, train: &latent_linalg::Tensor4<f32>) -> Result<()> {
    let lv = |x: &latent_linalg::Tensor4<f32>| -> Result<Vec<f32>> {
        let m = latent_anomaly::filter::gaussian_blur(x, 2.0)?;
        let mut x2 = x.clone();
        x2.map_inplace(|v| v * v);
        let m2 = latent_anomaly::filter::gaussian_blur(&x2, 2.0)?;
        Ok(m2.as_slice().iter().zip(m.as_slice()).map(|(a, b)| (a - b * b).max(0.0)).collect())
    };
    let t = lv(&test.images)?;
    let n = lv(train)?;
    let m2 = two_sided(&t, &n);
    let [nn, _, h, w] = test.images.shape();
    println!("  LOCALVAR two-sided pix {:.3}", metrics::pixel_auroc(&m2, &test.masks, [nn, h, w])?);
    Ok(())
}
