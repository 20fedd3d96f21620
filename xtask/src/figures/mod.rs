//! `cargo xtask reproduce-figures`: the figure registry, the per-figure output folder
//! (`metrics.json`, plots, raw numbers) and the `index.html` gallery.

pub mod plot;

mod common;
mod f0;
mod f1;
mod f10;
mod f11;
mod f12;
mod f2;
mod f3;
mod f4;
mod f5;
mod f6;
mod f7;
mod f8;
mod f9;
mod gallery;
mod machine;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One figure of the lecture.
pub struct Figure {
    /// Short id (`F0`, `F1`, ...).
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// The lecture's claim the figure reproduces. Numbers quoted from elsewhere (a paper, an
    /// earlier run) are written `«like this»`; the gallery marks them as quoted.
    pub claim: &'static str,
    /// Computes the numbers and draws the plots into the context.
    pub run: fn(&mut Ctx) -> Result<(), String>,
}

/// A comparison of a claim check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>`
    Gt,
    /// `≥`
    Ge,
    /// `<`
    Lt,
    /// `≤`
    Le,
    /// `=`
    Eq,
}

impl Cmp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => "≥",
            Cmp::Lt => "<",
            Cmp::Le => "≤",
            Cmp::Eq => "=",
        }
    }
}

/// The right-hand side of a claim check: another recorded metric or a constant.
#[derive(Debug, Clone, Copy)]
pub enum Rhs<'a> {
    /// A metric recorded before the check, by key.
    Metric(&'a str),
    /// A constant (a threshold stated in the claim).
    Value(f64),
}

/// What a figure runner works with.
pub struct Ctx {
    /// The figure's own folder.
    pub dir: PathBuf,
    /// Small sizes (CI).
    pub quick: bool,
    /// Base seed.
    pub seed: u64,
    metrics: Map<String, Value>,
    config: Map<String, Value>,
    /// Claim key → how it was checked (the boolean itself is a metric).
    claims: Map<String, Value>,
    /// Boolean metrics that report an observation, not a claim (shown neutral).
    observations: Vec<String>,
    images: Vec<(String, String)>,
    multi: MultiProgress,
}

