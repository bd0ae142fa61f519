"""Drop-in replacements for ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN``.

Same constructor arguments, same inputs and outputs, same parameter names and shapes -- plus the
post's variants as keyword arguments, layer normalisation (``layer_norm=True``: Ba et al. 2016)
and the recurrent regularisers of :class:`~lstmlab.Stack` (``recurrent_dropout``, ``zoneout``).
Each is a :class:`~lstmlab.Stack` of one cell class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmlab.nn import dispatch
from lstmlab.nn._checks import check_layer_arguments, has_values
from lstmlab.nn.cells.gru import GRUCell
from lstmlab.nn.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from lstmlab.nn.cells.lstm import LSTMCell, check_variant
from lstmlab.nn.cells.rnn import RNNCell, check_nonlinearity
from lstmlab.nn.stack import Stack

# The switches of the standard LSTM, which torch's kernels compute.
_STANDARD = dict(
    peephole=False,
    coupled=False,
    input_gate=True,
    forget_gate=True,
    output_gate=True,
    input_activation=True,
    output_activation=True,
    gate_recurrence=False,
)


class LSTM(Stack):
    """``torch.nn.LSTM`` with the variants of the post (see :class:`~lstmlab.LSTMCell`).

    Arguments as ``torch.nn.LSTM``; the keyword-only switches pick the variant (all off: torch's
    LSTM). Variant parameters follow torch's naming: ``weight_ci_l0``, ``weight_cf_l0``,
    ``weight_co_l0`` (peepholes, (H,)), ``weight_gg_l0`` (gate recurrence), ``_reverse`` for the
    backward direction. Returns ``(output, (h_n, c_n))`` -- ``(h_n, c_n, a_n)`` with
    ``gate_recurrence``, whose state also carries the last gate activations.

    ``layer_norm=True`` builds :class:`~lstmlab.nn.cells.layer_norm.LayerNormLSTMCell` layers (Ba
    et al. 2016; extra parameters ``ln_ih_weight_l0``, ``ln_hh_weight_l0``, ``ln_c_weight_l0``,
    ``ln_c_bias_l0``); it combines with ``bias`` and ``proj_size`` but with no variant switch
    (``ValueError``), and runs on its fused kernel (with ``proj_size``: the readable loop).
    ``recurrent_dropout`` and ``zoneout``: see :class:`~lstmlab.Stack`.

    Example::

        >>> lstm = LSTM(10, 20, num_layers=2, peephole=True, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(3, 5, 10))   # (3, 5, 20), (2, 3, 20) each
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        peephole: bool = False,
        coupled: bool = False,
        input_gate: bool = True,
        forget_gate: bool = True,
        output_gate: bool = True,
        input_activation: bool = True,
        output_activation: bool = True,
        gate_recurrence: bool = False,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        check_layer_arguments(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size
        )
        variant: dict[str, Any] = dict(
            proj_size=proj_size,
            peephole=peephole,
            coupled=coupled,
            input_gate=input_gate,
            forget_gate=forget_gate,
            output_gate=output_gate,
            gate_recurrence=gate_recurrence,
        )
        check_variant(hidden_size, **variant)  # one clear error before any layer is built
        switches = dict(
            peephole=peephole,
            coupled=coupled,
            input_gate=input_gate,
            forget_gate=forget_gate,
            output_gate=output_gate,
            input_activation=input_activation,
            output_activation=output_activation,
            gate_recurrence=gate_recurrence,
        )
        standard = switches == _STANDARD
        if layer_norm and not standard:
            given = ", ".join(f"{k}={v}" for k, v in switches.items() if v != _STANDARD[k])
            raise ValueError(
                f"layer_norm=True is the LN-LSTM of Ba et al. 2016 and takes no "
                f"variant switch (only bias and proj_size); got {given}"
            )

        def make_cell(n: int) -> LSTMCell | LayerNormLSTMCell:
            if layer_norm:
                return LayerNormLSTMCell(n, hidden_size, bias, device, dtype, proj_size=proj_size)
            return LSTMCell(
                n,
                hidden_size,
                bias,
                device,
                dtype,
                input_activation=input_activation,
                output_activation=output_activation,
                **variant,
            )

        super().__init__(
            make_cell,
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.bias, self.proj_size, self.layer_norm = bias, proj_size, layer_norm
        # torch's own LSTM kernels (oneDNN on the CPU, cuDNN on GPUs) compute this variant.
        self._torch_kernel = standard and not layer_norm

    def _whole_stack(self, x: Tensor, parts: tuple[Tensor, ...], lengths: Tensor | None):
        """The standard LSTM runs on torch's fused kernel: same weights, same results. Traced
        (``torch.compile``, ``torch.export``: torch's LSTM kernel is not traceable) or on the meta
        device, it runs layer by layer on lstmlab's operator instead; inside a ``torch.func``
        transform, on the readable loop."""
        if not (self._torch_kernel and dispatch.torch_layer_allowed(x) and has_values(x)):
            return None
        if dispatch.transformed():  # torch.func: torch's LSTM kernel has no batching rule
            return None
        weights = [w for w in self._flat_weights if w is not None]  # all set: _cells() ran
        args = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if lengths is None:
            out, h, c = _VF.lstm(x, list(parts), weights, *args, False)
            return out, (h, c)
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        order, back = packed.sorted_indices, packed.unsorted_indices
        assert order is not None and back is not None  # enforce_sorted=False sets both
        hx = [p.index_select(1, order) for p in parts]
        data, h, c = _VF.lstm(packed.data, packed.batch_sizes, hx, weights, *args)
        out = pad_packed_sequence(
            PackedSequence(data, packed.batch_sizes, order, back), total_length=x.shape[0]
        )[0]
        return out, (h.index_select(1, back), c.index_select(1, back))

    def extra_repr(self) -> str:
        extra = {"layer_norm": (self.layer_norm, False)}
        extra.update((k, (getattr(self._cell_list[0], k, v), v)) for k, v in _STANDARD.items())
        return _torch_repr(self, extra)


class GRU(Stack):
    """``torch.nn.GRU``; ``reset_after=False`` gives Cho et al.'s original form.

    ``layer_norm=True`` builds :class:`~lstmlab.nn.cells.layer_norm.LayerNormGRUCell` layers
    (torch's form, reset after the matmul; with ``reset_after=False`` it is a ``ValueError``), run
    by its fused kernel. ``recurrent_dropout`` and ``zoneout``: see :class:`~lstmlab.Stack`.

    Example::

        >>> gru = GRU(10, 20, bidirectional=True)
        >>> output, h_n = gru(torch.randn(5, 3, 10))          # (5, 3, 40), (2, 3, 20)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        reset_after: bool = True,
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        proj_size: None = None,
    ) -> None:
        _no_projection(proj_size)
        check_layer_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        if layer_norm and not reset_after:
            raise ValueError(
                "layer_norm=True normalises W_hh h as one vector, so it needs "
                "reset_after=True (torch's form); got reset_after=False"
            )

        def make_cell(n: int) -> GRUCell | LayerNormGRUCell:
            if layer_norm:
                return LayerNormGRUCell(n, hidden_size, bias, device, dtype)
            return GRUCell(n, hidden_size, bias, device, dtype, reset_after=reset_after)

        super().__init__(
            make_cell,
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.bias, self.reset_after, self.layer_norm = bias, reset_after, layer_norm
        self.proj_size = 0

    def extra_repr(self) -> str:
        return _torch_repr(
            self, {"reset_after": (self.reset_after, True), "layer_norm": (self.layer_norm, False)}
        )


class RNN(Stack):
    """``torch.nn.RNN``: the Elman network, ``nonlinearity`` ``'tanh'`` or ``'relu'``.

    Example::

        >>> rnn = RNN(10, 20, 2, nonlinearity="relu")
        >>> output, h_n = rnn(torch.randn(5, 3, 10))          # (5, 3, 20), (2, 3, 20)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        proj_size: None = None,
    ) -> None:
        _no_projection(proj_size)
        check_nonlinearity(nonlinearity)  # torch checks it first
        check_layer_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        super().__init__(
            lambda n: RNNCell(n, hidden_size, bias, nonlinearity, device, dtype),
            input_size,
            num_layers,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        self.bias, self.nonlinearity, self.proj_size = bias, nonlinearity, 0

    def extra_repr(self) -> str:
        return _torch_repr(self, {})  # torch's repr leaves the nonlinearity out too


def _no_projection(proj_size: None) -> None:
    """torch's GRU and RNN refuse ``proj_size`` (``ValueError``); so do these, with the same
    type, rather than a ``TypeError`` for an unknown argument."""
    if proj_size is not None:
        raise ValueError(
            "proj_size argument is only supported for LSTM, not RNN or GRU: it sizes the "
            f"LSTM's projection of h (Sak et al. 2014); got proj_size={proj_size!r}"
        )


def _torch_repr(layer: Stack, switches: Mapping[str, tuple[object, object]]) -> str:
    """``torch.nn.RNNBase.extra_repr`` -- ``10, 20, num_layers=2, batch_first=True`` -- then
    lstmlab's own switches (``{name: (value, default)}``) and regularisers where they differ
    from the default, so a standard layer prints exactly as torch's."""
    s = f"{layer.input_size}, {layer.hidden_size}"
    if getattr(layer, "proj_size", 0) != 0:
        s += f", proj_size={layer.proj_size}"
    if layer.num_layers != 1:
        s += f", num_layers={layer.num_layers}"
    if layer.bias is not True:
        s += f", bias={layer.bias}"
    if layer.batch_first is not False:
        s += f", batch_first={layer.batch_first}"
    if layer.dropout != 0:
        s += f", dropout={layer.dropout}"
    if layer.bidirectional is not False:
        s += f", bidirectional={layer.bidirectional}"
    extra = {k: value for k, (value, default) in switches.items() if value != default}
    extra.update(
        (k, v)
        for k, v in (("recurrent_dropout", layer.recurrent_dropout), ("zoneout", layer.zoneout))
        if v
    )
    return s + "".join(f", {k}={v}" for k, v in extra.items())
