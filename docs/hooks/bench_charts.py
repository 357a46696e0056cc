"""MkDocs hook: draws the benchmark charts from benchmarks/results/*.json when the site is built.

The PNG charts that ``python -m benchmarks`` writes are not committed (.gitignore), so the site
draws its own from the JSON the same run writes, as inline SVG: a page that holds the marker
``<!-- bench-chart: benchmarks_cpu.json -->`` gets two bar charts in its place (each kernel's
composite / fused time, each workload's minigrad / PyTorch time). The numbers are always the
ones in the JSON, the same run as the tables the page includes; a missing file says so on the
page instead of failing the build.
"""

import html
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"<!--\s*bench-chart:\s*([\w.-]+\.json)\s*-->")
OPTIONAL = re.compile(r"<!--\s*bench-optional:\s*([\w.-]+\.md)\s*-->")

BAR_HEIGHT = 22
LABEL_WIDTH = 190
PLOT_WIDTH = 420
COLORS = {"fused": "#3f51b5", "composite": "#ff9800"}


def bar_chart(title, rows, axis_label, reference=1.0):
    """An SVG horizontal bar chart.

    Args:
        title: the chart's caption.
        rows: ``(label, {series: value})`` pairs; each series is one bar per row.
        axis_label: what the values mean (printed under the plot).
        reference: where to draw the vertical "1x" line.

    Returns:
        The SVG element, in a box that scrolls sideways on a narrow screen, as a string.
    """
    series = sorted({s for _, values in rows for s in values}, key=list(COLORS).index)
    top = max([reference] + [v for _, values in rows for v in values.values()]) * 1.1
    group = BAR_HEIGHT * len(series) + 8
    height = 30 + group * len(rows) + 40
    width = LABEL_WIDTH + PLOT_WIDTH + 60

    def x(value):
        return LABEL_WIDTH + PLOT_WIDTH * value / top

    parts = [
        f'<svg class="bench-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        # at least 560 px wide, so that a phone scrolls the chart instead of shrinking its text
        'style="width:100%;min-width:560px;height:auto;font-family:sans-serif;font-size:12px">',
        f'<text x="{LABEL_WIDTH}" y="16" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (label, values) in enumerate(rows):
        y0 = 30 + i * group
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y0 + group / 2}" text-anchor="end" '
                     f'dominant-baseline="middle">{html.escape(label)}</text>')
        for j, name in enumerate(series):
            if name not in values:
                continue
            value = values[name]
            y = y0 + j * BAR_HEIGHT
            parts.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{x(value) - LABEL_WIDTH:.1f}" '
                         f'height="{BAR_HEIGHT - 4}" fill="{COLORS[name]}"><title>{name}: '
                         f'{value:.2f}x</title></rect>')
            parts.append(f'<text x="{x(value) + 4:.1f}" y="{y + BAR_HEIGHT / 2}" '
                         f'dominant-baseline="middle">{value:.2f}x</text>')
    bottom = 30 + group * len(rows)
    parts.append(f'<line x1="{x(reference):.1f}" y1="26" x2="{x(reference):.1f}" y2="{bottom}" '
                 'stroke="grey" stroke-dasharray="4 3"/>')
    legend = "  ".join(f"\u25a0 {name}" for name in series) if len(series) > 1 else ""
    parts.append(f'<text x="{LABEL_WIDTH}" y="{bottom + 20}">{html.escape(axis_label)}</text>')
    if legend:
        parts.append(f'<text x="{LABEL_WIDTH}" y="{bottom + 36}">{legend}</text>')
    parts.append("</svg>")
    return '<div class="bench-chart-scroll" style="overflow-x:auto">' + "".join(parts) + "</div>"


def charts_for(name):
    """The charts for one results JSON written by ``python -m benchmarks`` (a Markdown snippet)."""
    path = RESULTS / name
    if not path.is_file():
        return f"*(No chart: `benchmarks/results/{name}` has not been written yet.)*"
    run = json.loads(path.read_text())
    kernels = [(r["kernel"], {"fused": r["speedup"]})
               for r in run.get("kernels", []) if "speedup" in r]
    workloads = [(n, {"fused": r["ratio"], "composite": r["composite_ratio"]})
                 for n, r in run.get("workloads", {}).items()
                 if "ratio" in r and "composite_ratio" in r]
    device = run.get("device", "?")
    out = []
    if kernels:
        out.append(bar_chart(f"Fused kernels ({device}): composite time / fused time", kernels,
                             "higher is better: how many times faster the fused kernel runs"))
    if workloads:
        out.append(bar_chart(f"Workloads ({device}): minigrad time / PyTorch time", workloads,
                             "lower is better: 1x is PyTorch's speed"))
    return "\n\n".join(out) or f"*(No chart: `{name}` holds no timed rows.)*"


def optional_table(name):
    """A results file that only some runs write (the GPU's): its text without its title, or a note.

    The files every run writes are included with pymdownx.snippets, which fails the build when
    one is missing; a GPU table exists only after ``benchmarks/gpu_check.sh`` has run on a GPU.
    """
    path = RESULTS / name
    if not path.is_file():
        return f"*(Not measured yet: `benchmarks/results/{name}` is written by a GPU run.)*"
    lines = path.read_text().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines)


def on_page_markdown(markdown, page, config, files):
    """Fill the chart and optional-table markers of a page (MkDocs calls this for every page)."""
    markdown = OPTIONAL.sub(lambda m: optional_table(m.group(1)), markdown)
    return MARKER.sub(lambda m: charts_for(m.group(1)), markdown)
