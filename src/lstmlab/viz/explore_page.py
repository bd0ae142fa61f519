"""The explorer's page: HTML, CSS and JS in one string; ``__LSTMLAB_DATA__`` becomes the JSON.

The data (see :func:`lstmlab.viz.explore.write_explorer`)::

    {"title", "tokens": [str], "level": "char" | "word", "total": int, "cell": str,
     "replaced": int, "diagram": str,
     "layers": [{quantity: {"units": U, "lo": [U], "step": [U], "data": base64}}]}

``data`` holds T * U bytes, time-major; byte k at ``t * U + j`` is the value
``lo[j] + k * step[j]`` (:func:`lstmlab.viz.explore.pack`). ``diagram`` is the cell's SVG
(:func:`lstmlab.viz.diagram.cell_svg`, as inline SVG); the page parses it with ``DOMParser``
into an inert document, removes
anything that could act (scripts, foreign objects, links, ``on*`` and ``href`` attributes) and
colours each ``<g data-gate="...">`` by that gate's value for the chosen unit at the hovered token
(``data-value`` holds it), on the unit's scale as the text. The page decodes a quantity's bytes
when it first shows it; ``window.lstmlab.values(layer, quantity)`` returns them decoded.

Colours: a value v of a unit whose largest |v| over the text is s is drawn as white mixed with
red (v > 0) or blue (v < 0) in proportion |v| / s -- ``colour()`` below, which the browser test
recomputes from the model. With "centre on the unit's mean" ticked, v - m is drawn instead, m
the unit's mean over the text and s the largest |v - m|: a unit with a large constant offset
(a forget gate near 1 everywhere) shows where it moves.

Text: every token is a box of its own (``span.tok``, ``data-i`` its index), isolated for the
bidirectional algorithm (``unicode-bidi: isolate``) and laid out left to right in the order the
model reads the tokens, so no token -- a right-to-left letter, a bidi control -- reorders the
others. For a character-level model the code points of one grapheme cluster (``Intl.Segmenter``:
an emoji family, a flag, a skin tone, a letter and its accents) share one box (``data-n`` code
points), drawn once, its background split into one stripe per code point, left to right; the
mouse over a stripe shows that code point's values. A control or formatting character on its own
is shown as a symbol: the control pictures (U+2400 + code: ␀ ␇ ␛ ...), ⏎ for a carriage return,
␡ for DEL, an abbreviation (RLO, ZWJ, LSEP, ...) or U+XXXX for the others; a newline shows ↵ and
still ends the line. When ``replaced`` > 0 a notice says that the file was not valid UTF-8, and
the U+FFFD characters are underlined. The page signals that it is drawn with
``performance.mark("lstmlab-ready")`` and ``<html data-ready="true">``.
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
  .note { margin: 8px 18px 0; padding: 6px 10px; background: #fff8c5;
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
  .tok { border-radius: 2px; cursor: default; unicode-bidi: isolate; }
  .tok.nl { color: #8c959f; }
  .tok.ctl { color: #8250df; }
  .tok.abbr { font-size: 0.68em; vertical-align: 0.12em; border: 1px dotted #8250df;
              padding: 0 1px; }
  .tok.replaced { text-decoration: underline wavy #cf222e; }
  .tok.hover { outline: 2px solid var(--ink); outline-offset: -1px; }
  #diagram svg { width: 100%; height: auto; display: block; }
  aside { width: 400px; border-left: 1px solid var(--line); overflow: auto; padding: 12px 14px;
          background: var(--panel); }
  aside h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
             margin: 4px 0 6px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
          margin-bottom: 12px; }
  #at-token { font: 600 20px ui-monospace, "DejaVu Sans Mono", monospace;
              unicode-bidi: plaintext; white-space: pre; }
  #at-code { color: var(--muted); font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
  #title, #selected { unicode-bidi: plaintext; }
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
<div id="notes"></div>
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
  <pre id="text" dir="ltr"></pre>
  <aside>
    <div id="diagram-card">
      <h2>The cell, at the token under the mouse</h2>
      <div class="card"><div id="diagram"></div>
        <div class="hint" id="diagram-hint">each gate's box: its value for the chosen unit at
          the hovered token, coloured as the text is</div></div>
    </div>
    <h2>At the token under the mouse</h2>
    <div class="card" id="panel">
      <div id="at-token">&nbsp;</div>
      <div id="at-code"></div>
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
const boxes = [], boxFirst = [], boxN = [];   // a box: one token, or one grapheme cluster's
const boxOf = new Int32Array(T);              // token -> its box
let layer = 0, quantity = null, unit = 0, hovered = null, selection = null;

// --- the values: one byte each; unit j's byte k stands for lo[j] + k * step[j] ---
const decoded = new Map();
function levels(Q) {                 // a quantity's bytes, decoded from base64 once
  let b = decoded.get(Q);
  if (b === undefined) {
    const s = atob(Q.data);
    b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    decoded.set(Q, b);
  }
  return b;
}
function value(q, t, j) {            // the value of unit j of quantity q at token t, or null
  const Q = DATA.layers[layer][q];
  return j < Q.units ? Q.lo[j] + levels(Q)[t * Q.units + j] * Q.step[j] : null;
}
window.lstmlab = {                   // the decoded values, time-major: [t * units + j]
  values(l, q) {
    const Q = DATA.layers[l][q], b = levels(Q), out = new Array(b.length);
    for (let i = 0; i < b.length; i++) out[i] = Q.lo[i % Q.units] + b[i] * Q.step[i % Q.units];
    return out;
  },
};

// --- the text, shown as it is ---
const GRAPHEMES = typeof Intl === "object" && Intl.Segmenter
  ? new Intl.Segmenter(undefined, {granularity: "grapheme"}) : null;
const ABBREVIATIONS = {
  0x85: "NEL", 0xad: "SHY", 0x61c: "ALM", 0x180e: "MVS", 0x200b: "ZWSP", 0x200c: "ZWNJ",
  0x200d: "ZWJ", 0x200e: "LRM", 0x200f: "RLM", 0x2028: "LSEP", 0x2029: "PSEP", 0x202a: "LRE",
  0x202b: "RLE", 0x202c: "PDF", 0x202d: "LRO", 0x202e: "RLO", 0x2060: "WJ", 0x2066: "LRI",
  0x2067: "RLI", 0x2068: "FSI", 0x2069: "PDI", 0xfeff: "ZWNBSP"};
const INVISIBLE = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]$/u;
const C0 = ("NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK " +
            "SYN ETB CAN EM SUB ESC FS GS RS US").split(" ");
function hex(c) { return "U+" + c.toString(16).toUpperCase().padStart(4, "0"); }
function codeName(ch) {              // "U+001B ESC": the code point, and a control's name
  const c = ch.codePointAt(0), name = c < 0x20 ? C0[c] : c === 0x7f ? "DEL" : ABBREVIATIONS[c];
  return hex(c) + (name ? " " + name : "");
}
function symbol(ch) {                // how one code point on its own is shown; null: as itself
  const c = ch.codePointAt(0);
  if (c === 0x0a || c === 0x09) return null;            // newline and tab act as themselves
  if (c === 0x0d) return "\u23ce";                       // ⏎
  if (c < 0x20) return String.fromCharCode(0x2400 + c);  // ␀ ␁ ... ␇ ... ␛ ... ␟
  if (c === 0x7f) return "\u2421";                       // ␡
  if (ABBREVIATIONS[c]) return ABBREVIATIONS[c];
  return INVISIBLE.test(ch) ? hex(c) : null;
}
function graphemes(s) { return GRAPHEMES ? Array.from(GRAPHEMES.segment(s), g => g.segment)
                                          : Array.from(s); }
function visible(s) {                // s with each control or formatting character as a symbol
  return graphemes(s).map(g => {
    const cps = Array.from(g);
    return symbol(cps[0]) === null ? g : cps.map(ch => symbol(ch) ?? ch).join("");
  }).join("");
}
function boxSpans() {                // [first token, tokens] of each box
  const one = () => DATA.tokens.map((_, t) => [t, 1]);
  if (DATA.level !== "char" || !GRAPHEMES ||
      !DATA.tokens.every(x => x.length === 1 || (x.length === 2 && x.codePointAt(0) > 0xffff)))
    return one();
  const out = [];
  let t = 0;
  for (const {segment} of GRAPHEMES.segment(DATA.tokens.join(""))) {
    const n = Array.from(segment).length;  // a character-level model's tokens are code points
    if (n > 1 && /[\r\n]/.test(segment)) for (let k = 0; k < n; k++) out.push([t + k, 1]);
    else out.push([t, n]);                  // CR LF is a cluster too: a ⏎, then a new line
    t += n;
  }
  return t === T ? out : one();
}

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
  return marks[token] || visible(token);
}

function buildText() {
  const pre = $("text"), frag = document.createDocumentFragment();
  for (const [first, n] of boxSpans()) {
    const raw = DATA.tokens.slice(first, first + n).join("");
    const newline = raw === "\n" || (DATA.level === "word" && raw === "<eos>");
    const sym = Array.from(raw).length === 1 ? symbol(raw) : null;
    const span = el("span", newline ? "↵" : sym ?? visible(raw), newline ? "tok nl" : "tok");
    if (sym !== null) {
      span.classList.add("ctl", ...(sym.length > 1 ? ["abbr"] : []));
      span.title = codeName(raw);
    }
    if (DATA.replaced > 0 && raw.includes("\ufffd")) span.classList.add("replaced");
    if (DATA.level === "word") span.dir = "auto";  // a word's own direction inside its box
    span.dataset.i = first;
    if (n > 1) { span.dataset.n = n; span.classList.add("cluster"); }
    for (let k = 0; k < n; k++) boxOf[first + k] = boxes.length;
    boxes.push(span);
    boxFirst.push(first);
    boxN.push(n);
    frag.appendChild(span);
    if (newline) frag.appendChild(document.createTextNode("\n"));
    else if (DATA.level === "word") frag.appendChild(document.createTextNode(" "));
  }
  pre.appendChild(frag);
}

// --- the cell's diagram: parsed as SVG, stripped of anything active, gates lit on hover ---
let gateShapes = [];                 // [gate name, its <g>, its outline] for each gate in it
function buildDiagram() {
  // an inert document (its scripts never run), parsed as HTML: inline <svg> is SVG there
  const doc = new DOMParser().parseFromString(DATA.diagram || "", "text/html");
  const svg = doc.body.firstElementChild;
  if (!svg || svg.localName !== "svg" || doc.body.children.length !== 1) {
    $("diagram-card").hidden = true;
    return;
  }
  for (const e of [...svg.querySelectorAll("script, foreignObject, iframe, a, image, use")])
    e.remove();
  for (const e of [svg, ...svg.querySelectorAll("*")])
    for (const a of [...e.attributes])
      if (/^on/i.test(a.name) || /href$/i.test(a.name)) e.removeAttribute(a.name);
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  $("diagram").appendChild(document.importNode(svg, true));
  gateShapes = [...$("diagram").querySelectorAll("g[data-gate]")]
    .map(g => [g.dataset.gate, g, g.querySelector("rect, ellipse, circle")])
    .filter(([, , shape]) => shape);
}
function light(t) {                  // each gate's box coloured by its value at token t
  for (const [q, g, shape] of gateShapes) {
    const v = t === null || !(q in DATA.layers[layer]) ? null : value(q, t, unit);
    if (v === null) {
      shape.style.fill = "";
      delete g.dataset.value;
    } else {
      shape.style.fill = colour(v, scale(q, unit));
      g.dataset.value = v;
    }
  }
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
  for (let b = 0; b < boxes.length; b++) {
    const first = boxFirst[b], n = boxN[b], style = boxes[b].style;
    if (value(quantity, first, unit) === null) {
      style.backgroundColor = style.backgroundImage = "";
    } else if (n === 1) {
      style.backgroundColor = colour(value(quantity, first, unit) - m, s);
    } else {                         // one stripe per code point of the cluster, in order
      const stops = [];
      for (let k = 0; k < n; k++)
        stops.push(colour(value(quantity, first + k, unit) - m, s) + " " +
                   (100 * k / n) + "% " + (100 * (k + 1) / n) + "%");
      style.backgroundImage = "linear-gradient(to right, " + stops.join(", ") + ")";
    }
  }
  $("lo").textContent = (m - s).toFixed(3);
  $("hi").textContent = (m + s >= 0 ? "+" : "") + (m + s).toFixed(3);
}

function showToken(t) {
  if (hovered !== null) boxes[boxOf[hovered]].classList.remove("hover");
  hovered = t;
  light(t);
  if (t === null) return;
  const b = boxOf[t], first = boxFirst[b], n = boxN[b];
  boxes[b].classList.add("hover");
  $("at-token").textContent =
    n > 1 ? DATA.tokens.slice(first, first + n).join("") : shown(DATA.tokens[t]);
  $("at-code").textContent = DATA.level !== "char" ? "" :
    codeName(DATA.tokens[t]) +
    (n > 1 ? " · code point " + (t - first + 1) + " of " + n + " in this character" : "");
  $("at-where").textContent = "token " + t + " · layer " + layer + " · unit " + unit;
  const table = $("values");
  table.textContent = "";
  for (const q of quantities()) {
    const v = value(q, t, unit), row = el("tr");
    row.dataset.q = q;
    if (q === quantity) row.className = "current";
    row.appendChild(el("td", label(q), "name"));
    const cell = row.appendChild(el("td", v === null ? "—" : v.toFixed(3), "value"));
    if (v !== null) cell.title = "kept to within " +
      (DATA.layers[layer][q].step[unit] / 2).toPrecision(2) + " (256 levels over the text)";
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

// A token is selected when the selection covers some of its box's text: compare boundary points
// with a range over the box's own text node, so a selection that only touches it does not count.
function selectedTokens() {
  const sel = window.getSelection();
  if (!sel.rangeCount || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0), r = document.createRange();
  let first = null, last = null;
  for (let b = 0; b < boxes.length; b++) {
    const node = boxes[b].firstChild;
    r.setStart(node, 0);
    r.setEnd(node, node.length);
    if (range.compareBoundaryPoints(Range.END_TO_START, r) < 0 &&
        range.compareBoundaryPoints(Range.START_TO_END, r) > 0) {
      if (first === null) first = boxFirst[b];
      last = boxFirst[b] + boxN[b] - 1;
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
    visible(DATA.tokens.slice(a, b + 1).join(DATA.level === "word" ? " " : ""));
  if (outside === 0) {
    box.appendChild(el("div", "select part of the text, not all of it", "hint"));
    return;
  }
  const Q = DATA.layers[layer][quantity], n = Q.units, L = levels(Q);
  const sumIn = new Float64Array(n), sumAll = new Float64Array(n);   // in levels
  for (let t = 0; t < T; t++) {
    const row = t * n, isIn = t >= a && t <= b;
    for (let j = 0; j < n; j++) {
      sumAll[j] += L[row + j];
      if (isIn) sumIn[j] += L[row + j];
    }
  }
  const diffs = [];                  // lo[j] cancels: the difference of means is in steps
  for (let j = 0; j < n; j++)
    diffs.push([j, Q.step[j] * (sumIn[j] / inside - (sumAll[j] - sumIn[j]) / outside)]);
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

function note(id, text) {
  const n = el("div", text, "note");
  n.id = id;
  $("notes").appendChild(n);
}

function start() {
  document.title = visible(DATA.title);
  $("title").textContent = visible(DATA.title);
  const L = DATA.layers.length;
  $("about").textContent = DATA.cell + " · " + L + (L > 1 ? " layers" : " layer") + " · " + T +
    (DATA.level === "word" ? " words" : " characters") +
    " · colour: the chosen unit's value, scaled by its largest |value| over the text" +
    " · values kept to 256 levels per unit";
  if (DATA.replaced > 0)
    note("note-replaced", "This text was not valid UTF-8: " + DATA.replaced +
      (DATA.replaced > 1 ? " invalid byte sequences were" : " invalid byte sequence was") +
      " replaced by \ufffd (U+FFFD, underlined), and the model read that character instead.");
  if (DATA.total > T)
    note("note-cut", "Showing the first " + T + " of " + DATA.total + " tokens, to keep the " +
      "page small and quick (lstmlab explore --max-tokens and --max-values set the limits).");
  buildText();
  buildDiagram();
  buildControls();
  const hover = e => {               // over a cluster, the code point under the mouse
    const span = e.target.closest && e.target.closest(".tok");
    if (!span) return;
    const b = boxOf[+span.dataset.i], n = boxN[b];
    let t = boxFirst[b];
    if (n > 1) {
      const r = span.getBoundingClientRect();
      t += Math.max(0, Math.min(n - 1, Math.floor(n * (e.clientX - r.left) / r.width)));
    }
    if (t !== hovered) showToken(t);
  };
  $("text").addEventListener("mouseover", hover);
  $("text").addEventListener("mousemove", hover);
  // on the document: a drag that starts in the text may end over the side panel
  const select = () => {
    const found = selectedTokens();      // re-rank a new span only, not on a ranked unit's click
    if (found !== null && String(found) !== String(selection)) { selection = found; rank(); }
  };
  document.addEventListener("mouseup", select);
  document.addEventListener("keyup", e => { if (e.shiftKey || e.key === "Shift") select(); });
  update();
  requestAnimationFrame(() => setTimeout(() => {   // after the first frame is drawn
    performance.mark("lstmlab-ready");
    document.documentElement.dataset.ready = "true";
  }));
}
start();
</script>
</body>
</html>
"""