impl Ctx {
    fn new(dir: PathBuf, quick: bool, seed: u64, multi: MultiProgress) -> Self {
        Ctx {
            dir,
            quick,
            seed,
            metrics: Map::new(),
            config: Map::new(),
            claims: Map::new(),
            observations: Vec::new(),
            images: Vec::new(),
            multi,
        }
    }
    /// Record a measured number (goes to metrics.json and the gallery). A boolean metric is a
    /// claim check (the gallery counts it and shows `false` in red) unless recorded with
    /// [`Ctx::observation`]; prefer [`Ctx::check`] or [`Ctx::claim`], which also say how it was checked.
    pub fn metric(&mut self, key: &str, value: impl Into<Value>) {
        self.metrics.insert(key.to_string(), value.into());
    }
    /// A recorded numeric metric.
    pub fn metric_f64(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).and_then(Value::as_f64)
    }
    /// Check a claim on the very metrics that state it: `key = (lhs cmp rhs)`, where `lhs` (and a
    /// [`Rhs::Metric`]) are keys of metrics recorded before. Records the boolean metric `key` and
    /// the test, and returns the outcome.
    ///
    /// # Errors
    /// When a metric is missing or not a number (a bug of the figure, not a failed claim).
    pub fn check(&mut self, key: &str, lhs: &str, cmp: Cmp, rhs: Rhs<'_>) -> Result<bool, String> {
        let get = |k: &str| self.metric_f64(k).ok_or_else(|| format!("claim `{key}`: no numeric metric `{k}`"));
        let a = get(lhs)?;
        let (b, rhs_text) = match rhs {
            Rhs::Metric(k) => (get(k)?, k.to_string()),
            Rhs::Value(v) => (v, format!("{v}")),
        };
        let holds = cmp.holds(a, b);
        let test = format!("{lhs} {} {rhs_text}", cmp.symbol());
        self.metric(key, holds);
        self.claims.insert(key.to_string(), json!({"test": test, "lhs": a, "rhs": b}));
        Ok(holds)
    }
    /// Record a claim check that is not a single comparison (e.g. a monotone sweep): the boolean
    /// metric `key` and, in words, which recorded metrics it was computed from.
    pub fn claim(&mut self, key: &str, holds: bool, test: &str) {
        self.metric(key, holds);
        self.claims.insert(key.to_string(), json!({ "test": test }));
    }
    /// Record a boolean that reports what happened without claiming it should (shown neutral).
    pub fn observation(&mut self, key: &str, value: bool) {
        self.metric(key, value);
        self.observations.push(key.to_string());
    }
    /// Record a configuration value (sizes, λ, epochs).
    pub fn config(&mut self, key: &str, value: impl Into<Value>) {
        self.config.insert(key.to_string(), value.into());
    }
    /// Register an image (already written) with its caption for the gallery.
    pub fn image(&mut self, file: &str, caption: &str) {
        self.images.push((file.to_string(), caption.to_string()));
    }
    /// Draw a chart to `<stem>.png` and `<stem>.svg` and register the PNG.
    pub fn chart(&mut self, stem: &str, caption: &str, chart: &plot::Chart, size: (u32, u32)) -> Result<(), String> {
        plot::render(chart, &self.dir.join(stem), size)?;
        self.image(&format!("{stem}.png"), caption);
        Ok(())
    }
    /// Save a canvas as `<name>` (PNG) and register it.
    pub fn canvas(&mut self, name: &str, caption: &str, c: &plot::Canvas) -> Result<(), String> {
        c.save(&self.dir.join(name))?;
        self.image(name, caption);
        Ok(())
    }
    /// Write raw numbers as JSON (`<name>.json`).
    pub fn raw(&self, name: &str, v: &Value) -> Result<(), String> {
        let p = self.dir.join(format!("{name}.json"));
        std::fs::write(&p, serde_json::to_string_pretty(v).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", p.display()))
    }
    /// Write raw numbers as CSV (`<name>.csv`) with a header row.
    pub fn csv(&self, name: &str, header: &[&str], rows: &[Vec<f64>]) -> Result<(), String> {
        let mut s = header.join(",") + "\n";
        for r in rows {
            s += &r.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
            s.push('\n');
        }
        let p = self.dir.join(format!("{name}.csv"));
        std::fs::write(&p, s).map_err(|e| format!("{}: {e}", p.display()))
    }
    /// A progress bar for a step (hidden when stderr is not a terminal).
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        if let Ok(style) =
            ProgressStyle::with_template("  {prefix:24} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ~{eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        bar
    }
    /// A spinner for a step of unknown length.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_prefix(what.to_string());
        if let Ok(style) = ProgressStyle::with_template("  {spinner} {prefix:24} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// All figures, in lecture order.
pub fn registry() -> Vec<Figure> {
    vec![
        f0::FIGURE,
        f1::FIGURE,
        f2::FIGURE,
        f3::FIGURE_F3,
        f3::FIGURE_F3B,
        f4::FIGURE,
        f5::FIGURE,
        f6::FIGURE,
        f7::FIGURE,
        f8::FIGURE,
        f9::FIGURE,
        f10::FIGURE,
        f11::FIGURE_F11,
        f11::FIGURE_F11B,
        f12::FIGURE,
    ]
}

/// Each figure's expected wall time in seconds (quick, full) on a 2-core machine: the run's
/// time-left estimate when the output folder holds no earlier run of the figure at the same size.
/// Full: one run of all figures on a quiet 2-core AMD EPYC (Zen 4, family 25 model 17) on
/// 2026-12-05 23:33 UTC (8 min 17 s in all). Quick: measured with `--fig ID` on the same machine
/// kind while other builds shared it (CPU time where the load was high).
const EXPECTED_SECONDS: [(&str, f64, f64); 15] = [
    ("F0", 1.0, 0.8),
    ("F1", 0.1, 0.1),
    ("F2", 2.4, 6.4),
    ("F3", 2.0, 57.2),
    ("F3b", 2.4, 7.5),
    ("F4", 5.2, 25.5),
    ("F5", 1.6, 4.6),
    ("F6", 12.0, 51.6),
    ("F7", 10.4, 20.3),
    ("F8", 0.2, 0.6),
    ("F9", 16.0, 71.8),
    ("F10", 12.5, 26.5),
    ("F11", 83.0, 174.2),
    ("F11b", 9.6, 49.4),
    ("F12", 4.2, 7.0),
];

/// Each figure's headline metric (printed when the figure ends). A missing key falls back to the
/// figure's first claim check, else its first number.
const HEADLINES: [(&str, &str); 15] = [
    ("F0", "patch_pixel_corr_after_zca"),
    ("F1", "error_rises_monotonically"),
    ("F2", "orientation_selectivity_learned"),
    ("F3", "mean_max_ncc_conv_among_used"),
    ("F3b", "psnr_db"),
    ("F4", "smoothness_ratio_topographic"),
    ("F5", "with_kl_dead_units"),
    ("F6", "code_sizes_where_deep_is_better"),
    ("F7", "mask50_test_mse_vs_clean"),
    ("F8", "fraction_arrows_towards_manifold"),
    ("F9", "unet_iou"),
    ("F10", "k10_test_mse_8bit"),
    ("F11", "recommended_worst_seed_pixel_auroc_min_over_textures"),
    ("F11b", "mnist_ae_mean_auroc"),
    ("F12", "random50_psnr_restored_db"),
];

fn expected_from_table(id: &str, quick: bool) -> f64 {
    EXPECTED_SECONDS.iter().find(|(i, ..)| *i == id).map_or(30.0, |&(_, q, f)| if quick { q } else { f })
}

/// A figure's expected wall time: its time in the previous run of the same size in `out`
/// (`metrics.json`), else the built-in table. The flag says whether the previous run was used.
fn expected_seconds(out: &Path, id: &str, quick: bool) -> (f64, bool) {
    let prev = std::fs::read_to_string(out.join(id).join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|r| r["quick"].as_bool() == Some(quick) && r["status"] == "ok")
        .and_then(|r| r["seconds"].as_f64())
        .filter(|s| s.is_finite() && *s > 0.0);
    match prev {
        Some(s) => (s, true),
        None => (expected_from_table(id, quick), false),
    }
}

/// The headline of a finished figure: `key = value` for its headline metric (see [`HEADLINES`]),
/// else its first boolean metric, else its first number.
pub fn headline(id: &str, metrics: &Map<String, Value>) -> String {
    let wanted = HEADLINES.iter().find(|(i, _)| *i == id).map(|(_, k)| *k);
    let pick = wanted
        .and_then(|k| metrics.get(k).map(|v| (k, v)))
        .or_else(|| metrics.iter().find(|(_, v)| v.is_boolean()).map(|(k, v)| (k.as_str(), v)))
        .or_else(|| metrics.iter().find(|(_, v)| v.is_number()).map(|(k, v)| (k.as_str(), v)));
    match pick {
        Some((k, v)) => format!("{k} = {}", plain_value(v)),
        None => "no metrics".into(),
    }
}

fn plain_value(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.4}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every boolean in a metrics object, with its path (`a/b` for nested objects).
fn booleans(m: &Map<String, Value>) -> Vec<(String, bool)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, bool)>) {
        match v {
            Value::Bool(b) => out.push((prefix.to_string(), *b)),
            Value::Object(o) => {
                for (k, x) in o {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}/{k}") }, x, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in m {
        walk(k, v, &mut out);
    }
    out
}

/// The claim checks of a `metrics.json` record: every boolean metric that is not an observation,
/// as (key, holds).
fn claim_checks(rec: &Value) -> Vec<(String, bool)> {
    let obs: Vec<&str> =
        rec["observations"].as_array().map_or(Vec::new(), |a| a.iter().filter_map(Value::as_str).collect());
    rec["metrics"]
        .as_object()
        .map_or(Vec::new(), |m| booleans(m).into_iter().filter(|(k, _)| !obs.contains(&k.as_str())).collect())
}

fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{} h {:02} min", (s / 3600.0) as u64, (s % 3600.0 / 60.0) as u64)
    }
}

