"""The Clockwork RNN (Koutník et al. 2014) against its paper, written out here module by module.

The reference below runs one sequence with one weight block per pair of modules, W_H^(i,j) for
j >= i only, cut out of the library's parameters; it never calls the library. The blocks of
``weight_hh`` that the paper leaves out are filled with noise before every comparison, so a
layer that used them would fail. Then: gradcheck, the clock itself (a period-4 module moves only
every 4th step, slow modules never hear fast ones, chunks keep the phase, idle modules cost no
work), the models, and bad periods.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

import lstmlab
from lstmlab.models import LanguageModel
from lstmlab.nn.cells.clockwork import default_periods

DT = torch.float64
I, H, B, T = 3, 12, 3, 13


def paper_sequence(
    x: Tensor, p: dict[str, Tensor], periods: tuple[int, ...], h0: Tensor, t0: int, steps: int
) -> tuple[Tensor, Tensor]:
    """Koutník et al. 2014, eq. 1 and Fig. 2, for one sequence: x (T, I), h0 (H,).

    At step t only the modules with t mod T_i = 0 run; module i sums the input and the previous
    state of the modules j >= i (itself and the slower ones); the others keep their state.
    Runs ``steps`` steps from time ``t0``; returns the outputs (T, H) -- zeros past ``steps``
    -- and the final state (H,).
    """
    G = len(periods)
    m = p["weight_hh"].shape[0] // G

    def block(j: int) -> slice:
        return slice(j * m, (j + 1) * m)

    W_I = [p["weight_ih"][block(i)] for i in range(G)]
    W_H = {(i, j): p["weight_hh"][block(i), block(j)] for i in range(G) for j in range(i, G)}
    b = [p["bias_ih"][block(i)] + p["bias_hh"][block(i)] for i in range(G)]
    h = [h0[block(j)] for j in range(G)]
    out = torch.zeros(x.shape[0], G * m, dtype=x.dtype)
    for s in range(steps):
        t = t0 + s
        h = [
            torch.tanh(W_I[i] @ x[s] + sum(W_H[i, j] @ h[j] for j in range(i, G)) + b[i])
            if t % periods[i] == 0
            else h[i]
            for i in range(G)
        ]
        out[s] = torch.cat(h)
    return out, torch.cat(h)


def paper_stack(
    x: Tensor, layer: lstmlab.ClockworkRNN, h0: Tensor, t0: Tensor, lengths: list[int]
) -> tuple[Tensor, Tensor]:
    """Every layer and direction of ``layer`` through :func:`paper_sequence`, row by row.

    x (T, B, I); h0 (L*D, B, H); t0 (L*D, B) integers. The backward direction reads each row's
    valid steps reversed. Returns the output (T, B, D*H) and h_n (L*D, B, H).
    """
    D, finals = layer.num_directions, []
    for k in range(layer.num_layers):
        outs = []
        for d in range(D):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            p = {
                n: getattr(layer, n + suffix)
                for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            out = torch.zeros(x.shape[0], x.shape[1], H, dtype=x.dtype)
            for b, n in enumerate(lengths):
                seq = x[:n, b].flip(0) if d else x[:n, b]
                y, h = paper_sequence(
                    seq, p, layer.periods, h0[k * D + d, b], int(t0[k * D + d, b]), n
                )
                out[:n, b] = y[:n].flip(0) if d else y[:n]
                finals.append(h)
            outs.append(out)
        x = torch.cat(outs, dim=-1)
    return x, torch.stack(finals).view(-1, x.shape[1], H)


def noisy_lower_blocks(layer: torch.nn.Module) -> None:
    """Fill the left-out blocks of every weight_hh with noise: the layer must ignore them."""
    with torch.no_grad():
        for name, w in layer.named_parameters():
            if name.startswith("weight_hh"):
                w.add_(torch.randn_like(w) * (w == 0))


@pytest.mark.parametrize(
    "periods, num_layers, bidirectional",
    [
        ((1, 2, 4, 8), 2, False),  # the paper's doubling clocks: only running rows computed
        ((1, 3, 4), 1, True),  # t = 4 runs modules 1 and 3 but not 2
        ((2, 3), 2, False),  # at t = 1 no module runs
    ],
)
def test_layer_equals_paper(periods, num_layers, bidirectional):
    torch.manual_seed(0)
    layer = lstmlab.ClockworkRNN(
        I, H, num_layers, periods=periods, bidirectional=bidirectional, dtype=DT
    )
    noisy_lower_blocks(layer)
    x = torch.randn(T, B, I, dtype=DT)
    out, (h_n, t_n) = layer(x)
    L = num_layers * layer.num_directions
    ref_out, ref_h = paper_stack(
        x, layer, torch.zeros(L, B, H, dtype=DT), torch.zeros(L, B), [T] * B
    )
    torch.testing.assert_close(out, ref_out, atol=1e-12, rtol=0)
    torch.testing.assert_close(h_n, ref_h, atol=1e-12, rtol=0)
    assert t_n.flatten().tolist() == [T % math.lcm(*periods)] * (L * B)  # the phase, kept


def test_rows_at_different_phases_and_lengths():
    """Rows may sit at different phases (any counter per row) and end at different steps."""
    torch.manual_seed(1)
    layer = lstmlab.ClockworkRNN(I, H, 2, periods=(1, 2, 4, 8), batch_first=True, dtype=DT)
    noisy_lower_blocks(layer)
    x = torch.randn(B, T, I, dtype=DT)
    h0 = torch.randn(2, B, H, dtype=DT)
    t0 = torch.tensor([[0, 3, 5], [6, 1, 0]])
    lengths = [T, 4, 9]
    out, (h_n, t_n) = layer(x, (h0, t0.unsqueeze(-1).to(DT)), lengths=lengths)
    ref_out, ref_h = paper_stack(x.transpose(0, 1), layer, h0, t0, lengths)
    torch.testing.assert_close(out, ref_out.transpose(0, 1), atol=1e-12, rtol=0)
    torch.testing.assert_close(h_n, ref_h, atol=1e-12, rtol=0)
    # Padded steps stop the clock: each row's counter advanced by its own length.
    assert t_n.squeeze(-1).tolist() == ((t0 + torch.tensor(lengths)) % 8).tolist()


def test_gradcheck():
    torch.manual_seed(2)
    layer = lstmlab.ClockworkRNN(2, 4, 2, periods=(1, 2), dtype=DT)
    params = dict(layer.named_parameters())
    names = list(params)
    x = torch.randn(5, 2, 2, dtype=DT, requires_grad=True)
    h0 = torch.randn(2, 2, 4, dtype=DT, requires_grad=True)
    t0 = torch.tensor([[[1.0], [0.0]], [[0.0], [0.0]]], dtype=DT)  # two phases in one batch

    def f(x, h0, *weights):
        out, (h_n, _) = functional_call(layer, dict(zip(names, weights)), (x, (h0, t0)))
        return out, h_n

    weights = [p.detach().requires_grad_() for p in params.values()]
    assert gradcheck(f, (x, h0, *weights), fast_mode=True)


def test_left_out_blocks_get_no_gradient():
    torch.manual_seed(3)
    layer = lstmlab.ClockworkRNN(I, H, periods=(1, 2, 4), dtype=DT)
    noisy_lower_blocks(layer)
    layer(torch.randn(T, B, I, dtype=DT))[0].pow(2).sum().backward()
    grad = layer.weight_hh_l0.grad.view(3, 4, 3, 4)  # (receiving, ·, sending, ·) modules
    for i in range(3):
        for j in range(3):
            assert bool((grad[i, :, j] == 0).all()) == (j < i), (i, j)


def test_fresh_weights_are_block_upper_triangular():
    w = lstmlab.ClockworkRNNCell(I, H, periods=(1, 2, 4)).weight_hh.detach().view(3, 4, 3, 4)
    for i in range(3):
        for j in range(3):
            assert bool((w[i, :, j] == 0).all()) == (j < i), (i, j)


def test_period_four_module_moves_only_every_fourth_step():
    torch.manual_seed(4)
    cell = lstmlab.ClockworkRNNCell(I, 8, periods=(1, 4))
    out, _ = lstmlab.Recurrent(cell)(torch.randn(17, B, I), (torch.randn(B, 8), torch.zeros(B, 1)))
    fast, slow = out[..., :4], out[..., 4:]  # (T, B, 4) each
    for t in range(1, 17):
        assert bool((slow[t] == slow[t - 1]).all()) == (t % 4 != 0), t
        assert not bool((fast[t] == fast[t - 1]).any()), t


def test_slow_modules_never_hear_fast_ones():
    """Perturb one module's state: only it and the faster modules feel it at the next step."""
    torch.manual_seed(5)
    cell = lstmlab.ClockworkRNNCell(I, 12, periods=(1, 2, 4), dtype=DT)
    x, h = torch.randn(B, I, dtype=DT), torch.randn(B, 12, dtype=DT)
    t = torch.zeros(B, 1, dtype=DT)  # t = 0: every module runs
    base = cell.step(x, (h, t))[0].view(B, 3, 4)
    for j in range(3):
        bumped = h.clone()
        bumped[:, 4 * j : 4 * (j + 1)] += 1.0
        changed = (cell.step(x, (bumped, t))[0].view(B, 3, 4) != base).any(-1).any(0)
        assert changed.tolist() == [i <= j for i in range(3)], j


