"""The explorer's page: HTML, CSS and JS in one string; ``__LSTMLAB_DATA__`` becomes the JSON.

The data (see :func:`lstmlab.viz.explore.write_explorer`)::

    {"title", "tokens": [str], "level": "char" | "word", "total": int, "cell": str,
     "layers": [{quantity: {"units": U, "values": [T * U ints, thousandths, time-major]}}]}

Colours: a value v of a unit whose largest |v| over the text is s is drawn as white mixed with
red (v > 0) or blue (v < 0) in proportion |v| / s -- ``colour()`` below, which the browser test
recomputes from the model. With "centre on the unit's mean" ticked, v - m is drawn instead, m
the unit's mean over the text and s the largest |v - m|: a unit with a large constant offset
(a forget gate near 1 everywhere) shows where it moves.
"""

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lstmlab explorer</title>
<style>
  :root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --panel: #f6f8fa; --accent: #0969da; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--ink);
         background: #fff; height: 100vh; display: flex; flex-direction: column; }
  header { padding: 10px 18px 8px; border-bottom: 1px solid var(--line); }
  h1 { font-size: 17px; margin: 0 0 2px; font-weight: 600; }
  .sub { color: var(--muted); font-size: 13px; }
  #note { display: none; margin: 8px 18px 0; padding: 6px 10px; background: #fff8c5;
          border: 1px solid #d4a72c66; border-radius: 6px; font-size: 13px; }
  #controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; padding: 9px 18px;
              border-bottom: 1px solid var(--line); background: var(--panel); }
  #controls label { font-weight: 600; font-size: 13px; display: flex; gap: 6px;
                    align-items: center; }
  select, input[type=number] { font: inherit; padding: 3px 6px; border: 1px solid var(--line);
                               border-radius: 6px; background: #fff; }
  input[type=number] { width: 5.5em; }
  button { font: inherit; border: 1px solid var(--line); background: #fff; border-radius: 6px;
           padding: 2px 8px; cursor: pointer; }
  button:hover { border-color: var(--accent); }
  #legend { display: flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted);
            margin-left: auto; }
  #legend .bar { width: 160px; height: 12px; border-radius: 3px; border: 1px solid var(--line);
                 background: linear-gradient(to right, rgb(59,118,175), #fff, rgb(214,96,77)); }
  main { flex: 1; display: flex; min-height: 0; }
  #text { flex: 1; overflow: auto; padding: 14px 18px; margin: 0;
          font: 14px/1.7 ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, monospace;
          white-space: pre-wrap; word-break: break-all; }
  .tok { border-radius: 2px; cursor: default; }
  .tok.nl { color: #8c959f; }
  .tok.hover { outline: 2px solid var(--ink); outline-offset: -1px; }
  aside { width: 330px; border-left: 1px solid var(--line); overflow: auto; padding: 12px 14px;
          background: var(--panel); }
  aside h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
             margin: 4px 0 6px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
          margin-bottom: 12px; }
  #at-token { font: 600 20px ui-monospace, "DejaVu Sans Mono", monospace; }
  #at-where { color: var(--muted); font-size: 12px; margin-bottom: 6px; }
  table { border-collapse: collapse; width: 100%; }
  td { padding: 3px 4px; font-size: 13px; }
  td.name { white-space: nowrap; }
  td.value { text-align: right; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
             width: 4.5em; }
  td.barcell { width: 110px; }
  .track { position: relative; height: 10px; background: #eaeef2; border-radius: 3px; }
  .track .zero { position: absolute; left: 50%; top: -2px; bottom: -2px; width: 1px;
                 background: #8c959f; }
  .track .fill { position: absolute; top: 0; bottom: 0; border-radius: 3px; }
  tr.current td { font-weight: 700; }
  .hint { color: var(--muted); font-size: 12.5px; }
  #ranks { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
  #ranks ol { margin: 2px 0 0; padding: 0; list-style: none; }
  #ranks li button { width: 100%; display: flex; justify-content: space-between; margin: 2px 0;
                     font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
  #ranks h3 { font-size: 12px; margin: 0; color: var(--muted); font-weight: 600; }
  #selected { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px;
              white-space: pre-wrap; word-break: break-all; max-height: 4.5em; overflow: hidden;
              color: var(--muted); margin-bottom: 6px; }
</style>
</head>
<body>
<header>
  <h1 id="title"></h1>
  <div class="sub" id="about"></div>
</header>
<div id="note"></div>
<div id="controls">
  <label>Layer <select id="layer"></select></label>
  <label>Show <select id="quantity"></select></label>
  <label>Unit <input id="unit" type="number" min="0" step="1" value="0">
    <button id="prev" title="previous unit">&#9664;</button>
    <button id="next" title="next unit">&#9654;</button>
    <span class="sub" id="unit-count"></span></label>
  <label title="colour v minus the unit's mean over the text"><input id="centre"
    type="checkbox"> centre on the unit's mean</label>
  <div id="legend"><span id="lo"></span><span class="bar"></span><span id="hi"></span></div>
</div>
<main>
  <pre id="text"></pre>
  <aside>
    <h2>At the token under the mouse</h2>
    <div class="card" id="panel">
      <div id="at-token">&nbsp;</div>
      <div id="at-where" class="hint">hover over the text</div>
      <table id="values"></table>
    </div>
    <h2>Units that react to a selection</h2>
    <div class="card">
      <div class="hint" id="sel-hint">Select a span of text with the mouse: units are ranked by
        their mean value inside the selection minus their mean outside it.</div>
      <div id="selected"></div>
      <div id="ranks"></div>
    </div>
  </aside>
</main>
<script id="lstmlab-data" type="application/json">__LSTMLAB_DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("lstmlab-data").textContent);
const POS = [214, 96, 77], NEG = [59, 118, 175];   // red for v > 0, blue for v < 0
const NAMES = {hidden: "hidden state h", cell: "cell state c", input: "input gate i",
               forget: "forget gate f", candidate: "candidate g", output: "output gate o",
               reset: "reset gate r", update: "update gate z"};
