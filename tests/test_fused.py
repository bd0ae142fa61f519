"""Every fused path against the readable loop: outputs, final states and all gradients."""

from __future__ import annotations

import random

import pytest
import torch

from lstmlab import GRU, LSTM, RNN, ClockworkRNN, GridLSTM, LSTMCell, Stack, kernels
from lstmlab.nn.registry import VARIANTS, make_layer

PROJECTABLE = [name for name, (cls, _, _) in VARIANTS.items() if cls is LSTM]
# The variants with a fused path (the families of csrc/); the other cells run the readable loop.
FUSED = list(VARIANTS)  # every built-in cell has a fused path


def outputs_and_grads(layer, x, hx, lengths, seed=5):
    out, state = layer(x, hx, lengths=lengths)
    state = [state] if isinstance(state, torch.Tensor) else list(state)
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in [out, *state])
    leaves = [x, *([hx] if isinstance(hx, torch.Tensor) else list(hx or [])), *layer.parameters()]
    return [out, *state, *torch.autograd.grad(loss, leaves)]


def check_against_readable(layer, x, hx, lengths, atol, rtol=0.0):
    fast = outputs_and_grads(layer, x, hx, lengths)
    with kernels.disabled():
        slow = outputs_and_grads(layer, x, hx, lengths)
    assert len(fast) == len(slow)
    for k, (a, b) in enumerate(zip(fast, slow)):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m: f"result {k}: {m}")


def random_case(name: str, seed: int, dtype: torch.dtype):
    rng = random.Random(seed)
    kw = dict(
        num_layers=rng.randint(1, 3),
        bidirectional=rng.random() < 0.6,
        batch_first=rng.random() < 0.5,
        bias=rng.random() < 0.8,
    )
    if name in PROJECTABLE and rng.random() < 0.4:
        kw["proj_size"] = 2
    if name in ("depth-gated", "grid", "grid-tied"):  # one direction only
        kw["bidirectional"] = False
    torch.manual_seed(seed)
    layer = make_layer(name, rng.randint(1, 5), rng.randint(3, 6), **kw).to(dtype)
    B, T = rng.randint(1, 5), rng.randint(1, 9)
    x = torch.randn(
        (B, T, layer.input_size) if kw["batch_first"] else (T, B, layer.input_size),
        dtype=dtype,
        requires_grad=True,
    )
    lengths = torch.randint(1, T + 1, (B,)) if rng.random() < 0.6 else None
    hx = None
    if rng.random() < 0.6:
        sizes = layer.state_sizes if isinstance(layer, GridLSTM) else layer.cells[0].state_sizes
        parts = [
            torch.randn(
                kw["num_layers"] * layer.num_directions, B, n, dtype=dtype, requires_grad=True
            )
            for n in sizes
        ]
        if isinstance(layer, ClockworkRNN):  # the clock: whole steps, rows at any phase
            parts[1] = torch.randint(0, 9, parts[1].shape).to(dtype).requires_grad_()
        if name == "slstm":  # a normaliser the sLSTM reaches, n >= 1 (c / n is ill-posed at 0)
            parts[2] = (1 + torch.rand(parts[2].shape, dtype=dtype)).requires_grad_()
        hx = parts[0] if len(parts) == 1 else tuple(parts)
    return layer, x, hx, lengths


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("seed", range(4))
def test_float64_matches_readable_loop(name, seed):
    check_against_readable(*random_case(name, seed, torch.float64), atol=1e-12)


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("seed", range(2))
def test_float32_matches_readable_loop(name, seed):
    check_against_readable(*random_case(name, 100 + seed, torch.float32), atol=2e-5)


@pytest.mark.parametrize(
    "name",
    [
        "peephole",
        "coupled",
        "fgr",
        "gru",
        "gru-v3",
        "rnn",
        "nig",
        "ln-lstm",
        "ln-gru",
        "clockwork",
        "depth-gated",
        "grid",
        "grid-tied",
    ],
)
def test_gradcheck_through_fused_path(name):
    torch.manual_seed(0)
    # Depth-gated and grid: two layers (the top one reads the bottom one's cells), one way.
    shape = (
        {"num_layers": 2}
        if name in ("depth-gated", "grid", "grid-tied")
        else {"bidirectional": True}
    )
    layer = make_layer(name, 2, 3, **shape).double()
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    params = dict(layer.named_parameters())

    def f(x, *weights):
        out, _ = torch.func.functional_call(
            layer, dict(zip(params, weights)), (x,), {"lengths": torch.tensor([4, 2])}
        )
        return out

    assert torch.autograd.gradcheck(f, (x, *params.values()))


def test_fused_path_is_taken_for_builtin_cells_only():
    x = torch.randn(3, 2, 4)
    assert kernels.sequence_op(LSTMCell(4, 5, peephole=True), x) is not None

    class Mine(LSTMCell):  # a user's subclass may change step(): keep the reference
        pass

    assert kernels.sequence_op(Mine(4, 5), x) is None
    with kernels.disabled():
        assert kernels.sequence_op(LSTMCell(4, 5), x) is None


def test_standard_lstm_uses_torch_kernel_and_variants_do_not():
    assert LSTM(3, 4)._torch_kernel and LSTM(3, 4, proj_size=2)._torch_kernel
    assert not LSTM(3, 4, peephole=True)._torch_kernel
    assert not LSTM(3, 4, output_activation=False)._torch_kernel


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_gates_requested_fall_back_to_readable_loop(cls):
    layer = cls(3, 4, 2)
    x = torch.randn(5, 2, 3)
    out, _, gates = layer(x, return_gates=True)
    with kernels.disabled():
        ref, _ = layer(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert len(gates) == 2


def test_user_cell_in_stack_keeps_working():
    stack = Stack(lambda n: LSTMCell(n, 4, coupled=True), 3, 2)
    out, (h, c) = stack(torch.randn(5, 2, 3))
    assert out.shape == (5, 2, 4) and h.shape == (2, 2, 4)


def test_kernels_build_on_this_machine():
    """Without this, a failed build would silently fall back and the tests above compare the
    readable loop with itself."""
    assert kernels.extension() is not None


def test_bench_runs_and_prints_ratios(capsys):
    from lstmlab.cli import bench

    assert bench.main(["--shapes", "2x5x8", "--cells", "peephole,gru", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for row in [
        "torch.nn.LSTM",
        "torch.nn.GRU",
        "peephole",
        "gru",
        "torch.nn.LSTMCell",
        "lstmlab lstm",
    ]:
        assert row in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("torch.nn.LSTM "))
    assert float(line.split()[2]) == 1.0  # the ratio column is relative to nn.LSTM


def test_bench_regularises_lstmlab_layers_only(monkeypatch, capsys):
    from lstmlab.cli import bench

    built = []
    real = bench.make_layer
    monkeypatch.setattr(bench, "make_layer", lambda *a, **k: built.append(k) or real(*a, **k))
    assert (
        bench.main(
            [
                "--shapes",
                "2x5x8",
                "--cells",
                "ln-lstm",
                "--repeats",
                "1",
                "--recurrent-dropout",
                "0.25",
                "--zoneout",
                "0.1",
            ]
        )
        == 0
    )
    assert built[0] == {"recurrent_dropout": 0.25, "zoneout": 0.1}  # the timed layer
    assert "lstmlab layers with recurrent_dropout 0.25, zoneout 0.1" in capsys.readouterr().out
