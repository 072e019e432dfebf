#!/usr/bin/env bash
# The slides render (CTest, label slides):
#   tests/slides_test.sh [--build-dir DIR]   renders into DIR/slides-test (default build)
# Runs scripts/slides (figures from bench/results, Marp CLI with Debian's Chromium) within a
# time bound, then checks that the PDF has one page per slide of docs/slides/edgeloop.md
# (its `---` separators outside the front matter and code blocks, a blank line before each,
# as Marp splits them), that the HTML exists, and renders the first and the last page to PNG
# with pdftoppm: both files must exist, hold more than a blank page would, and be 1280x720.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "slides_test: FAIL: $*" >&2; exit 1; }
note() { echo "slides_test: $*"; }
build=$src/build
case "${1:-}" in
  --build-dir) build=${2:?--build-dir needs a folder} ;;
  -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
  "") ;;
  *) fail "unknown argument $1" ;;
esac
for tool in pdfinfo pdftoppm node python3; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done
out=$build/slides-test
rm -rf "$out"
start=$SECONDS
timeout 240 "$src/scripts/slides" --out "$out" || fail "scripts/slides failed or took over 240 s"
note "rendered in $((SECONDS - start)) s"
pdf=$out/edgeloop.pdf
[ -s "$pdf" ] || fail "no $pdf"
[ -s "$out/edgeloop.html" ] || fail "no $out/edgeloop.html"

slides=$(python3 - "$src/docs/slides/edgeloop.md" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
i = 0
if lines and lines[0].strip() == "---":          # the front matter
    i = lines.index("---", 1) + 1
count, fence, prev_blank = 1, False, True
for line in lines[i:]:
    if line.startswith("```") or line.startswith("~~~"):
        fence = not fence
    elif not fence and re.fullmatch(r"---+\s*", line) and prev_blank:
        count += 1                                    # not a setext heading underline
    prev_blank = not line.strip()
print(count)
PY
)
pages=$(pdfinfo "$pdf" | awk '/^Pages:/ { print $2 }')
[ -n "$pages" ] || fail "pdfinfo cannot read $pdf"
[ "$pages" = "$slides" ] || fail "$pdf has $pages pages, the Markdown $slides slides"
note "$pages pages for $slides slides"

pdftoppm -png -f 1 -l 1 -scale-to-x 1280 -scale-to-y 720 "$pdf" "$out/first"
pdftoppm -png -f "$pages" -l "$pages" -scale-to-x 1280 -scale-to-y 720 "$pdf" "$out/last"
for png in "$out"/first*.png "$out"/last*.png; do
  [ -f "$png" ] || fail "pdftoppm wrote no PNG"
  python3 - "$png" <<'PY' || exit 1
import struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("slides_test: FAIL: %s is not a PNG" % path)
w, h = struct.unpack(">II", data[16:24])
if (w, h) != (1280, 720):
    sys.exit("slides_test: FAIL: %s is %dx%d, not 1280x720" % (path, w, h))
# A blank 1280x720 page compresses to a few kB; a slide with text is far larger.
if len(data) < 20000:
    sys.exit("slides_test: FAIL: %s is only %d bytes: a blank page?" % (path, len(data)))
print("slides_test: %s: %dx%d, %d bytes" % (path, w, h, len(data)))
PY
done
note "ok in $((SECONDS - start)) s"