def test_chunks_keep_the_phase():
    """Truncated BPTT: two chunks passing (h, t) give what one run gives."""
    torch.manual_seed(6)
    layer = lstmlab.ClockworkRNN(I, H, 2, periods=(1, 2, 4, 8), batch_first=True, dtype=DT)
    x = torch.randn(B, 11, I, dtype=DT)
    whole, (h_n, t_n) = layer(x)
    first, state = layer(x[:, :5])  # 5: not a multiple of 2 or 4
    second, (h2, t2) = layer(x[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-12, rtol=0)
    torch.testing.assert_close(h2, h_n, atol=1e-12, rtol=0)
    assert t2.flatten().tolist() == t_n.flatten().tolist() == [11 % 8] * 2 * B
    restart, _ = layer(x[:, 5:])  # the clock matters
    assert not torch.allclose(restart, second)


@pytest.mark.parametrize("training", [True, False])
def test_zoneout_holds_h_back_but_never_the_clock(training):
    """Zoneout acts on h only (``zoned_state_parts = 1``): the clock still counts every step."""
    torch.manual_seed(7)
    layer = lstmlab.ClockworkRNN(
        I,
        H,
        2,
        periods=(1, 2, 4, 8),
        batch_first=True,
        dtype=DT,
        zoneout=0.5,
        recurrent_dropout=0.3 if training else 0.0,
    )
    plain = lstmlab.ClockworkRNN(I, H, 2, periods=(1, 2, 4, 8), batch_first=True, dtype=DT)
    plain.load_state_dict(layer.state_dict())
    layer.train(training)
    x = torch.randn(B, 11, I, dtype=DT)
    out, (h_n, t_n) = layer(x)
    ref, (_, t_ref) = plain(x)
    assert t_n.flatten().tolist() == t_ref.flatten().tolist() == [11 % 8] * 2 * B
    assert not torch.allclose(out, ref)  # zoneout did act on h


def test_recurrent_dropout_leaves_idle_modules_whole():
    """Gal & Ghahramani's mask is on h where W_H sees it; a module that holds its state keeps
    h_{t-1} itself, not h_{t-1} ⊙ mask (whose entries are 0 or 1/(1-p), never 1)."""
    torch.manual_seed(3)
    layer = lstmlab.ClockworkRNN(I, H, periods=(1, 4), recurrent_dropout=0.5, dtype=DT)
    x = torch.randn(4, B, I, dtype=DT)
    for fused in (True, False):
        with lstmlab.kernels.disabled() if not fused else torch.enable_grad():
            out, _ = layer(x)  # (4, B, H)
        slow = out[:, :, H // 2 :]  # period 4: runs at t = 0
        for t in (1, 2, 3):
            assert torch.equal(slow[t], slow[0]), (fused, t)
        assert not torch.equal(out[1, :, : H // 2], out[0, :, : H // 2])  # the fast one ran


def matmul_flops(cell: lstmlab.ClockworkRNNCell, t: Tensor) -> int:
    x, h = torch.randn(B, cell.input_size), torch.randn(B, cell.hidden_size)
    with FlopCounterMode(display=False) as counter:
        cell.step(x, (h, t))
    return counter.get_total_flops()


def test_idle_modules_cost_nothing():
    cell = lstmlab.ClockworkRNNCell(8, 16, periods=(1, 2, 4, 8))
    flops = {t: matmul_flops(cell, torch.full((B, 1), float(t))) for t in range(8)}
    full = flops[0]  # all four modules run
    assert full == 2 * B * 16 * (8 + 16)
    assert [flops[t] * 4 // full for t in range(8)] == [4, 1, 2, 1, 3, 1, 2, 1]
    mixed = torch.tensor([[0.0], [1.0], [1.0]])  # rows at two phases
    assert matmul_flops(cell, mixed) == full


def test_language_model_step_equals_forward():
    torch.manual_seed(7)
    model = LanguageModel(11, "clockwork", embed_size=6, hidden_size=8, num_layers=2).eval()
    tokens = torch.randint(11, (B, 9))
    logits, (h_n, t_n) = model(tokens)
    state, steps = None, []
    for t in range(9):
        out, state = model.step(tokens[:, t], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, dim=1), logits)
    torch.testing.assert_close(state[0], h_n)
    assert state[1].flatten().tolist() == t_n.flatten().tolist() == [9] * 2 * B  # cycle 128


def test_default_periods():
    assert default_periods(64) == (1, 2, 4, 8, 16, 32, 64, 128)
    assert default_periods(12) == (1, 2, 4, 8, 16, 32)
    assert default_periods(7) == (1, 2, 4, 8, 16, 32, 64)
    assert default_periods(11) == (1,)
    assert lstmlab.ClockworkRNN(I, 20).periods == (1, 2, 4, 8, 16)


@pytest.mark.parametrize(
    "periods, pieces",
    [
        ((1, 2, 4), ["hidden_size=10", "len(periods)=3", "equal modules"]),
        ((1, 0), ["positive", "(1, 0)"]),
        ((-2, 1), ["positive", "(-2, 1)"]),
        ((4, 2, 1), ["sorted", "(4, 2, 1)"]),
        ((), ["non-empty", "(1, 2, 4, 8)"]),
        ((1, 2.0), ["integers", "(1, 2.0)"]),
        ((True, 2), ["integers"]),
        (4, ["sequence", "4"]),
    ],
)
def test_bad_periods(periods, pieces):
    for build in (lstmlab.ClockworkRNNCell, lstmlab.ClockworkRNN):
        with pytest.raises(ValueError) as error:
            build(I, 10, periods=periods)
        for piece in pieces:
            assert piece in str(error.value)


def test_cell_call_like_torch():
    """``cell(input, hx)``: batched or unbatched, the state (h, t) back as a tuple."""
    torch.manual_seed(8)
    cell = lstmlab.ClockworkRNNCell(I, 8, periods=(1, 2))
    x, h = torch.randn(B, I), torch.randn(B, 8)
    h1, t1 = cell(x, (h, torch.ones(B, 1)))  # t = 1: module 2 idles
    assert torch.equal(h1[:, 4:], h[:, 4:]) and not torch.equal(h1[:, :4], h[:, :4])
    assert t1.flatten().tolist() == [0.0] * B  # cycle 2
    h0, t0 = cell(x[0], (h[0], torch.ones(1)))
    torch.testing.assert_close(h0, h1[0])
    assert t0.tolist() == [0.0]


def test_bad_nonlinearity_and_hx():
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        lstmlab.ClockworkRNNCell(I, H, nonlinearity="sigmoid")
    layer = lstmlab.ClockworkRNN(I, H)
    with pytest.raises(ValueError, match="must have 2 part"):  # the clock is missing
        layer(torch.randn(T, B, I), torch.zeros(1, B, H))
