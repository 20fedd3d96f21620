//! `cargo xtask bench`: the workloads of `../shared/bench/WORKLOADS.md`, one JSON line per figure.

use latent_linalg::conv::{Conv2dSpec, conv2d, conv2d_backward_input, conv2d_backward_weight};
use latent_linalg::simd::Isa;
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
    /// Run each workload in this many fresh processes and print median and spread.
    repeat: Option<usize>,
    /// The instruction-set cap of the run (`--isa`), also handed to the children.
    isa: Option<Isa>,
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

pub const USAGE: &str = "\
usage: cargo xtask bench [WORKLOAD..] [--json] [--data DIR] [--save DIR] [--repeat N] [--isa ISA] [--list]
       cargo xtask bench peak [--json] [--isa ISA]

Runs the workloads of ../shared/bench/WORKLOADS.md (default: all) and prints one line per figure
(one JSON object per line with --json). Every line carries, besides the workload's own fields:
  flop           the floating-point operations of the timed unit, counted analytically (2 per
                 multiply-add; see each workload's doc comment in xtask/src/bench*.rs for what is
                 counted and what is not)
  gflops         achieved GFLOP/s: flop / the timed unit's seconds (gemm lines: best of N)
  peak_gflops    the measured FMA peak of this machine for the line's precision, the instruction
                 set in force and the bench's threads, by thread CPU time so that other load does
                 not lower it (`bench peak`'s gflops_cpu_time; measured once per process, or
                 handed down by the parent with --repeat)
  peak_fraction  gflops / peak_gflops
  max_rss_mb     the process's peak resident memory (getrusage ru_maxrss) after the workload;
                 with --repeat each child runs one workload, so it is that workload's
  isa            the instruction set latent's kernels ran with (avx512, avx2, scalar)
  cpu_util       the process's CPU time during the workload (set-up included) per wall second
                 and per thread: below 1, threads waited (for cores taken by other processes,
                 or idle between parallel regions); a run with low cpu_util was disturbed
  steal_pct      the share of all CPU ticks stolen by the hypervisor during the workload, in %
                 (system-wide, from /proc/stat; Linux)
  csw_voluntary, csw_involuntary
                 context switches of the process's threads during the workload: voluntary =
                 a thread went to sleep (rayon workers parking between parallel regions, I/O),
                 involuntary = preempted by other load

options:
  --repeat N     run each workload in N fresh processes (this binary re-invoked with one workload
                 and --json), then print per line the median of every timing figure and its
                 spread: min-max and +-% (largest distance from the median, in % of it); with
                 --json one summary object per line: the median under the figure's own name, plus
                 <field>_min, <field>_max, <field>_spread_pct, <field>_runs and \"repeat\": N
  --isa ISA      cap the instruction set of every kernel at avx512, avx2 or scalar (as the
                 environment variable LATENT_ISA does; --isa wins), e.g. --isa avx2 to run the
                 AVX2 paths on an AVX-512 machine; children of --repeat inherit it
  --data DIR     the workloads' inputs (default ../shared/bench/data)
  --save DIR     write what the workloads produced (codes, dictionaries) as .npy
  --list         list the workloads

peak: the FMA peak in GFLOP/s, f32 and f64, on 1 thread and on all the bench's threads, for every
instruction set this CPU has up to the cap (register-resident kernel with 16 (AVX-512) or 12
(AVX2) independent accumulators; see xtask/src/bench_peak.rs).
";

