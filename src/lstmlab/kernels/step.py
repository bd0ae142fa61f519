"""One step of a built-in cell at the cost of ``torch.nn.LSTMCell``: the generation path.

A sampling loop calls a cell once per token with a batch of one, so what costs is not the
arithmetic (a (1, 4H) matmul) but everything around it. ``step_op(cell, x)`` picks the cheapest
correct route for one step and returns a function ``(cell, x (B, I), state) -> state``:

- every LSTM variant and both GRU forms, when no gradient is wanted (``torch.no_grad()`` or no
  tensor that requires grad) on the CPU, call a C++ step (``csrc/step.h``: the matmuls straight
  to BLAS, then the sequence kernels' pointwise pass in one buffer), skipping autograd;
- with gradients, the standard cells (LSTM with all gates and no projection, the GRU with the
  reset after the matmul, the tanh/ReLU RNN) call torch's own cell kernels (``_VF.lstm_cell`` and
  friends, the ones ``torch.nn.LSTMCell`` calls): same maths, autograd, any device;
- otherwise ``None``: the caller uses the fused sequence operation or the readable ``step``.

Every route is tested against :meth:`lstmlab.Cell.step` (tests/test_step.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import _VF, Tensor, nn

from lstmlab.kernels import backend, to_onnx
from lstmlab.kernels._build import compiled
from lstmlab.kernels._common import kernel_op, kernels_built, tensors
from lstmlab.kernels.lstm import _layout
from lstmlab.nn import dispatch
from lstmlab.nn.cells import GRUCell, LSTMCell, RNNCell

State = tuple[Tensor, ...]
StepOp = dispatch.StepOp  # (cell, x, state) -> state


def _torch_lstm(cell: LSTMCell, x: Tensor, state: State) -> State:
    return _VF.lstm_cell(x, state, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)


def _torch_gru(cell: GRUCell, x: Tensor, state: State) -> State:
    return (_VF.gru_cell(x, state[0], cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),)


def _torch_rnn(cell: RNNCell, x: Tensor, state: State) -> State:
    kernel = _VF.rnn_tanh_cell if cell.nonlinearity == "tanh" else _VF.rnn_relu_cell
    return (kernel(x, state[0], cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),)


def _lstm_step_kernel(*args: Tensor) -> tuple[Tensor, ...]:
    """h_t (B, P), c_t (B, H) and, with gate recurrence, the gates a_t (B, sH); else (0,)."""
    new = [own(t) for t in compiled().lstm_step(*args)]
    return (*new, args[0].new_empty(0)) if len(new) == 2 else tuple(new)


def own(t: Tensor) -> Tensor:
    """The kernels' step outputs are slices of one scratch buffer: an operator returns tensors
    of their own (at a batch of one, a copy of a few hundred numbers)."""
    return t if t._base is None and t.storage_offset() == 0 else t.clone()


def _lstm_step_shapes(x, w_ih, b_ih, b_hh, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, h, c, a, layout):
    b = x.shape[0]
    gates = x.new_empty(b, w_gg.shape[0]) if w_gg.dim() > 1 else x.new_empty(0)
    return x.new_empty(b, w_hh.shape[1]), torch.empty_like(c), gates


lstm_step = kernel_op(
    "lstm_step",
    "(Tensor x, Tensor w_ih, Tensor b_ih, Tensor b_hh, Tensor w_hh, Tensor w_hr, Tensor w_ci, "
    "Tensor w_cf, Tensor w_co, Tensor w_gg, Tensor h, Tensor c, Tensor a, int[] layout) -> "
    f"{tensors(3)}",
    _lstm_step_shapes,
    body=_lstm_step_kernel,
)
gru_step = kernel_op(
    "gru_step",
    "(Tensor x, Tensor w_ih, Tensor b_ih, Tensor w_hh, Tensor b_hh, Tensor h, bool reset_after) "
    "-> Tensor",
    lambda x, w_ih, b_ih, w_hh, b_hh, h, reset_after: torch.empty_like(h),
    body=lambda *args: own(compiled().gru_step(*args)),
)


def _fused_lstm(cell: LSTMCell, x: Tensor, state: State) -> State:
    """The LSTM family's C++ step (csrc/step.h), without autograd."""
    none = x.new_empty(0)
    layout = cell.__dict__.get("_fused_layout")
    if layout is None:  # the switches never change after __init__: compute the layout once
        layout = cell.__dict__["_fused_layout"] = _layout(cell)
    h, c, a = lstm_step(
        x,
        cell.weight_ih,
        _or(cell.bias_ih, none),
        _or(cell.bias_hh, none),
        cell.weight_hh,
        _or(cell.weight_hr, none),
        _or(cell.weight_ci, none),
        _or(cell.weight_cf, none),
        _or(cell.weight_co, none),
        _or(cell.weight_gg, none),
        state[0],
        state[1],
        state[2] if cell.gate_recurrence else none,
        layout,
    )
    return (h, c, a) if cell.gate_recurrence else (h, c)


def _fused_gru(cell: GRUCell, x: Tensor, state: State) -> State:
    """The GRU's C++ step (csrc/step.h), without autograd."""
    none = x.new_empty(0)
    return (
        gru_step(
            x,
            cell.weight_ih,
            _or(cell.bias_ih, none),
            cell.weight_hh,
            _or(cell.bias_hh, none),
            state[0],
            cell.reset_after,
        ),
    )


def _or(t: Tensor | None, none: Tensor) -> Tensor:
    """The kernels read an empty tensor as 'this part is switched off'."""
    return none if t is None else t


def _wants_grad(cell: nn.Module, x: Tensor, state: State) -> bool:
    return torch.is_grad_enabled() and (
        x.requires_grad
        or any(s.requires_grad for s in state)
        or any(p.requires_grad for p in cell.parameters())
    )


def _route(op: Callable[..., State]) -> StepOp:
    """A step written for one cell class, as a route: :func:`step_op` hands it only that class."""
    return op


def step_op(cell: nn.Module, x: Tensor, state: State) -> StepOp | None:
    """The fastest exact one-step route for ``cell`` on ``x`` and ``state``, or ``None``."""
    kind = type(cell)
    if kind not in (LSTMCell, GRUCell, RNNCell):
        return None  # a user's cell, or a subclass: its own step runs
    way = backend.route(x)
    if way == "readable":
        return None
    if (
        kind is not RNNCell
        and x.device.type == "cpu"
        and way == "cpp"
        and x.dtype in (torch.float32, torch.float64)
        and not _wants_grad(cell, x, state)
        and kernels_built()
    ):
        return _route(_fused_lstm if kind is LSTMCell else _fused_gru)
    # The class is exactly one of the three here, so isinstance is the same test as `kind is`.
    if isinstance(cell, LSTMCell) and to_onnx.standard_lstm(cell):
        return _route(_torch_lstm)
    if isinstance(cell, GRUCell) and cell.reset_after:
        return _route(_torch_gru)
    if isinstance(cell, RNNCell):
        return _route(_torch_rnn)
    return None


dispatch.register_step_finder(step_op)
