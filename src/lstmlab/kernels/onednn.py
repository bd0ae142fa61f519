"""torch's own oneDNN LSTM layer as lstmlab operators, for the standard LSTM when traced.

In eager mode a standard LSTM runs on torch's LSTM kernel (``_VF.lstm``: oneDNN on the CPU), which
``torch.compile`` cannot trace. Wrapped here as custom operators -- one layer and direction,
forward and backward (``aten.mkldnn_rnn_layer`` and its backward), with fake kernels -- a
compiled standard LSTM runs the same oneDNN kernels as eager. The workspace oneDNN keeps for the
backward has a size only the kernel knows: the fake kernel gives it a data-dependent size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmlab.kernels import backend
from lstmlab.kernels._common import first_derivative_only, fresh, grad_or_zeros
from lstmlab.kernels.to_onnx import standard_lstm
from lstmlab.nn.cells.lstm import LSTMCell

_LSTM = 2  # oneDNN's rnn_kind for the LSTM (ideep::rnn_kind::LSTM)
_ONEDNN = torch.backends.mkldnn.is_available()  # read once: compiled code cannot ask


def usable(cell: LSTMCell, x: Tensor, lengths: Tensor | None, masked: bool) -> bool:
    """A standard LSTM cell with biases, float32 on the CPU, no padding and no regulariser."""
    return (
        standard_lstm(cell)
        and cell.bias_ih is not None
        and lengths is None
        and not masked
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and backend.route(x) == "cpp"
        and _ONEDNN
        and not torch.onnx.is_in_onnx_export()
    )


@torch.library.custom_op("lstmlab::onednn_lstm_forward", mutates_args=(), device_types="cpu")
def onednn_lstm_forward(
    x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, h0: Tensor, c0: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One LSTM layer over x (T, B, I): output (T, B, H), h_n, c_n (B, H), oneDNN's workspace."""
    args = [t.detach().contiguous() for t in (x, w_ih, w_hh, b_ih, b_hh, h0, c0)]
    with torch.enable_grad():  # oneDNN keeps its workspace only when a backward may follow
        out, h_n, c_n, workspace = torch.ops.aten.mkldnn_rnn_layer(
            *args, False, [], _LSTM, h0.shape[-1], 1, True, False, False, True
        )
    return fresh((out, h_n, c_n, workspace))


@onednn_lstm_forward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    size = torch.library.get_ctx().new_dynamic_size()
    t, b = x.shape[:2]
    h = h0.shape[-1]
    return x.new_empty(t, b, h), h0.new_empty(b, h), c0.new_empty(b, h), x.new_empty(size).byte()


@torch.library.custom_op("lstmlab::onednn_lstm_backward", mutates_args=(), device_types="cpu")
def onednn_lstm_backward(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    out: Tensor,
    h_n: Tensor,
    c_n: Tensor,
    grad_out: Tensor,
    grad_h: Tensor,
    grad_c: Tensor,
    workspace: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients for x, w_ih, w_hh, b_ih, b_hh, h0, c0."""
    grads = torch.ops.aten.mkldnn_rnn_layer_backward(
        *[t.contiguous() for t in (x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, h_n, c_n)],
        grad_out.contiguous(),
        grad_h.contiguous(),
        grad_c.contiguous(),
        False,
        _LSTM,
        h0.shape[-1],
        1,
        True,
        True,
        False,
        [],
        False,
        workspace.clone(),  # oneDNN writes into it: a second backward must find it intact
    )
    return fresh(grads)


@onednn_lstm_backward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, c0, *rest):
    return tuple(torch.empty_like(t) for t in (x, w_ih, w_hh, b_ih, b_hh, h0, c0))


def _save(ctx, inputs, output):
    ctx.save_for_backward(*inputs, *output)


def _backward(ctx, d_out, d_h, d_c, _):
    first_derivative_only()
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, h_n, c_n, workspace = ctx.saved_tensors
    return onednn_lstm_backward(
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        h0,
        c0,
        out,
        h_n,
        c_n,
        grad_or_zeros(d_out, out),
        grad_or_zeros(d_h, h_n),
        grad_or_zeros(d_c, c_n),
        workspace,
    )


onednn_lstm_forward.register_autograd(_backward, setup_context=_save)


def onednn_lstm_sequence(
    cell: LSTMCell, x: Tensor, state: tuple[Tensor, ...], reverse: bool
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The standard cell over x (T, B, I), forward or reversed (no padding)."""
    assert cell.bias_ih is not None and cell.bias_hh is not None  # usable() checked
    x = x.flip(0) if reverse else x
    out, h_n, c_n, _ = onednn_lstm_forward(
        x, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, state[0], state[1]
    )
    return (out.flip(0) if reverse else out), (h_n, c_n)
