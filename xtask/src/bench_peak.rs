//! `cargo xtask bench peak`: the machine's measured fused multiply-add peak, and the peak that
//! every bench line's `peak_fraction` divides by.
//!
//! The kernel keeps `ACC` independent accumulator vectors in registers and updates each with one
//! FMA per round (`acc ← acc·a + b`), so the FMA units see `ACC` independent dependency chains:
//! with an FMA latency of 4 cycles and 2 FMA pipes, 8 chains keep them busy; we use 16 for
//! AVX-512 (32 registers) and 12 for AVX2 (16 registers), which also covers latencies up to 6
//! (AVX2) or 8 (AVX-512) cycles. Nothing is loaded or stored inside the loop. Each FMA counts 2
//! flops per lane. The portable level (`scalar`: what `LATENT_ISA=scalar` leaves) runs the same
//! recurrence as separate multiply and add on the build's baseline vectors (SSE2), 2 flops per
//! lane too. "All cores" runs one kernel per thread on `threads` threads at once (not pinned) and
//! divides the total flops by the wall time of the slowest; the best of 5 trials is reported.
//! Beside it, `gflops_cpu_time` divides each thread's flops by its own CPU time: on a quiet
//! machine the two agree, on a loaded one the wall-time figure is low and this one is not, so the
//! bench lines' `peak_fraction` divides by the CPU-time figure.

use latent_linalg::simd::Isa;
use serde_json::{Value, json};
use std::time::Instant;

/// Rounds per kernel call: long enough (tens of ms) to dwarf timer and thread start-up costs.
const ROUNDS: usize = 1 << 22;

/// One timed kernel call: `(flops, seconds)`.
fn kernel(isa: Isa, f64_: bool) -> (f64, f64) {
    let t = Instant::now();
    let flops = match (isa, f64_) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, false) => {
            // SAFETY: callers pass only levels this CPU has (`Isa::on_cpu`).
            let s = unsafe { x86::avx512_f32(ROUNDS) };
            std::hint::black_box(s);
            (ROUNDS * x86::ACC512 * 16 * 2) as f64
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, true) => {
            // SAFETY: as above.
            let s = unsafe { x86::avx512_f64(ROUNDS) };
            std::hint::black_box(s);
            (ROUNDS * x86::ACC512 * 8 * 2) as f64
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, false) => {
            // SAFETY: as above.
            let s = unsafe { x86::avx2_f32(ROUNDS) };
            std::hint::black_box(s);
            (ROUNDS * x86::ACC256 * 8 * 2) as f64
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, true) => {
            // SAFETY: as above.
            let s = unsafe { x86::avx2_f64(ROUNDS) };
            std::hint::black_box(s);
            (ROUNDS * x86::ACC256 * 4 * 2) as f64
        }
        (_, false) => {
            let s = portable::<f32, 32>(ROUNDS / 4);
            std::hint::black_box(s);
            (ROUNDS / 4 * 32 * 2) as f64
        }
        (_, true) => {
            let s = portable::<f64, 16>(ROUNDS / 4);
            std::hint::black_box(s);
            (ROUNDS / 4 * 16 * 2) as f64
        }
    };
    (flops, t.elapsed().as_secs_f64())
}

/// The recurrence `acc ← acc·a + b` on `N` lanes with separate multiply and add (what the
/// compiler vectorises for the baseline target).
fn portable<T: Copy + std::ops::Mul<Output = T> + std::ops::Add<Output = T> + From<f32>, const N: usize>(
    rounds: usize,
) -> T {
    let a: T = std::hint::black_box(T::from(0.999_999));
    let b: T = std::hint::black_box(T::from(1e-6));
    let mut acc = [T::from(0.5); N];
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = *v * a + b;
        }
    }
    acc.iter().fold(T::from(0.0), |s, &v| s + v)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Accumulators of the AVX-512 kernels (of 32 vector registers).
    pub const ACC512: usize = 16;
    /// Accumulators of the AVX2 kernels (of 16 vector registers).
    pub const ACC256: usize = 12;

    macro_rules! fma_kernel {
        ($name:ident, $feat:literal, $acc:expr, $vec:ty, $set1:ident, $fmadd:ident, $add:ident, $t:ty, $store:ident, $lanes:expr) => {
            /// # Safety
            /// The CPU must have the target feature.
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(rounds: usize) -> $t {
                let a: $vec = $set1(std::hint::black_box(0.999_999));
                let b: $vec = $set1(std::hint::black_box(1e-6));
                let mut acc: [$vec; $acc] = [$set1(0.5); $acc];
                for _ in 0..rounds {
                    // `$acc` independent chains, fully unrolled: the accumulators stay in registers
                    for v in acc.iter_mut() {
                        *v = $fmadd(*v, a, b);
                    }
                }
                let mut s = acc[0];
                for v in &acc[1..] {
                    s = $add(s, *v);
                }
                let mut out = [0.0 as $t; $lanes];
                // SAFETY: `out` has exactly one vector's worth of lanes; unaligned store.
                unsafe { $store(out.as_mut_ptr(), s) };
                out.iter().sum()
            }
        };
    }

    fma_kernel!(
        avx512_f32,
        "avx512f",
        ACC512,
        __m512,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        f32,
        _mm512_storeu_ps,
        16
    );
    fma_kernel!(
        avx512_f64,
        "avx512f",
        ACC512,
        __m512d,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        f64,
        _mm512_storeu_pd,
        8
    );
    fma_kernel!(
        avx2_f32,
        "avx2,fma",
        ACC256,
        __m256,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        f32,
        _mm256_storeu_ps,
        8
    );
    fma_kernel!(
        avx2_f64,
        "avx2,fma",
        ACC256,
        __m256d,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        f64,
        _mm256_storeu_pd,
        4
    );
}