/// The run's progress: on a terminal, a bar for the whole run and one for the current figure,
/// each with an estimate of the time left; elsewhere nothing until a figure ends.
struct RunProgress {
    terminal: bool,
    run_bar: ProgressBar,
    fig_bar: ProgressBar,
    /// Expected seconds of every chosen figure, in order.
    expected: Vec<f64>,
    source: &'static str,
    /// Actual and expected seconds of the figures done so far.
    done_actual: f64,
    done_expected: f64,
}

impl RunProgress {
    fn new(multi: &MultiProgress, terminal: bool, expected: Vec<f64>, source: &'static str) -> Self {
        let (run_bar, fig_bar) = if terminal {
            let r = multi.add(ProgressBar::new(1000));
            if let Ok(s) = ProgressStyle::with_template("{prefix:8} [{bar:40.cyan/blue}] {percent:>3}% {msg}") {
                r.set_style(s.progress_chars("=> "));
            }
            r.set_prefix("run");
            let f = multi.add(ProgressBar::new(1000));
            if let Ok(s) = ProgressStyle::with_template("{prefix:8} [{bar:40.green/white}] {msg}") {
                f.set_style(s.progress_chars("=> "));
            }
            (r, f)
        } else {
            (ProgressBar::hidden(), ProgressBar::hidden())
        };
        RunProgress { terminal, run_bar, fig_bar, expected, source, done_actual: 0.0, done_expected: 0.0 }
    }
    /// How much slower (> 1) or faster this machine runs than expected, from the figures done.
    fn speed(&self) -> f64 {
        if self.done_expected > 1.0 { (self.done_actual / self.done_expected).clamp(0.2, 5.0) } else { 1.0 }
    }
    /// Redraw both bars `elapsed` seconds into figure number `i`.
    fn tick(&self, i: usize, id: &str, elapsed: f64) {
        if !self.terminal {
            return;
        }
        let speed = self.speed();
        let exp_now = self.expected[i] * speed;
        let left_now = (exp_now - elapsed).max(0.0);
        let left_rest: f64 = self.expected[i + 1..].iter().sum::<f64>() * speed;
        let left = left_now + left_rest;
        let spent = self.done_actual + elapsed;
        self.run_bar.set_position((1000.0 * spent / (spent + left).max(1e-9)) as u64);
        self.run_bar.set_message(format!(
            "figure {}/{} · {} spent · ~{} left (estimate from {})",
            i + 1,
            self.expected.len(),
            fmt_secs(spent),
            fmt_secs(left),
            self.source
        ));
        self.fig_bar.set_prefix(id.to_string());
        self.fig_bar.set_position((1000.0 * (elapsed / exp_now.max(1e-9)).min(0.999)) as u64);
        self.fig_bar.set_message(if elapsed <= exp_now {
            format!("{} of ~{} · ~{} left", fmt_secs(elapsed), fmt_secs(exp_now), fmt_secs(left_now))
        } else {
            format!(
                "{} · {} longer than the expected ~{}",
                fmt_secs(elapsed),
                fmt_secs(elapsed - exp_now),
                fmt_secs(exp_now)
            )
        });
    }
    fn finish_figure(&mut self, i: usize, secs: f64) {
        self.done_actual += secs;
        self.done_expected += self.expected[i];
    }
    fn finish(&self) {
        self.fig_bar.finish_and_clear();
        self.run_bar.finish_and_clear();
    }
}

