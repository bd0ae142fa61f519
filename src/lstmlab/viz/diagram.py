"""Cell diagrams in the visual language of Olah's "Understanding LSTM Networks", drawn from code.

The graph comes from tracing the cell's own ``step`` (:mod:`lstmlab.viz.trace`); the layout is
computed, with the post's conventions: the conveyor belt (the LSTM's cell state) runs along the
top, the hidden state along the bottom, the input enters from below; learned layers are yellow
boxes in a row, pointwise operations pink circles, lines join where vectors are concatenated
and fork where they are copied. Nodes keep the order in which the step's outputs need them
(inputs just before their consumer), so a gate sits under the operation it feeds.

Example::

    >>> from lstmlab import LSTMCell
    >>> draw_cell(LSTMCell(8, 16, peephole=True), "peephole.svg")   # or .png (matplotlib)
    >>> svg = cell_svg(LSTMCell(8, 16))           # <g class="layer" data-gate="forget" ...>
    >>> draw_unrolled(LSTMCell(8, 16), "unrolled.svg", steps=3)
"""

from __future__ import annotations

from pathlib import Path

from lstmlab.nn.cells.base import Cell
from lstmlab.viz.layout import (
    BELT,
    CROSS_NODE,
    SLOT,
    TOP,
    X0,
    Drawing,
    Plan,
    Router,
    Shape,
    arrange,
    box_size,
    clip,
    close_parallels,
    crossings,
    from_above,
    levels,
    note_text,
    place,
    through_nodes,
    wrong_faces,
)
from lstmlab.viz.trace import CellGraph, Node, trace_cell


def _sub(k: int) -> str:
    return "t" if k == 0 else f"t{k:+d}".replace("-", "−")


def arrangement(g: CellGraph) -> Plan:
    """The order of the nodes, and their extra columns, that draw the cell best
    (:func:`lstmlab.viz.layout.arrange`)."""
    level = levels(g)

    def score(plan: Plan) -> tuple[int, int, int]:
        shapes = layout_cell(g, plan=plan)[0].shapes
        flaws = len(crossings(shapes)) + 2 * len(close_parallels(shapes) + wrong_faces(shapes))
        return through_nodes(shapes), flaws, from_above(shapes)

    return arrange(g, level, score, _input_choices(g, level))


def _input_choices(g: CellGraph, level: dict[str, int]) -> dict[tuple[str, str], int]:
    """The lines from the cell's inputs that have a second route (see ``routes_in``): x_t into
    an operation, the top line into an operation or a peephole."""
    top = g.states[g.top].source if g.top is not None else None
    out = {}
    for n in g.nodes.values():
        for src, how in n.inputs if n.id in level else ():
            layer = n.kind == "layer"
            if (src == g.x and not layer) or (
                src == top and level[n.id] != TOP and not (layer and how == "W")
            ):
                out[(src, n.id)] = 2
    return out