/// CPU time of the calling thread in seconds (`CLOCK_THREAD_CPUTIME_ID`; NaN where unavailable).
fn thread_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    f64::NAN
}

/// Peak GFLOP/s of `isa` (must be on this CPU) in `f64` or `f32` on `threads` concurrent threads,
/// best of 5 trials: by wall time (flops of all threads / wall time), and by CPU time (each
/// thread's flops over its own CPU time, summed over the threads). The two agree on a quiet
/// machine; when other processes take the cores the wall-time figure understates the machine
/// and the CPU-time figure does not, so the bench lines' `peak_gflops` is the CPU-time figure.
pub fn measure_both(isa: Isa, f64_: bool, threads: usize) -> (f64, f64) {
    let threads = threads.max(1);
    let _ = kernel(isa, f64_); // warm-up: clocks, page-in
    (0..5)
        .map(|_| {
            let barrier = std::sync::Barrier::new(threads);
            let t = Instant::now();
            let per: Vec<(f64, f64)> = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..threads)
                    .map(|_| {
                        sc.spawn(|| {
                            barrier.wait();
                            let c0 = thread_cpu_seconds();
                            let f = kernel(isa, f64_).0;
                            (f, thread_cpu_seconds() - c0)
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap_or((0.0, f64::NAN))).collect()
            });
            let wall = t.elapsed().as_secs_f64();
            let flops: f64 = per.iter().map(|p| p.0).sum();
            let cpu: f64 = per.iter().map(|&(f, c)| f / c).sum();
            (flops / wall / 1e9, cpu / 1e9)
        })
        .fold((0.0, 0.0), |a, b| (a.0.max(b.0), a.1.max(b.1)))
}

/// The environment variable through which `bench --repeat` hands the parent's peak measurements
/// to its children (`float32@avx512x2=123.4,...`), so that each child need not measure again.
pub const PEAK_ENV: &str = "LATENT_BENCH_PEAK";

fn key(isa: Isa, f64_: bool, threads: usize) -> String {
    format!("{}@{}x{threads}", if f64_ { "float64" } else { "float32" }, isa.name())
}

/// The peak of `(isa, precision, threads)` by CPU time (see [`measure_both`]), measured once per
/// process (or taken from [`PEAK_ENV`]) and cached.
pub fn cached(isa: Isa, f64_: bool, threads: usize) -> f64 {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, f64>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        let mut m = HashMap::new();
        if let Ok(s) = std::env::var(PEAK_ENV) {
            for kv in s.split(',') {
                if let Some((k, v)) = kv.split_once('=')
                    && let Ok(v) = v.parse::<f64>()
                {
                    m.insert(k.to_string(), v);
                }
            }
        }
        Mutex::new(m)
    });
    let k = key(isa, f64_, threads);
    if let Some(&v) = cache.lock().ok().and_then(|m| m.get(&k).copied()).as_ref() {
        return v;
    }
    let v = measure_both(isa, f64_, threads).1;
    if let Ok(mut m) = cache.lock() {
        m.insert(k, v);
    }
    v
}

/// The cached peaks as a [`PEAK_ENV`] value for child processes.
pub fn env_value(isa: Isa, threads: usize) -> String {
    [false, true]
        .iter()
        .map(|&f| format!("{}={}", key(isa, f, threads), cached(isa, f, threads)))
        .collect::<Vec<_>>()
        .join(",")
}

/// `cargo xtask bench peak`: every level this CPU has up to the cap, f32 and f64, 1 thread and
/// `threads`.
pub fn run(json: bool, threads: usize) -> Result<(), String> {
    let max = latent_linalg::simd::max_isa();
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar].into_iter().filter(|&i| i <= max) {
        for f64_ in [false, true] {
            for t in if threads > 1 { vec![1, threads] } else { vec![1] } {
                let (g, g_cpu) = measure_both(isa, f64_, t);
                let dtype = if f64_ { "float64" } else { "float32" };
                let line: Value = json!({
                    "workload": "peak", "impl": "latent", "dtype": dtype, "isa": isa.name(), "threads": t,
                    "gflops": (g * 100.0).round() / 100.0, "gflops_per_core": (g / t as f64 * 100.0).round() / 100.0,
                    "gflops_cpu_time": (g_cpu * 100.0).round() / 100.0,
                });
                if json {
                    println!("{line}");
                } else {
                    println!(
                        "peak  {dtype}  isa={:6}  threads={t}  {g:8.2} GFLOP/s  ({:.2} per core)  by CPU time {g_cpu:8.2}",
                        isa.name(),
                        g / t as f64
                    );
                }
            }
        }
    }
    Ok(())
}
