//! The `ae_mlp` and `conv_ae_step` benchmark workloads (the same code `cargo xtask bench` runs).
//!
//! `cargo run --release -p latent-autoencoder --example bench_ae [MNIST_DIR]`
//! (default `data/mnist-10k-10k`). Prints one JSON line per workload.

#[path = "../../../xtask/src/bench_ae.rs"]
mod bench_ae;

fn main() -> Result<(), String> {
    // the main thread takes part in the parallel loops (see latent_linalg::product::init_threads)
    latent_linalg::product::init_threads(None).map_err(|e| e.to_string())?;
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| latent_datasets::data_dir().join("mnist-10k-10k"));
    eprintln!("rayon threads: {}", rayon::current_num_threads());
    let which: Vec<String> = std::env::args().skip(2).collect();
    let want = |w: &str| which.is_empty() || which.iter().any(|a| a == w);
    if want("ae_mlp") {
        println!("{{\"workload\":\"ae_mlp\",\"impl\":\"latent\",{}", &bench_ae::ae_mlp(&dir)?.to_string()[1..]);
    }
    if want("conv_ae_step") {
        println!("{{\"workload\":\"conv_ae_step\",\"impl\":\"latent\",{}", &bench_ae::conv_ae_step()?.to_string()[1..]);
    }
    Ok(())
}
