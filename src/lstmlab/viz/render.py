"""Writers for :class:`~lstmlab.viz.diagram.Drawing`: plain SVG (xml.etree) and PNG (matplotlib).

Colours follow Olah's post: yellow layer boxes, pink pointwise operations, a pale green cell,
dark lines with arrowheads. Every node and line carries its role as SVG classes and data-*
attributes (``<g class="layer" data-activation="sigmoid" data-gate="forget">``,
``<path class="edge peephole" data-from=... data-to=...>``), so a diagram can be checked by
parsing it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby
from pathlib import Path

from lstmlab.viz.layout import Drawing, Shape

CELL_FILL, CELL_LINE = "#d7ebd3", "#8cbf86"
BOX_FILL, BOX_LINE = "#ffeb99", "#4d3d00"
OP_FILL, OP_LINE = "#f4b6c2", "#7a2e3d"
LINE = "#333333"
CAPTION = "#3d5c3a"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def _d(points) -> str:
    return "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in points)


def _svg_shape(parent: ET.Element, s: Shape) -> None:
    g = s.geo
    data = {f"data-{k}": str(v) for k, v in s.data.items() if v is not None and k != "step"}
    if s.tag == "cell":
        ET.SubElement(
            parent,
            "rect",
            {
                "class": s.cls,
                **data,
                "x": f"{g['x']:.1f}",
                "y": f"{g['y']:.1f}",
                "width": f"{g['w']:.1f}",
                "height": f"{g['h']:.1f}",
                "rx": "16",
                "fill": CELL_FILL,
                "stroke": CELL_LINE,
                "stroke-width": "2",
            },
        )
    elif s.tag == "path":
        ET.SubElement(
            parent,
            "path",
            {
                "class": s.cls,
                **data,
                "d": _d(g["points"]),
                "fill": "none",
                "stroke": LINE,
                "stroke-width": "2",
                "marker-end": "url(#arrow)",
            },
        )
    elif s.tag == "caption":
        t = ET.SubElement(
            parent,
            "text",
            {
                "class": s.cls,
                **data,
                "x": f"{g['x']:.1f}",
                "y": f"{g['y']:.1f}",
                "text-anchor": g["anchor"],
                "font-size": "12",
                "fill": CAPTION,
            },
        )
        t.text = s.label
    elif s.tag == "text":
        # Anchored at its start, from an estimated width: renderers differ on how text-anchor
        # treats a subscript tspan.
        width = 8.5 * len(s.label) + 6.5 * len(g["sub"])
        x = g["x"] - {"start": 0, "middle": width / 2, "end": width}[g["anchor"]]
        t = ET.SubElement(
            parent,
            "text",
            {
                "class": s.cls,
                **data,
                "x": f"{x:.1f}",
                "y": f"{g['y'] + 5:.1f}",
                "font-size": "15",
                "font-style": "italic",
            },
        )
        t.text = s.label
        sub = ET.SubElement(t, "tspan", {"baseline-shift": "sub", "font-size": "11"})
        sub.text = g["sub"]
    else:
        node = ET.SubElement(parent, "g", {"class": s.cls, **data})
        x, y, hw, hh = g["x"], g["y"], g["hw"], g["hh"]
        if s.tag == "box":
            ET.SubElement(
                node,
                "rect",
                {
                    "x": f"{x - hw:.1f}",
                    "y": f"{y - hh:.1f}",
                    "width": f"{2 * hw:.1f}",
                    "height": f"{2 * hh:.1f}",
                    "fill": BOX_FILL,
                    "stroke": BOX_LINE,
                    "stroke-width": "1.5",
                },
            )
        elif s.tag == "dot":
            ET.SubElement(
                node, "circle", {"cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": f"{hw:.1f}", "fill": LINE}
            )
        else:
            ET.SubElement(
                node,
                "ellipse",
                {
                    "cx": f"{x:.1f}",
                    "cy": f"{y:.1f}",
                    "rx": f"{hw:.1f}",
                    "ry": f"{hh:.1f}",
                    "fill": OP_FILL,
                    "stroke": OP_LINE,
                    "stroke-width": "1.5",
                },
            )
        note = g.get("note")
        if s.label:
            base, _, low = s.label.partition("_") if s.tag == "box" else (s.label, "", "")
            text = ET.SubElement(
                node,
                "text",
                {
                    "x": f"{x:.1f}",
                    "y": f"{y + (-2 if note else 5):.1f}",
                    "text-anchor": "middle",
                    "font-size": "16" if len(s.label) < 3 else "13",
                },
            )
            text.text = base
            if low:  # W_q: a subscript Unicode does not have
                tspan = ET.SubElement(text, "tspan", {"baseline-shift": "sub", "font-size": "10"})
                tspan.text = low
        if note:
            t = ET.SubElement(
                node,
                "text",
                {
                    "class": "note",
                    "x": f"{x:.1f}",
                    "y": f"{y + 13:.1f}",
                    "text-anchor": "middle",
                    "font-size": "10.5",
                },
            )
            t.text = note


def to_svg(drawing: Drawing) -> str:
    """The drawing as a standalone SVG document; steps of an unrolled drawing are groups."""
    root = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "version": "1.1",
            "width": f"{drawing.width:.0f}",
            "height": f"{drawing.height:.0f}",
            "viewBox": f"0 0 {drawing.width:.0f} {drawing.height:.0f}",
            "font-family": FONT,
        },
    )
    marker = ET.SubElement(
        ET.SubElement(root, "defs"),
        "marker",
        {
            "id": "arrow",
            "viewBox": "0 0 10 10",
            "refX": "9",
            "refY": "5",
            "markerWidth": "5",
            "markerHeight": "5",
            "orient": "auto-start-reverse",
        },
    )
    ET.SubElement(marker, "path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": LINE})
    for step, shapes in groupby(drawing.shapes, key=lambda s: s.data.get("step")):
        parent = (
            root
            if step is None
            else ET.SubElement(root, "g", {"class": "step", "data-step": str(step)})
        )
        for s in shapes:
            _svg_shape(parent, s)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def to_png(drawing: Drawing, path: str | Path, dpi: int = 160) -> Path:
    """The same drawing through matplotlib (needs matplotlib: ``pip install 'lstmlab[plots]'``)."""
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle

    from lstmlab.viz.plots import _pyplot

    plt = _pyplot()
    fig = plt.figure(figsize=(drawing.width / 100, drawing.height / 100), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, drawing.width)
    ax.set_ylim(drawing.height, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    scale = 72 / 100  # SVG px (100 per inch here) to points
    for s in drawing.shapes:
        g = s.geo
        if s.tag == "cell":
            ax.add_patch(
                FancyBboxPatch(
                    (g["x"], g["y"]),
                    g["w"],
                    g["h"],
                    boxstyle="round,pad=0,rounding_size=16",
                    fc=CELL_FILL,
                    ec=CELL_LINE,
                    lw=2 * scale,
                    zorder=0,
                )
            )
        elif s.tag == "path":
            (xs, ys) = zip(*g["points"])
            ax.plot(
                xs,
                ys,
                color=LINE,
                lw=2 * scale,
                zorder=1,
                solid_joinstyle="miter",
                solid_capstyle="butt",
            )
            ax.add_patch(
                FancyArrowPatch(
                    g["points"][-2],
                    g["points"][-1],
                    arrowstyle="-|>",
                    mutation_scale=10,
                    color=LINE,
                    lw=0,
                    zorder=1,
                    shrinkA=0,
                    shrinkB=0,
                )
            )
        elif s.tag == "caption":
            ax.text(
                g["x"],
                g["y"],
                s.label,
                ha="right",
                va="baseline",
                fontsize=12 * scale,
                color=CAPTION,
                zorder=3,
            )
        elif s.tag == "text":
            sub = g["sub"].replace("−", "-")
            ha = {"end": "right", "start": "left", "middle": "center"}[g["anchor"]]
            ax.text(
                g["x"],
                g["y"],
                f"${s.label}_{{{sub}}}$",
                ha=ha,
                va="center",
                fontsize=15 * scale,
                zorder=3,
            )
        else:
            x, y, hw, hh = g["x"], g["y"], g["hw"], g["hh"]
            patch: Patch
            if s.tag == "box":
                patch = Rectangle((x - hw, y - hh), 2 * hw, 2 * hh, fc=BOX_FILL, ec=BOX_LINE)
            elif s.tag == "dot":
                patch = Ellipse((x, y), 2 * hw, 2 * hh, fc=LINE, ec=LINE)
            else:
                patch = Ellipse((x, y), 2 * hw, 2 * hh, fc=OP_FILL, ec=OP_LINE)
            patch.set(lw=1.5 * scale, zorder=2)
            ax.add_patch(patch)
            note = g.get("note")
            if note:
                ax.text(x, y + 9, note, ha="center", va="center", zorder=3, fontsize=10.5 * scale)
            if s.label:
                base, _, sub = s.label.partition("_") if s.tag == "box" else (s.label, "", "")
                ax.text(
                    x,
                    y - 7 if note else y,
                    base + (f"$_{{\\mathrm{{{sub}}}}}$" if sub else ""),
                    ha="center",
                    va="center",
                    zorder=3,
                    fontsize=(16 if len(s.label) < 3 else 13) * scale,
                )
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)
