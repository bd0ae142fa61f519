"""The one-step route of built-in cells (generation) against the readable ``step``."""

import pytest
import torch

from lstmlab import kernels
from lstmlab.nn.cells import GRUCell, LSTMCell, RNNCell

LSTM_SWITCHES = [
    {},
    {"peephole": True},
    {"coupled": True},
    {"input_gate": False},
    {"forget_gate": False},
    {"output_gate": False},
    {"input_activation": False},
    {"output_activation": False},
    {"gate_recurrence": True},
    {"proj_size": 5},
    {"peephole": True, "proj_size": 5, "gate_recurrence": True},
    {"bias": False},
]
CELLS = (
    [lambda dt, s=s: LSTMCell(6, 8, dtype=dt, **s) for s in LSTM_SWITCHES]
    + [
        lambda dt, r=r, b=b: GRUCell(6, 8, bias=b, dtype=dt, reset_after=r)
        for r in (True, False)
        for b in (True, False)
    ]
    + [lambda dt, n=n: RNNCell(6, 8, nonlinearity=n, dtype=dt) for n in ("tanh", "relu")]
)


def random_state(cell, batch, dtype, generator):
    return tuple(
        torch.randn(batch, size, dtype=dtype, generator=generator).sigmoid()
        for size in cell.state_sizes
    )


@pytest.mark.parametrize("make", CELLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_grad_step_matches_readable_step(make, dtype):
    g = torch.Generator().manual_seed(0)
    cell = make(dtype)
    x = torch.randn(3, 6, dtype=dtype, generator=g)
    state = random_state(cell, 3, dtype, g)
    with torch.no_grad():
        assert kernels.step_op(cell, x, state) is not None  # the fast route is the one taken
        fast = cell(x, state if len(state) > 1 else state[0])
        _, expected, _ = cell.step(x, state)
    fast = fast if isinstance(fast, tuple) else (fast,)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    assert len(fast) == len(expected)
    for got, want in zip(fast, expected):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("make", CELLS)
def test_step_with_grad_matches_readable_gradients(make):
    g = torch.Generator().manual_seed(1)
    cell = make(torch.float64)
    x = torch.randn(2, 6, dtype=torch.float64, generator=g, requires_grad=True)
    state = random_state(cell, 2, torch.float64, g)
    out = cell(x, state if len(state) > 1 else state[0])
    out = out if isinstance(out, tuple) else (out,)
    loss = sum((o * torch.linspace(-1, 1, o.shape[-1], dtype=o.dtype)).sum() for o in out)
    grads = torch.autograd.grad(loss, [x, *cell.parameters()])
    _, ref, _ = cell.step(x, state)
    ref_loss = sum((o * torch.linspace(-1, 1, o.shape[-1], dtype=o.dtype)).sum() for o in ref)
    ref_grads = torch.autograd.grad(ref_loss, [x, *cell.parameters()])
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("make", CELLS)
def test_generation_loop_equals_sequence_run(make):
    """Stepping a cell T times by hand gives the layer's run over the whole sequence."""
    from lstmlab.nn.recurrent import run

    g = torch.Generator().manual_seed(2)
    cell = make(torch.float64)
    xs = torch.randn(7, 2, 6, dtype=torch.float64, generator=g)
    state = cell.initial_state(2, dtype=torch.float64)
    with torch.no_grad():
        hx = None
        for x in xs:
            hx = cell(x, hx)
        out, final = run(cell, xs, state)[:2]
    hx = hx if isinstance(hx, tuple) else (hx,)
    for got, want in zip(hx, final):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_unbatched_step_and_disabled_fused_agree():
    cell = LSTMCell(6, 8, peephole=True)
    x = torch.randn(6)
    with torch.no_grad():
        h, c = cell(x)
        with kernels.disabled():
            h2, c2 = cell(x)
    assert h.shape == (8,) and c.shape == (8,)
    torch.testing.assert_close(h, h2)
    torch.testing.assert_close(c, c2)


def test_user_subclass_keeps_its_own_step():
    class Doubled(LSTMCell):
        def step(self, x, state):
            h, (h, c), gates = super().step(x, state)
            return 2 * h, (2 * h, c), gates

    cell = Doubled(6, 8)
    x = torch.randn(2, 6)
    with torch.no_grad():
        assert kernels.step_op(cell, x, cell.initial_state(2)) is None
        h, _ = cell(x)
        _, (want, _), _ = cell.step(x, cell.initial_state(2))
    torch.testing.assert_close(h, want)