pub fn run(args: &[String]) -> Result<(), String> {
    let mut names = Vec::new();
    let mut opts = Opts { json: false, data: default_data_dir(), save: None, repeat: None, isa: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => opts.json = true,
            "--data" => opts.data = it.next().ok_or("--data needs a directory")?.into(),
            "--save" => opts.save = Some(it.next().ok_or("--save needs a directory")?.into()),
            "--repeat" => {
                let n: usize = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&n| n >= 1)
                    .ok_or("--repeat needs a number of processes >= 1")?;
                opts.repeat = Some(n);
            }
            "--isa" => opts.isa = Some(it.next().ok_or("--isa needs avx512, avx2 or scalar")?.parse()?),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            "--list" => {
                for (n, d, _) in WORKLOADS {
                    println!("{n:22} {d}");
                }
                return Ok(());
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n\n{USAGE}")),
            s => names.push(s.to_string()),
        }
    }
    if opts.isa.is_none() {
        // an unknown LATENT_ISA is an error here rather than silently ignored
        latent_linalg::simd::env_cap()?;
    }
    if let Some(isa) = opts.isa {
        if !isa.on_cpu() {
            return Err(format!("--isa {isa}: this CPU has at most {}", latent_linalg::simd::detected()));
        }
        latent_linalg::simd::set_max_isa(Some(isa));
    }
    if names.first().map(String::as_str) == Some("peak") {
        if names.len() > 1 {
            return Err("bench peak takes no workloads".into());
        }
        eprintln!("rayon threads: {}, instruction set: {}", rayon_threads(), latent_linalg::simd::max_isa());
        return crate::bench_peak::run(opts.json, rayon_threads());
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
    eprintln!("rayon threads: {}, instruction set: {}", rayon_threads(), latent_linalg::simd::max_isa());
    if let Some(n) = opts.repeat {
        return repeat(&chosen, n, &opts);
    }
    for (name, _, f) in chosen {
        let before = Usage::now();
        let lines = f(&opts)?;
        let usage = Usage::now().since(&before);
        let rss = max_rss_mb();
        for mut v in lines {
            let obj = v.as_object_mut().ok_or("workload returned a non-object")?;
            let mut line = serde_json::Map::new();
            line.insert("workload".into(), json!(name));
            line.insert("impl".into(), json!("latent"));
            line.append(obj);
            line.insert("threads".into(), json!(rayon_threads()));
            annotate(&mut line, rss);
            line.insert("cpu_util".into(), json!(round(usage.0 / rayon_threads() as f64, 3)));
            if let Some(steal) = usage.1 {
                line.insert("steal_pct".into(), json!(round(steal, 2)));
            }
            line.insert("csw_voluntary".into(), json!(usage.2.0));
            line.insert("csw_involuntary".into(), json!(usage.2.1));
            print_line(name, &line, opts.json);
        }
    }
    Ok(())
}

fn print_line(name: &str, line: &serde_json::Map<String, Value>, json: bool) {
    if json {
        println!("{}", Value::Object(line.clone()));
    } else {
        let rest: Vec<String> =
            line.iter().filter(|(k, _)| *k != "workload" && *k != "impl").map(|(k, v)| format!("{k}={v}")).collect();
        println!("{name:22} {}", rest.join("  "));
    }
}

/// The seconds of a line's timed unit, from the figure it reports.
fn timed_seconds(line: &serde_json::Map<String, Value>) -> Option<f64> {
    let get = |k: &str| line.get(k).and_then(Value::as_f64);
    get("seconds").or_else(|| get("ms").map(|v| v / 1e3)).or_else(|| get("ms_per_step").map(|v| v / 1e3))
}

/// Add `gflops` (from `flop` and the timed seconds, unless the workload measured it), the peak of
/// the line's precision, instruction set and threads, `peak_fraction`, `max_rss_mb` and `isa`.
fn annotate(line: &mut serde_json::Map<String, Value>, rss_mb: f64) {
    let isa = latent_linalg::simd::max_isa();
    let threads = rayon_threads();
    if !line.contains_key("gflops")
        && let (Some(flop), Some(s)) = (line.get("flop").and_then(Value::as_f64), timed_seconds(line))
        && s > 0.0
    {
        line.insert("gflops".into(), json!(round(flop / s / 1e9, 2)));
    }
    if let Some(g) = line.get("gflops").and_then(Value::as_f64) {
        let f64_ = line.get("dtype").and_then(Value::as_str) == Some("float64");
        let peak = crate::bench_peak::cached(isa, f64_, threads);
        line.insert("peak_gflops".into(), json!(round(peak, 1)));
        line.insert("peak_fraction".into(), json!(round(g / peak, 4)));
    }
    line.insert("max_rss_mb".into(), json!(round(rss_mb, 1)));
    line.insert("isa".into(), json!(isa.name()));
}

/// The process's peak resident set size in MiB (`getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux).
fn max_rss_mb() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: `rusage` is plain old data (all-zero is a valid value) and `getrusage` writes
        // only into the struct we pass, which lives for the call.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; RUSAGE_SELF is a valid `who`.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
            return ru.ru_maxrss as f64 / 1024.0;
        }
    }
    f64::NAN
}

/// Process CPU time (user + system, all threads), wall time, and the system-wide CPU tick counts
/// of `/proc/stat` (total, steal) at one instant.
struct Usage {
    cpu: f64,
    /// Voluntary and involuntary context switches of the process (all threads).
    csw: (i64, i64),
    wall: Instant,
    ticks: Option<(u64, u64)>,
}

