"""The depth-gated LSTM (Yao et al. 2015) against its paper, written out here gate by gate.

The reference runs time in the outer loop and layers in the inner one, as the paper's equations
read (layer L+1 at step t takes c_t^L just computed), with one weight matrix per gate cut out of
the library's parameters; the library runs layer by layer over the whole sequence. Then:
gradcheck, the acceptance check (depth gates shut: exactly the stacked peephole LSTM), the
language model's step, and bad input.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab
from lstmlab.models import LanguageModel

DT = torch.float64
I, H, B, T, L = 3, 4, 2, 6, 3
sigma, tanh = torch.sigmoid, torch.tanh


def paper_weights(layer: lstmlab.DepthGatedLSTM, k: int) -> dict[str, Tensor]:
    """Layer k's weights per gate: W_x{i,f,g,o} (H, ·), W_h{..} (H, H), b_{..}, the peepholes
    w_c{i,f,o}, and for k > 0 the depth gate's W_xd, w_cd, w_ld, b_d."""
    p = {
        name[: -len(f"_l{k}")]: t for name, t in layer.named_parameters() if name.endswith(f"_l{k}")
    }
    w = {}
    for n, gate in enumerate("ifgo"):  # weight_ih rows: i, f, g, o
        rows = slice(n * H, (n + 1) * H)
        w[f"W_x{gate}"], w[f"W_h{gate}"] = p["weight_ih"][rows], p["weight_hh"][rows]
        w[f"b_{gate}"] = p["bias_ih"][rows] + p["bias_hh"][rows]
    for gate in "ifo":
        w[f"w_c{gate}"] = p[f"weight_c{gate}"]
    if k > 0:
        w.update(W_xd=p["weight_xd"], w_cd=p["weight_cd"], w_ld=p["weight_ld"], b_d=p["bias_d"])
    return w


def paper_stack(x: Tensor, layer: lstmlab.DepthGatedLSTM, h0: Tensor, c0: Tensor):
    """Yao et al. 2015, eqs. 1-7. x (T, B, I); h0, c0 (L, B, H). Returns the top layer's h at
    every step (T, B, H), h_n and c_n (L, B, H), and the depth gates {k: (T, B, H)}."""
    w = [paper_weights(layer, k) for k in range(layer.num_layers)]
    h, c = list(h0), list(c0)
    outputs, depth = [], {k: [] for k in range(1, layer.num_layers)}
    for t in range(x.shape[0]):
        below, c_below = x[t], None
        for k, p in enumerate(w):
            i = sigma(below @ p["W_xi"].T + h[k] @ p["W_hi"].T + p["w_ci"] * c[k] + p["b_i"])
            f = sigma(below @ p["W_xf"].T + h[k] @ p["W_hf"].T + p["w_cf"] * c[k] + p["b_f"])
            g = tanh(below @ p["W_xg"].T + h[k] @ p["W_hg"].T + p["b_g"])
            if k == 0:  # the bottom layer: a peephole LSTM
                c_new = f * c[k] + i * g
            else:  # the depth gate on the cell below
                d = sigma(below @ p["W_xd"].T + p["w_cd"] * c[k] + p["w_ld"] * c_below + p["b_d"])
                c_new = d * c_below + f * c[k] + i * g
                depth[k].append(d)
            o = sigma(below @ p["W_xo"].T + h[k] @ p["W_ho"].T + p["w_co"] * c_new + p["b_o"])
            h[k], c[k] = o * tanh(c_new), c_new
            below, c_below = h[k], c_new
        outputs.append(below)
    return (
        torch.stack(outputs),
        torch.stack(h),
        torch.stack(c),
        {k: torch.stack(d) for k, d in depth.items()},
    )


def test_stack_equals_paper():
    torch.manual_seed(0)
    layer = lstmlab.DepthGatedLSTM(I, H, L, batch_first=True, dtype=DT)
    x = torch.randn(B, T, I, dtype=DT)
    h0, c0 = torch.randn(L, B, H, dtype=DT), torch.randn(L, B, H, dtype=DT)
    out, (h_n, c_n), gates = layer(x, (h0, c0), return_gates=True)
    ref_out, ref_h, ref_c, ref_d = paper_stack(x.transpose(0, 1), layer, h0, c0)
    torch.testing.assert_close(out, ref_out.transpose(0, 1), atol=1e-12, rtol=0)
    torch.testing.assert_close(h_n, ref_h, atol=1e-12, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=1e-12, rtol=0)
    assert "depth" not in gates[0]
    for k in range(1, L):
        torch.testing.assert_close(gates[k]["depth"], ref_d[k].transpose(0, 1), atol=1e-12, rtol=0)
        assert 0.05 < float(gates[k]["depth"].detach().mean()) < 0.95  # the gate is open


def test_lengths_equal_separate_runs():
    """Padded steps: each row's outputs and final state are those of its own shorter run."""
    torch.manual_seed(1)
    layer = lstmlab.DepthGatedLSTM(I, H, L, dtype=DT)
    x, lengths = torch.randn(T, B, I, dtype=DT), [T, 3]
    out, (h_n, c_n) = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        row, (h, c) = layer(x[:n, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], row, atol=1e-12, rtol=0)
        assert bool((out[n:, b] == 0).all())
        torch.testing.assert_close(h_n[:, b : b + 1], h, atol=1e-12, rtol=0)
        torch.testing.assert_close(c_n[:, b : b + 1], c, atol=1e-12, rtol=0)


