"""Where everything goes: a traced cell graph laid out in the conventions of Olah's post.

Rows, top to bottom: the conveyor belt and its operations (the LSTM's cell state; the GRU's h),
a second memory carried the same way (the sLSTM's normaliser), pointwise operations, the
learned layers in a row, the hidden-state bus (h_{t-1} joined by x_t from below), extra state
parts. Columns: depth-first from the outputs, each node right after its
inputs, moved right where it would sit on a line or its lines would run through a node. Lines
are orthogonal; each has fallbacks through the gaps between rows and columns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import permutations

from lstmlab.viz.trace import CellGraph, Node

SLOT, X0, CIRCLE_R, BOX_H, GAP = 84.0, 150.0, 15.0, 30.0, 11.0
TOP, BELT, MID_HI, MID_LO, BOX, PRE_OP, PRE_BOX, BUS = range(8)
CROSS_STUB, CROSS_NODE = 4, 8  # a line crossing another line's start, or a node


@dataclass
class Shape:
    """One drawn thing; ``cls`` and ``data`` become its SVG class and data-* attributes."""

    tag: str  # "cell", "box", "ellipse", "dot", "path", "text"
    cls: str
    geo: dict
    data: dict = field(default_factory=dict)
    label: str = ""


@dataclass
class Drawing:
    shapes: list[Shape]
    width: float
    height: float


def box_size(node: Node) -> tuple[float, float]:
    """Half-width and half-height: a box for a layer, an ellipse for an op, a dot for a join."""
    if node.kind == "layer":
        return max(24.0, 4.5 * len(node.label) + 11), BOX_H / 2
    if node.kind == "concat":
        return 4.0, 4.0
    if node.note:  # a second, smaller line under the label (a clock's periods)
        return max(CIRCLE_R, 4.2 * len(node.label) + 7, 3.2 * len(note_text(node)) + 10), 22.0
    return max(CIRCLE_R, 4.2 * len(node.label) + 7), CIRCLE_R


def note_text(node: Node) -> str:
    """The line written under a node's label: a clock's periods, "T = 1, 2, 4, …, 128"."""
    if not node.note:
        return ""
    if node.op != "clock":
        return node.note
    periods = node.note.split(", ")
    shown = periods if len(periods) <= 4 else [*periods[:3], "…", periods[-1]]
    return "T = " + ", ".join(shown)


def _reach(g: CellGraph, start: str, forward: bool) -> set[str]:
    """Nodes joined to ``start`` by pointwise operations alone (a layer breaks the path)."""
    seen, todo = {start}, [start]
    while todo:
        nid = todo.pop()
        node = g.nodes[nid]
        nxt = (
            [n.id for n in g.consumers(nid) if n.kind in ("op", "concat")]
            if forward
            else [s for s, _ in node.inputs]
            if node.kind in ("op", "concat")
            else []
        )
        todo += [m for m in nxt if m not in seen]
        seen.update(nxt)
    return seen


def _belt(g: CellGraph, k: int | None = -1) -> set[str]:
    """The operations on the conveyor belt (of state part ``k``; default the top one): between
    its state part's input and result."""
    k = g.top if k == -1 else k
    if k is None:
        return set()
    part = g.states[k]
    return (_reach(g, part.source, True) & _reach(g, part.result, False)) - {part.source}


def _second(g: CellGraph) -> set[str]:
    """The operations of the second memory's line (:attr:`CellGraph.second`), less those
    that give another state part (the sLSTM's stabiliser reads n but is no part of its line)."""
    if g.second is None:
        return set()
    others = {p.result for k, p in enumerate(g.states) if k != g.second}
    return _belt(g, g.second) - _belt(g) - others


def order(g: CellGraph) -> list[str]:
    """Left to right: depth-first from the outputs (conveyor first), inputs before consumers."""
    sinks = (
        ([g.states[g.top].result] if g.top is not None else [])
        + ([g.states[g.second].result] if g.second is not None else [])
        + [g.output]
        + [p.result for p in g.states]
    )
    out: list[str] = []
    belt = _belt(g) | _second(g)

    def visit(nid: str) -> None:
        if nid not in out and g.nodes[nid].kind != "input":
            for s, _ in sorted(g.nodes[nid].inputs, key=lambda i: i[0] not in belt):
                visit(s)
            out.append(nid)

    for s in sinks:
        visit(s)
    return out


