//! The `index.html` gallery: a header that says what this run measured (date, machine, threads,
//! seed, sizes, wall time), a summary of the claim checks (failures listed and shown in red), and
//! one section per figure with its wall time, plots, claim checks, metrics and configuration.
//! Text written `«like this»` (a number quoted from a paper or an earlier run) is marked as quoted.

use super::{Figure, claim_checks, fmt_secs, machine};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The tooltip of a quoted number.
const QUOTED_TITLE: &str = "quoted from elsewhere (a paper or an earlier run), not measured in this run";

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escape `s` for HTML and turn every `«…»` into a quoted span (unbalanced markers are kept as
/// text).
pub(super) fn rich(s: &str, _id: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(a) = rest.find('«') {
        let after = &rest[a + '«'.len_utf8()..];
        let Some(b) = after.find('»') else { break };
        out += &esc(&rest[..a]);
        out += &format!("<span class=\"quoted\" title=\"{QUOTED_TITLE}\">{}</span>", esc(&after[..b]));
        rest = &after[b + '»'.len_utf8()..];
    }
    out + &esc(rest)
}

/// Whether a text holds a quoted (`«…»`) part.
pub(super) fn has_quoted(s: &str, id: &str) -> bool {
    rich(s, id).contains("class=\"quoted\"")
}

pub(super) fn fmt_value(v: &Value, id: &str) -> String {
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
        Value::Bool(true) => "<span class=\"pass\">✓ true</span>".into(),
        Value::Bool(false) => "<span class=\"fail\">✗ false</span>".into(),
        Value::String(s) => rich(s, id),
        Value::Object(o) if o.values().any(Value::is_boolean) => {
            let parts: Vec<String> = o.iter().map(|(k, x)| format!("{}: {}", esc(k), fmt_value(x, id))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => rich(&other.to_string(), id),
    }
}

/// A number with enough digits to see which side of a threshold it is on.
fn precise(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() != 0.0 => format!("{f:.6}"),
        Some(f) => format!("{f}"),
        None => esc(&v.to_string()),
    }
}

struct Loaded<'a> {
    fig: &'a Figure,
    rec: Value,
}

