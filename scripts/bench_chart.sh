#!/usr/bin/env bash
# Draws `make bench`'s results as an SVG bar chart: requests a second per run,
# with p50 and p99 beside each bar. Hand-written SVG, no dependency.
#
#   scripts/bench_chart.sh RESULTS OUT.svg [TITLE]
#
# RESULTS has one run a line, as scripts/bench.sh writes it:
#   NAME REQ/S P50 P99 NON-2XX
set -euo pipefail
results=$1 out=$2 title=${3:-"make bench: requests per second (loopback)"}
awk -v title="$title" '
  function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
  NF >= 2 && $2 + 0 > 0 { n++; name[n] = $1; rps[n] = $2 + 0; p50[n] = $3; p99[n] = $4; if (rps[n] > max) max = rps[n] }
  END {
    if (n == 0) exit 1
    bar = 22; gap = 8; left = 150; width = 460; top = 44; right = 230
    height = top + n * (bar + gap) + 30
    # A round scale: 1, 2 or 5 times a power of ten, at least the largest.
    step = 1; while (step * 10 <= max) step *= 10
    scale = step; while (scale < max) scale += step
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", left + width + right, height, left + width + right, height
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", 10, esc(title)
    for (t = 0; t <= scale; t += step) {
      x = left + width * t / scale
      printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e2e8f0\"/>\n", x, top - 6, x, height - 24
      printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#5a6775\">%dk</text>\n", x, height - 8, t / 1000
    }
    for (i = 1; i <= n; i++) {
      y = top + (i - 1) * (bar + gap)
      w = width * rps[i] / scale
      color = (name[i] ~ /^(http_ceiling|redis_|twem_)/) ? "#a0aec0" : "#2b6cb0"
      printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, y + bar - 6, esc(name[i])
      printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%s: %d req/s</title></rect>\n", left, y, w, bar, color, esc(name[i]), rps[i]
      printf "<text x=\"%.1f\" y=\"%d\">%d/s  p50 %s  p99 %s</text>\n", left + w + 6, y + bar - 6, rps[i], esc(p50[i]), esc(p99[i])
    }
    printf "</svg>\n"
  }' "$results" >"$out"
