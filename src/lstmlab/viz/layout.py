"""Where everything goes: a traced cell graph laid out in the conventions of Olah's post.

Rows, top to bottom: the conveyor belt and its operations (the LSTM's cell state; the GRU's h),
pointwise operations, the learned layers in a row, the hidden-state bus (h_{t-1} joined by x_t
from below), extra state parts. Columns: depth-first from the outputs, each node right after its
inputs, moved right where it would sit on a line or its lines would run through a node. Lines
are orthogonal; each has fallbacks through the gaps between rows and columns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lstmlab.viz.trace import CellGraph, Node

SLOT, X0, CIRCLE_R, BOX_H, GAP = 84.0, 150.0, 15.0, 30.0, 11.0
TOP, MID_HI, MID_LO, BOX, PRE_OP, PRE_BOX, BUS = range(7)
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
    return max(CIRCLE_R, 4.2 * len(node.label) + 7), CIRCLE_R


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


def _belt(g: CellGraph) -> set[str]:
    """The operations on the conveyor belt: between its state part's input and result."""
    if g.top is None:
        return set()
    part = g.states[g.top]
    return (_reach(g, part.source, True) & _reach(g, part.result, False)) - {part.source}


def order(g: CellGraph) -> list[str]:
    """Left to right: depth-first from the outputs (conveyor first), inputs before consumers."""
    sinks = (
        ([g.states[g.top].result] if g.top is not None else [])
        + [g.output]
        + [p.result for p in g.states]
    )
    out: list[str] = []
    belt = _belt(g)

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
    on_top = _belt(g)
    level = {
        n.id: TOP if n.id in on_top else BOX
        for n in g.nodes.values()
        if n.kind == "layer" or n.id in on_top
    }
    top_source = g.states[g.top].source if g.top is not None else None
    # (not where the hidden state runs on top, as in the GRU: its weights read it from above)
    hidden_on_top = g.top is not None and g.states[g.top].role == "hidden"
    pre = set() if hidden_on_top else _before_layers(g, on_top)
    for nid in order(g):
        if nid in pre:
            level[nid] = PRE_BOX if g.nodes[nid].kind == "layer" else PRE_OP
        elif nid not in level:
            ups = [level.get(s, TOP if s == top_source else BUS) for s, _ in g.nodes[nid].inputs]
            level[nid] = min(MID_LO, max(MID_HI, min(ups, default=BUS) + 1))
    return level


def _before_layers(g: CellGraph, belt: set[str]) -> set[str]:
    """What computes the gates' common input from x_t and the state alone (layer norm of W x
    and W h, their sum): drawn under the gates, between them and the hidden-state bus, so that
    its lines go up into the boxes. Layers there are the weights the operations normalise."""
    sources = {g.x} | {p.source for p in g.states if g.top is None or p is not g.states[g.top]}
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
    while changed:  # keep those whose every consumer is a layer (a gate) or a kept op
        changed = False
        for nid in pre - keep:
            users = g.consumers(nid)
            if users and all(
                u.id in keep or (u.kind == "layer" and u.id not in pre) for u in users
            ):
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


def place(g: CellGraph, level: dict[str, int], seq: list[str] | None = None) -> dict[str, int]:
    """A column for each node, taken in the order ``seq`` (default :func:`order`): right of its
    row's last node and of its inputs, then moved right (up to 3 columns) while it would sit on
    a line or its input lines would cross a node."""
    slot: dict[str, int] = {}
    last: dict[int, int] = defaultdict(lambda: -1)
    top_source = g.states[g.top].source if g.top is not None else None
    lines: set[tuple[int, int]] = set()

    def taken() -> set[tuple[int, int]]:  # nodes and the gaps over them
        return {(slot[m], 2 * level[m] - d) for m in slot for d in (0, 1)}

    def routes(nid: str, s: int) -> list[set]:
        """For each input, the places of its cheaper route to column s (lines from the cell's
        inputs run as diagram.py draws them: from the bus straight up at column s; x_t into an
        operation up the left side, then across)."""
        out, busy = [], taken()
        for p, _ in g.nodes[nid].inputs:
            if p in slot:
                options = line_cells(slot[p], level[p], s, level[nid], g.nodes[nid].kind == "layer")
                out.append(min(options, key=lambda c: 2 * len(c & busy) + len(c & lines)))
            elif p == g.x and g.nodes[nid].kind != "layer":  # x_t: up the left, across
                out.append({(k, 2 * level[nid]) for k in range(s)})
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
        )
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
        self.segments: list[tuple[str, tuple, tuple]] = []  # (source, start, end) drawn

    def overlaps(self, src: str, pts) -> bool:
        """Would a segment run along (or on from) a line of another source, and read as its copy?"""
        for a, b in zip(pts, pts[1:]):
            for other, c, d in self.segments:
                if other == src:
                    continue
                if (
                    a[0] == b[0] == c[0] == d[0]
                    and min(max(a[1], b[1]), max(c[1], d[1]))
                    - max(min(a[1], b[1]), min(c[1], d[1]))
                    >= 0
                ):
                    return True
                if (
                    a[1] == b[1] == c[1] == d[1]
                    and min(max(a[0], b[0]), max(c[0], d[0]))
                    - max(min(a[0], b[0]), min(c[0], d[0]))
                    >= 0
                ):
                    return True
        return False

    def clipped(self, src: str, dst: str, pts):
        return clip(pts, self.g.nodes[src] if src in self.pos else None, self.g.nodes[dst])

    def drawn(self, src: str, dst: str, pts) -> None:
        pts = self.clipped(src, dst, pts)
        self.segments += [(src, a, b) for a, b in zip(pts, pts[1:])]

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
            + 2 * self.overlaps(src, self.clipped(src, dst, pts))
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
            options = [
                [(xp, yp), (xp, yn), (xn, yn)],
                [(xp, yp), (xp, above), (xn, above), (xn, yn)],
                [(xp, yp), (xp, above), (xc, above), (xc, yn), (xn, yn)],
            ]
        elif yp < yn:  # down
            options = [
                [(xp, yp), (xn, yp), (xn, yn)],
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
    out: list[str] = []
    todo = sorted(seq, key=lambda m: where[m])
    while todo:  # the earliest node whose inputs are all placed
        m = next(m for m in todo if all(s not in slot or s in out for s, _ in g.nodes[m].inputs))
        out.append(m)
        todo.remove(m)
    return out


def arrange(g: CellGraph, level: dict[str, int], score) -> list[str]:
    """The order in which :func:`place` takes the nodes, chosen to draw the fewest crossings.

    Layered (Sugiyama-style) ordering: the depth-first order of :func:`order` (the post's: the
    gates left to right as they act on the cell state), a few barycentre sweeps, then
    transpositions of two nodes of a row while that lowers ``score(seq)``, a comparable value
    measured on the drawing (lines through nodes, crossings, ...). A change is kept only when it
    draws strictly better, so a picture without tangles keeps the post's order.
    """
    best, best_score = order(g), None
    best_score = score(best)
    seq = best
    for k in range(4):
        seq = _barycentre(g, level, seq, down=k % 2 == 0)
        s = score(seq)
        if s < best_score:
            best, best_score = seq, s
    for _ in range(3):  # transposition sweeps
        improved = False
        for i in range(len(best)):
            for j in range(i + 1, len(best)):
                if level[best[j]] != level[best[i]]:
                    continue
                trial = list(best)
                trial[i], trial[j] = trial[j], trial[i]
                if not _topological(g, trial):
                    break
                s = score(trial)
                if s < best_score:
                    best, best_score, improved = trial, s, True
                break  # only the next node of the row
        if not improved:
            break
    return best
