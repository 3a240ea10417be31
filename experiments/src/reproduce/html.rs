//! `results/index.html`: the reproduction report as one self-contained page — SVG figures inlined, PNG
//! figures as base64 `data:` URLs, one inline style sheet, no scripts and no external assets — so it opens
//! offline in any browser and can be mailed or archived as one file. `REPORT.md` stays for GitHub.
//!
//! The page: a header (profile, wall time, machine, `mathnn` version, date), a table of contents, and per
//! experiment its claim, a provenance badge (real / generated / mixed data), the paper-vs-ours table, every
//! figure with its caption, and the notes. `scripts/check-html-report.sh` renders it in headless Chromium
//! (no broken image, every figure captioned, fits 1280 px) and takes the screenshot in `docs/`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use base64::Engine as _;

use super::{ExperimentResult, Figure, Profile};

/// What the header says about the run as a whole.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub profile: Profile,
    pub total_seconds: f64,
    /// CPU model, cores and OS (see [`machine_description`]).
    pub machine: String,
    /// `mathnn` and its version.
    pub version: String,
    /// UTC date and time the report was written, `YYYY-MM-DD HH:MM UTC`.
    pub written: String,
}

impl ReportMeta {
    /// This process's machine, version and the current time.
    pub fn now(profile: Profile, total_seconds: f64) -> Self {
        Self {
            profile,
            total_seconds,
            machine: machine_description(),
            version: format!("mathnn {}", env!("CARGO_PKG_VERSION")),
            written: utc_now(),
        }
    }
}

/// `claim_of(name)` gives an experiment's claim (one paragraph); `root` is the results directory holding
/// `<experiment>/<figure>`. A figure file that cannot be read is shown as a visible "missing" box (and
/// fails the Chromium check), not an error: the rest of the report is still worth writing.
pub fn render_html(
    results: &[ExperimentResult],
    claim_of: impl Fn(&str) -> Option<&'static str>,
    root: &Path,
    meta: &ReportMeta,
) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        h,
        "<title>mathnn reproduction report ({} profile)</title>",
        meta.profile
    );
    let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(
        h,
        "<header><h1>Mathematics of neural networks — reproduction report</h1>\n<p class=\"meta\">Profile <b>{}</b> · total wall time {} · {} experiments<br>Machine: {}<br>{} · written {}</p></header>",
        meta.profile,
        duration(meta.total_seconds),
        results.len(),
        esc(&meta.machine),
        esc(&meta.version),
        esc(&meta.written)
    );
    h.push_str("<nav><h2>Contents</h2><ol>\n");
    for r in results {
        let _ = writeln!(
            h,
            "<li><a href=\"#{}\">{}</a> — {} {}</li>",
            anchor(&r.name),
            esc(&r.name),
            esc(&r.title),
            badge(&r.data)
        );
    }
    h.push_str("</ol></nav>\n");
    for r in results {
        section(&mut h, r, claim_of(&r.name), &root.join(&r.name));
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn section(h: &mut String, r: &ExperimentResult, claim: Option<&str>, dir: &Path) {
    let _ = writeln!(
        h,
        "<section id=\"{}\">\n<h2>{} — {}</h2>",
        anchor(&r.name),
        esc(&r.name),
        esc(&r.title)
    );
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} Data: {} · time {} · profile {}</p>",
        badge(&r.data),
        esc(&r.data),
        duration(r.seconds),
        r.profile
    );
    if r.data.contains("generated") {
        h.push_str("<p class=\"warn\">Made from GENERATED data, not the real data set: the numbers are not comparable with the paper's.</p>\n");
    }
    if let Some(claim) = claim {
        let _ = writeln!(h, "<p class=\"claim\"><b>Claim.</b> {}</p>", esc(claim));
    }
    h.push_str("<table>\n<thead><tr><th>quantity</th><th>paper / reference</th><th>ours</th><th>note</th></tr></thead>\n<tbody>\n");
    for row in &r.rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&row.quantity),
            esc(&row.paper),
            esc(&row.ours),
            esc(&row.note)
        );
    }
    h.push_str("</tbody>\n</table>\n");
    for (i, f) in r.figures.iter().enumerate() {
        figure(h, f, dir, &format!("{}-fig{}", anchor(&r.name), i + 1));
    }
    if !r.notes.is_empty() {
        h.push_str("<ul class=\"notes\">\n");
        for n in &r.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

fn figure(h: &mut String, f: &Figure, dir: &Path, id: &str) {
    let _ = writeln!(h, "<figure id=\"{id}\">");
    match embed(&dir.join(&f.file)) {
        Ok(content) => h.push_str(&content),
        Err(e) => {
            let _ = write!(
                h,
                "<div class=\"missing\">missing figure {}: {}</div>",
                esc(&f.file),
                esc(&format!("{e:#}"))
            );
        }
    }
    let _ = writeln!(
        h,
        "\n<figcaption>{} <span class=\"file\">({})</span></figcaption>\n</figure>",
        esc(&f.caption),
        esc(&f.file)
    );
}

/// The figure file as inline markup: an SVG element (without its XML declaration, with a `viewBox` so it
/// scales) or an `<img>` with the PNG as a `data:` URL.
fn embed(path: &Path) -> Result<String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "svg" => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            inline_svg(&text).with_context(|| format!("{} is not an SVG image", path.display()))
        }
        "png" => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            anyhow::ensure!(
                bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{} is not a PNG image",
                path.display()
            );
            Ok(format!(
                "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
                esc(&path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ))
        }
        other => anyhow::bail!("unsupported figure type `.{other}` (expected .svg or .png)"),
    }
}

