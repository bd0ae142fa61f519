"""Grid LSTM (Kalchbrenner, Danihelka & Graves 2015) against its paper's equations, written out
here.

Oracles: a reference typed from the paper -- explicit loops over time and depth, one matrix per
gate and dimension cut out of the documented parameter layout, never calling the library;
``torch.nn.LSTM`` / ``LSTMCell`` with copied weights where the grid reduces to them (an N-LSTM
block's dimension is an LSTM step; a one-layer grid's time dimension is an LSTM over the projected
input); float64 ``gradcheck``; each sequence run alone for lengths and padding.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmlab
from lstmlab import GridLSTM, GridLSTMCell, GridLSTMColumn
from lstmlab.models import LanguageModel
from lstmlab.models.build import build_model, init_forget_bias

DT = torch.float64
I, H, B, T = 3, 4, 2, 5
TOL = dict(atol=1e-12, rtol=0)
sigma, tanh = torch.sigmoid, torch.tanh


def grid(num_layers: int = 2, seed: int = 0, **kwargs) -> GridLSTM:
    torch.manual_seed(seed)
    return GridLSTM(I, H, num_layers, **kwargs).to(DT)


def randn(*shape: int, seed: int = 1) -> Tensor:
    return torch.randn(*shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------
# The paper's equations, one weight matrix per gate and dimension.


def dimension_weights(weight: Tensor, bias: Tensor | None, j: int) -> dict:
    """Dimension j's W^i, W^f, W^g, W^o (H, dims·H) and b^i, ... (H,): row block j of the block's
    (dims·4H, dims·H) weight, gates in the order i, f, g, o."""
    rows = weight[j * 4 * H : (j + 1) * 4 * H]
    b = bias[j * 4 * H : (j + 1) * 4 * H] if bias is not None else torch.zeros(4 * H, dtype=DT)
    return {
        f"{k}_{gate}": t[n * H : (n + 1) * H]
        for n, gate in enumerate("ifgo")
        for k, t in (("W", rows), ("b", b))
    }


def paper_lstm(w: dict, Hcat: Tensor, m: Tensor) -> tuple[Tensor, Tensor, dict]:
    """LSTM(H, m, W): the gates from H = [h_1; ...; h_N], then m' and h'."""
    i = sigma(Hcat @ w["W_i"].T + w["b_i"])
    f = sigma(Hcat @ w["W_f"].T + w["b_f"])
    g = tanh(Hcat @ w["W_g"].T + w["b_g"])
    o = sigma(Hcat @ w["W_o"].T + w["b_o"])
    m = f * m + i * g
    return o * tanh(m), m, {"input": i, "forget": f, "candidate": g, "output": o}


def reference(layer: GridLSTM, x: Tensor, h0: Tensor, c0: Tensor, drop_depth_h: bool = False):
    """The 2-D grid, step by step and block by block. x (T, B, I); h0, c0 (L, B, H).

    Returns output (T, B, H) -- the top block's depth h --, h_n, c_n (L, B, H) and gates
    ``gates[t][l]["time_input"]`` etc. ``drop_depth_h`` zeroes the depth h between blocks
    (dropout with p = 1), leaving the depth memory alone."""
    column, L = layer.cell, layer.num_layers
    W_in = column.weight_ih
    blocks = [column.blocks[0 if layer.tied else l] for l in range(L)]
    h_time, m_time = list(h0.unbind(0)), list(c0.unbind(0))
    outputs, gates = [], []
    for t in range(x.shape[0]):
        h_depth = x[t] @ W_in.T  # the input, projected into the grid
        m_depth = torch.zeros_like(h_depth)
        gates.append([])
        for l, block in enumerate(blocks):
            if l > 0 and drop_depth_h:
                h_depth = torch.zeros_like(h_depth)
            Hcat = torch.cat([h_time[l], h_depth], dim=-1)  # [h_time; h_depth]
            w_time = dimension_weights(block.weight, block.bias, 0)
            w_depth = dimension_weights(block.weight, block.bias, 1)
            h_time[l], m_time[l], g_time = paper_lstm(w_time, Hcat, m_time[l])
            h_depth, m_depth, g_depth = paper_lstm(w_depth, Hcat, m_depth)
            gates[t].append(
                {
                    **{f"time_{k}": v for k, v in g_time.items()},
                    **{f"depth_{k}": v for k, v in g_depth.items()},
                }
            )
        outputs.append(h_depth)
    return torch.stack(outputs), torch.stack(h_time), torch.stack(m_time), gates


# --------------------------------------------------------------------------------------------
# The block and the network against the equations.


def test_block_dimension_is_an_lstm_step():
    """Each of a 3-LSTM block's dimensions is torch.nn.LSTMCell reading H = [h_1; h_2; h_3]."""
    torch.manual_seed(0)
    block = GridLSTMCell(H, dims=3).to(DT)
    h, m = [randn(B, H, seed=s) for s in range(3)], [randn(B, H, seed=10 + s) for s in range(3)]
    new_h, new_m, gates = block(h, m)
    for j in range(3):
        cell = torch.nn.LSTMCell(3 * H, H).to(DT)
        with torch.no_grad():
            cell.weight_ih.copy_(block.weight[j * 4 * H : (j + 1) * 4 * H])
            cell.bias_ih.copy_(block.bias[j * 4 * H : (j + 1) * 4 * H])
            cell.weight_hh.zero_(), cell.bias_hh.zero_()
        want_h, want_m = cell(torch.cat(h, dim=-1), (torch.zeros(B, H, dtype=DT), m[j]))
        torch.testing.assert_close(new_h[j], want_h, **TOL)
        torch.testing.assert_close(new_m[j], want_m, **TOL)
        _, _, want_gates = paper_lstm(
            dimension_weights(block.weight, block.bias, j), torch.cat(h, dim=-1), m[j]
        )
        for name, g in want_gates.items():
            torch.testing.assert_close(gates[name][:, j], g, **TOL)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_network_matches_paper_reference(num_layers, tied, bias):
    layer = grid(num_layers, tied=tied, bias=bias)
    x, h0, c0 = randn(T, B, I), randn(num_layers, B, H, seed=2), randn(num_layers, B, H, seed=3)
    out, (h_n, c_n), gates = layer(x, (h0, c0), return_gates=True)
    want_out, want_h, want_c, want_gates = reference(layer, x, h0, c0)
    torch.testing.assert_close(out, want_out, **TOL)
    torch.testing.assert_close(h_n, want_h, **TOL)
    torch.testing.assert_close(c_n, want_c, **TOL)
    assert len(gates) == num_layers and len(gates[0]) == 8
    for l in range(num_layers):
        for name, g in gates[l].items():
            torch.testing.assert_close(
                g, torch.stack([want_gates[t][l][name] for t in range(T)]), **TOL
            )