const $ = id => document.getElementById(id);
const T = DATA.tokens.length;
const spans = [];
let layer = 0, quantity = null, unit = 0, hovered = null, selection = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function label(q) { return NAMES[q] || q; }
function quantities() { return Object.keys(DATA.layers[layer]); }
function units(q) { return DATA.layers[layer][q].units; }
function unitsOfLayer() { return Math.max(...quantities().map(units)); }
function value(q, t, j) {            // the value of unit j of quantity q at token t, or null
  const Q = DATA.layers[layer][q];
  return j < Q.units ? Q.values[t * Q.units + j] / 1000 : null;
}
function centre(q, j) {              // what the colours are relative to: 0, or the unit's mean
  if (!$("centre").checked) return 0;
  let m = 0;
  for (let t = 0; t < T; t++) m += value(q, t, j);
  return m / T;
}
function scale(q, j, m = 0) {        // the unit's largest |value - m| over the text
  let s = 0;
  for (let t = 0; t < T; t++) s = Math.max(s, Math.abs(value(q, t, j) - m));
  return s;
}
function colour(v, s) {
  const a = s > 0 ? Math.min(1, Math.abs(v) / s) : 0, c = v >= 0 ? POS : NEG;
  return "rgb(" + c.map(k => Math.round(255 + a * (k - 255))).join(", ") + ")";
}
function shown(token) {              // whitespace made visible in the side panel
  const marks = {"\n": "↵", "<eos>": "↵", " ": "␣", "\t": "⇥"};
  return marks[token] || token;
}

