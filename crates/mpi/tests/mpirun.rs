//! The MPI communicator under `mpirun` with 1, 2 and 3 ranks (loopback, oversubscribed).

use std::process::Command;

#[test]
fn collectives_under_mpirun() {
    let exe = env!("CARGO_BIN_EXE_latent-mpi-selftest");
    for ranks in ["1", "2", "3"] {
        let out = Command::new("mpirun")
            .args(["--oversubscribe", "--allow-run-as-root", "--mca", "btl", "self,vader", "-np", ranks, exe])
            .output()
            .expect("mpirun must be installed to test latent-mpi");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("selftest ok on {ranks} ranks")),
            "{ranks} ranks: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