impl Usage {
    fn now() -> Usage {
        let mut cpu = f64::NAN;
        let mut csw = (0, 0);
        #[cfg(unix)]
        {
            // SAFETY: `rusage` is plain old data (all-zero is valid); `getrusage` writes only
            // into the struct we pass, which lives for the call.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: as above; RUSAGE_SELF is a valid `who`.
            if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
                let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
                cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
                csw = (ru.ru_nvcsw as i64, ru.ru_nivcsw as i64);
            }
        }
        let ticks = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            let v: Vec<u64> = s.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal (guest time is inside user)
            (v.len() >= 8).then(|| (v[..8].iter().sum(), v[7]))
        });
        Usage { cpu, csw, wall: Instant::now(), ticks }
    }

    /// `(cpu_util, steal_pct, (voluntary, involuntary) context switches)` from `before` to
    /// `self`: the process's CPU seconds per wall second (divide by the threads for a
    /// utilisation; below 1 per thread means threads waited — for the cores, or idle between
    /// parallel regions), the share of all CPU ticks the hypervisor stole, in % (system-wide;
    /// Linux), and the context switches of all the process's threads: voluntary ones are
    /// threads going to sleep (a rayon worker parking between parallel regions, I/O),
    /// involuntary ones preemption by other load.
    fn since(&self, before: &Usage) -> (f64, Option<f64>, (i64, i64)) {
        let wall = self.wall.duration_since(before.wall).as_secs_f64();
        let util = if wall > 0.0 { (self.cpu - before.cpu) / wall } else { f64::NAN };
        let steal = match (before.ticks, self.ticks) {
            (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => Some(100.0 * (s1 - s0) as f64 / (t1 - t0) as f64),
            _ => None,
        };
        (util, steal, (self.csw.0 - before.csw.0, self.csw.1 - before.csw.1))
    }
}

/// Fields whose median and spread `--repeat` reports (when a line has them).
const FIGURES: &[&str] = &[
    "seconds",
    "ms",
    "ms_per_step",
    "s_per_iter",
    "samples_per_s",
    "gflops",
    "peak_fraction",
    "max_rss_mb",
    "cpu_util",
    "steal_pct",
    "csw_voluntary",
    "csw_involuntary",
];

/// `--repeat n`: each workload in `n` fresh processes, then per line the median and spread.
fn repeat(chosen: &[&Workload], n: usize, opts: &Opts) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let isa = latent_linalg::simd::max_isa();
    let threads = rayon_threads();
    // measure the peaks once here, hand them to the children
    let peaks = crate::bench_peak::env_value(isa, threads);
    for (name, _, _) in chosen {
        let mut runs: Vec<Vec<serde_json::Map<String, Value>>> = Vec::new();
        for r in 0..n {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["bench", name, "--json", "--isa", isa.name(), "--data"]).arg(&opts.data);
            if let Some(dir) = &opts.save {
                cmd.arg("--save").arg(dir);
            }
            cmd.env(crate::bench_peak::PEAK_ENV, &peaks).env("LATENT_ISA", isa.name());
            let out = cmd.output().map_err(|e| format!("{name}: starting run {}: {e}", r + 1))?;
            if !out.status.success() {
                return Err(format!(
                    "{name}: run {} of {n} failed ({}):\n{}",
                    r + 1,
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let lines = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(|l| match serde_json::from_str::<Value>(l) {
                    Ok(Value::Object(m)) => Ok(m),
                    _ => Err(format!("{name}: run {}: not a JSON object: {l}", r + 1)),
                })
                .collect::<Result<Vec<_>, String>>()?;
            if let Some(first) = runs.first()
                && first.len() != lines.len()
            {
                return Err(format!(
                    "{name}: run {} printed {} lines, run 1 printed {}",
                    r + 1,
                    lines.len(),
                    first.len()
                ));
            }
            eprintln!("{name}: run {}/{n} done", r + 1);
            runs.push(lines);
        }
        for i in 0..runs[0].len() {
            let mut line = runs[0][i].clone();
            for &f in FIGURES {
                let vals: Vec<f64> = runs.iter().filter_map(|r| r[i].get(f).and_then(Value::as_f64)).collect();
                if vals.len() != n {
                    continue;
                }
                let st = Spread::of(&vals);
                line.insert(f.into(), json!(round(st.median, 6)));
                line.insert(format!("{f}_min"), json!(st.min));
                line.insert(format!("{f}_max"), json!(st.max));
                line.insert(format!("{f}_spread_pct"), json!(round(st.pct, 2)));
                line.insert(format!("{f}_runs"), json!(vals));
            }
            line.insert("repeat".into(), json!(n));
            if opts.json {
                println!("{}", Value::Object(line));
            } else {
                let rest: Vec<String> = line
                    .iter()
                    .filter(|(k, _)| {
                        *k != "workload"
                            && *k != "impl"
                            && *k != "repeat"
                            && !FIGURES.iter().any(|f| k.strip_prefix(f).is_some_and(|t| t.starts_with('_')))
                    })
                    .map(|(k, v)| match (FIGURES.contains(&k.as_str()), line.get(&format!("{k}_min"))) {
                        (true, Some(min)) => format!(
                            "{k}={v} [{min}–{} ±{}%]",
                            line[&format!("{k}_max")],
                            line[&format!("{k}_spread_pct")]
                        ),
                        _ => format!("{k}={v}"),
                    })
                    .collect();
                println!("{name:22} runs={n}  {}", rest.join("  "));
            }
        }
    }
    Ok(())
}

/// Median, min, max and the spread in % of the median (the larger distance of min or max from it).
struct Spread {
    median: f64,
    min: f64,
    max: f64,
    pct: f64,
}

impl Spread {
    fn of(v: &[f64]) -> Spread {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) };
        let (min, max) = (s[0], s[n - 1]);
        let pct = if median != 0.0 { 100.0 * (max - median).max(median - min) / median.abs() } else { 0.0 };
        Spread { median, min, max, pct }
    }
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