function buildText() {
  const pre = $("text"), frag = document.createDocumentFragment();
  DATA.tokens.forEach((token, t) => {
    const newline = token === "\n" || (DATA.level === "word" && token === "<eos>");
    const span = el("span", newline ? "↵" : token, newline ? "tok nl" : "tok");
    span.dataset.i = t;
    spans.push(span);
    frag.appendChild(span);
    if (newline) frag.appendChild(document.createTextNode("\n"));
    else if (DATA.level === "word") frag.appendChild(document.createTextNode(" "));
  });
  pre.appendChild(frag);
}

function buildControls() {
  const ls = $("layer");
  DATA.layers.forEach((_, k) => ls.appendChild(el("option", "layer " + k)).value = k);
  ls.onchange = () => { layer = +ls.value; fillQuantities(); update(); };
  $("quantity").onchange = () => { quantity = $("quantity").value; update(); };
  $("unit").oninput = () => { if ($("unit").value !== "") setUnit(+$("unit").value); };
  $("prev").onclick = () => setUnit(unit - 1);
  $("next").onclick = () => setUnit(unit + 1);
  $("centre").onchange = () => update();
  fillQuantities();
}
function fillQuantities() {
  const qs = $("quantity"), keep = quantity;
  qs.textContent = "";
  for (const q of quantities()) qs.appendChild(el("option", label(q))).value = q;
  quantity = quantities().includes(keep) ? keep : quantities()[0];
  qs.value = quantity;
  setUnit(unit, false);
}
function setUnit(j, redraw = true) {
  const n = unitsOfLayer();
  unit = Math.max(0, Math.min(n - 1, Number.isFinite(j) ? Math.round(j) : 0));
  $("unit").value = unit;
  $("unit").max = n - 1;
  $("unit-count").textContent = "of " + n;
  if (redraw) update();
}

function paint() {
  const m = value(quantity, 0, unit) === null ? 0 : centre(quantity, unit);
  const s = scale(quantity, unit, m);
  for (let t = 0; t < T; t++) {
    const v = value(quantity, t, unit);
    spans[t].style.backgroundColor = v === null ? "" : colour(v - m, s);
  }
  $("lo").textContent = (m - s).toFixed(3);
  $("hi").textContent = (m + s >= 0 ? "+" : "") + (m + s).toFixed(3);
}

function showToken(t) {
  if (hovered !== null) spans[hovered].classList.remove("hover");
  hovered = t;
  if (t === null) return;
  spans[t].classList.add("hover");
  $("at-token").textContent = shown(DATA.tokens[t]);
  $("at-where").textContent = "token " + t + " · layer " + layer + " · unit " + unit;
  const table = $("values");
  table.textContent = "";
  for (const q of quantities()) {
    const v = value(q, t, unit), row = el("tr");
    row.dataset.q = q;
    if (q === quantity) row.className = "current";
    row.appendChild(el("td", label(q), "name"));
    row.appendChild(el("td", v === null ? "—" : v.toFixed(3), "value"));
    const bar = el("td", undefined, "barcell"), track = el("div", undefined, "track");
    if (v !== null) {        // a bar from zero, scaled by this unit's range for this quantity
      const s = scale(q, unit), w = s > 0 ? 50 * Math.min(1, Math.abs(v) / s) : 0;
      const fill = el("div", undefined, "fill");
      fill.style.left = (v >= 0 ? 50 : 50 - w) + "%";
      fill.style.width = w + "%";
      fill.style.background = colour(v >= 0 ? 1 : -1, 1);
      track.appendChild(fill);
    }
    track.appendChild(el("div", undefined, "zero"));
    bar.appendChild(track);
    row.appendChild(bar);
    table.appendChild(row);
  }
}

// A token is selected when the selection covers some of its text: compare boundary points
// with a range over the token's own text node, so a selection that only touches it does not count.
function selectedTokens() {
  const sel = window.getSelection();
  if (!sel.rangeCount || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0), r = document.createRange();
  let first = null, last = null;
  for (let t = 0; t < T; t++) {
    const node = spans[t].firstChild;
    r.setStart(node, 0);
    r.setEnd(node, node.length);
    if (range.compareBoundaryPoints(Range.END_TO_START, r) < 0 &&
        range.compareBoundaryPoints(Range.START_TO_END, r) > 0) {
      if (first === null) first = t;
      last = t;
    } else if (first !== null) break;
  }
  return first === null ? null : [first, last];
}