def test_one_layer_grid_is_an_lstm_over_the_projected_input():
    """With one layer the time pair is torch.nn.LSTM over W_in x (weights: the time rows, the
    columns reading h_depth as weight_ih and h_time as weight_hh), and the output is one
    torch.nn.LSTMCell step of the depth rows from the previous time h and a zero memory."""
    layer = grid(1)
    x, h0, c0 = randn(T, B, I), randn(1, B, H, seed=2), randn(1, B, H, seed=3)
    out, (h_n, c_n) = layer(x, (h0, c0))
    block, projected = layer.cell.blocks[0], x @ layer.cell.weight_ih.T  # (T, B, H)

    def torch_weights(module, j: int, suffix: str = ""):
        """Dimension j's rows of the block: columns [H:] read h_depth (the LSTM's input),
        columns [:H] read h_time (its recurrent state)."""
        rows = slice(j * 4 * H, (j + 1) * 4 * H)
        with torch.no_grad():
            getattr(module, "weight_ih" + suffix).copy_(block.weight[rows, H:])
            getattr(module, "weight_hh" + suffix).copy_(block.weight[rows, :H])
            getattr(module, "bias_ih" + suffix).copy_(block.bias[rows])
            getattr(module, "bias_hh" + suffix).zero_()
        return module

    lstm = torch_weights(torch.nn.LSTM(H, H).to(DT), 0, "_l0")
    time_h, (want_h, want_c) = lstm(projected, (h0, c0))
    torch.testing.assert_close(h_n, want_h, **TOL)
    torch.testing.assert_close(c_n, want_c, **TOL)
    depth = torch_weights(torch.nn.LSTMCell(H, H).to(DT), 1)
    previous = torch.cat([h0, time_h[:-1]])  # h_time at t - 1, (T, B, H)
    for t in range(T):
        want, _ = depth(projected[t], (previous[t], torch.zeros(B, H, dtype=DT)))
        torch.testing.assert_close(out[t], want, **TOL)


def test_dropout_drops_the_depth_hidden_vector_only():
    """p = 1 zeroes h_depth between blocks, but the depth memory still climbs."""
    layer = grid(3, dropout=1.0).train()
    x, h0, c0 = randn(T, B, I), randn(3, B, H, seed=2), randn(3, B, H, seed=3)
    out, (h_n, c_n) = layer(x, (h0, c0))
    want_out, want_h, want_c, _ = reference(layer, x, h0, c0, drop_depth_h=True)
    torch.testing.assert_close(out, want_out, **TOL)
    torch.testing.assert_close(c_n, want_c, **TOL)
    layer.eval()
    torch.testing.assert_close(layer(x, (h0, c0))[0], reference(layer, x, h0, c0)[0], **TOL)