/// The `<svg …>…</svg>` element of an SVG file, with a `viewBox` taken from its width and height when it
/// has none (without one, CSS can only crop the drawing, not scale it).
fn inline_svg(text: &str) -> Result<String> {
    let start = text.find("<svg").context("no <svg> element")?;
    let end = text.rfind("</svg>").context("no closing </svg>")? + "</svg>".len();
    let svg = &text[start..end];
    let tag_end = svg.find('>').context("unterminated <svg> tag")?;
    let tag = &svg[..tag_end];
    if tag.contains("viewBox") {
        return Ok(svg.to_string());
    }
    let attr = |name: &str| -> Option<f64> {
        let key = format!("{name}=\"");
        let from = tag.find(&key)? + key.len();
        let to = from + tag[from..].find('"')?;
        tag[from..to].trim_end_matches("px").parse().ok()
    };
    let (w, hgt) = attr("width")
        .zip(attr("height"))
        .context("an <svg> with neither viewBox nor width and height")?;
    Ok(format!(
        "<svg viewBox=\"0 0 {w} {hgt}\"{}",
        &svg["<svg".len()..]
    ))
}

/// A coloured badge for the data provenance: real, generated or a mix.
fn badge(data: &str) -> String {
    let generated = data.contains("generated");
    let real = data.contains("real");
    let (class, label) = match (real, generated) {
        (true, false) => ("real", "real data"),
        (false, true) => ("generated", "generated data"),
        (true, true) => ("mixed", "real + generated data"),
        (false, false) => ("other", "no data set"),
    };
    format!("<span class=\"badge {class}\">{label}</span>")
}

/// `1 h 02 min`, `3 min 05 s`, `12.3 s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// An id usable in `href="#…"`: letters, digits and `-`.
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// CPU model (from /proc/cpuinfo where there is one), logical cores, rayon threads, OS and architecture.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} logical cores, {} rayon threads, {} {}",
        nn_core::threads::worker_threads(),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (civil-from-days, proleptic Gregorian calendar).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_string(secs)
}