def levels(g: CellGraph) -> dict[str, int]:
    """Row of every node: the conveyor's operations on top, layers in a row above the bus,
    other operations one row above their lowest input."""
    on_top, second = _belt(g), _second(g)
    level = {
        n.id: TOP if n.id in on_top else BELT if n.id in second else BOX
        for n in g.nodes.values()
        if n.kind == "layer" or n.id in on_top | second
    }
    rows = {g.states[k].source: r for k, r in ((g.top, TOP), (g.second, BELT)) if k is not None}
    # (not where the hidden state runs on top, as in the GRU: its weights read it from above)
    pre = _before_layers(g, on_top | second)
    for nid in order(g):
        if nid in pre:
            level[nid] = PRE_BOX if g.nodes[nid].kind == "layer" else PRE_OP
        elif nid not in level:
            ups = [level.get(s, rows.get(s, BUS)) for s, _ in g.nodes[nid].inputs]
            level[nid] = min(MID_LO, max(MID_HI, min(ups, default=BUS) + 1))
    return level


def _before_layers(g: CellGraph, belt: set[str]) -> set[str]:
    """What computes the gates' common input from x_t and the state alone (layer norm of W x
    and W h, their sum): drawn under the gates, between them and the hidden-state bus, so that
    its lines go up into the boxes. Layers there are the weights the operations normalise."""
    # (the hidden state reaches the layers from the bus, even where it runs on top, as the GRU's)
    sources = {g.x} | {
        p.source
        for k, p in enumerate(g.states)
        if g.top is None or (k not in (g.top, g.second)) or p.role == "hidden"
    }
    ops = {
        n.id
        for n in g.nodes.values()
        if n.kind in ("op", "concat") and n.id not in belt and n.id not in g.gates.values()
    }
    inner = {n.id for n in g.nodes.values() if n.kind == "layer" and n.activation == "identity"}
    pre: set[str] = set()
    changed = True
    while changed:  # grow from the sources: nodes all of whose inputs are sources or pre nodes
        changed = False
        for nid in (ops | inner) - pre:
            ins = [s for s, _ in g.nodes[nid].inputs]
            if ins and all(s in sources or s in pre for s in ins):
                pre.add(nid)
                changed = True
    keep: set[str] = set()
    changed = True
    while changed:  # keep those that feed a layer (a gate) or a kept op: the gates' input
        changed = False
        for nid in pre - keep:
            users = g.consumers(nid)
            if any(u.id in keep or (u.kind == "layer" and u.id not in pre) for u in users):
                if g.nodes[nid].kind == "layer" and not any(u.id in keep for u in users):
                    continue  # a W box straight into a gate stays in the gates' row
                keep.add(nid)
                changed = True
    return keep


def _between(a: int, b: int) -> range:
    return range(min(a, b) + 1, max(a, b))


def line_cells(sp: int, lp: int, s: int, lv: int, into_layer: bool) -> list[set]:
    """The places a line from the node at (sp, lp) to column s of row lv would pass, ends
    excluded: one set for the direct route, one for the detour through the gap next to the
    source. Places are (column, half-row): row r is 2r, the gap over it (where a node's output
    leaves) 2r - 1."""
    P, V = 2 * lp, 2 * lv
    if lp == lv or (into_layer and lp < lv):  # straight, or across then down beside it
        return [{(k, P) for k in _between(sp, s)}, set()]
    if lp > lv:  # up then across; or over the source, across, up
        direct = (
            {(sp, k) for k in _between(V, P - 1)}
            | {(k, V) for k in _between(sp, s)}
            | ({(sp, V)} if sp != s else set())
        )
        detour = (
            {(k, P - 1) for k in _between(sp, s)}
            | {(s, k) for k in _between(V, P - 1)}
            | ({(s, P - 1)} if sp != s else set())
        )
        return [direct, detour]
    direct = (
        {(k, P) for k in _between(sp, s)}
        | {(s, k) for k in _between(P, V - 1)}
        | ({(s, P)} if sp != s else set())
    )
    detour = (
        {(k, P + 1) for k in _between(sp, s)}
        | {(s, k) for k in _between(P + 1, V - 1)}
        | ({(s, P + 1)} if sp != s else set())
    )
    return [direct, detour]


