"""`convcalc report -o net.html`: one self-contained HTML page (inline CSS and JavaScript, no network).

The page has the per-layer table, the diagnostics, and for one layer the input grid: clicking or hovering
a unit of that layer draws its receptive field (region) and its support over the input, with its path
counts along each axis. Everything the page shows is precomputed here, per axis (the N-D region and
support of a unit are the boxes of its axes' intervals), and embedded as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from convcalc.analysis import locate
from convcalc.analysis.report import LayerReport, StackReport
from convcalc.documents.report import report_document
from convcalc.errors import Problem, SpecError
from convcalc.geometry import coverage as cov
from convcalc.stack.spec import INPUT_NAME

#: The most path counts embedded (units × support length, over the axes); beyond, the page gives the
#: region and support of each unit without its counts.
PAGE_COUNTS_LIMIT = 400_000
#: The unit grid is drawn when the layer has at most this many units per axis (otherwise: index boxes).
UNIT_GRID_LIMIT = 128


def _layer(report: StackReport, name: str | None) -> LayerReport:
    if name is not None:
        try:
            return report.layer(name)
        except KeyError:
            names = ", ".join(layer.name for layer in report.layers)
            raise SpecError(Problem(f"no layer {name!r}; the layers are {names}", parameter="layer")) from None
    rank = len(report.input.spatial)
    for layer in reversed(report.layers):
        if len(layer.output.spatial) == rank:
            return layer
    return report.output


def page_data(report: StackReport, layer: str | None = None) -> dict[str, Any]:
    """What the page's script needs for `layer` (default: the last layer with the input's spatial axes):
    per axis, every unit's region and support ([lo, hi] input positions, null where none) and, within
    the support, its path counts (ints; floats rounded to 6 digits where interpolation makes them
    fractional), unless over PAGE_COUNTS_LIMIT."""
    found = _layer(report, layer)
    sizes = report.input.spatial
    units = found.output.spatial
    data: dict[str, Any] = {"layer": found.name, "input": list(sizes), "units": list(units), "axes": []}
    if len(units) != len(sizes) or any(s is None for s in (*sizes, *units)):
        data["note"] = f"layer {found.name} has no units to pick over the input (unknown sizes or no spatial axes)"
        return data
    centre = locate.centre_unit(found)
    data["exact"] = locate.support(report, centre, found.name).exact
    per_axis = []
    budget = PAGE_COUNTS_LIMIT
    for axis, n in enumerate(units):
        assert n is not None
        chain = locate.links(report, axis, found.name)
        regions, supports, counts = [], [], []
        for u in range(n):
            unit = tuple(u if a == axis else c for a, c in enumerate(centre))
            region = found.region(unit)
            r = None if region is None else region[axis]
            vec = cov.paths_back(chain, found.name, u)[INPUT_NAME]
            h = cov.hull(vec)
            regions.append(None if r is None else [r[0], r[1]])
            supports.append(None if h is None else [h[0], h[1]])
            part = [] if h is None else vec[h[0] : h[1] + 1]
            budget -= len(part)
            counts.append([c if isinstance(c, int) else round(float(c), 6) for c in part])
        per_axis.append({"region": regions, "support": supports, "counts": counts})
    if budget < 0:
        for entry in per_axis:
            entry["counts"] = None
        data["note"] = f"path counts left out: over {PAGE_COUNTS_LIMIT} numbers"
    data["axes"] = per_axis
    data["grid"] = all(n is not None and n <= UNIT_GRID_LIMIT for n in units)
    return data


def _esc(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _table(doc: dict[str, Any]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("#", "layer", "op", "output", "RF", "jump", "diag"))
    rows = []
    for layer in doc["layers"]:
        out = "×".join("?" if s is None else str(s) for s in layer["output"]["spatial"])
        rf = "×".join("?" if f["rf"] is None else ("all" if f["global"] else str(f["rf"])) for f in layer["field"])
        jump = "×".join(str(f["jump"]) for f in layer["field"])
        cells = (layer["index"], layer["name"], layer["op"], out, rf, jump, " ".join(layer["diagnostics"]))
        rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    return f'<table id="layers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _diagnostics(doc: dict[str, Any]) -> str:
    if not doc["diagnostics"]:
        return '<p id="diagnostics">No diagnostics.</p>'
    items = "".join(
        f'<li class="{_esc(d["severity"])}"><b>{_esc(d["severity"])}</b> {_esc(d["code"])}'
        f"{' (' + _esc(d['layer']) + ')' if d.get('layer') else ''}: {_esc(d['message'])}</li>"
        for d in doc["diagnostics"]
    )
    return f'<ul id="diagnostics">{items}</ul>'


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td:nth-child(2), td:nth-child(3), td:nth-child(7) { text-align: left; }
li.error { color: #b00; } li.warning { color: #a60; }
#picker { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
svg { border: 1px solid #999; background: #fafafa; }
svg rect { vector-effect: non-scaling-stroke; }
rect.unit { fill: #dde; stroke: #fff; stroke-width: 0.05; cursor: pointer; }
rect.unit.selected { fill: #d33; }
#region { fill: rgba(40, 80, 200, 0.15); stroke: #2850c8; stroke-width: 2; stroke-dasharray: 6 3; }
#support { fill: rgba(30, 150, 60, 0.25); stroke: #1e963c; stroke-width: 1; }
#readout { font-family: monospace; white-space: pre; }
"""