function rank() {
  const box = $("ranks");
  box.textContent = "";
  if (selection === null) { $("selected").textContent = ""; return; }
  const [a, b] = selection, inside = b - a + 1, outside = T - inside;
  const sel = $("selected");
  sel.dataset.start = a;
  sel.dataset.end = b;
  sel.textContent = "tokens " + a + "–" + b + ": " +
    DATA.tokens.slice(a, b + 1).join(DATA.level === "word" ? " " : "");
  if (outside === 0) {
    box.appendChild(el("div", "select part of the text, not all of it", "hint"));
    return;
  }
  const Q = DATA.layers[layer][quantity], n = Q.units;
  const sumIn = new Float64Array(n), sumAll = new Float64Array(n);   // in thousandths
  for (let t = 0; t < T; t++) {
    const row = t * n, isIn = t >= a && t <= b;
    for (let j = 0; j < n; j++) {
      sumAll[j] += Q.values[row + j];
      if (isIn) sumIn[j] += Q.values[row + j];
    }
  }
  const diffs = [];
  for (let j = 0; j < n; j++)
    diffs.push([j, (sumIn[j] / inside - (sumAll[j] - sumIn[j]) / outside) / 1000]);
  const k = Math.min(8, n);
  const up = diffs.slice().sort((x, y) => y[1] - x[1]).slice(0, k);
  const down = diffs.slice().sort((x, y) => x[1] - y[1]).slice(0, k);
  const lists = [["higher inside", up, "rank-up"], ["lower inside", down, "rank-down"]];
  for (const [title, list, id] of lists) {
    const col = el("div"), ol = el("ol");
    ol.id = id;
    col.appendChild(el("h3", title + " (" + label(quantity) + ")"));
    for (const [j, d] of list) {
      const li = el("li"), button = el("button");
      button.dataset.unit = j;
      button.dataset.diff = d;
      button.appendChild(el("span", "unit " + j));
      button.appendChild(el("span", (d >= 0 ? "+" : "") + d.toFixed(3)));
      button.onclick = () => setUnit(j);
      li.appendChild(button);
      ol.appendChild(li);
    }
    col.appendChild(ol);
    box.appendChild(col);
  }
}

function update() {
  paint();
  if (hovered !== null) showToken(hovered);
  rank();
}

function start() {
  document.title = DATA.title;
  $("title").textContent = DATA.title;
  const L = DATA.layers.length;
  $("about").textContent = DATA.cell + " · " + L + (L > 1 ? " layers" : " layer") + " · " + T +
    (DATA.level === "word" ? " words" : " characters") +
    " · colour: the chosen unit's value, scaled by its largest |value| over the text";
  if (DATA.total > T) {
    const note = $("note");
    note.style.display = "block";
    note.textContent = "Showing the first " + T + " of " + DATA.total + " tokens, to keep the " +
      "page small and quick (lstmlab explore --max-tokens and --max-values set the limits).";
  }
  buildText();
  buildControls();
  $("text").addEventListener("mouseover", e => {
    const span = e.target.closest && e.target.closest(".tok");
    if (span) showToken(+span.dataset.i);
  });
  // on the document: a drag that starts in the text may end over the side panel
  const select = () => {
    const found = selectedTokens();      // re-rank a new span only, not on a ranked unit's click
    if (found !== null && String(found) !== String(selection)) { selection = found; rank(); }
  };
  document.addEventListener("mouseup", select);
  document.addEventListener("keyup", e => { if (e.shiftKey || e.key === "Shift") select(); });
  update();
}
start();
</script>
</body>
</html>
"""
