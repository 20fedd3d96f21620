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

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One figure of the lecture.
pub struct Figure {
    /// Short id (`F0`, `F1`, ...).
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// The lecture's claim the figure reproduces.
    pub claim: &'static str,
    /// Computes the numbers and draws the plots into the context.
    pub run: fn(&mut Ctx) -> Result<(), String>,
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
    images: Vec<(String, String)>,
    multi: MultiProgress,
}

impl Ctx {
    /// Record a measured number (goes to metrics.json and the gallery).
    pub fn metric(&mut self, key: &str, value: impl Into<Value>) {
        self.metrics.insert(key.to_string(), value.into());
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
        if let Ok(style) = ProgressStyle::with_template("  {prefix:24} [{bar:30}] {pos}/{len} {msg} ({elapsed})") {
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
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
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
            println!("{:4} {}\n     claim: {}", f.id, f.title, f.claim);
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
    let multi = MultiProgress::new();
    let mut failed = Vec::new();
    for f in chosen {
        let dir = out.join(f.id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut ctx = Ctx {
            dir: dir.clone(),
            quick,
            seed,
            metrics: Map::new(),
            config: Map::new(),
            images: Vec::new(),
            multi: multi.clone(),
        };
        let _ = multi.println(format!("{} — {}", f.id, f.title));
        let t = Instant::now();
        let result = (f.run)(&mut ctx);
        let secs = t.elapsed().as_secs_f64();
        let record = json!({
            "id": f.id,
            "title": f.title,
            "claim": f.claim,
            "seed": seed,
            "quick": quick,
            "latent_version": env!("CARGO_PKG_VERSION"),
            "seconds": secs,
            "status": match &result { Ok(()) => "ok".to_string(), Err(e) => format!("error: {e}") },
            "config": Value::Object(ctx.config.clone()),
            "metrics": Value::Object(ctx.metrics.clone()),
            "images": ctx.images.iter().map(|(f, c)| json!({"file": f, "caption": c})).collect::<Vec<_>>(),
        });
        let mpath = dir.join("metrics.json");
        std::fs::write(&mpath, serde_json::to_string_pretty(&record).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", mpath.display()))?;
        match result {
            Ok(()) => {
                let _ = multi.println(format!("  done in {secs:.1} s → {}", dir.display()));
            }
            Err(e) => {
                let _ = multi.println(format!("  FAILED: {e}"));
                failed.push(f.id);
            }
        }
    }
    let index = write_gallery(&out, &reg)?;
    println!("gallery: {}", index.display());
    if failed.is_empty() { Ok(()) } else { Err(format!("figures failed: {}", failed.join(", "))) }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => {
                if f.abs() >= 1e-3 && f.abs() < 1e5 {
                    format!("{f:.4}")
                } else {
                    format!("{f:.4e}")
                }
            }
            _ => n.to_string(),
        },
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// Build `index.html` from every figure folder that has a `metrics.json`.
pub fn write_gallery(out: &Path, reg: &[Figure]) -> Result<PathBuf, String> {
    let mut body = String::new();
    let mut toc = String::new();
    for f in reg {
        let p = out.join(f.id).join("metrics.json");
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        let rec: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        toc += &format!("<li><a href=\"#{0}\">{0} — {1}</a></li>\n", f.id, esc(f.title));
        body += &format!("<section id=\"{}\">\n<h2>{} — {}</h2>\n", f.id, f.id, esc(f.title));
        body += &format!("<p class=\"claim\"><b>Lecture claim.</b> {}</p>\n", esc(f.claim));
        let status = rec["status"].as_str().unwrap_or("unknown");
        if status != "ok" {
            body += &format!("<p class=\"err\">{}</p>\n", esc(status));
        }
        body += &format!(
            "<p class=\"meta\">seed {} · {} · {:.1} s · latent {}</p>\n",
            rec["seed"],
            if rec["quick"].as_bool().unwrap_or(false) { "quick run" } else { "full run" },
            rec["seconds"].as_f64().unwrap_or(0.0),
            esc(rec["latent_version"].as_str().unwrap_or("?"))
        );
        if let Some(imgs) = rec["images"].as_array() {
            body += "<div class=\"imgs\">\n";
            for im in imgs {
                let file = im["file"].as_str().unwrap_or("");
                body += &format!(
                    "<figure><a href=\"{0}/{1}\"><img src=\"{0}/{1}\" alt=\"{2}\"></a><figcaption>{2}</figcaption></figure>\n",
                    f.id,
                    esc(file),
                    esc(im["caption"].as_str().unwrap_or(""))
                );
            }
            body += "</div>\n";
        }
        for (name, key) in [("Measured", "metrics"), ("Configuration", "config")] {
            if let Some(m) = rec[key].as_object().filter(|m| !m.is_empty()) {
                body += &format!("<table><caption>{name}</caption>\n");
                for (k, v) in m {
                    body += &format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), fmt_value(v));
                }
                body += "</table>\n";
            }
        }
        body += &format!("<p class=\"meta\"><a href=\"{0}/metrics.json\">metrics.json</a></p>\n</section>\n", f.id);
    }
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>latent — lecture figures</title>\n<style>\n\
body{{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\n\
section{{border-top:1px solid #ccc;padding-top:1em;margin-top:2em}}\n.claim{{background:#f4f7fb;padding:.6em;border-left:4px solid #1f77b4}}\n\
.meta{{color:#666;font-size:.9em}}.err{{color:#b00;font-weight:bold}}\n.imgs{{display:flex;flex-wrap:wrap;gap:1em}}\n\
figure{{margin:0;max-width:100%}}figure img{{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}}\n\
figcaption{{font-size:.9em;color:#444;max-width:520px}}\ntable{{border-collapse:collapse;margin:1em 0}}\n\
th,td{{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-size:.9em}}caption{{text-align:left;font-weight:bold}}\n\
</style></head><body>\n<h1>latent — the lecture's figures, reproduced</h1>\n\
<p>Generated by <code>cargo xtask reproduce-figures</code> from the data in <code>data/</code>. Every number below was measured in this run.</p>\n\
<ul>\n{toc}</ul>\n{body}</body></html>\n"
    );
    let path = out.join("index.html");
    std::fs::write(&path, html).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
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
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn unknown_figures_and_arguments_are_errors() {
        assert!(run(&["--fig".into(), "F99".into()]).unwrap_err().contains("unknown figure"));
        assert!(run(&["--bogus".into()]).is_err());
        assert!(run(&["--seed".into(), "x".into()]).is_err());
    }

    #[test]
    fn gallery_escapes_text() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(fmt_value(&json!(0.123456)), "0.1235");
        assert_eq!(fmt_value(&json!(12)), "12");
    }
}