/// One GEMM line: `flop` = 2·m·n·k (one multiply-add per (i, j, p)), `gflops` from the best of
/// `reps` timed products (after one warm-up). Nothing else is timed.
fn gemm_line<T: Real>(m: usize, k: usize, n: usize, reps: usize) -> Result<Value, String> {
    let dtype = if T::NAME == "f32" { "float32" } else { "float64" };
    let g = gemm_gflops::<T>(m, k, n, reps)?;
    Ok(json!({"dtype": dtype, "gflops": round(g, 2), "m": m, "k": k, "n": n, "flop": 2.0 * (m * n * k) as f64}))
}

/// `gemm_1024`: 2·1024³ flop per product, f32 and f64.
fn gemm_1024(_: &Opts) -> Result<Vec<Value>, String> {
    Ok(vec![gemm_line::<f32>(1024, 1024, 1024, 8)?, gemm_line::<f64>(1024, 1024, 1024, 8)?])
}

/// Dictionary × codes: 2·64·256·10000 flop per product.
fn gemm_dict_codes(_: &Opts) -> Result<Vec<Value>, String> {
    Ok(vec![gemm_line::<f32>(64, 256, 10000, 8)?, gemm_line::<f64>(64, 256, 10000, 8)?])
}

/// MLP layer: 2·784·256·128 flop per product.
fn gemm_mlp(_: &Opts) -> Result<Vec<Value>, String> {
    Ok(vec![gemm_line::<f32>(784, 256, 128, 20)?])
}

/// `conv2d_fb`: `flop` = 3 × 2·N·O·Ho·Wo·C·kh·kw — forward, input gradient and weight gradient
/// each do one multiply-add per (image, output channel, output position, input channel, tap)
/// (64·32·28·28·16·9 each). Not counted: the bias (N·O·Ho·Wo adds) and the padding copies.
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
    Ok(vec![
        json!({"ms": round(s * 1e3, 3), "batch": 64, "gflops": round(flops / s / 1e9, 2), "flop": flops, "dtype": "float32"}),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_min_max_and_largest_distance() {
        let s = Spread::of(&[10.0, 12.0, 9.0]);
        assert_eq!((s.median, s.min, s.max), (10.0, 9.0, 12.0));
        assert!((s.pct - 20.0).abs() < 1e-12);
        let s = Spread::of(&[4.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (3.0, 2.0, 4.0));
        assert!((s.pct - 100.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn timed_seconds_reads_the_line_figure() {
        let line = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(timed_seconds(&line(json!({"seconds": 2.5}))), Some(2.5));
        assert_eq!(timed_seconds(&line(json!({"ms": 250.0}))), Some(0.25));
        assert_eq!(timed_seconds(&line(json!({"ms_per_step": 20.0}))), Some(0.02));
        assert_eq!(timed_seconds(&line(json!({"gflops": 1.0}))), None);
    }
}
