//! `cargo xtask outside-check`: use latent's crates the way a Rust user does, from fresh projects
//! outside the workspace (issue 19).
//!
//! Each check writes a new crate under `target/outside-check/<name>/` with its own `[workspace]`
//! (so the latent workspace does not claim it), depending on **one** latent crate, and builds
//! and runs a small program with it:
//!
//! | check | dependency | the program |
//! |---|---|---|
//! | `sparse-coding` | `latent-sparse-coding` by path | learns a dictionary (builder → check → fit) and codes the signals with it |
//! | `autoencoder` | `latent-autoencoder` by path | trains a small MLP autoencoder, saves, reloads, and reads a corrupt file |
//! | `anomaly` | `latent-anomaly` by path, `default-features = false` | scores anomalies with a reconstructor it defines itself, with its own error type; `cargo tree` must show no model crate |
//! | `datasets` | the **packaged** `latent-datasets` (from `cargo package`, unpacked under `target/`, so no repository `data/` is beside it) | the shipped data are missing with an error naming `LATENT_DATA_DIR`, then found through `LATENT_DATA_DIR` |
//!
//! The projects use the workspace's `Cargo.lock` (same dependency versions) and profiles, and
//! build into the workspace's target folder, so compiled dependencies are shared with the
//! workspace build: only the latent crates themselves are compiled again.

use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask outside-check [sparse-coding] [autoencoder] [anomaly] [datasets]";

/// Every check, in order.
const CHECKS: [&str; 4] = ["sparse-coding", "autoencoder", "anomaly", "datasets"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()).map_or_else(|| root.join("target"), PathBuf::from)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot start: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{what} failed ({}):\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr)))
    }
}

