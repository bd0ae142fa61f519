"""The vanishing gradient, measured: gradient_flow against a full Jacobian, and the post's claim."""

from __future__ import annotations

import pytest
import torch

import lstmlab
from lstmlab.models.build import init_forget_bias
from lstmlab.nn.recurrent import run
from lstmlab.viz.gradients import gradient_flow, plot_gradient_flow


def oracle(h_last_of, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """g_k from the whole Jacobian ∂h_T/∂x (B, O, T, B, I), projected on u, sequence by
    sequence."""
    jac = torch.autograd.functional.jacobian(h_last_of, x)  # (B, O, T, B, I)
    steps, batch = x.shape[:2]
    g = torch.zeros(steps, dtype=x.dtype)
    for k in range(steps):
        for b in range(batch):
            g[k] += torch.einsum("o,oi->i", u, jac[b, :, steps - 1 - k, b]).norm() / batch
    return g


def test_gradient_flow_is_the_projected_jacobian_norm_for_a_cell():
    torch.manual_seed(0)
    cell = lstmlab.LSTMCell(3, 4, peephole=True).double()
    x, u = torch.randn(6, 2, 3, dtype=torch.double), torch.randn(4, dtype=torch.double)
    g = gradient_flow(cell, inputs=x, readout=u)
    want = oracle(lambda x: run(cell, x, cell.initial_state(2))[0][-1], x, u)
    assert g.shape == (6,)
    torch.testing.assert_close(g, want, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "make", [lambda: lstmlab.GRU(3, 5, num_layers=2), lambda: torch.nn.LSTM(3, 5, batch_first=True)]
)
def test_gradient_flow_is_the_projected_jacobian_norm_for_a_layer(make):
    torch.manual_seed(1)
    layer = make().double()
    x, u = torch.randn(7, 3, 3, dtype=torch.double), torch.randn(5, dtype=torch.double)
    g = gradient_flow(layer, inputs=x, readout=u)
    if layer.batch_first:
        want = oracle(lambda x: layer(x.transpose(0, 1))[0][:, -1], x, u)
    else:
        want = oracle(lambda x: layer(x)[0][-1], x, u)
    torch.testing.assert_close(g, want, rtol=1e-8, atol=1e-14)


def test_default_readout_is_a_fixed_unit_vector_and_random_inputs_are_seeded():
    layer = lstmlab.RNN(4, 8)
    a, b = gradient_flow(layer, steps=5, batch=3, seed=2), gradient_flow(layer, steps=5, seed=2)
    assert a.shape == (5,) and not torch.equal(a, b)  # batch 3 vs 16: other inputs
    torch.testing.assert_close(a, gradient_flow(layer, steps=5, batch=3, seed=2), rtol=0, atol=0)
    # Scaling the readout scales g: a unit readout gives the default's values for some unit u.
    x = torch.randn(5, 3, 4)
    u = torch.randn(8)
    torch.testing.assert_close(
        gradient_flow(layer, inputs=x, readout=2 * u), 2 * gradient_flow(layer, inputs=x, readout=u)
    )


def test_rnn_gradient_vanishes_where_the_lstm_with_forget_bias_1_keeps_it():
    """The post's first section: fifty steps back, the vanilla RNN's gradient is gone and the
    LSTM's is not. Torch's default initialisation, hidden 64, forget-gate bias 1 for the LSTM.
    Measured (seeds 0-4, T=100, B=16): RNN/LSTM at k=50 between 7e-12 and 9e-11; we assert
    < 1e-6, six orders of magnitude. Also measured: the same LSTM at torch's own forget bias
    (~0, f ≈ 0.5) keeps ~1e-6 of what forget bias 1 keeps at k=50; we assert < 1e-3."""
    for seed in range(3):
        torch.manual_seed(seed)
        rnn, lstm, lstm_torch_init = lstmlab.RNN(16, 64), lstmlab.LSTM(16, 64), lstmlab.LSTM(16, 64)
        assert init_forget_bias(lstm, 1.0) == 1
        g_rnn, g_lstm, g_lstm0 = (
            gradient_flow(m, steps=60, batch=8, seed=seed) for m in (rnn, lstm, lstm_torch_init)
        )
        assert g_rnn[0] > 0 and g_lstm[50] > 0
        assert g_rnn[50] / g_lstm[50] < 1e-6, (seed, g_rnn[50], g_lstm[50])
        assert g_lstm0[50] / g_lstm[50] < 1e-3, (seed, g_lstm0[50], g_lstm[50])
        assert g_rnn[10] < 1e-2 * g_rnn[0]  # and it falls from the start


def test_plot_gradient_flow_writes_png_and_svg(tmp_path):
    curves = {
        "RNN": torch.tensor([1.0, 1e-3, 1e-9, 0.0]),  # 0: underflow, left off the line
        "LSTM": torch.tensor([1.0, 0.5, 0.2, 0.1]),
    }
    png = plot_gradient_flow(curves, tmp_path / "flow.png")
    svg = plot_gradient_flow(curves, tmp_path / "flow.svg", title="at initialisation")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "LSTM" in text and "RNN" in text


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gradient_flow("lstm"), "layer must be"),
        (lambda: gradient_flow(torch.nn.Linear(3, 4)), "layer must be"),
        (lambda: gradient_flow(lstmlab.LSTM(3, 4, bidirectional=True)), "one-direction"),
        (lambda: gradient_flow(lstmlab.RNN(3, 4), steps=0), "steps must be a positive integer"),
        (lambda: gradient_flow(lstmlab.RNN(3, 4), batch=2.5), "batch must be a positive integer"),
        (lambda: gradient_flow(lstmlab.RNN(3, 4), inputs=torch.randn(5, 2, 7)), r"\(T, B, 3\)"),
        (lambda: gradient_flow(lstmlab.RNN(3, 4), inputs=torch.randn(5, 3)), r"\(T, B, 3\)"),
        (
            lambda: gradient_flow(lstmlab.RNN(3, 4), readout=torch.ones(5)),
            r"readout must be a \(4,\)",
        ),
        (lambda: plot_gradient_flow({}, "x.png"), "at least one label"),
        (lambda: plot_gradient_flow({"a": torch.ones(2, 2)}, "x.png"), r"\(T,\) tensor"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