def place(
    g: CellGraph,
    level: dict[str, int],
    seq: list[str] | None = None,
    shift: dict[str, int] | None = None,
) -> dict[str, int]:
    """A column for each node, taken in the order ``seq`` (default :func:`order`): right of its
    row's last node and of its inputs (and ``shift[node]`` columns more), then moved right (up
    to 3 columns) while it would sit on a line or its input lines would cross a node."""
    shift = shift or {}
    slot: dict[str, int] = {}
    last: dict[int, int] = defaultdict(lambda: -1)
    top_source = g.states[g.top].source if g.top is not None else None
    second = g.states[g.second].source if g.second is not None else None
    lines: set[tuple[int, int]] = set()

    def taken() -> set[tuple[int, int]]:  # nodes and the gaps over them
        return {(slot[m], 2 * level[m] - d) for m in slot for d in (0, 1)}

    def routes(nid: str, s: int) -> list[set]:
        """For each input, the places of its cheaper route to column s (lines from the cell's
        inputs run as diagram.py draws them: from the bus straight up at column s)."""
        out, busy = [], taken()
        for p, _ in g.nodes[nid].inputs:
            if p in slot:
                options = line_cells(slot[p], level[p], s, level[nid], g.nodes[nid].kind == "layer")
                out.append(min(options, key=lambda c: 2 * len(c & busy) + len(c & lines)))
            elif p == second:  # along the second memory's line, down
                out.append(line_cells(s, BELT, s, level[nid], False)[0])
            elif g.nodes[p].kind == "input" and p != top_source:  # along the bus, up
                out.append(line_cells(s, BUS, s, level[nid], False)[0])
        return out

    def cost(nid: str, s: int) -> int:
        busy, own = taken(), {(s, 2 * level[nid]), (s, 2 * level[nid] - 1)}
        return 2 * len(own & lines) + sum(
            2 * len(c & busy) + len(c & lines) for c in routes(nid, s)
        )

    for nid in order(g) if seq is None else seq:
        lv = level[nid]
        start = max(
            [last[lv] + 1]
            + [slot[p] + (level[p] == lv) for p, _ in g.nodes[nid].inputs if p in slot]
        ) + shift.get(nid, 0)
        slot[nid] = min(range(start, start + 4), key=lambda s: (cost(nid, s), s))
        last[lv] = max(last[lv], slot[nid])
        for c in routes(nid, slot[nid]):
            lines.update(c)
    return slot