/// `cargo xtask outside-check [CHECK..]`.
pub fn run_checks(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    for a in args {
        if !CHECKS.contains(&a.as_str()) {
            return Err(format!("unknown check `{a}`\n{USAGE}"));
        }
    }
    let chosen: Vec<&str> = if args.is_empty() { CHECKS.to_vec() } else { args.iter().map(String::as_str).collect() };
    let root = root().canonicalize().map_err(|e| format!("workspace root: {e}"))?;
    let target = target_dir(&root);
    let base = target.join("outside-check");
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    for name in chosen {
        let start = std::time::Instant::now();
        println!("== outside check: {name}");
        match name {
            "sparse-coding" => sparse_coding(&root, &target, &base)?,
            "autoencoder" => autoencoder(&root, &target, &base)?,
            "anomaly" => anomaly(&root, &target, &base)?,
            "datasets" => datasets(&root, &target, &base)?,
            _ => unreachable!("checked above"),
        }
        println!("   ok ({:.0} s)", start.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The workspace's profiles, so that dependencies compiled for the workspace are reused.
const PROFILES: &str = r#"
[profile.dev]
opt-level = 1
debug = 1

[profile.dev.package."*"]
opt-level = 3
debug = false
"#;

/// Write a fresh project: `Cargo.toml` (with `deps` and `extra` manifest text), the workspace's
/// lock file, and `src/main.rs`.
fn project(root: &Path, base: &Path, name: &str, deps: &str, extra: &str, main: &str) -> Result<PathBuf, String> {
    let dir = base.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let manifest = format!(
        "[package]\nname = \"outside-{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{deps}\n{extra}\n# not part of the latent workspace around target/\n[workspace]\n{PROFILES}"
    );
    let write = |p: PathBuf, s: &str| std::fs::write(&p, s).map_err(|e| format!("{}: {e}", p.display()));
    write(dir.join("Cargo.toml"), &manifest)?;
    write(src.join("main.rs"), main)?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    Ok(dir)
}

/// One run of a program: its arguments and environment changes (`Some` sets, `None` removes).
type Run<'a> = (&'a [&'a str], &'a [(&'a str, Option<&'a Path>)]);

/// `cargo build`, then run the project's binary once per entry of `runs`, echoing its output.
fn build_and_run(dir: &Path, target: &Path, runs: &[Run<'_>]) -> Result<(), String> {
    let manifest = dir.join("Cargo.toml");
    run(
        cargo().arg("build").arg("--quiet").arg("--manifest-path").arg(&manifest).env("CARGO_TARGET_DIR", target),
        &format!("cargo build --manifest-path {}", manifest.display()),
    )?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let exe = target.join("debug").join(format!("outside-{name}{}", std::env::consts::EXE_SUFFIX));
    for (args, env) in runs {
        let mut cmd = Command::new(&exe);
        cmd.args(*args).current_dir(dir);
        for (k, v) in *env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = run(&mut cmd, &format!("{} {}", exe.display(), args.join(" ")))?;
        for line in out.lines() {
            println!("   | {line}");
        }
    }
    Ok(())
}

fn path_dep(root: &Path, krate: &str, extra: &str) -> String {
    format!("latent-{krate} = {{ path = \"{}\"{extra} }}\n", root.join("crates").join(krate).display())
}

fn sparse_coding(root: &Path, target: &Path, base: &Path) -> Result<(), String> {
    let dir = project(root, base, "sparse-coding", &path_dep(root, "sparse-coding", ""), "", SPARSE_CODING_MAIN)?;
    build_and_run(&dir, target, &[(&[], &[])])
}

fn autoencoder(root: &Path, target: &Path, base: &Path) -> Result<(), String> {
    let dir = project(root, base, "autoencoder", &path_dep(root, "autoencoder", ""), "", AUTOENCODER_MAIN)?;
    build_and_run(&dir, target, &[(&[], &[])])
}

fn anomaly(root: &Path, target: &Path, base: &Path) -> Result<(), String> {
    let dep = path_dep(root, "anomaly", ", default-features = false");
    let dir = project(root, base, "anomaly", &dep, "", ANOMALY_MAIN)?;
    build_and_run(&dir, target, &[(&[], &[])])?;
    // only the detector and its metrics: none of the model crates is built
    let tree = run(
        cargo()
            .args(["tree", "--quiet", "--edges", "normal", "--prefix", "none", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target),
        "cargo tree",
    )?;
    for model in ["latent-autoencoder", "latent-sparse-coding", "latent-conv-coding", "indicatif"] {
        if tree.lines().any(|l| l.starts_with(&format!("{model} "))) {
            return Err(format!("latent-anomaly with default-features = false still depends on {model}:\n{tree}"));
        }
    }
    println!("   | cargo tree: no autoencoder, sparse-coding, conv-coding or indicatif");
    Ok(())
}

fn datasets(root: &Path, target: &Path, base: &Path) -> Result<(), String> {
    // The crate as a registry user receives it: packaged, then unpacked far from any `data/`.
    run(
        cargo()
            .args([
                "package",
                "--quiet",
                "--no-verify",
                "--allow-dirty",
                "-p",
                "latent-linalg",
                "-p",
                "latent-datasets",
            ])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target),
        "cargo package -p latent-datasets",
    )?;
    let version = env!("CARGO_PKG_VERSION");
    let krate = target.join("package").join(format!("latent-datasets-{version}.crate"));
    let unpacked = base.join("registry");
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
    }
    std::fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
    run(Command::new("tar").arg("-xzf").arg(&krate).arg("-C").arg(&unpacked), "tar -xzf latent-datasets.crate")?;
    let pkg = unpacked.join(format!("latent-datasets-{version}"));
    if pkg.join("../../data").exists() {
        return Err(format!("{} has a data folder two levels up; the check needs none", pkg.display()));
    }
    let dep = format!("latent-datasets = {{ path = \"{}\" }}\n", pkg.display());
    // the packaged manifest asks crates.io for latent-linalg, which is the workspace's
    let patch = format!(
        "[patch.crates-io]\nlatent-linalg = {{ path = \"{}\" }}\n",
        root.join("crates").join("linalg").display()
    );
    let dir = project(root, base, "datasets", &dep, &patch, DATASETS_MAIN)?;
    let data = root.join("data");
    build_and_run(
        &dir,
        target,
        &[
            (&["missing"], &[("LATENT_DATA_DIR", None)]),
            (&["wrong"], &[("LATENT_DATA_DIR", Some(&dir.join("no-such-folder")))]),
            (&["present"], &[("LATENT_DATA_DIR", Some(&data))]),
        ],
    )
}

const SPARSE_CODING_MAIN: &str = r#"//! Sparse coding with a learned dictionary, using latent-sparse-coding alone.
use latent_sparse_coding::{DMatrix, Encoder, Lars, OnlineParams, ParamGuard};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 400 signals of dimension 12 made of 2 of 6 hidden atoms each (a fixed xorshift, no rand)
    let (d, h, n) = (12, 6, 400);
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let atoms = DMatrix::<f64>::from_fn(d, h, |_, _| next() - 0.5);
    let mut codes = DMatrix::<f64>::zeros(h, n);
    for j in 0..n {
        codes[(j % h, j)] = 1.0 + next();
        codes[((j / h + j + 1) % h, j)] = 0.5 * next();
    }
    let x = &atoms * &codes;
    let fitted = OnlineParams::new(h, 0.01).batch_size(50).epochs(20).seed(3).check()?.fit(&x)?;
    let coded = Lars::new(0.01).encode_batch(&fitted.dictionary, &x, None)?;
    let rel = (&x - &fitted.dictionary * &coded.codes).norm() / x.norm();
    let nnz = coded.codes.iter().filter(|v| **v != 0.0).count() as f64 / n as f64;
    println!("dictionary {:?}, {} mini-batches, relative error {rel:.4}, {nnz:.2} nonzeros per signal", fitted.dictionary.shape(), fitted.iterations);
    if !(rel < 0.1) || !(nnz <= h as f64) {
        return Err(format!("sparse coding with the learned dictionary is poor: error {rel}, {nnz} nonzeros").into());
    }
    Ok(())
}
"#;

const AUTOENCODER_MAIN: &str = r#"//! A small autoencoder trained, saved and reloaded, using latent-autoencoder alone.
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::{Autoencoder, ParamGuard, Tensor4, init_threads};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_threads(None)?; // the documented set-up call: the training thread joins rayon's pool
    let x = Tensor4::<f32>::from_fn([256, 1, 8, 8], |[n, _, i, j]| (((n % 8) * i + j) % 5) as f32 / 4.0)?;
    let fitted = MlpAeParams::new(vec![64, 32, 8]).lr(1e-2).batch_size(32).epochs(20).seed(1).progress(false).check()?.fit(&x)?;
    let loss = &fitted.report.train_loss;
    println!("train loss {:.5} -> {:.5} over {} epochs", loss[0], loss[loss.len() - 1], loss.len());
    if !(loss[loss.len() - 1] < 0.5 * loss[0]) {
        return Err(format!("training did not learn: {loss:?}").into());
    }
    let dir = std::env::temp_dir().join(format!("latent-outside-ae-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("model.bin");
    fitted.model.save(&path)?;
    let back = Autoencoder::<f32>::load(&path)?;
    if back.reconstruct(&x)? != fitted.model.reconstruct(&x)? {
        return Err("the reloaded model reconstructs differently".into());
    }
    // a corrupt file: the error names the file
    let bad = dir.join("corrupt.bin");
    let bytes = std::fs::read(&path)?;
    std::fs::write(&bad, &bytes[..bytes.len() / 2])?;
    let e = Autoencoder::<f32>::load(&bad).err().ok_or("a truncated model file loaded")?;
    println!("truncated file: {e}");
    std::fs::remove_dir_all(&dir).ok();
    if !e.to_string().contains("corrupt.bin") {
        return Err(format!("the error does not name the file: {e}").into());
    }
    Ok(())
}
"#;

const ANOMALY_MAIN: &str = r#"//! Anomaly scores from a reconstructor defined here, using latent-anomaly alone
//! (default-features = false: no model crate).
use latent_anomaly::{AnomalyError, Detector, DetectorParams, ParamGuard, Reconstructor, Tensor4, metrics};

/// This program's own error type.
#[derive(Debug)]
struct TooNarrow(usize);
impl std::fmt::Display for TooNarrow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rows of width {} are too narrow", self.0)
    }
}
impl std::error::Error for TooNarrow {}

/// Normal images have constant rows: reconstruct each row by its mean.
struct RowMean;
impl Reconstructor<f32> for RowMean {
    fn reconstruct(&self, x: &Tensor4<f32>) -> Result<Tensor4<f32>, AnomalyError> {
        if x.w() < 2 {
            return Err(AnomalyError::reconstructor("row mean", TooNarrow(x.w())));
        }
        let mut y = x.clone();
        for row in y.as_mut_slice().chunks_mut(x.w()) {
            let m = row.iter().sum::<f32>() / row.len() as f32;
            row.iter_mut().for_each(|v| *v = m);
        }
        Ok(y)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n, h, w) = (6, 16, 16);
    let mut x = Tensor4::<f32>::from_fn([n, 1, h, w], |[k, _, i, _]| ((k + i) % 7) as f32 / 7.0)?;
    let mut mask = vec![false; n * h * w];
    for k in 3..n {
        for (i, j) in (4..7).flat_map(|i| (9..12).map(move |j| (i, j))) {
            *x.get_mut([k, 0, i, j]).ok_or("index")? += 1.0;
            mask[(k * h + i) * w + j] = true;
        }
    }
    let det = Detector::new(RowMean, DetectorParams::new().check()?);
    let a = det.analyze(&x)?;
    let labels: Vec<bool> = (0..n).map(|k| k >= 3).collect();
    let image = metrics::auroc(&a.scores, &labels)?;
    let pixel = metrics::pixel_auroc(a.maps.as_slice(), &mask, [n, h, w])?;
    println!("image AUROC {image:.3}, pixel AUROC {pixel:.3}");
    if image != 1.0 || !(pixel > 0.9) {
        return Err("the detector missed the defects".into());
    }
    // the model's own error comes back as the source, downcastable
    let e = det.analyze(&Tensor4::zeros([1, 1, 4, 1])?).err().ok_or("a width-1 image was reconstructed")?;
    let AnomalyError::Reconstructor { model, source } = &e else { return Err(format!("unexpected error {e}").into()) };
    println!("{model}: {source}");
    if source.downcast_ref::<TooNarrow>().is_none() {
        return Err("the reconstructor's error type was lost".into());
    }
    Ok(())
}
"#;

const DATASETS_MAIN: &str = r#"//! latent-datasets from a registry package, outside any latent checkout.
use latent_datasets::{DatasetError, Mnist, data_file, find_data_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        // no LATENT_DATA_DIR and no repository: a typed error saying where it looked and what to set
        "missing" | "wrong" => {
            let e = Mnist::load_small().err().ok_or("Mnist::load_small found data")?;
            println!("{mode}: {e}");
            let msg = e.to_string();
            let want = if mode == "missing" { "not set" } else { "no-such-folder" };
            if !matches!(e, DatasetError::Missing { .. }) || !msg.contains("LATENT_DATA_DIR") || !msg.contains(want) {
                return Err(format!("the missing-data error does not say where it looked and what to set: {msg}").into());
            }
            if find_data_dir().is_ok() || data_file("cells/dsb2018_img.png").is_ok() {
                return Err("a data folder was found where there is none".into());
            }
        }
        "present" => {
            let m = Mnist::load_small()?;
            let x = m.test.to_tensor4_all::<f32>()?;
            println!("LATENT_DATA_DIR={}: test images {:?}", find_data_dir()?.display(), x.shape());
            if x.shape() != [1000, 1, 28, 28] {
                return Err("wrong shape".into());
            }
        }
        other => return Err(format!("unknown mode {other:?}").into()),
    }
    Ok(())
}
"#;