def layout_cell(g: CellGraph, t: int = 0, plan: Plan | None = None) -> tuple[Drawing, float, float]:
    """Shapes for one cell at time offset ``t``, and the left and right ends of its lines;
    ``plan``: the order of the nodes, their extra columns and the routes chosen for the lines
    from the cell's inputs (default :func:`arrangement`)."""
    level = levels(g)
    seq, shift, choice = arrangement(g) if plan is None else plan
    slot = place(g, level, seq, shift)
    last = max(slot.values(), default=0)
    rows = sorted(
        set(level.values())
        | ({TOP} if g.top is not None else set())
        | ({BELT} if g.second is not None else set())
    )
    ys = {lv: (62.0 if TOP in rows else 76.0) + 50 * i for i, lv in enumerate(rows)}
    y0, y_bus = ys.get(TOP, 62.0), max(ys.values(), default=62.0) + 56
    extras = [p.index for k, p in enumerate(g.states) if p.role == "extra" and k != g.second]
    y_extras = {k: y_bus + 32 * (j + 1) for j, k in enumerate(extras)}  # one line each
    y_extra = max(y_extras.values(), default=y_bus + 32)
    pos = {n: (X0 + slot[n] * SLOT, ys[level[n]]) for n in slot}
    extra = bool(extras)
    wide = _overhang(g, pos, X0 + (last + 0.5) * SLOT)  # the exit lines pass the last column
    rect_l, rect_r, rect_b = (
        X0 - 0.95 * SLOT,
        X0 + (last + 1.0) * SLOT + wide,
        (y_extra if extra else y_bus) + 16,
    )
    XL, XR, x_drop, x_in = rect_l - 30, rect_r + 30, X0 - 0.72 * SLOT, X0 - 0.42 * SLOT
    x_join = X0 - 0.57 * SLOT  # where an extra line joins the bus, left of x_t
    x_out, x_extra, y_x = (
        X0 + (last + 0.5) * SLOT + wide,
        X0 + (last + 0.75) * SLOT + wide,
        rect_b + 34,
    )
    top = g.states[g.top] if g.top is not None else None
    by_source = {p.source: p for p in g.states}
    cell = next((p for p in g.states if p.role == "cell"), None)
    cell_nodes = {cell.source, cell.result} if cell else set()
    router = Router(g, pos)

    second = g.states[g.second] if g.second is not None else None

    def line_y(p) -> float:
        return (
            y0
            if top is not None and p.index == top.index
            else ys[BELT]
            if second is not None and p.index == second.index
            else y_extras[p.index]
            if p.role == "extra"
            else y_bus
        )

    def from_source(src: str, dst: str, how: str) -> list[tuple[float, float]]:
        """The line from a cell input into a node: the plan's choice among :func:`routes_in`."""
        options = routes_in(src, dst, how)
        return options[min(choice.get((src, dst), 0), len(options) - 1)]

    def routes_in(src: str, dst: str, how: str) -> list[list[tuple[float, float]]]:
        """The ways a line from a cell input may reach a node, the post's first."""
        (xn, yn), layer = pos[dst], g.nodes[dst].kind == "layer"
        via_bus = [(xn, y_bus), (xn, yn)]  # along the bus, then up into the node from below
        if src == g.x:  # x_t comes up from below, joins the bus and rises where it is read
            return [[(x_in, y_x - 12), (x_in, y_bus), *via_bus]] + (
                [] if layer else [[(x_in, y_x - 12), (x_in, yn), (xn, yn)]]
            )
        ys_ = line_y(by_source[src])
        if second is not None and src == second.source:  # along its line, then down
            return [[(XL, ys_), (xn, ys_)]] if yn == ys_ else [[(XL, ys_), (xn, ys_), (xn, yn)]]
        if (
            ys_ in y_extras.values() and layer
        ):  # an extra line into the gates: one bundle, joining the bus
            return [[(XL, ys_), (x_join, ys_), (x_join, y_bus), *via_bus]]
        if ys_ != y0 or top is None:  # the bus or an extra line: along it, then up
            return [[(XL, ys_), (xn, ys_), (xn, yn)]]
        if level[dst] == TOP:
            return [[(XL, ys_), (xn, ys_)]]
        down_left = [(XL, ys_), (x_drop, ys_), (x_drop, y_bus), *via_bus]  # joins x_t on the bus
        if layer and how == "W":
            return [down_left]
        if layer:  # a peephole: under the belt, into the side; or in the gates' input bundle
            xc = xn - SLOT / 2
            return [
                [(XL, ys_), (x_drop, ys_), (x_drop, ys_ + 26), (xc, ys_ + 26), (xc, yn), (xn, yn)],
                down_left,
            ]
        return [[(XL, ys_), (x_drop, ys_), (x_drop, yn), (xn, yn)], down_left]

    shapes = [
        Shape(
            "cell", "cell", dict(x=rect_l, y=30, w=rect_r - rect_l, h=rect_b - 30), {"cell": g.name}
        )
    ]

    def edge(points, src: str, dst: str, cls: list[str], names: tuple[str, str]) -> None:
        pts = clip(
            points, g.nodes[src] if src in pos else None, g.nodes[dst] if dst in pos else None
        )
        shapes.append(
            Shape(
                "path",
                " ".join(["edge", *cls]),
                dict(points=pts),
                {"from": names[0], "to": names[1]},
            )
        )

    inner = [
        (src, n.id) for n in g.nodes.values() if n.id in pos for src, _ in n.inputs if src in pos
    ]
    for n in g.nodes.values():  # lines from the inputs take their sides first
        for src, how in n.inputs if n.id in pos else ():
            if src not in pos:
                router.enters(src, n.id, from_source(src, n.id, how))
    routes = router.route_all(inner)
    for n in g.nodes.values():
        for src, how in n.inputs if n.id in pos else ():
            cls = (
                [f"{by_source[src].role}-state"]
                if src in by_source
                else [f"{top.role}-state"]
                if top and level.get(src) == TOP == level[n.id]
                else []
            )
            if n.kind == "layer" and src in cell_nodes:
                cls.append("peephole")
            pts = from_source(src, n.id, how) if src not in pos else routes[(src, n.id)]
            edge(
                pts,
                src,
                n.id,
                cls,
                (by_source[src].name if src in by_source else "x" if src == g.x else src, n.id),
            )

    def exit_xs(src: str, x: float) -> list[float]:
        """Where a line out of the cell may turn up or down: at x, else a column further left
        (back to its source's), where a node right of the source on its row sits on the line."""
        return [x - k * SLOT for k in range(last - slot.get(src, last) + 1)]

    for p in g.states:  # each state part leaves along its own line
        ys_, r = line_y(p), p.result
        xr, yr = pos.get(r, (XL, ys_))
        # (a deeper extra line turns down further left: it crosses no line above it)
        xv = x_extra - 12 * extras.index(p.index) if p.index in extras else x_out
        pts = (
            [(xr, yr), (XR, ys_)]
            if yr == ys_
            else _clear(
                router,
                r,
                lambda x, xr=xr, yr=yr, ys_=ys_: [(xr, yr), (x, yr), (x, ys_), (XR, ys_)],
                exit_xs(r, xv),
            )
        )
        edge(pts, r, "", [f"{p.role}-state"], (r, f"{p.name}_out"))
        for x, anchor, k in ((XL - 6, "end", t - 1), (XR + 6, "start", t)):
            shapes.append(_text(x, ys_, p.name, _sub(k), anchor, {"state": p.name, "role": p.role}))
    xo, yo = pos.get(g.output, (XL, y0))
    pts = _clear(router, g.output, lambda x: [(xo, yo), (x, yo), (x, 22)], exit_xs(g.output, x_out))
    edge(pts, g.output, "", ["output"], (g.output, "h_up"))
    shapes.append(_text(pts[-1][0], 14, "h", _sub(t), "middle", {"role": "output"}))
    shapes.append(_text(x_in, y_x + 4, "x", _sub(t), "middle", {"role": "input"}))
    if g.tied:  # the same weights at every layer: said on the cell, each layer box marked
        shapes.append(
            Shape(
                "caption",
                "caption",
                dict(x=rect_r, y=rect_b + 16, anchor="end"),
                {"tied": "true"},
                "one block, shared by all layers",
            )
        )
    shapes += [
        _node_shape(n, *pos[n.id], tied=g.tied and n.activation != "identity")
        for n in g.nodes.values()
        if n.id in pos
    ]
    return Drawing(shapes, XR + 50, y_x + 14), XL, XR