class Router:
    """Orthogonal lines between placed nodes, avoiding the nodes they do not join and the sides
    of nodes that other lines already enter (two lines into one side would read as one)."""

    def __init__(self, g: CellGraph, pos: dict[str, tuple[float, float]]) -> None:
        self.g, self.pos = g, pos
        self.ins: set[tuple[str, str]] = set()  # (node, side) where a line enters
        self.outs: set[tuple[str, str]] = set()  # (node, side) where a line leaves
        self.segments: list[tuple[str, str, tuple, tuple]] = []  # (source, target, a, b) drawn
        self.edges = {(s, n.id) for n in g.nodes.values() for s, _ in n.inputs}

    def overlaps(self, src: str, dst: str, pts) -> bool:
        """Would a segment run along (or close beside) a line of another source to another
        target, and read as its copy? (:func:`close_parallels`, measured while routing.)"""
        inputs = {n for n, node in self.g.nodes.items() if node.kind == "input"}
        for a, b in zip(pts, pts[1:]):
            for other, to, c, d in self.segments:
                if _bundled(self.edges, inputs, (src, dst), (other, to)):
                    continue
                near = _side_by_side(a, b, c, d)
                if near is not None and near[0] < NEAR and near[1] >= 0:
                    return True
        return False

    def clipped(self, src: str, dst: str, pts):
        return clip(pts, self.g.nodes[src] if src in self.pos else None, self.g.nodes[dst])

    def drawn(self, src: str, dst: str, pts) -> None:
        pts = self.clipped(src, dst, pts)
        self.segments += [(src, dst, a, b) for a, b in zip(pts, pts[1:])]

    def blocked(self, pts, ends: set[str]) -> int:
        """How badly the line crosses the stub over a node where its output leaves, or a node:
        a line through a node reads as joining it, a crossing of two lines does not."""
        worst = 0
        for (x1, y1), (x2, y2) in zip(pts, pts[1:]):
            for nid, (x, y) in self.pos.items():
                hw, hh = box_size(self.g.nodes[nid])
                for w, top, cost in (
                    (hw + 3, y - hh - 3, CROSS_NODE),
                    (6, y - hh - GAP - 2, CROSS_STUB),
                ):
                    if (
                        nid not in ends
                        and min(x1, x2) < x + w
                        and max(x1, x2) > x - w
                        and min(y1, y2) < y + hh + 3
                        and max(y1, y2) > top
                    ):
                        worst = max(worst, cost)
        return worst

    def enters(self, src: str, dst: str, pts) -> None:
        self.ins.add((dst, _side(pts[-1], pts[-2])))
        self.drawn(src, dst, pts)

    def badness(self, src: str, dst: str, pts) -> int:
        end, start = (dst, _side(pts[-1], pts[-2])), (src, _side(pts[0], pts[1]))
        return (
            self.blocked(pts, {src, dst})
            + 2 * (end in self.ins | self.outs)
            + (start in self.ins)
            + 2 * self.overlaps(src, dst, self.clipped(src, dst, pts))
        )

    def route_all(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list]:
        """Straight lines first, then the others through the first free detour."""
        options = {pair: self.options(*pair) for pair in pairs}
        routes: dict[tuple[str, str], list] = {}
        for direct_only in (True, False):
            for (src, dst), opts in options.items():
                if (src, dst) in routes:
                    continue
                if direct_only:
                    pick = opts[0] if self.badness(src, dst, opts[0]) == 0 else None
                else:  # the least bad, the earliest of equals
                    pick = min(opts, key=lambda o: self.badness(src, dst, o))
                if pick is not None:
                    routes[(src, dst)] = pick
                    self.ins.add((dst, _side(pick[-1], pick[-2])))
                    self.outs.add((src, _side(pick[0], pick[1])))
                    self.drawn(src, dst, pick)
        return routes

    def options(self, src: str, dst: str) -> list[list[tuple[float, float]]]:
        (xp, yp), (xn, yn) = self.pos[src], self.pos[dst]
        # the gaps under and over the source's row (a dot's too: a line there would graze the
        # circles beside it)
        hp, hw = max(box_size(self.g.nodes[src])[1], CIRCLE_R), box_size(self.g.nodes[dst])[0]
        below, above = yp + hp + GAP, yp - hp - GAP
        xc = xn - hw - 14 if xp < xn else xn + hw + 14  # just beside the target
        if self.g.nodes[dst].kind == "layer" and yp < yn:  # into a layer from above: its side
            options = [
                [(xp, yp), (xc, yp), (xc, yn), (xn, yn)],
                [(xp, yp), (xp, below), (xc, below), (xc, yn), (xn, yn)],
                [(xp, yp), (xp, above), (xc, above), (xc, yn), (xn, yn)],
            ]
        elif yp > yn:  # up
            lane = above + LANE  # a second lane through the same gap, for another bundle
            options = [
                [(xp, yp), (xp, yn), (xn, yn)],
                [(xp, yp), (xp, above), (xn, above), (xn, yn)],
                [(xp, yp), (xp, above), (xc, above), (xc, yn), (xn, yn)],
                [(xp, yp), (xp, lane), (xn, lane), (xn, yn)],
                [(xp, yp), (xp, lane), (xc, lane), (xc, yn), (xn, yn)],
            ]
        elif yp < yn:  # down
            options = [
                [(xp, yp), (xn, yp), (xn, yn)],
                [(xp, yp), (xc, yp), (xc, yn), (xn, yn)],
                [(xp, yp), (xp, below), (xn, below), (xn, yn)],
                [(xp, yp), (xp, below), (xc, below), (xc, yn), (xn, yn)],
            ]
        else:  # along a row
            options = [
                [(xp, yp), (xn, yn)],
                [(xp, yp), (xp, below), (xc, below), (xc, yn), (xn, yn)],
                [(xp, yp), (xp, above), (xc, above), (xc, yn), (xn, yn)],
                [(xp, yp), (xp, below), (xn, below), (xn, yn)],
                [(xp, yp), (xp, above), (xn, above), (xn, yn)],
            ]
        return [[p for i, p in enumerate(o) if i == 0 or p != o[i - 1]] for o in options]


