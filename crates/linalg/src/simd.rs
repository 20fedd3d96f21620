//! The one place that decides which SIMD instruction set latent's kernels may use.
//!
//! Every runtime dispatch point of the workspace — the dense products (the `gemm` crate's
//! AVX-512 / AVX2+FMA / scalar micro-kernels), the direct convolution kernels, the sparse-coding
//! solvers (OMP, LARS, coordinate descent) and the optimizers' element-wise updates — asks
//! [`max_isa`] instead of detecting CPU features itself. By default that is the best instruction
//! set the CPU has ([`detected`]), so dispatch is what it would be without this module. A cap
//! lowers it, so that the AVX2 paths can be tested and benchmarked on an AVX-512 machine (and the
//! portable paths on any machine):
//!
//! - the environment variable `LATENT_ISA` = `avx512` | `avx2` | `scalar`, read once, at the
//!   first call of [`max_isa`] (an unknown value is ignored; [`env_cap`] reports it);
//! - [`set_max_isa`], which overrides the environment for the whole process (benches set it
//!   once at start-up; tests should rather call a kernel's internal entry point with an explicit
//!   [`Isa`], because the cap is process-wide and tests run in parallel).
//!
//! A cap never raises the level above what the CPU has. What a cap does not reach (none of it
//! has AVX-512 code, so `avx2` is faithful; `scalar` is not, for these): the FFTs (`rustfft`
//! dispatches AVX/SSE itself), nalgebra's own `*` products (`matrixmultiply`, AVX2/FMA or SSE2 by
//! its own detection; latent's products go through [`crate::product`]), and code that the
//! compiler vectorises for the build's baseline target (SSE2 on x86-64).
//!
//! # Example
//! ```
//! use latent_linalg::simd::{Isa, detected, max_isa};
//! assert!(max_isa() <= detected());
//! assert_eq!("avx2".parse::<Isa>(), Ok(Isa::Avx2));
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level of latent's kernels, ordered: `Scalar < Avx2 < Avx512`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code only (the build's baseline target).
    Scalar,
    /// x86-64 AVX2 + FMA (8 lanes of `f32`, 16 vector registers).
    Avx2,
    /// x86-64 AVX-512F (16 lanes of `f32`, 32 vector registers).
    Avx512,
}

impl Isa {
    /// The name `LATENT_ISA` and `cargo xtask bench --isa` use: `scalar`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// `true` when this CPU has the instruction set (always for [`Isa::Scalar`]), whatever the cap.
    pub fn on_cpu(self) -> bool {
        self <= detected()
    }

    fn from_u8(v: u8) -> Option<Isa> {
        match v {
            0 => Some(Isa::Scalar),
            1 => Some(Isa::Avx2),
            2 => Some(Isa::Avx512),
            _ => None,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = String;
    /// `scalar`, `avx2` or `avx512` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Isa, String> {
        match s.to_ascii_lowercase().as_str() {
            "scalar" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512" => Ok(Isa::Avx512),
            _ => Err(format!("unknown instruction set `{s}` (known: avx512, avx2, scalar)")),
        }
    }
}

/// The best level this CPU has: [`Isa::Avx512`] with AVX-512F, else [`Isa::Avx2`] with AVX2 and
/// FMA, else [`Isa::Scalar`]. Detected once.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    })
}

/// Whether this CPU runs AVX-512 on 256-bit units: AMD family 0x19 (Zen 4; Zen 3, the same
/// family, has no AVX-512F) with AVX-512F. There an AVX-512 instruction costs two 256-bit
/// operations, so the AVX2 kernels can be as fast, and for some product shapes faster (see
/// `crate::product`'s kernel choice). Detected once; `false` off x86-64.
pub fn avx512_on_half_width_units() -> bool {
    static HALF: OnceLock<bool> = OnceLock::new();
    *HALF.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if detected() != Isa::Avx512 {
                return false;
            }
            // `cpuid` leaves 0 and 1 exist on every x86-64 CPU.
            let (l0, l1) = (std::arch::x86_64::__cpuid(0), std::arch::x86_64::__cpuid(1));
            // "AuthenticAMD" in ebx, edx, ecx.
            let amd = l0.ebx == 0x6874_7541 && l0.edx == 0x6974_6e65 && l0.ecx == 0x444d_4163;
            let base = (l1.eax >> 8) & 0xf;
            let family = if base == 0xf { base + ((l1.eax >> 20) & 0xff) } else { base };
            amd && family == 0x19
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// The cap set by the environment variable `LATENT_ISA`, read once: `Ok(None)` when it is unset
/// or empty, `Err` (naming the value) when it is not one of `avx512`, `avx2`, `scalar` — then
/// [`max_isa`] ignores it.
pub fn env_cap() -> Result<Option<Isa>, String> {
    static ENV: OnceLock<Result<Option<Isa>, String>> = OnceLock::new();
    ENV.get_or_init(|| match std::env::var("LATENT_ISA") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse().map(Some).map_err(|e| format!("LATENT_ISA: {e}")),
        _ => Ok(None),
    })
    .clone()
}

const UNSET: u8 = u8::MAX;
/// The programmatic cap ([`set_max_isa`]); `UNSET` when none.
static OVERRIDE: AtomicU8 = AtomicU8::new(UNSET);
/// The resolved level, cached; `UNSET` until the first [`max_isa`].
static RESOLVED: AtomicU8 = AtomicU8::new(UNSET);

fn resolve() -> Isa {
    let cap = Isa::from_u8(OVERRIDE.load(Ordering::Relaxed)).or(env_cap().ok().flatten());
    cap.map_or(detected(), |c| c.min(detected()))
}

/// The instruction set latent's kernels may use: the CPU's best ([`detected`]) lowered to the
/// cap of [`set_max_isa`], else of `LATENT_ISA`. One atomic load after the first call, so
/// kernels may ask it on every call.
pub fn max_isa() -> Isa {
    match Isa::from_u8(RESOLVED.load(Ordering::Relaxed)) {
        Some(isa) => isa,
        None => {
            let isa = resolve();
            RESOLVED.store(isa as u8, Ordering::Relaxed);
            isa
        }
    }
}

/// Cap the instruction set of every kernel of this process at `cap` (`None`: back to
/// `LATENT_ISA`, else the CPU's best), and return the level now in force. Process-wide: set it
/// once, before the work starts (kernels already running finish on the level they started with).
/// A cap above the CPU's level is lowered to it.
///
/// # Example
/// ```
/// use latent_linalg::simd::{Isa, max_isa, set_max_isa};
/// let now = set_max_isa(Some(Isa::Scalar));
/// assert_eq!(now, Isa::Scalar);
/// assert_eq!(max_isa(), Isa::Scalar);
/// set_max_isa(None);
/// ```
pub fn set_max_isa(cap: Option<Isa>) -> Isa {
    OVERRIDE.store(cap.map_or(UNSET, |c| c as u8), Ordering::Relaxed);
    let isa = resolve();
    RESOLVED.store(isa as u8, Ordering::Relaxed);
    isa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
            assert_eq!(isa.to_string().to_uppercase().parse::<Isa>(), Ok(isa));
        }
        assert!(Isa::Scalar < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        assert!("sse".parse::<Isa>().is_err());
        assert!(Isa::Scalar.on_cpu());
        assert!(max_isa() <= detected());
    }
}
