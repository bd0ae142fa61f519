"""A cell's dataflow graph in the terms of Olah's diagrams, read off its actual ``step``.

``trace_cell(cell)`` runs ``cell.step(x, state)`` once under ``torch.fx``'s ``make_fx`` (real
tensors, so Python control flow in ``step`` simply takes its path) and reads the ATen graph:

- a matmul, a diagonal (elementwise) weight or a bias applied to data, possibly several summed,
  is an *affine* value; it stays symbolic through ``chunk`` / ``split`` / ``getitem`` (a fused
  (B, 4H) matmul chunked into gates gives one affine value per gate);
- an activation of an affine value is a learned layer (a yellow box: σ, tanh, ...); an affine
  value used any other way is a layer without activation (a box labelled W);
- pointwise operations on data are pink circles (×, +, 1−, tanh, ...), ``cat`` is a junction;
- multiplying by the constant 1 or adding 0 (a switched-off gate or peephole) is no operation.

State parts are then given their roles: the *hidden* part is the one returned as ``h``; a part
carried from step to step through pointwise operations alone is a conveyor belt (the LSTM's cell
state ``c``, the GRU's ``h``); any other part is an extra line (FGR's gate activations).

A cell may say more about itself with class attributes (plain data: the cell needs no viz):

- ``state_names``: the state parts' names in the diagram, e.g. ``("C", "n", "m")``;
- ``named_outputs``: method name -> the names of what that method (called by ``step``) returns;
  a learned layer among them is labelled by its name (``W_q``), an outer product or a matrix
  product by its operands' (``v kᵀ``, ``C q``);
- ``drawn_as_one``: method name -> label. Each call of such a method by ``step`` is bookkeeping
  (numerical safety, not the idea: the xLSTM's stabiliser) and is drawn as one operation with
  that label, reading what the method reads and giving what it returns. While tracing, these
  methods are shadowed on the instance by wrappers that annotate the ATen operations they run
  (``torch.fx.traceback.annotate``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any

import torch
import torch.fx.traceback as fx_traceback
from torch import fx, nn
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

from lstmlab.nn.cells.base import Cell

CONST = object()  # a value computed from parameters and constants only
ZERO = object()  # a tensor of zeros shaped like data: no data flows through it

_ZEROS = {"zeros_like", "new_zeros"}

_VIEWS = {
    "t",
    "transpose",
    "permute",
    "view",
    "reshape",
    "unsafe_view",
    "expand",
    "unsqueeze",
    "squeeze",
    "clone",
    "contiguous",
    "alias",
    "detach",
    "to_copy",
    "lift_fresh_copy",
    "numpy_T",
    "slice",
    "narrow",
    "select",
    "expand_as",
    "view_as",
}
# Short labels for the circles of other pointwise operations (the data-op attribute keeps the name).
_SHORT = {"native_layer_norm": "LN", "layer_norm": "LN", "group_norm": "GN", "dropout": "drop"}
_SPLITS = {"split", "split_with_sizes", "chunk", "unbind", "tensor_split", "unsafe_split"}
_MATMULS = {"mm", "addmm", "matmul", "linear", "bmm", "mv", "baddbmm", "addmv"}
_ACTIVATIONS = {
    "sigmoid": "σ",
    "tanh": "tanh",
    "relu": "relu",
    "gelu": "gelu",
    "silu": "silu",
    "elu": "elu",
    "softplus": "softplus",
    "exp": "exp",
    "hardtanh": "hardtanh",
    "softmax": "softmax",
    "log_softmax": "log softmax",
    "leaky_relu": "leaky relu",
    "log_sigmoid_forward": "log σ",
}
FOLD, NAME = "lstmlab_drawn_as_one", "lstmlab_name"  # the annotations of marked methods


@dataclass(frozen=True)
class Node:
    """A box, circle, junction or input of the diagram.

    ``kind``: "input" (x or a state part coming in), "layer" (learned, with ``activation``),
    "op" (pointwise, with ``op``) or "concat". ``inputs``: (source id, how), how is "W" (a full
    weight matrix), "diag" (an elementwise weight, e.g. a peephole) or "id" (no weight).
    """

    id: str
    kind: str
    label: str
    inputs: tuple[tuple[str, str], ...] = ()
    activation: str | None = None
    op: str | None = None
    gate: str | None = None
    note: str | None = None  # e.g. a clock's periods
    name: str | None = None  # the value's name, from the cell's ``named_outputs``


@dataclass(frozen=True)
class StatePart:
    index: int
    name: str  # "h", "c", "a", ...
    role: str  # "hidden", "cell" (a conveyor other than h) or "extra"
    source: str  # the input node of the part at t-1
    result: str  # the node whose value is the part at t
    conveyor: bool  # carried from t-1 to t through pointwise operations alone


@dataclass
class CellGraph:
    name: str
    nodes: dict[str, Node]
    states: list[StatePart]
    output: str  # the node whose value is the step's output h
    x: str = "x"
    top: int | None = None  # index of the state part drawn along the top, if any
    second: int | None = None  # index of a second memory drawn under the top line, if any
    gates: dict[str, str] = field(default_factory=dict)  # gate name -> node id
    tied: bool = False  # one block of weights applied at every layer (the cell's ``tied``)

    def consumers(self, nid: str) -> list[Node]:
        return [n for n in self.nodes.values() if any(s == nid for s, _ in n.inputs)]


@dataclass(frozen=True)
class _Affine:
    """A linear function of data: terms (source id, how), plus perhaps a bias."""

    terms: tuple[tuple[str, str], ...]
    name: str | None = None

    def __add__(self, other: _Affine) -> _Affine:
        return _Affine(tuple(dict.fromkeys(self.terms + other.terms)))


@dataclass(frozen=True)
class _Parts:
    whole: object  # the value that was split: each part depends on all of it


@dataclass(frozen=True)
class _InFold:
    """A value computed inside one call of a ``drawn_as_one`` method."""

    key: tuple[str, int]  # (label, call)


@contextmanager
def _marked(cell: Cell) -> Iterator[None]:
    """While tracing, the cell's ``drawn_as_one`` and ``named_outputs`` methods shadowed on the
    instance by wrappers that annotate what they compute (the class is left alone)."""
    calls = count()
    wrappers = {}
    for method, label in getattr(cell, "drawn_as_one", {}).items():
        fn = getattr(cell, method)

        def fold(*args, fn=fn, label=label, **kw):
            with fx_traceback.annotate({FOLD: (label, next(calls))}):
                return fn(*args, **kw)

        wrappers[method] = fold
    for method, names in getattr(cell, "named_outputs", {}).items():
        fn = wrappers.get(method, getattr(cell, method))

        def named(*args, fn=fn, names=names, **kw):
            out = tuple(fn(*args, **kw))
            tagged = []
            for t, name in zip(out, names):
                with fx_traceback.annotate({NAME: name}):
                    tagged.append(t.view_as(t))  # an alias that carries the name
            return (*tagged, *out[len(tagged) :])

        wrappers[method] = named
    vars(cell).update(wrappers)
    try:
        with fx_traceback.preserve_node_meta():
            yield
    finally:
        for method in wrappers:
            del vars(cell)[method]


class _Step(nn.Module):
    """``cell.step`` as a module whose parameters ``torch.func.functional_call`` can swap in."""

    def __init__(self, cell: Cell) -> None:
        super().__init__()
        self.cell = cell
        self.gate_names: list[str] = []

    def forward(self, x, state):
        h, state, gates = self.cell.step(x, state)
        self.gate_names = list(gates)
        return (h, *state, *gates.values())


def trace_cell(cell: Cell, *, batch: int = 2) -> CellGraph:
    """The dataflow graph of one ``cell.step``, e.g. ``trace_cell(LSTMCell(3, 4)).nodes``."""
    if not isinstance(cell, Cell):
        raise ValueError(
            f"a diagram needs an lstmlab.Cell (with step(x, state)); got {type(cell).__name__}"
        )
    step = _Step(cell)
    params = {**dict(step.named_parameters()), **dict(step.named_buffers())}
    ref = next(iter(params.values()), None)
    kw: dict[str, Any] = dict(dtype=ref.dtype, device=ref.device) if ref is not None else {}
    x = torch.randn(batch, cell.input_size, **kw)
    state = tuple(torch.randn(batch, n, **kw) for n in cell.state_sizes)

    def f(params, x, state):
        return torch.func.functional_call(step, params, (x, state))

    with torch.no_grad(), _marked(cell):
        gm = make_fx(f)(params, x, state)
    graph = _Reader(cell, step.gate_names).read(gm.graph, len(params))
    graph.tied = bool(getattr(cell, "tied", False))
    return graph


class _Reader:
    def __init__(self, cell: Cell, gate_names: list[str]) -> None:
        self.cell, self.gate_names = cell, gate_names
        self.nodes: dict[str, Node] = {}
        self.boxes: dict[int, str] = {}  # id(affine) -> its W box, made once
        self.folds: dict[tuple[str, int], str] = {}  # a drawn_as_one call -> its node

    def add(self, kind: str, label: str, inputs, **kw) -> str:
        nid = f"n{len(self.nodes)}"
        self.nodes[nid] = Node(nid, kind, label, tuple(dict.fromkeys(inputs)), **kw)
        return nid

    def data(self, v) -> str | None:
        """A node id for a value: an affine value becomes a box without activation."""
        if isinstance(v, _Affine):
            if len(v.terms) == 1 and v.terms[0][1] == "id":  # a bias added: no weight to draw
                return v.terms[0][0]
            if id(v) not in self.boxes:
                self.boxes[id(v)] = self.add(
                    "layer", "W", v.terms, activation="identity", name=v.name
                )
            return self.boxes[id(v)]
        if isinstance(v, _Parts):
            return self.data(v.whole)
        if isinstance(v, _InFold):
            return self.folds[v.key]
        return None if v is CONST or v is ZERO else v

    def source(self, v) -> str:
        """The node id of a value that carries data (neither CONST nor ZERO)."""
        d = self.data(v)
        assert d is not None, "a constant or zero value has no node"
        return d

    def op(self, label: str, op: str, values) -> str:
        return self.add("op", label, [(d, "id") for v in values if (d := self.data(v))], op=op)

    def read(self, graph: fx.Graph, n_params: int) -> CellGraph:
        S = len(self.cell.state_sizes)
        self.add("input", "x", ())
        for k in range(S):
            self.add("input", f"state{k}", ())
        names = [f"n{i}" for i in range(S + 1)]  # x, state parts
        env: dict[fx.Node, object] = {}
        placeholders = 0
        for node in graph.nodes:
            if node.op == "placeholder":
                env[node] = CONST if placeholders < n_params else names[placeholders - n_params]
                placeholders += 1
            elif node.op == "get_attr":
                env[node] = CONST
            elif node.op == "call_function":
                env[node] = self.value(node, env)
            elif node.op == "output":
                outs = [self.data(env[a]) for a in pytree.tree_leaves(node.args[0])]
        results = [o for o in outs[: S + 1] if o is not None]
        if len(results) < S + 1:
            raise ValueError(
                f"{type(self.cell).__name__}.step returns an output or state that "
                "does not depend on x or the state; a diagram needs data flow"
            )
        gates = {
            g: o
            for g, o in zip(self.gate_names, outs[S + 1 :])
            if o is not None and o not in self.folds.values()  # a gate inside bookkeeping
        }
        for g, nid in gates.items():
            self.nodes[nid] = replace(self.nodes[nid], gate=g)
        nodes = self.prune(outs)
        parts = list(range(S))
        for k in _clocks(nodes, names, results[1:]):
            parts.remove(k)
            self.clock(nodes, names[k + 1], gates)
        return _with_roles(
            type(self.cell).__name__,
            nodes,
            [names[0]] + [names[k + 1] for k in parts],
            results[0],
            [results[k + 1] for k in parts],
            gates,
            parts,
            getattr(self.cell, "state_names", None),
        )

    def clock(self, nodes: dict[str, Node], source: str, gates: dict[str, str]) -> None:
        """Draw a step counter as the idea, not its arithmetic: everything computed from the
        counter alone (t + 1, t mod T, = 0) becomes one clock, "every T_k steps", and the
        selection it drives (run the module, or keep h_{t-1}) one operation."""
        ticks = {source}
        for n in list(nodes.values()):  # in the order computed
            if n.inputs and all(s in ticks for s, _ in n.inputs):
                ticks.add(n.id)
        periods = getattr(self.cell, "periods", None)
        clock = Node(
            f"n{len(self.nodes)}",
            "op",
            "every Tₖ",
            op="clock",
            note=None if periods is None else ", ".join(map(str, periods)),
        )
        self.nodes[clock.id] = clock
        for nid in ticks:
            del nodes[nid]
        nodes[clock.id] = clock
        for n in list(nodes.values()):
            if any(s in ticks for s, _ in n.inputs):
                ins = tuple(dict.fromkeys((clock.id if s in ticks else s, h) for s, h in n.inputs))
                new = replace(n, inputs=ins)
                if n.op == "where":
                    new = replace(new, label="run or hold", op="clock-select")
                nodes[n.id] = new
        for g, nid in list(gates.items()):
            if nid in ticks:
                del gates[g]

    def folded(self, key: tuple[str, int], tensors) -> object:
        """A value computed inside a ``drawn_as_one`` call: the call's one node reads every
        value from outside that the call uses."""
        if all(t is CONST or t is ZERO for t in tensors):
            return CONST
        if key not in self.folds:
            self.folds[key] = self.add("op", key[0], (), op="drawn-as-one")
        fid = self.folds[key]
        outside = [
            (d, "id")
            for t in tensors
            if not (isinstance(t, _InFold) and t.key == key) and (d := self.data(t)) is not None
        ]
        node = self.nodes[fid]
        self.nodes[fid] = replace(node, inputs=tuple(dict.fromkeys(node.inputs + tuple(outside))))
        return _InFold(key)

    def value(self, node: fx.Node, env):
        args = [env[a] if isinstance(a, fx.Node) else a for a in node.args]
        custom = node.meta.get("custom") or {}
        if FOLD in custom:
            tensors = [
                env[a]
                for a in pytree.tree_leaves((node.args, node.kwargs))
                if isinstance(a, fx.Node)
            ]
            return self.folded(tuple(custom[FOLD]), tensors)
        if node.target is operator.getitem:  # one part of a split
            base = args[0]
            if isinstance(base, _Parts):  # each part of an affine value is its own function
                return _Affine(base.whole.terms) if isinstance(base.whole, _Affine) else base.whole
            return base
        target = getattr(node.target, "overloadpacket", node.target)
        name = getattr(target, "__name__", str(target)).lstrip("_")
        tensors = [
            env[a] for a in pytree.tree_leaves((node.args, node.kwargs)) if isinstance(a, fx.Node)
        ]
        if name in _ZEROS:  # e.g. the grid LSTM's empty depth memory: zero, not data
            return ZERO
        if all(t is CONST or t is ZERO for t in tensors):
            return CONST
        if name in _VIEWS:
            if NAME in custom and isinstance(args[0], _Affine):
                return replace(args[0], name=custom[NAME])
            if NAME in custom and isinstance(args[0], str):
                self.nodes[args[0]] = replace(self.nodes[args[0]], name=custom[NAME])
            return args[0]
        if name in _SPLITS:
            return _Parts(args[0])
        if name in _MATMULS:
            data = [t for t in tensors if t is not CONST and t is not ZERO]
            if len(data) == 1:
                return _Affine(((self.source(data[0]), "W"),))
            return self.op("·", "matmul", data)
        if name in ("add", "sub", "rsub", "mul", "div", "neg"):
            made = len(self.nodes)
            out = self.arith(name, args)
            if name == "mul" and out in self.nodes and int(out[1:]) >= made and _outer(node):
                self.nodes[out] = replace(self.nodes[out], label="⊗", op="outer")
            return out
        if name in _ACTIVATIONS:
            if isinstance(args[0], _Affine):
                return self.add("layer", _ACTIVATIONS[name], args[0].terms, activation=name)
            return self.op(_ACTIVATIONS[name], name, args[:1])
        if name in ("cat", "stack", "concat"):
            return self.add("concat", "", [(d, "id") for t in tensors if (d := self.data(t))])
        return self.op(_SHORT.get(name, name), name, tensors)

    def arith(self, name: str, args):
        a, b = (args + [None])[:2]
        if a is ZERO or b is ZERO:
            return _with_zero(name, a, b, self.arith)
        num = [v for v in (a, b) if isinstance(v, (int, float))]
        x = next(v for v in (a, b) if not isinstance(v, (int, float)) and v is not CONST)
        if name == "neg":
            return x if isinstance(x, _Affine) else self.op("−", "neg", [x])
        if num:  # tensor and Python number
            k = num[0]
            if (name in ("add", "sub") and k == 0) or (name in ("mul", "div") and k == 1):
                return x  # a switched-off gate or peephole
            if isinstance(x, _Affine):
                return x
            if name == "rsub":  # k - x
                return self.op(f"{k:g}−", "one-minus" if k == 1 else "rsub", [x])
            symbol = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}[name]
            return self.op(f"{symbol}{k:g}", name + "-scalar", [x])
        if name in ("mul", "div") and (a is CONST or b is CONST):  # diagonal weight: a peephole
            if isinstance(x, _Affine) or name == "div":
                return x
            return _Affine(((self.source(x), "diag"),))
        if name in ("add", "sub", "rsub"):
            if a is CONST or b is CONST:  # a bias
                return x if isinstance(x, _Affine) else _Affine(((x, "id"),))
            if isinstance(a, _Affine) or isinstance(b, _Affine):
                lift = [v if isinstance(v, _Affine) else _Affine(((v, "id"),)) for v in (a, b)]
                return lift[0] + lift[1]
        symbol = {"add": "+", "sub": "−", "rsub": "−", "mul": "×", "div": "÷"}[name]
        return self.op(symbol, name, [a, b] if name != "rsub" else [b, a])

    def prune(self, outs: list[str | None]) -> dict[str, Node]:
        """Only what the outputs depend on (make_fx also records ops kept for autograd)."""
        keep, todo = set(), [o for o in outs if o is not None]
        while todo:
            nid = todo.pop()
            if nid not in keep:
                keep.add(nid)
                todo.extend(s for s, _ in self.nodes[nid].inputs)
        return {k: v for k, v in self.nodes.items() if k in keep or v.kind == "input"}


def _outer(node: fx.Node) -> bool:
    """Is this product of two tensors larger than both (``v.unsqueeze(-1) * k.unsqueeze(-2)``):
    an outer product?"""
    ins = [a.meta.get("val") for a in node.args if isinstance(a, fx.Node)]
    out = node.meta.get("val")
    return (
        len(ins) == 2
        and isinstance(out, torch.Tensor)
        and all(isinstance(t, torch.Tensor) and t.numel() < out.numel() for t in ins)
    )


def _clocks(nodes: dict[str, Node], sources: list[str], results: list[str]) -> list[int]:
    """State parts that are bookkeeping: their next value is computed from themselves alone
    (a step counter), with no data from x or the other parts."""

    def ancestors(nid: str) -> set[str]:
        seen, todo = set(), [nid]
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(s for s, _ in nodes[m].inputs)
        return seen

    data = set(sources)
    return [
        k
        for k, r in enumerate(results)
        if r in nodes and ancestors(r) & data == {sources[k + 1]} and r != sources[k + 1]
    ]


def _with_zero(name: str, a, b, arith):
    """``a <name> b`` where ``a`` or ``b`` is :data:`ZERO`: ``0·x = 0``, ``x + 0 = x``, so
    ``f ⊙ 0 + i ⊙ g`` draws as ``i ⊙ g`` alone (``rsub(a, b)`` is ``b − a``)."""
    other = b if a is ZERO else a
    if name in ("mul", "neg") or (name == "div" and a is ZERO) or other is ZERO:
        return ZERO
    if isinstance(other, (int, float)) or other is CONST:
        return CONST
    if name == "add" or (name == "sub" and b is ZERO) or (name == "rsub" and a is ZERO):
        return other
    if name in ("sub", "rsub"):  # 0 − x
        return arith("neg", [other])
    raise ValueError(f"cannot draw {name} with a tensor of zeros")  # x ÷ 0


def _with_roles(
    name: str,
    nodes: dict[str, Node],
    sources: list[str],
    h: str,
    results: list[str],
    gates: dict[str, str],
    parts: list[int] | None = None,
    state_names: tuple[str, ...] | None = None,
) -> CellGraph:
    """Name the state parts (``parts``: their indices in the cell's state, the drawn ones;
    ``state_names``: the cell's names for all its parts) and choose which runs along the top
    (the conveyor belt); label the weights by what they read, products by their operands."""

    def pointwise_path(src: str, dst: str) -> bool:
        seen, todo = set(), [src]
        while todo:
            nid = todo.pop()
            if nid == dst:
                return True
            if nid in seen:
                continue
            seen.add(nid)
            todo.extend(
                n.id
                for n in nodes.values()
                if n.kind in ("op", "concat") and any(s == nid for s, _ in n.inputs)
            )
        return False

    S = len(results)
    index = list(range(S)) if parts is None else parts
    # (without a part returned as h, as the mLSTM's matrix memory, no part is the hidden one)
    hidden = next((k for k, r in enumerate(results) if r == h), 0 if state_names is None else -1)
    conveyor = [pointwise_path(sources[k + 1], results[k]) for k in range(S)]
    cell = next((k for k in range(S) if k != hidden and conveyor[k]), None)
    extra = iter(["a", "b", "d", "e"] + [f"s{k}" for k in range(S)])
    states = []
    for k in range(S):
        role = "hidden" if k == hidden else "cell" if k == cell else "extra"
        label = {"hidden": "h", "cell": "c"}.get(role) or next(extra)
        label = state_names[index[k]] if state_names else label
        states.append(StatePart(index[k], label, role, sources[k + 1], results[k], conveyor[k]))
        nodes[sources[k + 1]] = Node(sources[k + 1], "input", label)
    top = cell if cell is not None else (hidden if hidden >= 0 and conveyor[hidden] else None)
    for n in list(nodes.values()):
        if n.kind == "layer" and n.label == "W":
            nodes[n.id] = replace(n, label=_weight_label(n, nodes))
    operand = {p.result: p.name for p in states} | {n.id: n.name for n in nodes.values() if n.name}
    for n in list(nodes.values()):  # v kᵀ, C q: where the operands have names
        names = [operand.get(s) for s, _ in n.inputs]
        if n.op in ("outer", "matmul") and len(names) == 2 and all(names):
            a, b = names
            nodes[n.id] = replace(n, label=f"{a} {b}ᵀ" if n.op == "outer" else f"{a} {b}")
    # a second memory kept as the cell state is, a sum of what is kept and what is written
    # (the xLSTM's normaliser n), runs under the top line
    second = next(
        (
            k
            for k, p in enumerate(states)
            if p.role == "extra" and p.conveyor and nodes[p.result].op == "add"
        ),
        None,
    )
    return CellGraph(
        name, nodes, states, h, sources[0], top, second=None if top is None else second, gates=gates
    )


_SUBSCRIPT = {"x": "ₓ", "h": "ₕ", "a": "ₐ", "e": "ₑ", "s": "ₛ"}
_GATE_SUBSCRIPT = {"reset": "ᵣ", "update": "ᵤ", "candidate": "ₙ", "input": "ᵢ", "output": "ₒ"}


def _weight_label(n: Node, nodes: dict[str, Node]) -> str:
    """A learned layer without activation by its name (``W_q``), what it reads (W_x, W_h), else
    by its gate."""
    if n.name:
        return "W_" + n.name
    reads = {nodes[s].label for s, _ in n.inputs if nodes[s].kind == "input"}
    if n.gate in _GATE_SUBSCRIPT:
        return "W" + _GATE_SUBSCRIPT[n.gate]
    if len(reads) == 1 and len(n.inputs) == 1:
        (r,) = reads
        return "W" + _SUBSCRIPT.get(r, " " + r)
    users = [m for m in nodes.values() if any(s == n.id for s, _ in m.inputs)]
    gate = next((u.gate for u in users if u.gate in _GATE_SUBSCRIPT), None)
    if gate:
        return "W" + _GATE_SUBSCRIPT[gate]
    if reads and len(reads) == len(n.inputs):  # several inputs: W_xh
        order = sorted(reads, key=lambda r: (r != "x", r))
        return "W" + "".join(_SUBSCRIPT.get(r, r) for r in order)
    sub = "".join(_SUBSCRIPT.get(nodes[s].label, "") for s, _ in n.inputs)
    return "W" + sub if sub else "W·"
