"""ONNX translations of the standard cells' operators, for ``torch.onnx.export(dynamo=True)``.

``torch.onnx.export(model, args, dynamo=True)`` exports every lstmlab layer: each cell is traced
as the readable loop inside one ONNX ``Scan`` node (:func:`lstmlab.nn.recurrent.run`), so the
batch and the sequence length stay dynamic, with standard ONNX operators only.

With lstmlab's translations -- :func:`export` below, or
``custom_translation_table=lstmlab.kernels.to_onnx.translations()`` -- a standard LSTM, GRU or
RNN layer (torch's cells: no variant switch, no layer norm, no projection, no regulariser)
becomes ONNX's own ``LSTM``, ``GRU`` or ``RNN`` operator instead, one per layer and direction,
with ``sequence_lens`` for padded batches: what onnxruntime runs fastest. The GRU's reset
follows the layer's form (``linear_before_reset=1`` for torch's, 0 for Cho et al.'s). The
operators' outputs that only the backward reads (pre-activations, buffers) are empty
placeholders in ONNX.
"""

from __future__ import annotations

from typing import Any

import torch

from lstmlab.nn.cells.gru import GRUCell
from lstmlab.nn.cells.lstm import LSTMCell
from lstmlab.nn.cells.rnn import RNNCell


def standard_lstm(cell: LSTMCell) -> bool:
    """torch's LSTM: all gates, their activations, no peephole, coupling, FGR or projection."""
    return (
        not (cell.proj_size or cell.peephole or cell.coupled or cell.gate_recurrence)
        and cell.input_gate
        and cell.forget_gate
        and cell.output_gate
        and cell.input_activation
        and cell.output_activation
    )


_table: dict[Any, Any] = {}


def registered() -> bool:
    """Whether :func:`translations` has run in this process: then, and only then, an ONNX export
    routes standard cells to their operators (which the translations turn into ONNX's own
    LSTM/GRU/RNN; they are in onnxscript's table from then on, so a plain ``torch.onnx.export``
    finds them too); otherwise they are traced as a ``Scan`` like every other cell."""
    return bool(_table)


def lstm_translated(cell: LSTMCell) -> bool:
    """An LSTM cell's operator becomes ONNX's LSTM: a standard cell, the translations asked."""
    return registered() and standard_lstm(cell)


def gru_translated(cell: GRUCell) -> bool:
    """Both GRU forms become ONNX's GRU (``linear_before_reset`` 1 for torch's form, 0 for Cho
    et al.'s), once the translations are asked."""
    return registered()


def rnn_translated(cell: RNNCell) -> bool:
    """The tanh and ReLU RNN become ONNX's RNN, once the translations are asked."""
    return registered()