const USAGE: &str = "usage: cargo xtask reproduce-figures [--list] [--fig ID]... [--quick] [--out DIR] [--seed N]";

/// Entry point of the task.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut ids: Vec<String> = Vec::new();
    let mut quick = false;
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/figures"));
    let mut seed = 0u64;
    let mut list = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => list = true,
            "--quick" => quick = true,
            "--fig" => ids.push(it.next().ok_or("--fig needs an id")?.clone()),
            "--out" => out = it.next().ok_or("--out needs a directory")?.into(),
            "--seed" => seed = it.next().ok_or("--seed needs a number")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let reg = registry();
    if list {
        for f in &reg {
            println!(
                "{:4} {} (~{} full, ~{} quick)\n     claim: {}",
                f.id,
                f.title,
                fmt_secs(expected_from_table(f.id, false)),
                fmt_secs(expected_from_table(f.id, true)),
                f.claim
            );
        }
        return Ok(());
    }
    let chosen: Vec<&Figure> = if ids.is_empty() {
        reg.iter().collect()
    } else {
        ids.iter()
            .map(|id| {
                reg.iter().find(|f| f.id.eq_ignore_ascii_case(id)).ok_or_else(|| {
                    format!("unknown figure `{id}`; known: {}", reg.iter().map(|f| f.id).collect::<Vec<_>>().join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let terminal = std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let expected: Vec<(f64, bool)> = chosen.iter().map(|f| expected_seconds(&out, f.id, quick)).collect();
    let source = match (expected.iter().all(|e| e.1), expected.iter().any(|e| e.1)) {
        (true, _) => "the previous run's durations",
        (false, true) => "the previous run's durations and the built-in table",
        (false, false) => "the built-in table of durations",
    };
    let mut progress = RunProgress::new(&multi, terminal, expected.iter().map(|e| e.0).collect(), source);
    let machine = machine::describe();
    let started = machine::now_unix();
    let run_info = json!({
        "started_unix": started,
        "started_utc": machine::utc(started),
        "machine": machine,
        "seed": seed,
        "quick": quick,
        "latent_version": env!("CARGO_PKG_VERSION"),
    });
    let say = |line: String| {
        if terminal {
            let _ = multi.println(line);
        } else {
            println!("{line}");
        }
    };
    let t_run = Instant::now();
    let mut failed = Vec::new();
    let mut done: Vec<Value> = Vec::new();
    for (i, f) in chosen.iter().enumerate() {
        let dir = out.join(f.id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut ctx = Ctx::new(dir.clone(), quick, seed, multi.clone());
        if terminal {
            let _ = multi.println(format!("{} — {}", f.id, f.title));
        }
        let t = Instant::now();
        let cpu0 = machine::cpu_seconds();
        let stop = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            if terminal {
                let (progress, stop) = (&progress, &stop);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        progress.tick(i, f.id, t.elapsed().as_secs_f64());
                        std::thread::sleep(Duration::from_millis(250));
                    }
                });
            }
            let r = (f.run)(&mut ctx);
            stop.store(true, Ordering::Relaxed);
            r
        });
        let secs = t.elapsed().as_secs_f64();
        let cpu = machine::cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        progress.finish_figure(i, secs);
        let record = json!({
            "id": f.id,
            "title": f.title,
            "claim": f.claim,
            "seed": seed,
            "quick": quick,
            "latent_version": env!("CARGO_PKG_VERSION"),
            "seconds": secs,
            "cpu_seconds": cpu,
            "load_average": machine::load_average(),
            "status": match &result { Ok(()) => "ok".to_string(), Err(e) => format!("error: {e}") },
            "run": run_info.clone(),
            "config": Value::Object(ctx.config.clone()),
            "metrics": Value::Object(ctx.metrics.clone()),
            "claims": Value::Object(ctx.claims.clone()),
            "observations": ctx.observations.clone(),
            "images": ctx.images.iter().map(|(f, c)| json!({"file": f, "caption": c})).collect::<Vec<_>>(),
        });
        let mpath = dir.join("metrics.json");
        std::fs::write(&mpath, serde_json::to_string_pretty(&record).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", mpath.display()))?;
        let checks = claim_checks(&record);
        let failing: Vec<&str> = checks.iter().filter(|c| !c.1).map(|c| c.0.as_str()).collect();
        let claims = if checks.is_empty() {
            String::new()
        } else if failing.is_empty() {
            format!(" · {} claim check{} hold", checks.len(), if checks.len() == 1 { "" } else { "s" })
        } else {
            format!(" · {} of {} claim checks FAIL: {}", failing.len(), checks.len(), failing.join(", "))
        };
        match &result {
            Ok(()) => say(format!(
                "{:4} done in {:6.1} s{} · {}{claims}",
                f.id,
                secs,
                cpu.map_or(String::new(), |c| format!(" (CPU {c:.1} s)")),
                headline(f.id, &ctx.metrics)
            )),
            Err(e) => {
                say(format!("{:4} FAILED after {secs:.1} s: {e}{claims}", f.id));
                failed.push(f.id);
            }
        }
        done.push(json!({"id": f.id, "seconds": secs, "cpu_seconds": cpu, "status": record["status"]}));
    }
    progress.finish();
    let total = t_run.elapsed().as_secs_f64();
    let mut info = run_info;
    if let Some(o) = info.as_object_mut() {
        o.insert("finished_utc".into(), json!(machine::utc(machine::now_unix())));
        o.insert("total_seconds".into(), json!(total));
        o.insert("figures".into(), json!(done));
    }
    let rpath = out.join("run.json");
    std::fs::write(&rpath, serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", rpath.display()))?;
    say(format!("all {} figure(s) in {} ({total:.1} s)", chosen.len(), fmt_secs(total)));
    let index = gallery::write_gallery(&out, &reg)?;
    println!("gallery: {}", index.display());
    if failed.is_empty() { Ok(()) } else { Err(format!("figures failed: {}", failed.join(", "))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("latent-figs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn quick_toy_figure_writes_metrics_plots_and_gallery() {
        let out = tmp("f1");
        let args: Vec<String> = ["--fig", "F1", "--quick", "--out"]
            .iter()
            .map(|s| s.to_string())
            .chain([out.display().to_string()])
            .collect();
        run(&args).unwrap();
        let rec: Value = serde_json::from_str(&std::fs::read_to_string(out.join("F1/metrics.json")).unwrap()).unwrap();
        assert_eq!(rec["status"], "ok");
        assert_eq!(rec["metrics"]["error_rises_monotonically"], true);
        assert_eq!(rec["metrics"]["l0_falls_monotonically"], true);
        for f in ["tradeoff.png", "tradeoff.svg", "lambda_0.png", "lambda_sweep.csv"] {
            assert!(out.join("F1").join(f).is_file(), "{f} missing");
        }
        let png = std::fs::read(out.join("F1/tradeoff.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let html = std::fs::read_to_string(out.join("index.html")).unwrap();
        assert!(html.contains("id=\"F1\"") && html.contains("F1/tradeoff.png") && html.contains("Lecture claim"));
        assert!(html.contains("2 claim checks over 1 figure(s), 0 failed"), "{html}");
        assert!(rec["seconds"].as_f64().unwrap() > 0.0 && rec["run"]["machine"]["threads"].as_u64().unwrap() >= 1);
        let run_json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(run_json["figures"][0]["id"], "F1");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn unknown_figures_and_arguments_are_errors() {
        assert!(run(&["--fig".into(), "F99".into()]).unwrap_err().contains("unknown figure"));
        assert!(run(&["--bogus".into()]).is_err());
        assert!(run(&["--seed".into(), "x".into()]).is_err());
    }

    #[test]
    fn claim_checks_use_the_recorded_metrics() {
        let mut ctx = Ctx::new(tmp("ctx"), true, 0, MultiProgress::new());
        ctx.metric("iou", 0.849_99);
        ctx.metric("baseline_iou", 0.7);
        assert!(!ctx.check("iou_at_least_0_85", "iou", Cmp::Ge, Rhs::Value(0.85)).unwrap());
        assert!(ctx.check("beats_baseline", "iou", Cmp::Gt, Rhs::Metric("baseline_iou")).unwrap());
        assert!(ctx.check("x", "missing", Cmp::Gt, Rhs::Value(0.0)).is_err());
        ctx.claim("monotone", true, "iou rises");
        ctx.observation("happened", false);
        assert_eq!(ctx.metrics["iou_at_least_0_85"], false);
        assert_eq!(ctx.claims["beats_baseline"]["test"], "iou > baseline_iou");
        let rec = json!({
            "metrics": Value::Object(ctx.metrics.clone()),
            "observations": ctx.observations.clone(),
        });
        let checks = claim_checks(&rec);
        assert_eq!(checks.len(), 3, "{checks:?}");
        assert!(checks.contains(&("iou_at_least_0_85".to_string(), false)));
        assert!(!checks.iter().any(|c| c.0 == "happened"));
        // nested booleans count too
        let nested = json!({"metrics": {"a": {"b": false, "c": 1.0}}});
        assert_eq!(claim_checks(&nested), vec![("a/b".to_string(), false)]);
    }

    #[test]
    fn headline_falls_back_to_a_claim_then_a_number() {
        let mut m = Map::new();
        m.insert("n".into(), json!(3));
        assert_eq!(headline("F99", &m), "n = 3");
        m.insert("ok".into(), json!(true));
        assert_eq!(headline("F99", &m), "ok = true");
        m.insert("unet_iou".into(), json!(0.912_34));
        assert_eq!(headline("F9", &m), "unet_iou = 0.9123");
    }

    #[test]
    fn every_figure_has_an_expected_duration_and_a_headline() {
        for f in registry() {
            assert!(EXPECTED_SECONDS.iter().any(|e| e.0 == f.id), "{} has no expected duration", f.id);
            assert!(HEADLINES.iter().any(|e| e.0 == f.id), "{} has no headline", f.id);
        }
    }

    #[test]
    fn quoted_markers_are_balanced_in_every_claim() {
        for f in registry() {
            assert_eq!(f.claim.matches('«').count(), f.claim.matches('»').count(), "{}", f.id);
        }
    }

    #[test]
    fn gallery_flags_failed_claims_and_shows_wall_time() {
        let out = tmp("gallery");
        let reg = registry();
        let dir = out.join("F1");
        std::fs::create_dir_all(&dir).unwrap();
        let rec = json!({
            "id": "F1", "seed": 0, "quick": true, "latent_version": "0", "seconds": 83.0, "status": "ok",
            "run": {"started_unix": 5, "started_utc": "1970-01-01 00:00:05 UTC"},
            "config": {"paper": "«X et al. report 0.99»"},
            "metrics": {"error_rises_monotonically": false, "l0_falls_monotonically": true},
            "claims": {"error_rises_monotonically": {"test": "mean_reconstruction_error rises with λ"}},
            "observations": [], "images": [],
        });
        std::fs::write(dir.join("metrics.json"), rec.to_string()).unwrap();
        let run = json!({"started_unix": 5, "started_utc": "1970-01-01 00:00:05 UTC", "finished_utc": "1970-01-01 00:01:28 UTC",
            "machine": machine::describe(), "seed": 0, "quick": true, "total_seconds": 83.0, "figures": [{"id": "F1"}]});
        std::fs::write(out.join("run.json"), run.to_string()).unwrap();
        let html = std::fs::read_to_string(gallery::write_gallery(&out, &reg).unwrap()).unwrap();
        assert!(html.contains("2 claim checks over 1 figure(s), 1 failed"), "{html}");
        assert!(html.contains("<code>error_rises_monotonically</code> (mean_reconstruction_error rises with λ)"));
        assert!(html.contains("wall time 1 min 23 s"));
        assert!(html.contains("class=\"quoted\"") && html.contains("X et al. report 0.99</span>"));
        assert!(html.contains("-bit vector instructions") && html.contains("quick (CI sizes"));
        std::fs::remove_dir_all(&out).unwrap();
    }
}