def _side(end: tuple[float, float], toward: tuple[float, float]) -> str:
    """Which side of a node a line leaves or enters, from its segment at that node."""
    dx, dy = toward[0] - end[0], toward[1] - end[1]
    return ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("bottom" if dy > 0 else "top")


def clip(pts, first: Node | None, last: Node | None):
    """Start and end a line on the nodes' outlines, not at their centres."""
    pts = [list(p) for p in pts]
    for node, a, b in ((first, 0, 1), (last, -1, -2)):
        if node is not None and len(pts) > 1:
            hw, hh = box_size(node)
            dx, dy = pts[b][0] - pts[a][0], pts[b][1] - pts[a][1]
            if dx:
                pts[a][0] += hw if dx > 0 else -hw
            elif dy:
                pts[a][1] += hh if dy > 0 else -hh
    return [tuple(p) for p in pts]


# Measured on the drawing: crossings, lines through nodes, arrows into a box from above.

Point = tuple[float, float]


def edge_segments(shapes: list[Shape]) -> list[tuple[str, str, Point, Point]]:
    """Every straight piece of every line: (source, target, start, end)."""
    return [
        (s.data.get("from", ""), s.data.get("to", ""), a, b)
        for s in shapes
        if s.tag == "path" and "edge" in s.cls.split()
        for a, b in zip(s.geo["points"], s.geo["points"][1:])
    ]