fn utc_string(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

const STYLE: &str = "
body{margin:0;background:#fafafa;color:#222;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:1.7em;margin:0 0 .3em}
h2{font-size:1.35em;margin:1.6em 0 .4em;border-bottom:2px solid #ddd;padding-bottom:.2em}
nav h2{border:none}
.meta{color:#555;font-size:.92em}
.claim{background:#f3f6fb;border-left:4px solid #0072b2;padding:.6em .9em}
.warn{background:#fdecea;border-left:4px solid #d55e00;padding:.6em .9em;font-weight:600}
table{width:100%;border-collapse:collapse;margin:1em 0;font-size:.9em;table-layout:auto}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f0f0}
figure{margin:1.4em 0;text-align:center}
figure svg,figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.92em;color:#333;margin-top:.4em;text-align:left}
.file{color:#888;font-size:.85em}
.missing{border:2px dashed #d55e00;color:#d55e00;padding:2em}
.badge{display:inline-block;border-radius:4px;padding:0 .5em;font-size:.8em;font-weight:600;color:#fff;vertical-align:middle}
.badge.real{background:#009e73}.badge.generated{background:#d55e00}.badge.mixed{background:#e69f00}.badge.other{background:#777}
.notes{font-size:.9em;color:#333}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_string_matches_known_dates() {
        assert_eq!(utc_string(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34 (a leap day of a century year divisible by 400).
        assert_eq!(utc_string(951_827_640), "2000-02-29 12:34 UTC");
        // 2026-12-05 15:00.
        assert_eq!(utc_string(1_796_482_800), "2026-12-05 15:00 UTC");
    }

    #[test]
    fn inline_svg_drops_the_declaration_and_adds_a_view_box() {
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"800\" height=\"500\" xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>\n";
        let out = inline_svg(svg).unwrap();
        assert!(
            out.starts_with("<svg viewBox=\"0 0 800 500\" width=\"800\""),
            "{out}"
        );
        assert!(out.ends_with("</svg>"));
        let with_box = "<svg viewBox=\"0 0 1 1\"><g/></svg>";
        assert_eq!(inline_svg(with_box).unwrap(), with_box);
        assert!(inline_svg("<svg><g/>").is_err());
        assert!(inline_svg("<svg><g/></svg>").is_err());
    }

    #[test]
    fn render_html_inlines_figures_with_captions() {
        use crate::reproduce::Row;
        let dir = tempfile::tempdir().unwrap();
        let exp = dir.path().join("toy");
        std::fs::create_dir_all(&exp).unwrap();
        std::fs::write(
            exp.join("a.svg"),
            "<?xml version=\"1.0\"?><svg width=\"10\" height=\"5\"><rect/></svg>",
        )
        .unwrap();
        std::fs::write(exp.join("b.png"), b"\x89PNG\r\n\x1a\nrest").unwrap();
        let result = ExperimentResult {
            name: "toy".into(),
            title: "a <toy> experiment".into(),
            profile: Profile::Smoke,
            data: "real data".into(),
            rows: vec![Row {
                quantity: "x & y".into(),
                paper: "1".into(),
                ours: "2".into(),
                note: String::new(),
            }],
            figures: vec![
                Figure::new("a.svg", "first caption"),
                Figure::new("b.png", "second caption"),
                Figure::new("c.png", "third caption"),
            ],
            notes: vec!["a note".into()],
            seconds: 1.0,
            details: serde_json::Value::Null,
        };
        let meta = ReportMeta::now(Profile::Smoke, 3.0);
        let html = render_html(&[result], |_| Some("the claim"), dir.path(), &meta);
        assert!(html.contains("<svg viewBox=\"0 0 10 5\" width=\"10\""));
        // PNG bytes as base64: "\x89PNG\r\n\x1a\nrest" → "iVBORw0KGgpyZXN0".
        assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgpyZXN0\""));
        assert_eq!(html.matches("<figcaption>").count(), 3);
        assert_eq!(
            html.matches("class=\"missing\"").count(),
            1,
            "c.png does not exist"
        );
        assert!(html.contains("a &lt;toy&gt; experiment") && html.contains("x &amp; y"));
        assert!(html.contains("<b>Claim.</b> the claim"));
        assert!(html.contains("href=\"#toy\"") && html.contains("<section id=\"toy\">"));
        assert!(!html.contains("<script"), "the report needs no JavaScript");
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "no external assets"
        );
    }

    #[test]
    fn escapes_markup_and_picks_badges() {
        assert_eq!(
            esc("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"
        );
        assert!(badge("real data").contains("real"));
        assert!(badge("generated data (no MNIST)").contains("class=\"badge generated\""));
        assert!(badge("real data + generated data").contains("mixed"));
        assert_eq!(duration(12.34), "12.3 s");
        assert_eq!(duration(125.0), "2 min 05 s");
        assert_eq!(duration(3725.0), "1 h 02 min");
    }
}
