//! `cargo xtask`: the project's task runner (rust-analyzer style).
//!
//! ```text
//! cargo xtask bench [WORKLOAD..] [--json] [--data DIR] [--save DIR] [--repeat N] [--isa ISA] [--list]
//! cargo xtask bench peak [--json] [--isa ISA]
//! cargo xtask distributed-check [--json] [--bench] [--no-build]
//! ```

mod bench;
mod bench_ae;
mod bench_csc;
mod bench_peak;
mod bench_sc;
mod bench_unet;
mod distributed;
mod figures;
mod fuzz;
mod outside;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  reproduce-figures [--list] [--fig ID].. [--quick] [--out DIR] [--seed N]
        regenerate the lecture's figures into target/figures/<ID>/ (metrics.json, PNG/SVG, raw
        numbers) and the gallery target/figures/index.html
  fuzz [TARGET..] [--seconds N] [--cmin]
        run each cargo-fuzz target (nightly + ASan when available, else stable -s none)
  outside-check [CHECK..]
        build and run small programs in fresh projects outside the workspace, each depending on
        one latent crate as a user would (sparse-coding, autoencoder, anomaly, datasets)
  bench [WORKLOAD..] [--json] [--data DIR] [--save DIR] [--repeat N] [--isa ISA] [--list]
        run benchmark workloads (default: all implemented) and print one line per figure
        (JSON lines with --json, in the schema of ../shared/bench/WORKLOADS.md) with its GFLOP/s,
        fraction of the measured peak and max RSS; --repeat N: N fresh processes per workload,
        median and spread; --isa avx2: force the AVX2 paths (`cargo xtask bench --help`)
  bench peak [--json] [--isa ISA]
        the machine's measured FMA peak (GFLOP/s, f32 and f64, 1 thread and all)
  distributed-check [--json] [--bench] [--no-build]
        build crates/mpi (needs Open MPI and libclang), run both data-parallel learners on 1, 2
        and 3 ranks (max abs difference against 1 rank, wall time), the failure paths and a
        resume on another rank count; --bench times dl_online and ae_mlp as 1x1, 1x2, 2x1
        (ranks x threads)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The main thread is one of the pool's threads: training loops take part in their own
    // parallel loops instead of waiting beside the workers (see `init_threads`).
    if let Err(e) = latent_linalg::product::init_threads(None) {
        eprintln!("xtask: {e}");
    }
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("reproduce-figures") => figures::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("distributed-check") => distributed::run(&args[1..]),
        Some("outside-check") => outside::run_checks(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
