//! `cargo xtask distributed-check [--json] [--bench] [--no-build]`: builds the MPI side
//! (`crates/mpi`, outside the workspace), runs both data-parallel learners (small sizes) on 1, 2
//! and 3 ranks and prints one line per learner and rank count with the largest absolute
//! difference against the 1-rank result and the wall time; then the failure paths (a rank that
//! aborts, a rank killed with SIGKILL, a rank whose program fails, ranks that disagree: the job
//! must end within a bounded time and name the rank) and a resume from rank 0's checkpoint on another number of ranks.
//! `--bench` instead times `dl_online` and `ae_mlp` as 1 process × 1 thread, 1 process × 2
//! threads and 2 ranks × 1 thread, and the classic one-process learners (`fit`, `--classic`) as
//! 1×1 and 1×2: the overhead of the distributed path on the same work.

use latent_autoencoder::{Autoencoder, Trainable};
use latent_sparse_coding::FittedDictionary;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a check may take before it counts as a hang.
const TIMEOUT: Duration = Duration::from_secs(120);

struct Ctx {
    examples: PathBuf,
    tmp: PathBuf,
    json: bool,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() { d } else { root().join(d) }
        }
        _ => root().join("target"),
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut json = false;
    let mut bench = false;
    let mut build = true;
    for a in args {
        match a.as_str() {
            "--json" => json = true,
            "--bench" => bench = true,
            "--no-build" => build = false,
            other => return Err(format!("distributed-check: unknown option {other}")),
        }
    }
    if Command::new("mpirun").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return Err(
            "mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev)".into()
        );
    }
    let target = target_dir();
    if build {
        let manifest = root().join("crates/mpi/Cargo.toml");
        eprintln!("distributed-check: building {} (release examples)", manifest.display());
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--examples", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !status.success() {
            return Err("building crates/mpi failed".into());
        }
    }
    let tmp = target.join("distributed-check");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let ctx = Ctx { examples: target.join("release/examples"), tmp, json };
    if bench {
        return run_bench(&ctx);
    }
    let mut failures = Vec::new();
    identity_checks(&ctx, &mut failures)?;
    fault_checks(&ctx, &mut failures)?;
    resume_checks(&ctx, &mut failures)?;
    if failures.is_empty() { Ok(()) } else { Err(format!("distributed-check failed: {}", failures.join("; "))) }
}

