//! Time f32 GEMM `C = op(A)·op(B)` on a grid of shapes with every instruction set this CPU has
//! (`set_max_isa`), alternating between them; prints GFLOP/s (best of the repeats) per shape and
//! transpose, and the ratio of the AVX2 kernels to the CPU's best.
//!
//! `cargo run --release -p latent-linalg --example gemm_shapes [REPEATS]` (default 7)
use latent_linalg::simd::{Isa, detected, set_max_isa};
use latent_linalg::{DMatrix, Trans, gemm};
use std::time::Instant;

fn main() -> latent_linalg::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("one") {
        return one(&args[1..]);
    }
    let reps: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(7);
    let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2].into_iter().filter(|i| i.on_cpu()).collect();
    println!("detected {}; m n k ta tb: GFLOP/s per isa {:?}", detected(), isas);
    let dims = [64usize, 128, 256, 784, 1024];
    for &m in &dims {
        for &n in &dims {
            for &k in &dims {
                for (ta, tb) in [(Trans::N, Trans::N), (Trans::T, Trans::N), (Trans::N, Trans::T)] {
                    let a = if ta == Trans::N {
                        DMatrix::<f32>::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 11) as f32 * 0.1)
                    } else {
                        DMatrix::<f32>::from_fn(k, m, |i, j| ((i * 7 + j * 3) % 11) as f32 * 0.1)
                    };
                    let b = if tb == Trans::N {
                        DMatrix::<f32>::from_fn(k, n, |i, j| ((i * 5 + j) % 13) as f32 * 0.1)
                    } else {
                        DMatrix::<f32>::from_fn(n, k, |i, j| ((i * 5 + j) % 13) as f32 * 0.1)
                    };
                    let mut c = DMatrix::<f32>::zeros(m, n);
                    let flop = 2.0 * (m * n * k) as f64;
                    let inner = ((2e8 / flop) as usize).clamp(1, 200);
                    let mut best = vec![0.0f64; isas.len()];
                    for _ in 0..reps {
                        for (bi, &isa) in isas.iter().enumerate() {
                            set_max_isa(Some(isa));
                            let t = Instant::now();
                            for _ in 0..inner {
                                gemm(1.0, &a, ta, &b, tb, 0.0, &mut c)?;
                            }
                            let g = flop * inner as f64 / t.elapsed().as_secs_f64() / 1e9;
                            best[bi] = best[bi].max(g);
                        }
                    }
                    let ratio = if best.len() == 2 { best[1] / best[0] } else { 1.0 };
                    println!(
                        "{m} {n} {k} {ta:?} {tb:?} {} ratio {ratio:.3}",
                        best.iter().map(|g| format!("{g:.1}")).collect::<Vec<_>>().join(" ")
                    );
                }
            }
        }
    }
    set_max_isa(None);
    Ok(())
}

/// `one M N K TA TB ISA ITERS`: one shape in a loop, for a profiler.
fn one(a: &[String]) -> latent_linalg::Result<()> {
    if a.get(7).map(String::as_str) == Some("f64") {
        return one_t::<f64>(a);
    }
    one_t::<f32>(a)
}

fn one_t<T: latent_linalg::Real>(a: &[String]) -> latent_linalg::Result<()> {
    let u = |i: usize| a[i].parse::<usize>().unwrap();
    let (m, n, k, iters) = (u(0), u(1), u(2), u(6));
    let t = |s: &str| if s == "T" { Trans::T } else { Trans::N };
    let (ta, tb) = (t(&a[3]), t(&a[4]));
    set_max_isa(Some(a[5].parse().unwrap()));
    let am = if ta == Trans::N {
        DMatrix::<T>::from_element(m, k, T::one())
    } else {
        DMatrix::<T>::from_element(k, m, T::one())
    };
    let bm = if tb == Trans::N {
        DMatrix::<T>::from_element(k, n, T::one())
    } else {
        DMatrix::<T>::from_element(n, k, T::one())
    };
    let mut c = DMatrix::<T>::zeros(m, n);
    let t0 = Instant::now();
    for _ in 0..iters {
        gemm(T::one(), &am, ta, &bm, tb, T::zero(), &mut c)?;
    }
    println!("{:.1} GFLOP/s", 2.0 * (m * n * k * iters) as f64 / t0.elapsed().as_secs_f64() / 1e9);
    Ok(())
}
