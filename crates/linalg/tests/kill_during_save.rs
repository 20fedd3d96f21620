//! Crash safety of `persist::save`: a child process saves in a loop and is SIGKILLed at random
//! points; the file on disk must always load, as the old or the new version, never torn.

use latent_linalg::persist::{load, save};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAGIC: [u8; 8] = *b"LTNTKILL";
const CHILD_ENV: &str = "LATENT_KILL_SAVE_CHILD";

/// A payload that identifies its generation and is large enough (≈ 2 MB) that a save takes a while.
fn payload(generation: u64) -> Vec<u64> {
    (0..250_000u64).map(|i| generation.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i).collect()
}

fn valid(v: &[u64]) -> bool {
    v.len() == 250_000 && {
        let g0 = v[0];
        v.iter().enumerate().all(|(i, &x)| x == g0 ^ i as u64)
    }
}

/// Run only as the child: save generations forever (until killed).
#[test]
fn child_saver() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let path = PathBuf::from(path);
    let mut g = (std::process::id() as u64) << 20;
    // one complete save first, so that every kill leaves a generation of this child on disk
    // (however slow the disk is under load), then report and keep saving
    save(&path, MAGIC, 1, &payload(g)).unwrap();
    g += 1;
    {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "saving");
        let _ = out.flush();
    }
    loop {
        save(&path, MAGIC, 1, &payload(g)).unwrap();
        g += 1;
    }
}

#[test]
fn killing_a_saving_process_never_corrupts_the_file() {
    let dir = std::env::temp_dir().join(format!("latent-kill-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.bin");
    save(&path, MAGIC, 1, &payload(0)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let kills = 200;
    let started = Instant::now();
    let mut last_gen = 0u64;
    let mut changed = 0;
    for k in 0..kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_saver", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // wait until the child has saved once and is in its save loop
        {
            use std::io::BufRead;
            let mut line = String::new();
            let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
            while !line.contains("saving") {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
            }
        }
        // kill after a pseudo-random 0–12 ms, i.e. at a random point of a save
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 12_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let (_, v): (u32, Vec<u64>) = load(&path, MAGIC, 1).unwrap_or_else(|e| panic!("after kill {k}: {e}"));
        assert!(valid(&v), "after kill {k}: torn payload");
        if v[0] != last_gen {
            changed += 1;
            last_gen = v[0];
        }
        assert!(started.elapsed() < Duration::from_secs(120), "bounded: too slow");
    }
    // the children really were saving: every child leaves its own generation (each completes a
    // full save before it can be killed), so the file changes at (practically) every kill,
    // however loaded the machine is
    assert!(changed >= kills * 9 / 10, "only {changed} of {kills} kills saw a newer file");
    // the only other files are temporaries of killed writers, which loading never reads
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name == "model.bin" || name.starts_with(".model.bin.tmp-"), "unexpected file {name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
