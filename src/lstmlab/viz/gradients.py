r"""The vanishing gradient, measured: how much the last state feels each earlier input.

The post's first section in numbers. For a recurrent layer read over ``T`` steps from a zero
state, :func:`gradient_flow` measures, for every distance ``k = 0 .. T-1``,

.. math::
    g_k = \frac{1}{B} \sum_b \Big\lVert \frac{\partial\, (u^\top h_T^{(b)})}
          {\partial x_{T-k}^{(b)}} \Big\rVert_2

-- the size of the gradient that reaches the input ``k`` steps before the last from the last
output, projected on a fixed unit vector ``u`` (the *readout*; default: drawn at random from
``seed``, the same for every distance and sequence). A random unit ``u`` makes
``E_u[g^2] = \lVert \partial h_T / \partial x_{T-k} \rVert_F^2 / H``, so ``g_k`` follows the
Jacobian's Frobenius norm with one backward pass instead of ``H``. (Steps are numbered
``1 .. T``; ``k = 0`` is the last input.) A vanilla RNN's ``g_k`` falls geometrically with ``k``
(Bengio et al. 1994; Hochreiter 1991); an LSTM's cell state, with a forget gate near 1, carries
it much further (Hochreiter & Schmidhuber 1997; Gers et al. 2000).

Example::

    >>> from lstmlab import LSTM, RNN
    >>> curves = {"RNN": gradient_flow(RNN(32, 64)), "LSTM": gradient_flow(LSTM(32, 64))}
    >>> plot_gradient_flow(curves, "gradient-flow.png")       # log scale against k
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

from lstmlab.nn.cells.base import Cell
from lstmlab.nn.recurrent import run
from lstmlab.viz.plots import _finish, _pyplot


def gradient_flow(
    layer: nn.Module,
    steps: int = 100,
    batch: int = 16,
    *,
    seed: int = 0,
    inputs: Tensor | None = None,
    readout: Tensor | None = None,
) -> Tensor:
    r"""``g_k``, the gradient reaching the input ``k`` steps back from the last output.

    Args:
        layer: a :class:`~lstmlab.Cell` (run by :func:`lstmlab.nn.recurrent.run`) or a
            one-direction layer called like ``torch.nn.LSTM`` (``layer(x) -> (output, h_n)``,
            e.g. ``lstmlab.LSTM``, ``GRU``, ``RNN``, ``torch.nn.LSTM``); every layer it stacks
            is in the path from ``x`` to ``h_T``.
        steps: ``T``, the sequence length.
        batch: ``B``, sequences averaged over.
        seed: seeds the inputs ``x ~ N(0, 1)`` and the readout.
        inputs: (T, B, input_size) time-major inputs to use instead of random ones (e.g. a
            trained model's embedded sequences); then ``steps`` and ``batch`` are read from it.
        readout: (output_size,) the vector ``u`` that ``h_T`` is projected on; default a random
            unit vector. ``torch.ones(H)`` measures the gradient of ``sum(h_T)``.

    Returns:
        (T,) float tensor, entry ``k`` the mean over the batch of
        ``‖∂(u·h_T)/∂x_{T-k}‖``; all from one backward pass (sequences do not interact, so
        the gradient of ``Σ_b u·h_T^(b)`` w.r.t. ``x^(b)`` is sequence b's own).

    Example::

        >>> g = gradient_flow(lstmlab.RNN(8, 64), steps=60)
        >>> float(g[50] / g[0])        # ~1e-9: fifty steps back, nothing arrives
    """
    if not isinstance(layer, nn.Module) or not isinstance(getattr(layer, "input_size", None), int):
        raise ValueError(
            f"layer must be an lstmlab Cell or a recurrent layer with an input_size "
            f"(lstmlab.LSTM, torch.nn.GRU, ...); got {type(layer).__name__}"
        )
    input_size = cast(int, layer.input_size)  # checked above: an int
    if getattr(layer, "bidirectional", False):
        raise ValueError(
            "gradient_flow follows time forwards: give a one-direction layer "
            "(bidirectional=False); h_T of a backward direction saw only x_T"
        )
    ref = next(layer.parameters(), None)
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    device = ref.device if ref is not None else None
    gen = torch.Generator().manual_seed(seed)
    if inputs is None:
        for name, value in (("steps", steps), ("batch", batch)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        inputs = torch.randn(steps, batch, input_size, generator=gen)
    elif (
        not isinstance(inputs, Tensor)
        or inputs.dim() != 3
        or inputs.shape[-1] != input_size
        or inputs.numel() == 0
    ):
        got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(
            f"inputs must be a non-empty (T, B, {input_size}) tensor "
            f"(time-major, input_size={input_size}); got {got}"
        )
    x = inputs.detach().to(dtype=dtype, device=device).requires_grad_(True)  # (T, B, I)
    h_last = _last_output(layer, x)  # (B, O)
    if readout is None:
        readout = torch.randn(h_last.shape[-1], generator=gen)
        readout = readout / readout.norm()
    elif not isinstance(readout, Tensor) or readout.shape != (h_last.shape[-1],):
        got = tuple(readout.shape) if isinstance(readout, Tensor) else type(readout).__name__
        raise ValueError(
            f"readout must be a ({h_last.shape[-1]},) tensor, one weight per unit of h_T; got {got}"
        )
    (h_last @ readout.to(h_last)).sum().backward()
    assert x.grad is not None  # x is a leaf that requires grad
    # x.grad (T, B, I): the per-step gradient norms, mean over the batch, latest step first.
    return x.grad.norm(dim=-1).mean(dim=1).flip(0).detach().cpu()


def _last_output(layer: nn.Module, x: Tensor) -> Tensor:
    """h_T (B, O) of ``layer`` read over x (T, B, I) from a zero state."""
    with torch.enable_grad():
        if isinstance(layer, Cell):
            out, _, _ = run(
                layer, x, layer.initial_state(x.shape[1], dtype=x.dtype, device=x.device)
            )
            return out[-1]
        batch_first = getattr(layer, "batch_first", False)
        out, _ = layer(x.transpose(0, 1) if batch_first else x)
        return out[:, -1] if batch_first else out[-1]


def plot_gradient_flow(
    curves: Mapping[str, Tensor], out: str | Path, title: str | None = None
) -> Path:
    """``g_k`` against ``k`` on a log scale, one line per label (PNG or SVG by the suffix)."""
    if not curves:
        raise ValueError("curves must map at least one label to a (T,) tensor of gradient_flow")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, g in curves.items():
        if not isinstance(g, Tensor) or g.dim() != 1:
            raise ValueError(
                f"curves[{label!r}] must be a (T,) tensor from gradient_flow, got "
                f"{tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__}"
            )
        # Exact zeros (underflow) have no place on a log axis: leave them out of the line.
        g = g.double().clamp_min(0).masked_fill(g <= 0, float("nan"))
        ax.plot(range(len(g)), g.tolist(), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("k: steps back from the last input")
    ax.set_ylabel(r"$\Vert\partial (u^\top h_T) / \partial x_{T-k} \Vert$")
    if title:
        ax.set_title(title)
    return _finish(plt, fig, ax, out)
