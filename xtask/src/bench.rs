//! `cargo xtask bench`: the workloads of `../shared/bench/WORKLOADS.md`, one JSON line per figure.

use latent_linalg::conv::{Conv2dSpec, conv2d, conv2d_backward_input, conv2d_backward_weight};
use latent_linalg::{DMatrix, Real, Tensor4, Trans, gemm};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;

struct Opts {
    json: bool,
    data: PathBuf,
    save: Option<PathBuf>,
}

type Workload = (&'static str, &'static str, fn(&Opts) -> Result<Vec<Value>, String>);

const WORKLOADS: &[Workload] = &[
    ("gemm_1024", "C = A·B, 1024³, f32 and f64, best of 8", gemm_1024),
    ("gemm_64x256x10000", "dictionary × codes: (64×256)·(256×10000), f32 and f64, best of 8", gemm_dict_codes),
    ("gemm_784x256x128", "MLP layer: (784×256)·(256×128), f32, best of 20", gemm_mlp),
    ("conv2d_fb", "conv 16→32, 3×3, s1, p1, bias on (64,16,28,28): forward + backward, median of 20", conv2d_fb),
    ("lasso_encode", "lasso codes of lasso_X (10000×64) on lasso_D (64×256), λ = 0.1", |o| {
        crate::bench_sc::lasso_encode(&o.data, o.save.as_deref())
    }),
    ("omp_encode", "OMP with 10 nonzeros of lasso_X on lasso_D", |o| {
        crate::bench_sc::omp_encode(&o.data, o.save.as_deref())
    }),
    ("dl_online", "online dictionary learning: 256 atoms, λ = 1, batch 256, one pass over 100000 8×8 patches", |o| {
        crate::bench_sc::dl_online(&o.data, o.save.as_deref())
    }),
    ("dl_batch", "batch dictionary learning: 64 atoms, λ = 1, 20 iterations on 5000 patches", |o| {
        crate::bench_sc::dl_batch(&o.data, o.save.as_deref())
    }),
    (
        "csc_encode",
        "convolutional sparse coding of csc_image (256×256) with 32 8×8 filters, λ = 0.05, 50 ADMM iterations",
        |o| crate::bench_csc::csc_encode(&o.data),
    ),
    ("csc_dl", "convolutional dictionary learning: 4 crops 128×128, 16 filters, λ = 0.05, 20 iterations", |o| {
        crate::bench_csc::csc_dl(&o.data)
    }),
    ("ae_mlp", "MLP autoencoder 784-256-64-256-784 on MNIST 10k, Adam 1e-3, batch 128, 3 epochs", |_| {
        crate::bench_ae::ae_mlp(&latent_datasets::data_dir().join("mnist-10k-10k")).map(|v| vec![v])
    }),
    ("conv_ae_step", "conv autoencoder training step, batch (64,1,28,28), Adam", |_| {
        crate::bench_ae::conv_ae_step().map(|v| vec![v])
    }),
    ("unet_step", "U-Net depth 3, base 16, (8,1,64,64), 2 classes, Adam step", |_| {
        crate::bench_unet::unet_step().map(|v| vec![v])
    }),
];