# --------------------------------------------------------------------------------------------
# Gradients, tying, layouts, lengths.


@pytest.mark.parametrize("tied", [False, True])
def test_gradcheck_float64(tied):
    torch.manual_seed(0)
    layer = GridLSTM(2, 2, 2, tied=tied).to(DT)  # tiny: gradcheck is entry by entry
    params = dict(layer.named_parameters())
    x = randn(3, 2, 2).requires_grad_()
    h0, c0 = randn(2, 2, 2, seed=2).requires_grad_(), randn(2, 2, 2, seed=3).requires_grad_()

    def f(x, h0, c0, *weights):
        out, (h, c) = functional_call(
            layer, dict(zip(params, weights)), (x, (h0, c0)), {"lengths": torch.tensor([3, 1])}
        )
        return out, h, c

    assert gradcheck(f, (x, h0, c0, *params.values()), fast_mode=False)


def test_tied_weights_are_one_set_whose_gradient_sums_over_layers():
    L = 3
    tied, untied = grid(L, tied=True), grid(L, seed=1)
    assert [n for n, _ in tied.named_parameters()] == [
        "cell.weight_ih",
        "cell.blocks.0.weight",
        "cell.blocks.0.bias",
    ]
    assert sum(p.numel() for p in tied.parameters()) == H * I + 8 * H * 2 * H + 8 * H
    with torch.no_grad():  # the untied grid with every block a copy of the tied one
        untied.cell.weight_ih.copy_(tied.cell.weight_ih)
        for block in untied.cell.blocks:
            block.weight.copy_(tied.cell.blocks[0].weight)
            block.bias.copy_(tied.cell.blocks[0].bias)
    x = randn(T, B, I)
    for layer in (tied, untied):
        out, (h, c) = layer(x)
        (out.sum() + (h * c).sum()).backward()
    torch.testing.assert_close(tied(x)[0], untied(x)[0], **TOL)
    for name in ("weight", "bias"):
        total = sum(getattr(b, name).grad for b in untied.cell.blocks)
        torch.testing.assert_close(getattr(tied.cell.blocks[0], name).grad, total, **TOL)
        assert not torch.equal(getattr(untied.cell.blocks[0], name).grad, total)


def test_lengths_pad_with_zeros_and_stop_each_sequence_at_its_end():
    layer = grid(2)
    x, lengths = randn(T, 3, I), [5, 2, 3]
    h0, c0 = randn(2, 3, H, seed=2), randn(2, 3, H, seed=3)
    out, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
    for b, n in enumerate(lengths):
        want_out, want_h, want_c, _ = reference(
            layer, x[:n, b : b + 1], h0[:, b : b + 1], c0[:, b : b + 1]
        )
        torch.testing.assert_close(out[:n, b : b + 1], want_out, **TOL)
        assert torch.equal(out[n:, b], torch.zeros_like(out[n:, b]))
        torch.testing.assert_close(h_n[:, b : b + 1], want_h, **TOL)
        torch.testing.assert_close(c_n[:, b : b + 1], want_c, **TOL)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    out_p, (h_p, c_p) = layer(packed, (h0, c0))
    torch.testing.assert_close(pad_packed_sequence(out_p, total_length=T)[0], out, **TOL)
    torch.testing.assert_close(h_p, h_n, **TOL)


def test_batch_first_unbatched_and_the_column_cell_agree():
    layer = grid(2)
    x = randn(T, B, I)
    out, (h_n, c_n) = layer(x)
    first = grid(2, batch_first=True)
    out_bf, (h_bf, _) = first(x.transpose(0, 1))
    torch.testing.assert_close(out_bf.transpose(0, 1), out, **TOL)
    torch.testing.assert_close(h_bf, h_n, **TOL)
    out_1, (h_1, c_1) = layer(x[:, 1], (h_n[:, 1], c_n[:, 1]))  # unbatched: (T, I)
    ref_1, (ref_h, _) = layer(x[:, 1:2], (h_n[:, 1:2], c_n[:, 1:2]))
    torch.testing.assert_close(out_1, ref_1[:, 0], **TOL)
    torch.testing.assert_close(h_1, ref_h[:, 0], **TOL)
    # The column is a plain Cell: the generic runner gives the same, state (B, L·H).
    run_out, (h, m) = lstmlab.Recurrent(layer.cell)(x)
    torch.testing.assert_close(run_out, out, **TOL)
    torch.testing.assert_close(h.view(B, 2, H).transpose(0, 1), h_n, **TOL)
    assert isinstance(GridLSTMColumn(I, H, 2), lstmlab.Cell)