/// Build `index.html` from every figure folder that has a `metrics.json`, and `run.json` (the
/// last invocation) for the header.
pub fn write_gallery(out: &Path, reg: &[Figure]) -> Result<PathBuf, String> {
    let mut figs = Vec::new();
    for f in reg {
        let p = out.join(f.id).join("metrics.json");
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        let rec: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        figs.push(Loaded { fig: f, rec });
    }
    let run: Value = std::fs::read_to_string(out.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let this_run = run["started_unix"].as_u64();
    let from_this_run = |rec: &Value| this_run.is_some() && rec["run"]["started_unix"].as_u64() == this_run;

    // header: what this run measured
    let mut head = String::new();
    if run.is_object() {
        let ran: Vec<&str> =
            run["figures"].as_array().map_or(Vec::new(), |a| a.iter().filter_map(|f| f["id"].as_str()).collect());
        head += "<table class=\"run\"><caption>Measured in this run</caption>\n";
        let rows = [
            (
                "date",
                format!(
                    "{} to {}",
                    esc(run["started_utc"].as_str().unwrap_or("?")),
                    esc(run["finished_utc"].as_str().unwrap_or("?"))
                ),
            ),
            ("machine", esc(&machine::summary(&run["machine"]))),
            ("threads", run["machine"]["threads"].to_string()),
            ("seed", run["seed"].to_string()),
            (
                "sizes",
                if run["quick"].as_bool().unwrap_or(false) {
                    "quick (CI sizes: smaller data, fewer epochs)".into()
                } else {
                    "full".into()
                },
            ),
            (
                "total wall time",
                format!("{} for {} figure(s)", fmt_secs(run["total_seconds"].as_f64().unwrap_or(0.0)), ran.len()),
            ),
            ("figures run", esc(&ran.join(", "))),
            ("latent", esc(run["latent_version"].as_str().unwrap_or("?"))),
        ];
        for (k, v) in rows {
            head += &format!("<tr><th>{k}</th><td>{v}</td></tr>\n");
        }
        head += "</table>\n";
        let older: Vec<String> = figs
            .iter()
            .filter(|l| !from_this_run(&l.rec))
            .map(|l| format!("{} ({})", l.fig.id, esc(l.rec["run"]["started_utc"].as_str().unwrap_or("date unknown"))))
            .collect();
        if !older.is_empty() {
            head += &format!(
                "<p class=\"older\">Shown from earlier runs in this folder (not re-measured now): {}.</p>\n",
                older.join(", ")
            );
        }
    } else {
        head += "<p class=\"older\">No run.json in this folder: the run that produced these figures is unknown.</p>\n";
    }

    // claim summary
    let mut n_checks = 0;
    let mut failing: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for l in &figs {
        for (k, ok) in claim_checks(&l.rec) {
            n_checks += 1;
            if !ok {
                let test =
                    l.rec["claims"][k.as_str()]["test"].as_str().map(|t| format!(" ({})", esc(t))).unwrap_or_default();
                failing.push(format!("<a href=\"#{0}\">{0}</a>: <code>{1}</code>{test}", l.fig.id, esc(&k)));
            }
        }
        let status = l.rec["status"].as_str().unwrap_or("unknown");
        if status != "ok" {
            errors.push(format!("<a href=\"#{0}\">{0}</a>: {1}", l.fig.id, esc(status)));
        }
    }
    let mut summary = format!(
        "<div class=\"summary {}\"><b>{n_checks} claim check{} over {} figure(s), {} failed.</b>",
        if failing.is_empty() && errors.is_empty() { "ok" } else { "bad" },
        if n_checks == 1 { "" } else { "s" },
        figs.len(),
        failing.len()
    );
    if !failing.is_empty() {
        summary += &format!(
            "<br>Failed claims:<ul>{}</ul>",
            failing.iter().map(|f| format!("<li>{f}</li>")).collect::<String>()
        );
    }
    if !errors.is_empty() {
        summary += &format!(
            "<br>Figures that stopped with an error:<ul>{}</ul>",
            errors.iter().map(|f| format!("<li>{f}</li>")).collect::<String>()
        );
    }
    summary += "</div>\n";

    let mut toc = String::from("<table class=\"toc\"><tr><th>figure</th><th>wall time</th><th>claims</th></tr>\n");
    let mut body = String::new();
    for l in &figs {
        let (f, rec) = (l.fig, &l.rec);
        let checks = claim_checks(rec);
        let bad = checks.iter().filter(|c| !c.1).count();
        let secs = rec["seconds"].as_f64().unwrap_or(0.0);
        let status = rec["status"].as_str().unwrap_or("unknown");
        toc += &format!(
            "<tr><td><a href=\"#{0}\">{0} — {1}</a>{2}</td><td>{3}</td><td>{4}</td></tr>\n",
            f.id,
            esc(f.title),
            if from_this_run(rec) { "" } else { " <span class=\"older\">(earlier run)</span>" },
            fmt_secs(secs),
            if status != "ok" {
                "<span class=\"fail\">error</span>".into()
            } else if checks.is_empty() {
                "—".into()
            } else if bad == 0 {
                format!("<span class=\"pass\">{} of {} hold</span>", checks.len(), checks.len())
            } else {
                format!("<span class=\"fail\">{bad} of {} failed</span>", checks.len())
            }
        );
        body += &format!("<section id=\"{}\">\n<h2>{} — {}</h2>\n", f.id, f.id, esc(f.title));
        body += &format!("<p class=\"claim\"><b>Lecture claim.</b> {}</p>\n", rich(f.claim, f.id));
        if status != "ok" {
            body += &format!("<p class=\"err\">{}</p>\n", esc(status));
        }
        body += &format!(
            "<p class=\"meta\"><b>wall time {}</b> ({secs:.1} s{}) · seed {} · {} · {} · latent {}</p>\n",
            fmt_secs(secs),
            match (rec["cpu_seconds"].as_f64(), rec["load_average"].as_f64()) {
                (Some(c), Some(l)) => format!(", CPU {c:.1} s, load average {l:.1} at the end"),
                (Some(c), None) => format!(", CPU {c:.1} s"),
                _ => String::new(),
            },
            rec["seed"],
            if rec["quick"].as_bool().unwrap_or(false) { "quick run" } else { "full run" },
            match rec["run"]["started_utc"].as_str() {
                Some(d) if from_this_run(rec) => format!("this run ({})", esc(d)),
                Some(d) => format!("<span class=\"older\">earlier run ({})</span>", esc(d)),
                None => "<span class=\"older\">run unknown</span>".into(),
            },
            esc(rec["latent_version"].as_str().unwrap_or("?"))
        );
        if let Some(imgs) = rec["images"].as_array() {
            body += "<div class=\"imgs\">\n";
            for im in imgs {
                let file = im["file"].as_str().unwrap_or("");
                let cap = im["caption"].as_str().unwrap_or("");
                body += &format!(
                    "<figure><a href=\"{0}/{1}\"><img src=\"{0}/{1}\" alt=\"{2}\"></a><figcaption>{3}</figcaption></figure>\n",
                    f.id,
                    esc(file),
                    esc(cap),
                    rich(cap, f.id)
                );
            }
            body += "</div>\n";
        }
        if !checks.is_empty() {
            body += "<table class=\"checks\"><caption>Claim checks (computed from the metrics below)</caption>\n";
            body += "<tr><th>check</th><th>test</th><th>values</th><th>outcome</th></tr>\n";
            for (k, ok) in &checks {
                let c = &rec["claims"][k.as_str()];
                let values = match (c.get("lhs"), c.get("rhs")) {
                    (Some(a), Some(b)) => format!("{} vs {}", precise(a), precise(b)),
                    _ => String::new(),
                };
                body += &format!(
                    "<tr class=\"{}\"><th>{}</th><td>{}</td><td>{values}</td><td>{}</td></tr>\n",
                    if *ok { "pass" } else { "fail" },
                    esc(k),
                    c["test"].as_str().map_or_else(|| "boolean metric".to_string(), esc),
                    fmt_value(&Value::Bool(*ok), f.id)
                );
            }
            body += "</table>\n";
        }
        for (name, key) in [("Measured", "metrics"), ("Configuration", "config")] {
            if let Some(m) = rec[key].as_object().filter(|m| !m.is_empty()) {
                body += &format!("<table><caption>{name}</caption>\n");
                for (k, v) in m {
                    let quoted = v.as_str().is_some_and(|s| has_quoted(s, f.id));
                    body += &format!(
                        "<tr{}><th>{}</th><td>{}</td></tr>\n",
                        if v == &Value::Bool(false) { " class=\"fail\"" } else { "" },
                        esc(k),
                        if quoted {
                            format!("{} <span class=\"tag\">quoted</span>", fmt_value(v, f.id))
                        } else {
                            fmt_value(v, f.id)
                        }
                    );
                }
                body += "</table>\n";
            }
        }
        body += &format!("<p class=\"meta\"><a href=\"{0}/metrics.json\">metrics.json</a></p>\n</section>\n", f.id);
    }
    toc += "</table>\n";
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>latent — lecture figures</title>\n<style>\n\
body{{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\n\
section{{border-top:1px solid #ccc;padding-top:1em;margin-top:2em}}\n.claim{{background:#f4f7fb;padding:.6em;border-left:4px solid #1f77b4}}\n\
.meta{{color:#666;font-size:.9em}}.err{{color:#b00;font-weight:bold}}\n.imgs{{display:flex;flex-wrap:wrap;gap:1em}}\n\
figure{{margin:0;max-width:100%}}figure img{{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}}\n\
figcaption{{font-size:.9em;color:#444;max-width:520px}}\ntable{{border-collapse:collapse;margin:1em 0}}\n\
th,td{{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-size:.9em}}caption{{text-align:left;font-weight:bold}}\n\
.pass{{color:#176b1f}}.fail{{color:#b00;font-weight:bold}}tr.fail{{background:#fde8e8}}tr.fail th,tr.fail td{{color:#b00}}\n\
.quoted{{background:#fff4cc;border-bottom:1px dashed #a67c00;font-style:italic}}.quoted::after{{content:\" [quoted]\";font-size:.75em;color:#a67c00;font-style:normal}}\n\
.tag{{font-size:.75em;color:#a67c00}}.older{{color:#a65e00}}\n\
.summary{{padding:.6em;margin:1em 0;border-left:6px solid}}.summary.ok{{background:#eef8ee;border-color:#2a8a2a}}.summary.bad{{background:#fde8e8;border-color:#b00}}\n\
</style></head><body>\n<h1>latent — the lecture's figures, reproduced</h1>\n\
<p>Generated by <code>cargo xtask reproduce-figures</code> from the data in <code>data/</code>. The numbers, plots \
and wall times below were measured in the run described here, except text marked \
<span class=\"quoted\" title=\"{QUOTED_TITLE}\">like this</span>, which is quoted from elsewhere (a paper, or \
a validation score of an earlier run) and was not measured now.</p>\n\
{head}{summary}\
<p class=\"meta\">Legend: <span class=\"pass\">✓ true</span> a claim check that holds; <span class=\"fail\">✗ false</span> a \
claim check that fails (also listed above); <span class=\"quoted\" title=\"{QUOTED_TITLE}\">text</span> quoted, not measured.</p>\n\
{toc}{body}</body></html>\n"
    );
    let path = out.join("index.html");
    std::fs::write(&path, html).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoted_markers_become_spans() {
        let h = rich("ours 0.91 vs «Foo et al. report 0.95» & more", "F9");
        assert!(h.contains("ours 0.91 vs <span class=\"quoted\""), "{h}");
        assert!(h.contains(">Foo et al. report 0.95</span> &amp; more"), "{h}");
        assert_eq!(rich("no «closing", "F9"), "no «closing");
        assert!(!has_quoted("Bergmann et al. report ≈ 0.98 mean one-class MNIST AUROC", "F11b"));
        // every figure whose text quotes a number marks it
        for fig in super::super::registry() {
            if fig.claim.contains("report") || fig.claim.contains("quoted") {
                assert!(has_quoted(fig.claim, fig.id), "{}: a quoted number without «…»", fig.id);
            }
        }
    }

    #[test]
    fn values_are_formatted() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(fmt_value(&json!(0.123456), "F1"), "0.1235");
        assert_eq!(fmt_value(&json!(12), "F1"), "12");
        assert!(fmt_value(&json!(false), "F1").contains("class=\"fail\""));
        assert!(fmt_value(&json!(true), "F1").contains("class=\"pass\""));
    }
}