def _overhang(g: CellGraph, pos: dict[str, tuple[float, float]], x: float) -> float:
    """How far right of ``x`` the nodes reach, with room beside them for a line: a node wider
    than half a column would stand on the lines leaving the cell."""
    right = max((xn + box_size(g.nodes[n])[0] + 12 for n, (xn, _) in pos.items()), default=x)
    return max(0.0, right - x)


def _clear(router: Router, src: str, line, xs: list[float]) -> list[tuple[float, float]]:
    """``line(x)`` for the first x whose line runs through no node, else for the first x."""
    for x in xs:
        if router.blocked(line(x), {src}) < CROSS_NODE:
            return line(x)
    return line(xs[0])


def _text(x, y, base, sub, anchor, data=None) -> Shape:
    return Shape("text", "label", dict(x=x, y=y, anchor=anchor, sub=sub), data or {}, base)


def _node_shape(n: Node, x: float, y: float, tied: bool = False) -> Shape:
    hw, hh = box_size(n)
    geo: dict[str, float | str] = dict(x=x, y=y, hw=hw, hh=hh)
    data: dict[str, str | None] = {"id": n.id, "gate": n.gate}
    if n.kind == "layer":
        data = {**data, "activation": n.activation, "shared": "layers" if tied else None}
        return Shape("box", "layer", geo, data, n.label)
    if n.kind == "concat":
        return Shape("dot", "concat", geo, data)
    if n.note:
        data["periods" if n.op == "clock" else "note"] = n.note
        geo["note"] = note_text(n)
    return Shape("ellipse", "pointwise", geo, {**data, "op": n.op}, n.label)