# --------------------------------------------------------------------------------------------
# As a language model.


@pytest.mark.parametrize("cell", ["grid", "grid-tied"])
def test_language_model_forward_and_step(cell):
    V = 11
    torch.manual_seed(0)
    model = LanguageModel(V, cell, embed_size=5, hidden_size=H, num_layers=2).to(DT).eval()
    tokens = torch.randint(V, (B, T), generator=torch.Generator().manual_seed(1))
    state = (randn(2, B, H, seed=2), randn(2, B, H, seed=3))
    logits, final = model(tokens, state)
    assert logits.shape == (B, T, V) and final[0].shape == (2, B, H)
    stepped, s = [], state
    for t in range(T):
        out, s = model.step(tokens[:, t], s)
        stepped.append(out)
    torch.testing.assert_close(torch.stack(stepped, dim=1), logits, **TOL)
    torch.testing.assert_close(s[0], final[0], **TOL)
    torch.testing.assert_close(s[1], final[1], **TOL)
    starts = torch.zeros(B, T, dtype=torch.bool)
    starts[0, 3] = True  # a document begins: row 0's state is reset before t = 3
    reset, _ = model(tokens, state, starts)
    fresh, _ = model(tokens[:1, 3:])
    torch.testing.assert_close(reset[:1, 3:], fresh, **TOL)
    rebuilt = build_model(model.config()).to(DT).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(tokens, state)[0], logits, **TOL)


def test_init_forget_bias_sets_the_forget_rows_of_every_dimension():
    model = LanguageModel(7, "grid", embed_size=3, hidden_size=H, num_layers=2)
    before = [b.bias.detach().clone() for b in model.rnn.cell.blocks]
    assert init_forget_bias(model, 1.0) == 2
    for block, old in zip(model.rnn.cell.blocks, before):
        for j in range(2):  # time, depth: rows i, f, g, o
            rows = dimension_weights(block.weight, block.bias, j)
            assert torch.equal(rows["b_f"], torch.ones(H))
            for gate in "igo":
                assert torch.equal(
                    rows[f"b_{gate}"], dimension_weights(block.weight, old, j)[f"b_{gate}"]
                )
    assert init_forget_bias(LanguageModel(7, "grid-tied", embed_size=3, hidden_size=H), 1.0) == 1


# --------------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize(
    "make, pieces",
    [
        (lambda: GridLSTM(I, H, bidirectional=True), ["bidirectional", "not supported"]),
        (lambda: GridLSTM(I, H, 0), ["num_layers", ">= 1"]),
        (lambda: GridLSTM(I, H, 2, dropout=1.5), ["dropout", "[0, 1]"]),
        (
            lambda: GridLSTMCell(H, dims=2)([torch.zeros(1, H)], [torch.zeros(1, H)] * 2),
            ["2 hidden and 2 memory", "got 1 and 2"],
        ),
        (lambda: grid(2)(randn(T, B, I + 1)), ["input_size=3"]),
        (
            lambda: grid(2)(randn(T, B, I), (randn(3, B, H), randn(3, B, H))),
            ["hx[0]", "(2, 2, 4)", "(3, 2, 4)"],
        ),
        (lambda: grid(2)(randn(T, B, I), randn(2, B, H)), ["hx", "2 part"]),
        (lambda: grid(2)(randn(T, B, I), lengths=[T + 1, 1]), ["lengths", f"[1, {T}]"]),
        (lambda: grid(2)(randn(T, I), lengths=[T]), ["lengths", "batched"]),
        (lambda: grid(2)(randn(T, B, I) * float("nan")), ["NaN"]),
    ],
)
def test_bad_input_raises_a_value_error_naming_it(make, pieces):
    with pytest.raises(ValueError) as error:
        make()
    for piece in pieces:
        assert piece in str(error.value)


def test_wrong_dtype_is_a_type_error_and_one_layer_dropout_warns():
    with pytest.raises(TypeError, match="float32"):
        grid(2)(torch.randn(T, B, I))
    with pytest.warns(UserWarning, match="num_layers=1"):
        GridLSTM(I, H, 1, dropout=0.5)


def test_the_per_dimension_form_used_when_exporting_equals_the_batched_one(monkeypatch):
    torch.manual_seed(0)
    block = GridLSTMCell(4, 2)
    h, m = (torch.randn(3, 4), torch.randn(3, 4)), (torch.randn(3, 4), torch.randn(3, 4))
    y, c, _ = block(h, m)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    y2, c2, gates = block(h, m)
    assert gates == {}
    for a, b in zip((*y, *c), (*y2, *c2)):
        torch.testing.assert_close(a, b)
