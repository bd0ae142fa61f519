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

from lstmlab.kernels._build import compiled, extension
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


def _fused_lstm(cell: LSTMCell, x: Tensor, state: State) -> State:
    """The LSTM family's C++ step (csrc/step.h), without autograd."""
    none = x.new_empty(0)
    layout = cell.__dict__.get("_fused_layout")
    if layout is None:  # the switches never change after __init__: compute the layout once
        layout = cell.__dict__["_fused_layout"] = _layout(cell)
    return tuple(
        compiled().lstm_step(
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
    )


def _fused_gru(cell: GRUCell, x: Tensor, state: State) -> State:
    """The GRU's C++ step (csrc/step.h), without autograd."""
    none = x.new_empty(0)
    return (
        compiled().gru_step(
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


def _is_standard_lstm(cell: LSTMCell) -> bool:
    return (
        not (cell.proj_size or cell.peephole or cell.coupled or cell.gate_recurrence)
        and cell.input_gate
        and cell.forget_gate
        and cell.output_gate
        and cell.input_activation
        and cell.output_activation
    )


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
    if (
        kind is not RNNCell
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not _wants_grad(cell, x, state)
        and extension() is not None
    ):
        return _route(_fused_lstm if kind is LSTMCell else _fused_gru)
    # The class is exactly one of the three here, so isinstance is the same test as `kind is`.
    if isinstance(cell, LSTMCell) and _is_standard_lstm(cell):
        return _route(_torch_lstm)
    if isinstance(cell, GRUCell) and cell.reset_after:
        return _route(_torch_gru)
    if isinstance(cell, RNNCell):
        return _route(_torch_rnn)
    return None


dispatch.register_step_finder(step_op)
