"""Dynamic int8 quantization (``torch.ao.quantization.quantize_dynamic``) of the layers.

``quantize_dynamic(model, {lstmlab.LSTM, lstmlab.GRU})`` gives, for a standard layer (torch's
LSTM or GRU: no variant switch, no layer norm, no recurrent dropout or zoneout, no projection),
the int8 module torch gives for ``torch.nn.LSTM`` / ``torch.nn.GRU``
(``torch.ao.nn.quantized.dynamic.LSTM`` / ``GRU``, same weights, same outputs up to
quantization). torch has no dynamically quantized kernel for the post's variants, the
layer-normalised layers or the other families: asked to quantize one of those, the layer stays
in float and a ``UserWarning`` says so, rather than the silence torch keeps for a module it
does not know.

Importing this module adds lstmlab's layers to torch's default dynamic-quantization mapping.
"""

from __future__ import annotations

import warnings

from torch import nn
from torch.ao.nn.quantized import dynamic
from torch.ao.quantization.quantization_mappings import DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS

from lstmlab.nn.layers import GRU, LSTM, RNN, ClockworkRNN, DepthGatedLSTM, GridLSTM
from lstmlab.nn.stack import Stack


def _plain(layer: nn.Module) -> bool:
    """A layer torch's own LSTM or GRU computes: the same arguments mean the same module."""
    if not isinstance(layer, Stack) or layer.recurrent_dropout or layer.zoneout:
        return False
    if type(layer) is LSTM:
        return layer._torch_kernel and not layer.proj_size
    return type(layer) is GRU and layer.reset_after and not layer.layer_norm


def _as_torch(layer: LSTM | GRU) -> nn.LSTM | nn.GRU:
    """``torch.nn.LSTM`` / ``torch.nn.GRU`` with the layer's arguments and weights."""
    kind = nn.LSTM if type(layer) is LSTM else nn.GRU
    twin = kind(
        layer.input_size,
        layer.hidden_size,
        layer.num_layers,
        bias=layer.bias,
        batch_first=layer.batch_first,
        dropout=layer.dropout,
        bidirectional=layer.bidirectional,
    )
    twin.load_state_dict(layer.state_dict())
    twin.train(layer.training)
    return twin


class DynamicQuantized:
    """What ``quantize_dynamic`` swaps an lstmlab layer for (the mapping's target class)."""

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> nn.Module:
        """The int8 module of a standard LSTM/GRU; any other layer itself, with a warning."""
        if not _plain(mod):
            warnings.warn(
                f"quantize_dynamic: torch has no int8 kernel for {type(mod).__name__} with "
                f"these settings ({mod.extra_repr()}); only the standard LSTM and GRU (no "
                "variant, layer norm, projection, recurrent dropout or zoneout) are quantized. "
                "This layer stays in float.",
                UserWarning,
                stacklevel=2,
            )
            return mod
        twin = _as_torch(mod)  # type: ignore[arg-type]
        twin.qconfig = mod.qconfig
        quantized = dynamic.LSTM if isinstance(twin, nn.LSTM) else dynamic.GRU
        return quantized.from_float(twin, use_precomputed_fake_quant=use_precomputed_fake_quant)


for _layer in (LSTM, GRU, RNN, ClockworkRNN, DepthGatedLSTM, GridLSTM):
    DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS.setdefault(_layer, DynamicQuantized)