struct Outcome {
    success: bool,
    code: Option<i32>,
    seconds: f64,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

/// `mpirun` over loopback with `segments` = `[(ranks, example, args)]` (several for MPMD), with
/// extra environment variables, killed after [`TIMEOUT`].
fn mpirun(ctx: &Ctx, segments: &[(usize, &str, Vec<String>)], env: &[(&str, &str)]) -> Result<Outcome, String> {
    let mut cmd = Command::new("mpirun");
    // loopback only; waiting ranks yield the CPU instead of spinning (the ranks share 2 cores
    // with each other and with whatever else runs)
    cmd.args(["--oversubscribe", "--allow-run-as-root", "--mca", "btl", "self,vader", "--bind-to", "none"]);
    cmd.args(["--mca", "mpi_yield_when_idle", "1"]);
    for (i, (n, ex, args)) in segments.iter().enumerate() {
        if i > 0 {
            cmd.arg(":");
        }
        cmd.arg("-np").arg(n.to_string()).arg(ctx.examples.join(ex)).args(args);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out_path = ctx.tmp.join("mpirun.out");
    let err_path = ctx.tmp.join("mpirun.err");
    let stdout = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let stderr = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut child =
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr).spawn().map_err(|e| format!("mpirun: {e}"))?;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if t0.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = t0.elapsed().as_secs_f64();
    Ok(Outcome {
        success: status.success() && !timed_out,
        code: status.code(),
        seconds,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
    })
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn emit(ctx: &Ctx, v: Value) {
    if ctx.json {
        println!("{v}");
    } else {
        let o = v.as_object().cloned().unwrap_or_default();
        let line: Vec<String> = o.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{}", line.join("  "));
    }
}

/// The learned values in a result file: the dictionary, or every parameter of the model.
fn values(learner: &str, path: &Path) -> Result<Vec<f64>, String> {
    match learner {
        "dl_online" => {
            let d = FittedDictionary::<f64>::load(path).map_err(|e| e.to_string())?;
            Ok(d.dictionary.iter().copied().collect())
        }
        _ => {
            let mut m = Autoencoder::<f32>::load(path).map_err(|e| e.to_string())?;
            Ok(m.params().iter().flat_map(|p| p.value.iter().map(|&v| f64::from(v))).collect())
        }
    }
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn small_args(learner: &str) -> Vec<String> {
    match learner {
        "dl_online" => {
            strings(&["--patches", "4000", "--atoms", "48", "--lambda", "0.15", "--batch", "300", "--epochs", "2"])
        }
        _ => strings(&["--train", "1200", "--widths", "784,96,24", "--epochs", "3", "--batch", "100", "--lr", "2e-3"]),
    }
}

fn identity_checks(ctx: &Ctx, failures: &mut Vec<String>) -> Result<(), String> {
    for learner in ["dl_online", "ae_mlp"] {
        let mut reference: Option<Vec<f64>> = None;
        for ranks in 1..=3 {
            let out = ctx.tmp.join(format!("{learner}-{ranks}.bin"));
            let mut args = small_args(learner);
            args.extend(strings(&["--quiet", "--out"]));
            args.push(out.display().to_string());
            let o = mpirun(ctx, &[(ranks, learner, args)], &[])?;
            if !o.success {
                failures.push(format!("{learner} on {ranks} ranks failed: {}", o.stderr.trim()));
                emit(ctx, json!({"check": "bit-identity", "learner": learner, "ranks": ranks, "ok": false}));
                continue;
            }
            let v = values(learner, &out)?;
            let diff = match &reference {
                None => {
                    reference = Some(v);
                    0.0
                }
                Some(r) => max_abs_diff(r, &v),
            };
            if diff != 0.0 {
                failures.push(format!("{learner} on {ranks} ranks differs from 1 rank by {diff:e}"));
            }
            emit(
                ctx,
                json!({"check": "bit-identity", "learner": learner, "ranks": ranks, "max_abs_diff": diff,
                       "wall_seconds": (o.seconds * 1000.0).round() / 1000.0, "ok": diff == 0.0}),
            );
        }
    }
    Ok(())
}

fn fault_checks(ctx: &Ctx, failures: &mut Vec<String>) -> Result<(), String> {
    let long_ae = || {
        let mut a = small_args("ae_mlp");
        a.extend(strings(&["--quiet", "--epochs", "40"]));
        a
    };
    // a rank that aborts at epoch 2, one that is killed with SIGKILL, one whose program fails
    // (MPI_Abort) while the others wait in the next collective
    for (check, signal) in [("aborted-rank", "6"), ("killed-rank", "9"), ("erroring-rank", "error")] {
        let o = mpirun(
            ctx,
            &[(3, "ae_mlp", long_ae())],
            &[("LATENT_MPI_FAULT_RANK", "1"), ("LATENT_MPI_FAULT_STEP", "2"), ("LATENT_MPI_FAULT_SIGNAL", signal)],
        )?;
        let names_rank = o.stderr.contains("rank 1");
        let ok = !o.success && !o.timed_out && names_rank;
        if !ok {
            failures.push(format!("{check}: exit {:?}, timed out {}, names rank 1: {names_rank}", o.code, o.timed_out));
        }
        emit(
            ctx,
            json!({"check": check, "ranks": 3, "job_ended": !o.timed_out, "exit_code": o.code,
                   "wall_seconds": (o.seconds * 1000.0).round() / 1000.0, "names_rank": names_rank, "ok": ok}),
        );
    }
    // ranks that disagree (rank 1 and 2 start from another seed): refused at start-up
    for learner in ["dl_online", "ae_mlp"] {
        let mut a0 = small_args(learner);
        a0.push("--quiet".into());
        let mut a1 = a0.clone();
        a1.extend(strings(&["--seed", "1"]));
        let o = mpirun(ctx, &[(1, learner, a0), (2, learner, a1)], &[])?;
        let refused = o.stderr.contains("rank 1 disagrees");
        let ok = !o.success && !o.timed_out && refused;
        if !ok {
            failures.push(format!("mismatch ({learner}): exit {:?}, refusal message found: {refused}", o.code));
        }
        let first = o.stderr.lines().find(|l| l.contains("disagrees")).unwrap_or("").trim().to_string();
        emit(
            ctx,
            json!({"check": "mismatch-refused", "learner": learner, "ranks": 3, "exit_code": o.code,
                   "wall_seconds": (o.seconds * 1000.0).round() / 1000.0, "message": first, "ok": ok}),
        );
    }
    Ok(())
}

/// A run interrupted on 2 ranks resumes from rank 0's checkpoint on 3 ranks and ends where an
/// uninterrupted 1-rank run ends.
fn resume_checks(ctx: &Ctx, failures: &mut Vec<String>) -> Result<(), String> {
    let t = |name: &str| ctx.tmp.join(name).display().to_string();
    for learner in ["dl_online", "ae_mlp"] {
        let (whole, first, second): (Vec<String>, Vec<String>, Vec<String>) = match learner {
            "dl_online" => {
                let base =
                    strings(&["--patches", "3000", "--atoms", "40", "--batch", "250", "--no-shuffle", "--quiet"]);
                let with = |extra: &[String]| [base.clone(), extra.to_vec()].concat();
                (
                    with(&strings(&["--epochs", "2", "--out", &t("dl-whole.bin")])),
                    with(&strings(&["--epochs", "1", "--save-state", &t("dl.state")])),
                    with(&strings(&["--epochs", "1", "--resume", &t("dl.state"), "--out", &t("dl-resumed.bin")])),
                )
            }
            _ => {
                let base = [small_args("ae_mlp"), strings(&["--quiet", "--epochs", "4"])].concat();
                let with = |extra: &[String]| [base.clone(), extra.to_vec()].concat();
                (
                    with(&strings(&["--out", &t("ae-whole.bin")])),
                    with(&strings(&["--stop-after", "2", "--state", &t("ae.state")])),
                    with(&strings(&["--resume", &t("ae.state"), "--out", &t("ae-resumed.bin")])),
                )
            }
        };
        let short = if learner == "dl_online" { "dl" } else { "ae" };
        let a = mpirun(ctx, &[(1, learner, whole)], &[])?;
        let b = mpirun(ctx, &[(2, learner, first)], &[])?;
        let c = mpirun(ctx, &[(3, learner, second)], &[])?;
        let diff = if a.success && b.success && c.success {
            max_abs_diff(
                &values(learner, &ctx.tmp.join(format!("{short}-whole.bin")))?,
                &values(learner, &ctx.tmp.join(format!("{short}-resumed.bin")))?,
            )
        } else {
            f64::INFINITY
        };
        let ok = diff == 0.0;
        if !ok {
            failures.push(format!("resume ({learner}): difference {diff:e}; {} {}", b.stderr.trim(), c.stderr.trim()));
        }
        emit(
            ctx,
            json!({"check": "resume-2-then-3-ranks-vs-1", "learner": learner, "max_abs_diff": diff,
                   "wall_seconds": ((a.seconds + b.seconds + c.seconds) * 1000.0).round() / 1000.0, "ok": ok}),
        );
    }
    Ok(())
}

/// Wall time of `dl_online` and `ae_mlp` (bench sizes) as 1×1, 1×2 and 2×1 (ranks × threads).
fn run_bench(ctx: &Ctx) -> Result<(), String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let workloads: [(&str, Vec<String>); 2] = [
        (
            "dl_online",
            strings(&["--patches", "30000", "--atoms", "256", "--lambda", "1", "--batch", "256", "--epochs", "1"]),
        ),
        (
            "ae_mlp",
            strings(&[
                "--set",
                "mnist-10k-10k",
                "--widths",
                "784,256,64",
                "--batch",
                "128",
                "--epochs",
                "3",
                "--lr",
                "1e-3",
            ]),
        ),
    ];
    for (learner, args) in workloads {
        // (label, ranks, threads, extra arguments): the distributed path as 1×1, 1×2, 2×1 with
        // the default chunk, the classic one-process learner as 1×1 and 1×2 (the overhead of the
        // distributed path on the same work), and for the trainer the DDP-like chunk of 64
        // samples (one chunk per rank of a 128 batch on 2 ranks)
        let mut configs: Vec<(&str, usize, usize, Vec<String>)> = vec![
            ("1x1", 1, 1, vec![]),
            ("1x2", 1, 2, vec![]),
            ("2x1", 2, 1, vec![]),
            ("classic_1x1", 1, 1, strings(&["--classic"])),
            ("classic_1x2", 1, 2, strings(&["--classic"])),
        ];
        if learner == "ae_mlp" {
            configs.push(("chunk64_1x1", 1, 1, strings(&["--chunk", "64"])));
            configs.push(("chunk64_2x1", 2, 1, strings(&["--chunk", "64"])));
        }
        let mut seconds = std::collections::BTreeMap::new();
        for (label, ranks, threads, extra) in configs {
            let mut a = args.clone();
            a.extend(strings(&["--quiet", "--threads", &threads.to_string()]));
            a.extend(extra.iter().cloned());
            let o = mpirun(ctx, &[(ranks, learner, a)], &[])?;
            if !o.success {
                return Err(format!("{learner} {label} failed: {}", o.stderr.trim()));
            }
            // the learner's own time (rank 0), without MPI start-up and data loading
            let learn = o
                .stdout
                .lines()
                .find_map(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|v| v["seconds"].as_f64())
                .unwrap_or(f64::NAN);
            seconds.insert(label, learn);
            emit(
                ctx,
                json!({"bench": learner, "config": label, "ranks": ranks, "threads_per_rank": threads, "args": extra,
                       "learn_seconds": (learn * 1000.0).round() / 1000.0,
                       "wall_seconds": (o.seconds * 1000.0).round() / 1000.0, "cpu": cpu}),
            );
        }
        let t = |k: &str| seconds.get(k).copied().unwrap_or(f64::NAN);
        let mut summary = json!({"bench": learner, "speedup_1x2": t("1x1") / t("1x2"), "speedup_2x1": t("1x1") / t("2x1"),
               "efficiency_2x1": t("1x1") / t("2x1") / 2.0, "ranks_vs_threads": t("1x2") / t("2x1"),
               "distributed_overhead_1x1": t("1x1") / t("classic_1x1"), "distributed_overhead_1x2": t("1x2") / t("classic_1x2"),
               "speedup_2x1_vs_classic_1x1": t("classic_1x1") / t("2x1"), "speedup_2x1_vs_classic_1x2": t("classic_1x2") / t("2x1")});
        if learner == "ae_mlp" {
            summary["chunk64_distributed_overhead_1x1"] = json!(t("chunk64_1x1") / t("classic_1x1"));
            summary["chunk64_speedup_2x1_vs_classic_1x1"] = json!(t("classic_1x1") / t("chunk64_2x1"));
            summary["chunk64_speedup_2x1_vs_classic_1x2"] = json!(t("classic_1x2") / t("chunk64_2x1"));
        }
        emit(ctx, summary);
    }
    Ok(())
}
