//! `cargo xtask fuzz [TARGET..] [--seconds N] [--cmin]`: run every cargo-fuzz target for N seconds.
//!
//! Uses `cargo +nightly fuzz run` (libFuzzer with AddressSanitizer) when a nightly toolchain is
//! installed, otherwise `cargo fuzz run -s none` on stable (no sanitizer), and says which ran.
//! Installs cargo-fuzz if it is missing. Prints one line per target with its executions.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: &[&str] = &[
    "idx",
    "idx_gzip",
    "npy",
    "png",
    "mvtec",
    "model_files",
    "encode_fit",
    "unet_model",
    "conv_coding_files",
    "training_state",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have_nightly() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let ok = Command::new("cargo").args(["fuzz", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
    if ok {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz …");
    let st = Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]).status().map_err(|e| e.to_string())?;
    if st.success() { Ok(()) } else { Err("cargo install cargo-fuzz failed".into()) }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = 10u64;
    let mut cmin = false;
    let mut chosen: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it.next().ok_or("--seconds needs a number")?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--cmin" => cmin = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if TARGETS.contains(&s) => chosen.push(s.to_string()),
            s => return Err(format!("unknown fuzz target `{s}`; known: {}", TARGETS.join(", "))),
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|s| s.to_string()).collect();
    }
    ensure_cargo_fuzz()?;
    let nightly = have_nightly();
    let fuzz_dir = root().join("fuzz");
    println!("fuzzing with {}", if nightly { "nightly + AddressSanitizer" } else { "stable, no sanitizer (-s none)" });
    let mut failures = Vec::new();
    for t in &chosen {
        let corpus = fuzz_dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        if nightly {
            cmd.arg("+nightly");
        }
        cmd.current_dir(&fuzz_dir).args(["fuzz", "run", "-O"]);
        if !nightly {
            cmd.args(["-s", "none"]);
        }
        cmd.arg(t).arg(&corpus).args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
            "-rss_limit_mb=2048",
        ]);
        let out = cmd.output().map_err(|e| format!("cargo fuzz: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        let execs = err
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:").map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "?".into());
        let status = if out.status.success() { "ok" } else { "CRASH" };
        println!("{t:12} {status:5} executions={execs} seconds={seconds}");
        if !out.status.success() {
            eprintln!(
                "{}",
                err.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            failures.push(t.clone());
        } else if cmin {
            let mut c = Command::new("cargo");
            if nightly {
                c.arg("+nightly");
            }
            c.current_dir(&fuzz_dir).args(["fuzz", "cmin", "-O"]);
            if !nightly {
                c.args(["-s", "none"]);
            }
            let _ = c.arg(t).arg(&corpus).output();
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(format!("crashes in: {}", failures.join(", "))) }
}
