//! What the run measured on: the machine (CPU name, family/model, vector width), the number of
//! threads and the date, for the gallery's header and every `metrics.json`.

use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first value of `key` in `/proc/cpuinfo` (Linux), if any.
fn cpuinfo(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The widest SIMD vector the CPU offers (bits) and its instruction-set name, detected at run time.
pub fn vector_width() -> (u32, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return (512, "AVX-512F");
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return (256, "AVX2+FMA");
        }
        if std::arch::is_x86_feature_detected!("avx") {
            return (256, "AVX");
        }
        (128, "SSE2")
    }
    #[cfg(target_arch = "aarch64")]
    {
        (128, "NEON")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        (0, "scalar")
    }
}

/// Worker threads the run uses: the cores available, capped by `RAYON_NUM_THREADS` when set (as
/// rayon's global pool does).
pub fn threads() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => cores,
    }
}

/// The machine as a JSON object: CPU name, vendor, family, model, vector width, cores, threads.
pub fn describe() -> Value {
    let (bits, isa) = vector_width();
    json!({
        "cpu": cpuinfo("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        "cpu_vendor": cpuinfo("vendor_id").unwrap_or_default(),
        "cpu_family": cpuinfo("cpu family").unwrap_or_default(),
        "cpu_model": cpuinfo("model").unwrap_or_default(),
        "vector_width_bits": bits,
        "vector_isa": isa,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "threads": threads(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// One line for humans: `AMD EPYC (family 25, model 17), 512-bit vector instructions (AVX-512F), 2
/// threads on 2 cores` (the instruction set's width; a CPU may execute it on narrower units).
pub fn summary(m: &Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
    let mut id = Vec::new();
    if !s("cpu_family").is_empty() {
        id.push(format!("family {}", s("cpu_family")));
    }
    if !s("cpu_model").is_empty() {
        id.push(format!("model {}", s("cpu_model")));
    }
    format!(
        "{}{}, {}-bit vector instructions ({}), {} thread{} on {} core{}",
        s("cpu"),
        if id.is_empty() { String::new() } else { format!(" ({})", id.join(", ")) },
        m["vector_width_bits"],
        s("vector_isa"),
        m["threads"],
        if m["threads"].as_u64() == Some(1) { "" } else { "s" },
        m["cores"],
        if m["cores"].as_u64() == Some(1) { "" } else { "s" },
    )
}

/// CPU time (user + system, all threads) this process has used so far, in seconds, from
/// `/proc/self/stat` (Linux, USER_HZ = 100); `None` elsewhere. On a busy machine the wall time of a
/// figure grows with the load, its CPU time much less.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The 1-minute load average (Linux), to read a wall time against: above the thread count, other
/// processes competed for the cores.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the Unix epoch (proleptic Gregorian calendar).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_439_845), "2026-12-05 03:04:05 UTC");
    }

    #[test]
    fn cpu_time_grows() {
        if let Some(a) = cpu_seconds() {
            let mut x = 0u64;
            let t = std::time::Instant::now();
            while t.elapsed().as_millis() < 60 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            }
            std::hint::black_box(x);
            assert!(cpu_seconds().unwrap_or(0.0) >= a);
        }
    }

    #[test]
    fn machine_is_described() {
        let m = describe();
        assert!(m["threads"].as_u64().unwrap_or(0) >= 1);
        let s = summary(&m);
        assert!(s.contains("-bit vector instructions") && s.contains("thread"), "{s}");
    }
}