def test_gradcheck():
    torch.manual_seed(2)
    layer = lstmlab.DepthGatedLSTM(2, 3, 2, dtype=DT)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=DT, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=DT, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=DT, requires_grad=True)

    def f(x, h0, c0, *weights):
        out, (h_n, c_n) = functional_call(layer, dict(zip(names, weights)), (x, (h0, c0)))
        return out, h_n, c_n

    weights = [p.detach().requires_grad_() for p in layer.parameters()]
    assert gradcheck(f, (x, h0, c0, *weights), fast_mode=True)


def copy_into_peephole_lstm(layer: lstmlab.DepthGatedLSTM) -> lstmlab.LSTM:
    lstm = lstmlab.LSTM(I, H, L, peephole=True, dtype=DT)
    names = lstm.state_dict().keys()
    lstm.load_state_dict({k: v for k, v in layer.state_dict().items() if k in names})  # strict
    return lstm


def test_shut_depth_gates_give_the_peephole_lstm():
    """Acceptance: with its depth gates at zero the stack is a plain stacked peephole LSTM."""
    torch.manual_seed(3)
    layer = lstmlab.DepthGatedLSTM(I, H, L, dtype=DT)
    x, hx = (
        torch.randn(T, B, I, dtype=DT),
        (torch.randn(L, B, H, dtype=DT), torch.randn(L, B, H, dtype=DT)),
    )
    lstm = copy_into_peephole_lstm(layer)
    assert sorted(layer.state_dict().keys() - lstm.state_dict().keys()) == sorted(
        f"{n}_l{k}" for k in range(1, L) for n in ("weight_xd", "weight_cd", "weight_ld", "bias_d")
    )
    with lstmlab.kernels.disabled():  # the readable loop (the fused kernels are tested on it)
        expected, (h_e, c_e) = lstm(x, hx)
    open_out, _ = layer(x, hx)
    assert not torch.allclose(open_out, expected, atol=1e-3)  # open gates do change things
    with torch.no_grad():
        for k in range(1, L):
            getattr(layer, f"bias_d_l{k}").fill_(-1e4)  # sigma(-1e4) = 0 exactly
    out, (h_n, c_n), gates = layer(x, hx, return_gates=True)
    assert all(bool((g["depth"] == 0).all()) for g in gates[1:])
    torch.testing.assert_close(out, expected, atol=1e-13, rtol=0)
    torch.testing.assert_close(h_n, h_e, atol=1e-13, rtol=0)
    torch.testing.assert_close(c_n, c_e, atol=1e-13, rtol=0)
    out.pow(2).sum().backward()  # ... and learns the same
    with lstmlab.kernels.disabled():
        lstm(x, hx)[0].pow(2).sum().backward()
    for name, p in lstm.named_parameters():
        torch.testing.assert_close(getattr(layer, name).grad, p.grad, atol=1e-12, rtol=0)


def test_one_layer_is_the_peephole_lstm():
    torch.manual_seed(4)
    layer = lstmlab.DepthGatedLSTM(I, H, 1, dtype=DT)
    lstm = lstmlab.LSTM(I, H, 1, peephole=True, dtype=DT)
    lstm.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I, dtype=DT)
    torch.testing.assert_close(layer(x)[0], lstm(x)[0], atol=1e-12, rtol=0)


def test_language_model_step_equals_forward():
    torch.manual_seed(5)
    model = LanguageModel(
        11, "depth-gated", embed_size=6, hidden_size=8, num_layers=3, tie_weights=False
    ).eval()
    tokens = torch.randint(11, (B, 7))
    logits, (h_n, c_n) = model(tokens)
    state, steps = None, []
    for t in range(7):
        out, state = model.step(tokens[:, t], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, dim=1), logits)
    torch.testing.assert_close(state[1], c_n)
    assert model.rnn.output_size == 8 and logits.shape == (B, 7, 11)


def test_cell_reads_the_lower_cell_state():
    cell = lstmlab.DepthGatedLSTMCell(I, H)
    assert cell.input_size == I + H and cell.output_size == H
    with pytest.raises(ValueError, match=f"input_size={I + H}"):
        cell(torch.randn(B, I))  # c_t^low missing
    x, state = torch.randn(B, I + H), (torch.randn(B, H), torch.randn(B, H))
    h, (h, c), gates = cell.step(x, state)
    assert sorted(gates) == ["candidate", "depth", "forget", "input", "output"]
    called = cell(x, state)  # torch-style call: the fused kernel's step
    torch.testing.assert_close(called[0], h, atol=1e-6, rtol=0)
    torch.testing.assert_close(called[1], c, atol=1e-6, rtol=0)
    emitting = lstmlab.DepthGatedLSTMCell(I, H, depth_gate=False, emit_cell=True)
    out, (h, c), gates = emitting.step(torch.randn(B, I), emitting.initial_state(B))
    assert emitting.input_size == I and torch.equal(out, torch.cat([h, c], dim=-1))


def test_bad_input():
    with pytest.raises(ValueError, match="bidirectional=True is not supported"):
        lstmlab.DepthGatedLSTM(I, H, 2, bidirectional=True)
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1, got 0"):
        lstmlab.DepthGatedLSTM(I, H, 0)
    layer = lstmlab.DepthGatedLSTM(I, H, 2)
    with pytest.raises(ValueError, match=r"hx\[0\] must have shape \(2, 2, 4\)"):
        layer(torch.randn(T, B, I), (torch.zeros(1, B, H), torch.zeros(1, B, H)))
    with pytest.raises(ValueError, match=f"input.size\\(-1\\) must equal input_size={I}"):
        layer(torch.randn(T, B, I + 1))
