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
TOP, MID_HI, MID_LO, BOX, BUS = range(5)
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
    for nid in order(g):
        if nid not in level:
            ups = [level.get(s, TOP if s == top_source else BUS) for s, _ in g.nodes[nid].inputs]
            level[nid] = min(MID_LO, max(MID_HI, min(ups) + 1))
    return level


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


def place(g: CellGraph, level: dict[str, int]) -> dict[str, int]:
    """A column for each node: right of its row's last node and of its inputs, then moved right
    (up to 3 columns) while it would sit on a line or its input lines would cross a node."""
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

    for nid in order(g):
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