def cell_drawing(cell: Cell) -> Drawing:
    """The laid-out diagram of one cell (shapes in SVG coordinates)."""
    return layout_cell(trace_cell(cell))[0]


def unrolled_drawing(cell: Cell, steps: int = 3) -> Drawing:
    """``steps`` copies of the cell side by side, each one step later (the post's figure 2)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int (copies of the cell); got {steps!r}")
    g, shapes, width = trace_cell(cell), [], 0.0
    plan = arrangement(g)
    for k in range(steps):
        d, xl, xr = layout_cell(g, t=k - (steps - 1) // 2, plan=plan)
        dx = k * (xr - xl)
        for s in d.shapes:
            if (
                s.tag == "text"
                and s.data.get("state")
                and (
                    (k > 0 and s.geo["anchor"] == "end")
                    or (k < steps - 1 and s.geo["anchor"] == "start")
                )
            ):
                continue  # inner state labels: the lines join
            shapes.append(_shift(s, dx, k))
        width, height = d.width + dx, d.height
    return Drawing(shapes, width, height)


def _shift(s: Shape, dx: float, step: int) -> Shape:
    geo = dict(s.geo)
    if "points" in geo:
        geo["points"] = [(x + dx, y) for x, y in geo["points"]]
    else:
        geo["x"] += dx
    return Shape(s.tag, s.cls, geo, {**s.data, "step": step}, s.label)


def cell_svg(cell: Cell) -> str:
    """The cell's diagram as an SVG document (a string)."""
    from lstmlab.viz.render import to_svg

    return to_svg(cell_drawing(cell))


def _write(drawing: Drawing, path: str | Path) -> Path:
    from lstmlab.viz.render import to_png, to_svg

    path = Path(path)
    if path.suffix.lower() not in (".svg", ".png"):
        raise ValueError(f"diagram files end in .svg or .png; got {str(path)!r}")
    if path.suffix.lower() == ".png":
        to_png(drawing, path)
    else:
        path.write_text(to_svg(drawing), encoding="utf-8")
    return path


def draw_cell(cell: Cell, path: str | Path) -> Path:
    """Write the cell's diagram to ``path`` (.svg, or .png through matplotlib)."""
    return _write(cell_drawing(cell), path)


def draw_unrolled(cell: Cell, path: str | Path, steps: int = 3) -> Path:
    """Write ``steps`` unrolled copies of the cell to ``path`` (.svg or .png)."""
    return _write(unrolled_drawing(cell, steps), path)