_JS = """
const D = JSON.parse(document.getElementById('data').textContent);
const rank = D.input.length;
function box(intervals) {
  // rows: the first axis (H) for 2-D; a 1-D input is one row.
  const cols = intervals[rank - 1], rows = rank === 2 ? intervals[0] : [0, 0];
  return {x: cols[0], y: rows[0], w: cols[1] - cols[0] + 1, h: rows[1] - rows[0] + 1};
}
function place(el, intervals) {
  if (intervals === null) { el.setAttribute('visibility', 'hidden'); el.dataset.interval = 'none'; return; }
  const b = box(intervals);
  el.setAttribute('x', b.x); el.setAttribute('y', b.y);
  el.setAttribute('width', b.w); el.setAttribute('height', b.h);
  el.setAttribute('visibility', 'visible');
  el.dataset.interval = JSON.stringify(intervals);
}
function bars(index) {
  const g = document.getElementById('counts');
  while (g.firstChild) g.removeChild(g.firstChild);
  D.axes.forEach((axis, a) => {
    if (!axis.counts) return;
    const s = axis.support[index[a]], c = axis.counts[index[a]];
    if (!s) return;
    const peak = Math.max(...c);
    c.forEach((v, k) => {
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      const t = v / peak * 4, p = s[0] + k;
      const along = a === rank - 1;  // the last axis runs across, along the top; the first down the left
      const at = along ? {x: p, y: -t, width: 1, height: t} : {x: -t, y: p, width: t, height: 1};
      Object.entries(at).forEach(([k, v]) => r.setAttribute(k, v));
      r.setAttribute('class', 'count'); r.dataset.axis = a; r.dataset.pos = p; r.dataset.count = v;
      r.setAttribute('fill', '#e08000');
      g.appendChild(r);
    });
  });
}
function show(index) {
  const region = D.axes.map((axis, a) => axis.region[index[a]]);
  let support = D.axes.map((axis, a) => axis.support[index[a]]);
  if (support.some(s => s === null)) support = null;
  place(document.getElementById('region'), region.some(r => r === null) ? null : region);
  place(document.getElementById('support'), support);
  document.querySelectorAll('rect.unit.selected').forEach(el => el.classList.remove('selected'));
  const cell = document.querySelector(`rect.unit[data-index="${index.join(',')}"]`);
  if (cell) cell.classList.add('selected');
  const text = v => v === null ? 'none' : `[${v[0]}, ${v[1]}]`;
  const names = rank === 2 ? ['H', 'W'] : rank === 1 ? ['L'] : D.axes.map((_, a) => String(a));
  const out = document.getElementById('readout');
  out.dataset.unit = index.join(',');
  out.textContent = `unit ${index.join(',')} of ${D.layer}\\n` +
    'region  ' + names.map((n, a) => `${n} ${text(region[a])}`).join('  ') + '\\n' +
    'support ' + names.map((n, a) => `${n} ${text(support === null ? null : support[a])}`).join('  ') +
    (D.exact === false ? '\\n(support: an upper bound behind merges)' : '');
  bars(index);
}
function build() {
  if (!D.axes.length) return;
  const grid = document.getElementById('units');
  if (D.grid) {
    const rows = rank === 2 ? D.units[0] : 1, cols = D.units[rank - 1];
    grid.setAttribute('viewBox', `0 0 ${cols} ${rows}`);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      const index = rank === 2 ? [i, j] : [j];
      r.setAttribute('x', j); r.setAttribute('y', i); r.setAttribute('width', 1); r.setAttribute('height', 1);
      r.setAttribute('class', 'unit'); r.dataset.index = index.join(',');
      r.addEventListener('click', () => show(index));
      r.addEventListener('mouseenter', () => show(index));
      grid.appendChild(r);
    }
  } else grid.style.display = 'none';
  document.getElementById('pick').addEventListener('submit', e => {
    e.preventDefault();
    const index = document.getElementById('index').value.split(',').map(Number);
    if (index.length === rank && index.every((v, a) => Number.isInteger(v) && v >= 0 && v < D.units[a])) show(index);
  });
  show(D.units.map(n => Math.floor((n - 1) / 2)));
}
build();
"""


def report_html(report: StackReport, layer: str | None = None) -> str:
    """The page for `report`, with the unit picker on `layer` (see `page_data`)."""
    doc = report_document(report)
    data = page_data(report, layer)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    sizes = data["input"]
    rank = len(sizes)
    picker = ""
    if data["axes"]:
        width = sizes[-1]
        height = sizes[0] if rank == 2 else max(1, width // 16)
        margin = 6
        picker = (
            '<div id="picker">'
            f'<div><h3>units of {_esc(data["layer"])}</h3><svg id="units" width="320" height="320"></svg>'
            '<form id="pick"><input id="index" placeholder="i,j"> <button>show</button></form></div>'
            f"<div><h3>input {'×'.join(map(str, sizes))}</h3>"
            f'<svg id="input" width="480" height="{480 * (height + 2 * margin) // (width + 2 * margin)}" '
            f'viewBox="{-margin} {-margin} {width + 2 * margin} {height + 2 * margin}" preserveAspectRatio="none">'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" stroke="#666" stroke-width="1"/>'
            '<rect id="region"/><rect id="support"/><g id="counts"></g></svg>'
            '<div id="readout"></div></div></div>'
        )
    note = f'<p class="note">{_esc(data["note"])}</p>' if "note" in data else ""
    title = _esc(doc.get("name") or "stack")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}: convcalc report</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1><p>input {_esc('×'.join(map(str, (doc['input']['channels'], *sizes))))}</p>"
        f"<h2>Layers</h2>{_table(doc)}<h2>Diagnostics</h2>{_diagnostics(doc)}"
        f"<h2>What a unit sees</h2>{note}{picker}"
        f'<script type="application/json" id="data">{payload}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )
