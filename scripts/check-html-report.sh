#!/usr/bin/env bash
# Renders a `mathnn reproduce` HTML report (results/index.html) in headless Chromium and checks what a
# reader would see: every <img> decoded (no broken image), every figure holds an image and a non-empty
# caption, no "missing figure" box, and the page fits a 1280-px-wide window without horizontal scrolling.
# Optionally saves a screenshot of the top of the page (1280 × 1600).
#
#   scripts/check-html-report.sh RESULTS/index.html [SCREENSHOT.png]
#
# Chromium: `chromium`, `chromium-browser` or `google-chrome` on PATH (or $CHROMIUM). When none is there,
# Debian's `chromium` package is installed with apt-get if this runs as root (or with password-less sudo);
# otherwise the check is SKIPPED with the reason, and exits 0 — it never fails a build for want of a browser.
set -euo pipefail

report=${1:?usage: scripts/check-html-report.sh RESULTS/index.html [SCREENSHOT.png]}
shot=${2:-}
[[ -s "$report" ]] || { echo "error: $report: no such report (run mathnn reproduce first)" >&2; exit 1; }

find_chromium() {
    for c in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
        [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return 0; }
    done
    return 1
}

if ! browser=$(find_chromium); then
    sudo=""
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "html report check SKIPPED: no Chromium on PATH and no apt-get to install it"
        exit 0
    fi
    if [[ $(id -u) != 0 && -z "$sudo" ]]; then
        echo "html report check SKIPPED: no Chromium on PATH, and installing it needs root (set CHROMIUM=…)"
        exit 0
    fi
    echo "installing Debian's chromium package (headless report check)…"
    # A failed install is judged below, by whether a browser is there afterwards.
    { $sudo apt-get update -qq -o Acquire::http::Timeout=20 -o Acquire::Retries=0 &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o Acquire::http::Timeout=20 \
            --no-install-recommends chromium >/dev/null; } 2>&1 | tail -3 || true
    if ! browser=$(find_chromium); then
        echo "html report check SKIPPED: apt-get could not install chromium (no package mirror reachable?)"
        exit 0
    fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The report plus a script that records the checks in an attribute once the page has loaded; the report
# itself has no script. --dump-dom prints the DOM after the load event.
check_js='<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const figs = [...document.querySelectorAll("figure")];
  const r = {
    figures: figs.length,
    images: imgs.length,
    svgs: document.querySelectorAll("figure svg").length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    uncaptioned: figs.filter(f => { const c = f.querySelector("figcaption"); return !c || !c.textContent.trim(); }).map(f => f.id),
    empty: figs.filter(f => !f.querySelector("svg, img")).map(f => f.id),
    missing: document.querySelectorAll(".missing").length,
    width: document.documentElement.scrollWidth,
  };
  document.body.setAttribute("data-check", JSON.stringify(r));
});
</script>'
python3 - "$report" "$work/check.html" "$check_js" <<'PY'
import sys
src, dst, js = sys.argv[1:4]
html = open(src, encoding="utf-8").read()
assert "</body>" in html, f"{src}: no </body>"
open(dst, "w", encoding="utf-8").write(html.replace("</body>", js + "\n</body>", 1))
PY

flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1600
       --user-data-dir="$work/profile" --virtual-time-budget=20000)
"$browser" "${flags[@]}" --dump-dom "file://$work/check.html" >"$work/dom.html" 2>/dev/null || true
result=$(python3 - "$work/dom.html" <<'PY'
import html, json, re, sys
m = re.search(r'data-check="([^"]*)"', open(sys.argv[1], encoding="utf-8").read())
if not m:
    print("error: the check script did not run (no data-check attribute in the dumped DOM)")
    sys.exit(1)
r = json.loads(html.unescape(m.group(1)))
problems = []
if r["figures"] == 0: problems.append("no figures")
if r["broken"]: problems.append(f"broken images: {r['broken']}")
if r["uncaptioned"]: problems.append(f"figures without a caption: {r['uncaptioned']}")
if r["empty"]: problems.append(f"figures without an image: {r['empty']}")
if r["missing"]: problems.append(f"{r['missing']} missing-figure boxes")
if r["width"] > 1280: problems.append(f"page is {r['width']} px wide, more than the 1280-px window")
summary = (f"{r['figures']} figures ({r['svgs']} SVG, {r['images']} PNG), all captioned and decoded, "
           f"page width {r['width']} px")
print("error: " + "; ".join(problems) if problems else summary)
sys.exit(1 if problems else 0)
PY
) || { echo "html report check FAILED for $report: $result" >&2; exit 1; }
echo "html report check passed for $report: $result"

if [[ -n "$shot" ]]; then
    "$browser" "${flags[@]}" --screenshot="$shot" "file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")" \
        >/dev/null 2>&1
    [[ -s "$shot" ]] || { echo "error: Chromium wrote no screenshot to $shot" >&2; exit 1; }
    echo "screenshot: $shot"
fi