pub fn run(args: &[String]) -> Result<(), String> {
    let mut names = Vec::new();
    let mut opts = Opts { json: false, data: default_data_dir(), save: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => opts.json = true,
            "--data" => opts.data = it.next().ok_or("--data needs a directory")?.into(),
            "--save" => opts.save = Some(it.next().ok_or("--save needs a directory")?.into()),
            "--list" => {
                for (n, d, _) in WORKLOADS {
                    println!("{n:22} {d}");
                }
                return Ok(());
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => names.push(s.to_string()),
        }
    }
    let chosen: Vec<&Workload> = if names.is_empty() {
        WORKLOADS.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                WORKLOADS.iter().find(|w| w.0 == n).ok_or_else(|| {
                    format!(
                        "unknown workload `{n}`; known: {}",
                        WORKLOADS.iter().map(|w| w.0).collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    eprintln!("rayon threads: {}", rayon_threads());
    for (name, _, f) in chosen {
        for mut v in f(&opts)? {
            let obj = v.as_object_mut().ok_or("workload returned a non-object")?;
            let mut line = serde_json::Map::new();
            line.insert("workload".into(), json!(name));
            line.insert("impl".into(), json!("latent"));
            line.append(obj);
            line.insert("threads".into(), json!(rayon_threads()));
            if opts.json {
                println!("{}", Value::Object(line));
            } else {
                let rest: Vec<String> = line
                    .iter()
                    .filter(|(k, _)| *k != "workload" && *k != "impl")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!("{name:22} {}", rest.join("  "));
            }
        }
    }
    Ok(())
}

fn rayon_threads() -> usize {
    latent_linalg_threads()
}

fn latent_linalg_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench/data"))
}

fn random_matrix<T: Real>(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> DMatrix<T> {
    DMatrix::from_fn(rows, cols, |_, _| T::lit(rng.random::<f64>() - 0.5))
}

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn median_of(reps: usize, warm: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        f();
    }
    let mut ts: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    if reps % 2 == 1 { ts[reps / 2] } else { 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]) }
}

fn gemm_gflops<T: Real>(m: usize, k: usize, n: usize, reps: usize) -> Result<f64, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let a = random_matrix::<T>(m, k, &mut rng);
    let b = random_matrix::<T>(k, n, &mut rng);
    let mut c = DMatrix::<T>::zeros(m, n);
    let mut err = None;
    let s = best_of(reps, || {
        if let Err(e) = gemm(T::one(), &a, Trans::N, &b, Trans::N, T::zero(), &mut c) {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e.to_string());
    }
    Ok(2.0 * (m * n * k) as f64 / s / 1e9)
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

fn gemm_1024(_: &Opts) -> Result<Vec<Value>, String> {
    Ok(vec![
        json!({"dtype": "float32", "gflops": round(gemm_gflops::<f32>(1024, 1024, 1024, 8)?, 2), "m": 1024, "k": 1024, "n": 1024}),
        json!({"dtype": "float64", "gflops": round(gemm_gflops::<f64>(1024, 1024, 1024, 8)?, 2), "m": 1024, "k": 1024, "n": 1024}),
    ])
}

fn gemm_dict_codes(_: &Opts) -> Result<Vec<Value>, String> {
    Ok(vec![
        json!({"dtype": "float32", "gflops": round(gemm_gflops::<f32>(64, 256, 10000, 8)?, 2), "m": 64, "k": 256, "n": 10000}),
        json!({"dtype": "float64", "gflops": round(gemm_gflops::<f64>(64, 256, 10000, 8)?, 2), "m": 64, "k": 256, "n": 10000}),
    ])
}

fn gemm_mlp(_: &Opts) -> Result<Vec<Value>, String> {
    Ok(vec![
        json!({"dtype": "float32", "gflops": round(gemm_gflops::<f32>(784, 256, 128, 20)?, 2), "m": 784, "k": 256, "n": 128}),
    ])
}

fn conv2d_fb(_: &Opts) -> Result<Vec<Value>, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = Tensor4::<f32>::from_fn([64, 16, 28, 28], |_| rng.random::<f32>()).map_err(|e| e.to_string())?;
    let w = Tensor4::<f32>::from_fn([32, 16, 3, 3], |_| rng.random::<f32>() - 0.5).map_err(|e| e.to_string())?;
    let b = vec![0.1f32; 32];
    let g = Tensor4::<f32>::from_fn([64, 32, 28, 28], |_| rng.random::<f32>()).map_err(|e| e.to_string())?;
    let spec = Conv2dSpec::new(1, 1);
    let mut err = None;
    let s = median_of(20, 3, || {
        let r = conv2d(&x, &w, Some(&b), &spec).and_then(|y| {
            std::hint::black_box(&y);
            let dx = conv2d_backward_input(&g, &w, (28, 28), &spec)?;
            let dw = conv2d_backward_weight(&x, &g, (3, 3), &spec)?;
            std::hint::black_box((dx, dw));
            Ok(())
        });
        if let Err(e) = r {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e.to_string());
    }
    let flops = 3.0 * 2.0 * (64 * 32 * 28 * 28 * 16 * 9) as f64;
    Ok(vec![json!({"ms": round(s * 1e3, 3), "batch": 64, "gflops": round(flops / s / 1e9, 2)})])
}