def _proper(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Do segments ab and cd cross at a point inside both (not touching, not overlapping)?"""

    def turn(p: Point, q: Point, r: Point) -> int:
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (v > 1e-9) - (v < -1e-9)

    return turn(a, b, c) * turn(a, b, d) < 0 and turn(c, d, a) * turn(c, d, b) < 0


def crossings(shapes: list[Shape]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Pairs of lines that cross: pieces of lines from different sources to different targets
    that intersect inside both (a line forking or two lines joining is no crossing)."""
    segs = edge_segments(shapes)
    return [
        ((f1, t1), (f2, t2))
        for i, (f1, t1, a, b) in enumerate(segs)
        for f2, t2, c, d in segs[i + 1 :]
        if f1 != f2 and t1 != t2 and _proper(a, b, c, d)
    ]


def _outlines(shapes: list[Shape]) -> dict[str, tuple[float, float, float, float]]:
    return {
        s.data["id"]: (s.geo["x"] - s.geo["hw"], s.geo["y"] - s.geo["hh"])
        + (s.geo["x"] + s.geo["hw"], s.geo["y"] + s.geo["hh"])
        for s in shapes
        if s.tag in ("box", "ellipse", "dot")
    }


def through_nodes(shapes: list[Shape]) -> int:
    """How many pieces of lines run through a node they do not join."""
    boxes, n = _outlines(shapes), 0
    for src, dst, (x1, y1), (x2, y2) in edge_segments(shapes):
        for nid, (left, top, right, bottom) in boxes.items():
            n += (
                nid not in (src, dst)
                and min(x1, x2) < right - 1
                and max(x1, x2) > left + 1
                and min(y1, y2) < bottom - 1
                and max(y1, y2) > top + 1
            )
    return n


NEAR, ALONG = 8.0, 10.0  # parallel lines closer than NEAR px over more than ALONG px read as one
LANE = 9.0  # a second line through a gap runs this far from the first


def _bundled(edges: set[tuple[str, str]], inputs: set[str], e1, e2) -> bool:
    """May the lines e1 and e2 share a stretch? Yes where they fork (one source) or join (one
    target); where both come from the cell's inputs (the bus: x_t joins h_{t-1}); and where each
    source feeds both targets, so that the shared stretch says nothing false."""
    (s1, t1), (s2, t2) = e1, e2
    return (
        s1 == s2
        or t1 == t2
        or (s1 in inputs and s2 in inputs)
        or ((s1, t2) in edges and (s2, t1) in edges)
    )


def _side_by_side(a: Point, b: Point, c: Point, d: Point) -> tuple[float, float] | None:
    """Two parallel axis-aligned segments: (their distance, how long they run side by side)."""
    for k in (0, 1):  # k = 0: both horizontal; k = 1: both vertical
        if a[1 - k] == b[1 - k] and c[1 - k] == d[1 - k] and a[k] != b[k] and c[k] != d[k]:
            along = min(max(a[k], b[k]), max(c[k], d[k])) - max(min(a[k], b[k]), min(c[k], d[k]))
            return abs(a[1 - k] - c[1 - k]), along
    return None


def close_parallels(shapes: list[Shape]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Pairs of lines that run side by side closer than NEAR px for more than ALONG px (or on
    top of one another) without being one bundle (:func:`_bundled`): they would read as one."""
    ids = set(_outlines(shapes))
    segs = edge_segments(shapes)
    edges = {(f, t) for f, t, _, _ in segs}
    inputs = {f for f, _ in edges if f not in ids}
    out = []
    for i, (f1, t1, a, b) in enumerate(segs):
        for f2, t2, c, d in segs[i + 1 :]:
            if _bundled(edges, inputs, (f1, t1), (f2, t2)):
                continue
            near = _side_by_side(a, b, c, d)
            if near is not None and near[0] < NEAR and near[1] > ALONG:
                out.append(((f1, t1), (f2, t2)))
    return out


def wrong_faces(shapes: list[Shape]) -> list[tuple[str, str]]:
    """Arrows that enter a node on a face turned away from where their line comes from: a box
    entered from above, a side facing away from the line's start, or a circle entered from
    below (above) by a line that starts above (below) it. Lines into a box from below are the
    post's: the inputs rise into the layers."""
    boxes = _outlines(shapes)
    layers = {s.data["id"] for s in shapes if s.tag == "box"}
    out = []
    for s in shapes:
        if s.tag != "path" or "edge" not in s.cls.split() or s.data.get("to") not in boxes:
            continue
        pts, to = s.geo["points"], s.data["to"]
        if len(pts) < 2:
            continue
        (sx, sy), (px, py), (ex, ey) = pts[0], pts[-2], pts[-1]
        left, top, right, bottom = boxes[to]
        cx = (left + right) / 2
        dx, dy = ex - px, ey - py
        bad = (
            (dx > 0 and sx >= cx)
            or (dx < 0 and sx <= cx)
            or (dy > 0 and (to in layers or sy >= bottom))
            or (dy < 0 and to not in layers and sy <= top)
        )
        if bad:
            out.append((s.data.get("from", ""), to))
    return out


def from_above(shapes: list[Shape]) -> int:
    """How many arrows enter a learned layer's box from above (the post's enter from below)."""
    layers = {s.data["id"] for s in shapes if s.tag == "box"}
    return sum(
        s.data.get("to") in layers and s.geo["points"][-1][1] > s.geo["points"][-2][1]
        for s in shapes
        if s.tag == "path" and "edge" in s.cls.split() and len(s.geo["points"]) > 1
    )


def _topological(g: CellGraph, seq: list[str]) -> bool:
    seen: set[str] = set()
    for nid in seq:
        if any(
            s in g.nodes and g.nodes[s].kind != "input" and s not in seen
            for s, _ in g.nodes[nid].inputs
        ):
            return False
        seen.add(nid)
    return True


def _barycentre(g: CellGraph, level: dict[str, int], seq: list[str], down: bool) -> list[str]:
    """One Sugiyama sweep: each row's nodes re-sorted by the mean column of their neighbours in
    the rows above (``down``) or below, then the order made topological again."""
    slot = place(g, level, seq)
    near: dict[str, list[int]] = defaultdict(list)
    for n in g.nodes.values():
        for s, _ in n.inputs:
            if s in slot and n.id in slot:
                if (level[s] < level[n.id]) == down:
                    near[n.id].append(slot[s])
                else:
                    near[s].append(slot[n.id])
    key = {m: sum(near[m]) / len(near[m]) if near[m] else slot[m] for m in seq}
    rank = {m: i for i, m in enumerate(seq)}
    rows: dict[int, list[str]] = defaultdict(list)
    for m in seq:
        rows[level[m]].append(m)
    where = {}
    for row in rows.values():  # the row's nodes, re-sorted, take the row's places in seq
        for place_, m in zip(
            sorted(rank[m] for m in row), sorted(row, key=lambda m: (key[m], rank[m]))
        ):
            where[m] = place_
    return _repair(g, sorted(seq, key=lambda m: where[m]))


def _repair(g: CellGraph, seq: list[str]) -> list[str]:
    """``seq`` made topological: again and again, its earliest node whose inputs are placed."""
    out: list[str] = []
    todo, inner = list(seq), set(seq)
    while todo:
        m = next(m for m in todo if all(s not in inner or s in out for s, _ in g.nodes[m].inputs))
        out.append(m)
        todo.remove(m)
    return out


# The order place() takes the nodes in, their extra columns, the route of each line from an input.
Plan = tuple[list[str], dict[str, int], dict[tuple[str, str], int]]


def arrange(
    g: CellGraph, level: dict[str, int], score, choices: dict[tuple[str, str], int]
) -> Plan:
    """The order in which :func:`place` takes the nodes, and the columns some are moved right
    by, chosen to draw the fewest crossings.

    Layered (Sugiyama-style) ordering: the depth-first order of :func:`order` (the post's: the
    gates left to right as they act on the cell state), a few barycentre sweeps, then local
    moves while they lower ``score(plan)``, a comparable value measured on the drawing (lines
    through nodes, crossings, ...): two nodes of a row swapped, a node moved one column right,
    a line from an input sent along its other route (``choices``: how many each has).
    A change is kept only when it draws strictly better, so a picture without tangles keeps the
    post's order.
    """
    best: Plan = (order(g), {}, {})
    best_score = score(best)
    seq = best[0]
    for k in range(4):
        seq = _barycentre(g, level, seq, down=k % 2 == 0)
        s = score((seq, {}, {}))
        if s < best_score:
            best, best_score = (seq, {}, {}), s
    rows: dict[int, list[str]] = defaultdict(list)
    for m in best[0]:
        rows[level[m]].append(m)
    for row in rows.values():  # every order of each row of 3 to 5 nodes, while not clean
        if best_score[1:] != (0, 0) and 2 < len(row) <= 5:
            for perm in permutations(row):
                where = dict(zip(row, perm))
                trial = _repair(g, [where.get(m, m) for m in best[0]])
                s = score((trial, {}, {}))
                if s < best_score:
                    best, best_score = (trial, {}, {}), s
    for _ in range(4):  # sweeps of local moves
        improved = False
        for trial in _moves(g, level, best, choices):
            s = score(trial)
            if s < best_score:
                best, best_score, improved = trial, s, True
        if not improved:
            break
    return best


def _moves(g: CellGraph, level: dict[str, int], plan: Plan, choices):
    """Plans one move away from ``plan``: two nodes of a row swapped (the order kept
    topological), one node moved one column further right (at most 2), or one line from an
    input sent along its next route."""
    seq, shift, route = plan
    for i in range(len(seq)):
        for j in range(i + 1, len(seq)):
            if level[seq[j]] != level[seq[i]]:
                continue
            trial = list(seq)
            trial[i], trial[j] = trial[j], trial[i]
            if _topological(g, trial):
                yield trial, shift, route
    for nid in seq:
        if shift.get(nid, 0) < 2:
            yield seq, {**shift, nid: shift.get(nid, 0) + 1}, route
    for edge, n in choices.items():
        yield seq, shift, {**route, edge: (route.get(edge, 0) + 1) % n}