def translations() -> dict[Any, Any]:
    """``{torch operator: onnxscript function}`` for ``torch.onnx.export``'s
    ``custom_translation_table``: the standard cells' operators as ONNX's LSTM, GRU and RNN.
    Needs onnxscript (``pip install lstmlab[onnx]``)."""
    if _table:
        return dict(_table)
    from onnxscript.function_libs.torch_lib.registration import torch_op
    from onnxscript.onnx_opset import opset18

    # Traced (not compiled) functions hand the ops Python lists where the stubs expect tensors.
    op: Any = opset18
    from onnxscript.onnx_types import INT32

    def empty(like: Any) -> Any:
        """A (0,) tensor of ``like``'s dtype: an output only the backward reads."""
        return op.CastLike(op.ConstantOfShape(op.Constant(value_ints=[0])), like)

    def reorder(w: Any, order: list[int], parts: int) -> Any:
        """torch's gate blocks (rows of ``w``) in ONNX's order."""
        if parts == 1:
            return w
        blocks = op.Split(w, axis=0, num_outputs=parts)
        return op.Concat(*[blocks[k] for k in order], axis=0)

    def bias_pair(b_ih: Any, b_hh: Any | None, order: list[int], parts: int) -> Any:
        """ONNX's B: [W_b, R_b] in ONNX's gate order, (1, 2·parts·H)."""
        w_b = reorder(b_ih, order, parts)
        r_b = op.Sub(w_b, w_b) if b_hh is None else reorder(b_hh, order, parts)
        return op.Unsqueeze(op.Concat(w_b, r_b, axis=0), [0])

    def lens(lengths: Any) -> Any | None:
        """ONNX's sequence_lens (int32), or None for a batch with no padding."""
        return None if lengths.shape[0] == 0 else op.Cast(lengths, to=INT32.dtype)

    def states(y: Any, h0: Any, y_h: Any) -> Any:
        """(T+1, B, H): h_0, the outputs, and each sequence's final h as the last row (what the
        layer reads: the outputs, padding zeroed, and the final state)."""
        y = op.Squeeze(y, [1])  # (T, 1, B, H) -> (T, B, H)
        return op.Concat(op.Unsqueeze(h0, [0]), op.Slice(y, [0], [-1], [0]), y_h, axis=0)

    # torch's LSTM blocks i, f, g, o; ONNX's i, o, f, c.
    @torch_op("lstmlab::lstm_forward", trace_only=True)
    def lstm_forward(x, w_ih, bias, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, h0, c0, a0, lengths,
                     layout, rec_mask, keep_h, keep_c):  # fmt: skip
        order = [0, 3, 1, 2]
        w = op.Unsqueeze(reorder(w_ih, order, 4), [0])
        r = op.Unsqueeze(reorder(w_hh, order, 4), [0])
        b = None if bias.shape[0] == 0 else bias_pair(bias, None, order, 4)
        h_0, c_0 = op.Unsqueeze(h0, [0]), op.Unsqueeze(c0, [0])
        y, y_h, y_c = op.LSTM(x, w, r, b, lens(lengths), h_0, c_0, hidden_size=c0.shape[1])
        cs = op.Concat(c_0, op.Slice(op.Squeeze(y, [1]), [0], [-1], [0]), y_c, axis=0)
        return states(y, h0, y_h), cs, empty(x), empty(x), empty(x), empty(x)

    # torch's GRU blocks r, z, n; ONNX's z, r, h.
    @torch_op("lstmlab::gru_forward", trace_only=True)
    def gru_forward(x, w_ih, b_ih, w_hh, b_hh, h0, lengths, reset_after, rec_mask, keep_h):
        order = [1, 0, 2]
        w = op.Unsqueeze(reorder(w_ih, order, 3), [0])
        r = op.Unsqueeze(reorder(w_hh, order, 3), [0])
        b = None if b_ih.shape[0] == 0 else bias_pair(b_ih, b_hh, order, 3)
        y, y_h = op.GRU(
            x,
            w,
            r,
            b,
            lens(lengths),
            op.Unsqueeze(h0, [0]),
            hidden_size=h0.shape[1],
            linear_before_reset=1 if reset_after else 0,
        )
        return states(y, h0, y_h), empty(x), empty(x)

    @torch_op("lstmlab::rnn_forward", trace_only=True)
    def rnn_forward(x, w_ih, bias, w_hh, h0, lengths, relu, rec_mask, keep_h):
        w, r = op.Unsqueeze(w_ih, [0]), op.Unsqueeze(w_hh, [0])
        b = None if bias.shape[0] == 0 else bias_pair(bias, None, [0], 1)
        y, y_h = op.RNN(
            x,
            w,
            r,
            b,
            lens(lengths),
            op.Unsqueeze(h0, [0]),
            hidden_size=h0.shape[1],
            activations=["Relu" if relu else "Tanh"],
        )
        return states(y, h0, y_h), empty(x)

    ops = torch.ops.lstmlab
    _table.update(
        {
            ops.lstm_forward.default: lstm_forward,
            ops.gru_forward.default: gru_forward,
            ops.rnn_forward.default: rnn_forward,
        }
    )
    return dict(_table)


def export(model: torch.nn.Module, args: tuple, f: Any = None, **kwargs: Any) -> Any:
    """``torch.onnx.export(model, args, f, dynamo=True, **kwargs)`` with lstmlab's translations
    (:func:`translations`): standard layers become ONNX's LSTM/GRU/RNN operators, the others
    one ``Scan`` each. Returns the ``ONNXProgram``.

    The model's parameters are traced as constants of the graph (``requires_grad`` off while it
    exports, restored after): an exported model is for inference, and torch's exporter otherwise
    traces a ``Scan`` body's backward too, which fails for some cells (the mLSTM) under dynamic
    batch sizes.

    Example::

        >>> model = lstmlab.LSTM(10, 20, num_layers=2).eval()
        >>> x, T, B = torch.randn(7, 3, 10), Dim("T"), Dim("B")
        >>> program = lstmlab.kernels.to_onnx.export(
        ...     model, (x,), "lstm.onnx", dynamic_shapes=({0: T, 1: B},))
    """
    table = {**translations(), **kwargs.pop("custom_translation_table", {})}
    wanted = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in wanted:
            p.requires_grad_(False)
        return torch.onnx.export(
            model, args, f, dynamo=True, custom_translation_table=table, **kwargs
        )
    finally:
        for p in wanted:
            p.requires_grad_(True)
