"""Recurrent (variational) dropout and zoneout: the papers' equations, the fused kernels against
the readable loop with the same masks, evaluation, and bad values.

References are typed here from Gal & Ghahramani 2016 (one mask per sequence on h_{t-1} where it
meets the recurrent weights) and Krueger et al. 2016 (zoneout: units keep their previous value;
the expectation in evaluation); the masks a layer drew are caught on their way out of
``lstmlab.nn.regularizers`` so that the references use the very same ones.
"""

from __future__ import annotations

import random
from contextlib import nullcontext

import pytest
import torch
from torch import Tensor
from torch.autograd import gradcheck
from torch.func import functional_call

import lstmlab
from lstmlab import GRU, LSTM, RNN, DepthGatedLSTM, Stack, kernels, regularizers
from lstmlab.nn import dispatch
from lstmlab.nn.recurrent import run
from lstmlab.nn.registry import make_layer

DT = torch.float64
TOL = dict(atol=1e-12, rtol=0)
sigma, tanh = torch.sigmoid, torch.tanh
FUSED_FAMILIES = [
    "lstm",
    "peephole",
    "fgr",
    "gru",
    "gru-v3",
    "rnn",
    "clockwork",
    "ln-lstm",
    "ln-gru",
]


@pytest.fixture
def drawn(monkeypatch):
    """Every mask the Stack draws, in order: {"recurrent": [(B, P), ...],
    "zoneout": [(k_h, k_c), ...]}."""
    seen: dict[str, list] = {"recurrent": [], "zoneout": []}

    def mask(*args):
        seen["recurrent"].append(regularizers.recurrent_dropout_mask(*args))
        return seen["recurrent"][-1]

    def keep(*args):
        seen["zoneout"].append(regularizers.zoneout_keep(*args))
        return seen["zoneout"][-1]

    monkeypatch.setattr(lstmlab.nn.stack, "recurrent_dropout_mask", mask)
    monkeypatch.setattr(lstmlab.nn.stack, "zoneout_keep", keep)
    return seen


def weights(layer) -> dict[str, Tensor]:
    return {k[:-3]: v for k, v in layer.named_parameters() if k.endswith("_l0")}


def scramble(layer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.7)


# ---- the papers' steps, one layer, h ⊙ m where h meets W_hh ------------------------------


def lstm_step(p, x, h, c, m):
    z = x @ p["weight_ih"].T + p["bias_ih"] + (h * m) @ p["weight_hh"].T + p["bias_hh"]
    i, f, g, o = z.chunk(4, -1)
    c = sigma(f) * c + sigma(i) * tanh(g)
    return sigma(o) * tanh(c), c


def gru_step(p, x, h, m, reset_after=True):
    """Gal & Ghahramani 2016, section 4: masks on the matmuls' h only; the carry z ⊙ h is whole."""
    H = h.shape[-1]
    xr, xz, xn = (x @ p["weight_ih"].T + p["bias_ih"]).chunk(3, -1)
    if reset_after:
        hr, hz, hn = ((h * m) @ p["weight_hh"].T + p["bias_hh"]).chunk(3, -1)
        r, z = sigma(xr + hr), sigma(xz + hz)
        n = tanh(xn + r * hn)
    else:
        hr, hz = ((h * m) @ p["weight_hh"][: 2 * H].T + p["bias_hh"][: 2 * H]).chunk(2, -1)
        r, z = sigma(xr + hr), sigma(xz + hz)
        n = tanh(xn + (r * (h * m)) @ p["weight_hh"][2 * H :].T + p["bias_hh"][2 * H :])
    return (1 - z) * n + z * h


def rnn_step(p, x, h, m):
    return tanh(x @ p["weight_ih"].T + p["bias_ih"] + (h * m) @ p["weight_hh"].T + p["bias_hh"])


def paper_run(kind: str, p, x, m, keep=None, z_eval=None):
    """A whole sequence: Gal's mask m (B, H), then zoneout (Krueger et al. 2016) of h and c with
    keep masks (T, B, H) -- or, in evaluation, the expectation with probability z_eval."""
    T, B = x.shape[:2]
    H = p["weight_hh"].shape[1]
    h, c, outs = torch.zeros(B, H, dtype=DT), torch.zeros(B, H, dtype=DT), []
    for t in range(T):
        if kind == "lstm":
            h_new, c_new = lstm_step(p, x[t], h, c, m)
        elif kind == "rnn":
            h_new, c_new = rnn_step(p, x[t], h, m), None
        else:
            h_new, c_new = gru_step(p, x[t], h, m, reset_after=kind == "gru"), None
        d_h = d_c = 0.0
        if keep is not None:
            d_h, d_c = keep[0][t], keep[-1][t]
        if z_eval is not None:
            d_h = d_c = z_eval
        h = d_h * h + (1 - d_h) * h_new
        c = d_c * c + (1 - d_c) * c_new if c_new is not None else None
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("path", ["fused", "readable"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru-v3", "rnn"])
def test_recurrent_dropout_is_one_mask_per_sequence(kind, path, drawn):
    torch.manual_seed(0)
    layer = make_layer(kind, 3, 5, recurrent_dropout=0.4).to(DT)
    scramble(layer, 0)
    x = torch.randn(7, 4, 3, dtype=DT)
    with kernels.disabled() if path == "readable" else nullcontext():
        out, _ = layer(x)
    (m,) = drawn["recurrent"]
    assert m.shape == (4, 5)
    assert set(m.unique().tolist()) == {0.0, 1 / 0.6}  # inverted scaling
    torch.testing.assert_close(out, paper_run(kind, weights(layer), x, m), **TOL)
    # A fresh mask each step would be another network: the constant mask is what matched.
    other = paper_run(kind, weights(layer), x, regularizers.recurrent_dropout_mask(0.4, 4, 5, x))
    assert (out - other).abs().max() > 1e-6


def test_recurrent_dropout_rate():
    torch.manual_seed(1)
    m = regularizers.recurrent_dropout_mask(0.25, 200, 100, torch.empty(0))
    assert abs(float((m == 0).double().mean()) - 0.25) < 0.01
    assert torch.allclose(m[m > 0], torch.tensor(1 / 0.75))


@pytest.mark.parametrize("path", ["fused", "readable"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_zoneout_matches_paper_and_keeps_units(kind, path, drawn):
    torch.manual_seed(2)
    layer = make_layer(kind, 3, 5, zoneout=0.5).to(DT)
    scramble(layer, 2)
    x = torch.randn(6, 4, 3, dtype=DT)
    with kernels.disabled() if path == "readable" else nullcontext():
        out, state = layer(x)
    (keep,) = drawn["zoneout"]
    assert len(keep) == (2 if kind == "lstm" else 1)  # h, and c for the LSTM
    assert set(torch.cat([k.flatten() for k in keep]).unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(out, paper_run(kind, weights(layer), x, 1.0, keep), **TOL)
    kept = keep[0][1:].bool()  # steps 1..T-1
    assert kept.any() and (~kept).any()
    assert torch.equal(out[1:][kept], out[:-1][kept])  # kept units: exact copies
    if kind == "lstm":
        assert (keep[1] != keep[0]).any()  # c has masks of its own


@pytest.mark.parametrize("path", ["fused", "readable"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_eval_is_deterministic_and_the_expectation(kind, path):
    torch.manual_seed(3)
    layer = make_layer(kind, 3, 5, zoneout=0.3, recurrent_dropout=0.5).to(DT)
    scramble(layer, 3)
    x = torch.randn(6, 4, 3, dtype=DT)
    with kernels.disabled() if path == "readable" else nullcontext():
        train_a, train_b = layer(x)[0], layer(x)[0]
        layer.eval()
        torch.manual_seed(10)
        first = layer(x)[0]
        torch.manual_seed(11)
        second = layer(x)[0]
    assert (train_a - train_b).abs().max() > 1e-6  # training: random
    assert torch.equal(first, second)  # evaluation: not
    expected = paper_run(kind, weights(layer), x, 1.0, z_eval=0.3)  # no dropout, E[zoneout]
    torch.testing.assert_close(first, expected, **TOL)


def outputs_and_grads(layer, x, hx, lengths, seed):
    torch.manual_seed(seed)  # the same masks for both paths
    out, state = layer(x, hx, lengths=lengths)
    state = [state] if isinstance(state, Tensor) else list(state)
    g = torch.Generator().manual_seed(5)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in [out, *state])
    leaves = [x, *([hx] if isinstance(hx, Tensor) else list(hx or [])), *layer.parameters()]
    return [out, *state, *torch.autograd.grad(loss, leaves)]


@pytest.mark.parametrize("name", FUSED_FAMILIES)
@pytest.mark.parametrize("seed", range(3))
def test_fused_matches_readable_with_the_same_masks(name, seed, monkeypatch):
    rng = random.Random(seed)
    kw = dict(
        num_layers=rng.randint(1, 2),
        bidirectional=rng.random() < 0.6,
        recurrent_dropout=[0.3, 0.0, 0.3][seed],
        zoneout=[0.4, 0.4, 0.0][seed],
    )
    if name in ("lstm", "fgr") and seed == 1:
        kw["proj_size"] = 2
    torch.manual_seed(seed)
    layer = make_layer(name, 3, 4, **kw).to(DT)
    B, T = 3, rng.randint(2, 7)
    x = torch.randn(T, B, 3, dtype=DT, requires_grad=True)
    lengths = torch.tensor([T, 1, rng.randint(1, T)])
    parts = [
        torch.randn(kw["num_layers"] * layer.num_directions, B, n, dtype=DT, requires_grad=True)
        for n in layer.cells[0].state_sizes
    ]
    if name == "clockwork":  # its clock: whole steps, any phase
        parts[1] = torch.randint(0, 9, parts[1].shape).to(DT).requires_grad_()
    hx = parts[0] if len(parts) == 1 else tuple(parts)
    calls = []
    for cell_type, (op, accepts) in list(dispatch._SEQUENCE_OPS.items()):
        monkeypatch.setitem(
            dispatch._SEQUENCE_OPS,
            cell_type,
            (lambda *a, op=op, **k: calls.append(k) or op(*a, **k), accepts),
        )
    fast = outputs_and_grads(layer, x, hx, lengths, seed)
    assert len(calls) == kw["num_layers"] * layer.num_directions  # every layer fused ...
    assert all(("recurrent_mask" in k) == (kw["recurrent_dropout"] > 0) for k in calls)
    assert all(("zoneout" in k) == (kw["zoneout"] > 0) for k in calls)  # ... with its masks
    with kernels.disabled():
        slow = outputs_and_grads(layer, x, hx, lengths, seed)
    for k, (a, b) in enumerate(zip(fast, slow)):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"result {k}: {m}")
    plain = make_layer(name, 3, 4, **{**kw, "recurrent_dropout": 0.0, "zoneout": 0.0}).to(DT)
    plain.load_state_dict(layer.state_dict())
    assert (plain(x, hx, lengths=lengths)[0] - fast[0]).abs().max() > 1e-6  # masks did act


@pytest.mark.parametrize(
    "name", ["lstm", "peephole", "gru", "gru-v3", "rnn", "clockwork", "ln-lstm", "ln-gru"]
)
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_op_matches_run_given_masks(name, reverse):
    """The kernels and the reference, handed the same masks from a seeded generator."""
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    cell = make_layer(name, 3, 4).to(DT).cells[0]
    T, B = 5, 3
    x = torch.randn(T, B, 3, dtype=DT, generator=g)
    state = tuple(torch.randn(B, n, dtype=DT, generator=g) for n in cell.state_sizes)
    if name == "clockwork":  # rows at three phases of the clock
        state = (state[0], torch.tensor([[0.0], [1.0], [3.0]], dtype=DT))
    lengths = torch.tensor([5, 2, 4])
    mask = torch.bernoulli(torch.full((B, 4), 0.6, dtype=DT), generator=g) / 0.6
    keep = tuple(
        torch.bernoulli(torch.full((T, B, n), 0.3, dtype=DT), generator=g)
        for n in cell.state_sizes[: cell.zoned_state_parts]
    )
    op = kernels.sequence_op(cell, x)
    assert op is not None
    out, final = op(cell, x, state, lengths, reverse, recurrent_mask=mask, zoneout=keep)
    ref, ref_final, _ = run(
        cell, x, state, lengths, reverse=reverse, recurrent_mask=mask, zoneout=keep
    )
    torch.testing.assert_close(out, ref, **TOL)
    for a, b in zip(final, ref_final):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize(
    "name", ["lstm", "peephole", "gru", "gru-v3", "rnn", "clockwork", "ln-lstm", "ln-gru"]
)
@pytest.mark.parametrize("path", ["fused", "readable"])
def test_gradcheck_with_masks(name, path):
    torch.manual_seed(0)
    layer = make_layer(name, 2, 3, bidirectional=True, recurrent_dropout=0.3, zoneout=0.3).to(DT)
    x = torch.randn(4, 2, 2, dtype=DT, requires_grad=True)
    params = dict(layer.named_parameters())

    def f(x, *w):
        torch.manual_seed(1)  # the same masks at every evaluation
        return functional_call(
            layer, dict(zip(params, w)), (x,), {"lengths": torch.tensor([4, 2])}
        )[0]

    with kernels.disabled() if path == "readable" else nullcontext():
        assert gradcheck(f, (x, *params.values()))


def test_standard_lstm_leaves_torch_kernel_only_while_regularised(monkeypatch):
    calls = []
    original = lstmlab.nn.layers.standard._VF.lstm
    monkeypatch.setattr(
        lstmlab.nn.layers.standard._VF, "lstm", lambda *a: calls.append(1) or original(*a)
    )
    x = torch.randn(5, 2, 3)
    LSTM(3, 4, recurrent_dropout=0.3)(x)  # training: fused op
    LSTM(3, 4, zoneout=0.3).eval()(x)  # E[zoneout]: fused op
    assert calls == []
    LSTM(3, 4, recurrent_dropout=0.3).eval()(x)  # nothing to do: torch
    assert calls == [1]


@pytest.mark.parametrize(
    "cls,kw",
    [
        (LSTM, {}),
        (LSTM, {"peephole": True}),
        (GRU, {}),
        (RNN, {}),
        (LSTM, {"layer_norm": True}),
        (GRU, {"layer_norm": True}),
    ],
)
def test_zero_probabilities_are_the_plain_layer(cls, kw):
    torch.manual_seed(4)
    plain = cls(3, 4, 2, **kw)
    zero = cls(3, 4, 2, recurrent_dropout=0.0, zoneout=0.0, **kw)
    zero.load_state_dict(plain.state_dict())
    x = torch.randn(5, 2, 3)
    torch.manual_seed(0)
    a = plain(x)
    torch.manual_seed(0)
    b = zero(x)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def layer_normed(v: Tensor, gain: Tensor) -> Tensor:
    """Ba et al. 2016: (v - mean) / sqrt(var + 1e-5), times a gain, over each row."""
    mu = v.mean(-1, keepdim=True)
    return gain * (v - mu) / torch.sqrt(((v - mu) ** 2).mean(-1, keepdim=True) + 1e-5)


@pytest.mark.parametrize("path", ["fused", "readable"])
def test_layer_norm_gru_keeps_the_carry_whole(drawn, path):
    """With LN too, Gal's mask reaches W_hh only: h_t = (1 - z) n + z h_{t-1}, h undropped."""
    torch.manual_seed(5)
    layer = GRU(3, 4, layer_norm=True, recurrent_dropout=0.5, dtype=DT)
    scramble(layer, 5)
    x = torch.randn(6, 2, 3, dtype=DT)
    with kernels.disabled() if path == "readable" else nullcontext():
        out, _ = layer(x)
    (m,) = drawn["recurrent"]
    p, h = weights(layer), torch.zeros(2, 4, dtype=DT)
    for t in range(6):
        xr, xz, xn = (
            layer_normed(x[t] @ p["weight_ih"].T, p["ln_ih_weight"]) + p["bias_ih"]
        ).chunk(3, -1)
        hr, hz, hn = (
            layer_normed((h * m) @ p["weight_hh"].T, p["ln_hh_weight"]) + p["bias_hh"]
        ).chunk(3, -1)
        r, z = sigma(xr + hr), sigma(xz + hz)
        h = (1 - z) * tanh(xn + r * hn) + z * h
        torch.testing.assert_close(out[t], h, **TOL)


@pytest.mark.parametrize("path", ["fused", "readable"])
def test_layer_norm_lstm_with_both_regularisers(drawn, path):
    """The LN-LSTM (kernel and readable loop) takes both: Gal's mask inside LN(W_hh (h ⊙ m)),
    then zoneout of the step's own h_t and c_t."""
    torch.manual_seed(6)
    layer = LSTM(3, 4, layer_norm=True, recurrent_dropout=0.5, zoneout=0.5, dtype=DT)
    scramble(layer, 6)
    x = torch.randn(6, 2, 3, dtype=DT)
    with kernels.disabled() if path == "readable" else nullcontext():
        out, _ = layer(x)
    (m,), ((k_h, k_c),) = drawn["recurrent"], drawn["zoneout"]
    p = weights(layer)
    h, c = torch.zeros(2, 4, dtype=DT), torch.zeros(2, 4, dtype=DT)
    for t in range(6):
        a = (
            layer_normed(x[t] @ p["weight_ih"].T, p["ln_ih_weight"])
            + p["bias_ih"]
            + layer_normed((h * m) @ p["weight_hh"].T, p["ln_hh_weight"])
            + p["bias_hh"]
        )
        i, f, g, o = a.chunk(4, -1)
        c_new = sigma(f) * c + sigma(i) * tanh(g)
        h_new = sigma(o) * tanh(layer_normed(c_new, p["ln_c_weight"]) + p["ln_c_bias"])
        h, c = k_h[t] * h + (1 - k_h[t]) * h_new, k_c[t] * c + (1 - k_c[t]) * c_new
        torch.testing.assert_close(out[t], h, **TOL)


@pytest.mark.parametrize("path", ["fused", "readable"])
def test_depth_gated_stack_hands_the_zoned_cell_state_up(drawn, path):
    """A depth-gated layer below the top emits [h_t, c_t]; with zoneout both are the zoned ones
    (the depth gate above reads the c_t the layer keeps), with Gal's mask on h where W_hh meets
    it. Oracle: each cell's own step, zoned by hand, layer by layer."""
    torch.manual_seed(8)
    layer = DepthGatedLSTM(3, 4, num_layers=2, recurrent_dropout=0.5, zoneout=0.5, dtype=DT)
    x = torch.randn(5, 2, 3, dtype=DT)
    with kernels.disabled() if path == "readable" else nullcontext():
        out, (h_n, c_n) = layer(x)
    (m0, m1), ((kh0, kc0), (kh1, kc1)) = drawn["recurrent"], drawn["zoneout"]
    below = x
    for cell, m, kh, kc in zip(layer.cells, (m0, m1), (kh0, kh1), (kc0, kc1)):
        h, c, ys = torch.zeros(2, 4, dtype=DT), torch.zeros(2, 4, dtype=DT), []
        for t in range(5):
            _, (h_new, c_new), _ = cell.step(below[t], (h * m, c))
            h, c = kh[t] * h + (1 - kh[t]) * h_new, kc[t] * c + (1 - kc[t]) * c_new
            ys.append(torch.cat([h, c], -1) if cell.emit_cell else h)
        below = torch.stack(ys)  # (T, B, 2H), then (T, B, H)
    torch.testing.assert_close(out, below, **TOL)
    torch.testing.assert_close(h_n[1], below[-1], **TOL)


def test_user_cell_stack_takes_regularisers():
    stack = Stack(
        lambda n: lstmlab.LSTMCell(n, 4, coupled=True), 3, 2, zoneout=0.2, recurrent_dropout=0.2
    )
    out, (h, c) = stack(torch.randn(5, 2, 3))
    assert out.shape == (5, 2, 4) and "zoneout=0.2" in repr(stack)


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, True, "0.1", float("nan")])
def test_bad_probabilities_raise(option, value):
    for build in (
        lambda: LSTM(3, 4, **{option: value}),
        lambda: GRU(3, 4, **{option: value}),
        lambda: RNN(3, 4, **{option: value}),
        lambda: Stack(lambda n: lstmlab.GRUCell(n, 4), 3, **{option: value}),
    ):
        with pytest.raises(ValueError, match=rf"{option} must be a number in \[0, 1\)"):
            build()


# ---- the options in models and training ----------------------------------------------------


def test_training_config_reaches_the_layer():
    import argparse

    from lstmlab.cli.main import _add_train_settings, train_config
    from lstmlab.models.build import build_model
    from lstmlab.nn.cells.layer_norm import LayerNormGRUCell
    from lstmlab.train import make_job

    parser = argparse.ArgumentParser()
    _add_train_settings(parser)
    cfg = train_config(
        parser.parse_args(
            [
                "--task",
                "adding",
                "--length",
                "5",
                "--cell",
                "gru",
                "--hidden-size",
                "4",
                "--batch-size",
                "2",
                "--eval-batches",
                "1",
                "--recurrent-dropout",
                "0.25",
                "--zoneout",
                "0.1",
                "--layer-norm",
            ]
        )
    )
    model = make_job(cfg).model
    assert (model.rnn.recurrent_dropout, model.rnn.zoneout) == (0.25, 0.1)
    assert all(type(c) is LayerNormGRUCell for c in model.rnn.cells)
    again = build_model(model.config())  # what a checkpoint stores
    assert type(again.rnn.cells[0]) is LayerNormGRUCell and again.rnn.zoneout == 0.1
    plain = make_job(train_config(parser.parse_args(["--task", "adding", "--length", "5"]))).model
    assert not {"recurrent_dropout", "zoneout", "layer_norm"} & plain.config().keys()


def test_layer_norm_with_other_cells_is_refused():
    from lstmlab.train import TrainConfig

    with pytest.raises(ValueError, match="layer_norm"):
        TrainConfig(cell="rnn", layer_norm=True)


def test_forget_bias_reaches_layer_norm_lstm():
    from lstmlab.models import SequenceModel
    from lstmlab.models.build import init_forget_bias

    model = SequenceModel("lstm", 3, 2, hidden_size=4, num_layers=2, layer_norm=True)
    assert init_forget_bias(model, 1.0) == 2
    assert torch.equal(model.rnn.bias_ih_l1[4:8], torch.ones(4))
    assert torch.equal(model.rnn.bias_hh_l1[4:8], torch.zeros(4))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_language_model_step_matches_forward_with_zoneout(cell):
    """Generation steps one token at a time through the cells; in evaluation it must apply the
    zoneout expectation exactly as the layer does over the sequence."""
    from lstmlab.models import LanguageModel

    torch.manual_seed(8)
    model = (
        LanguageModel(
            11, cell, embed_size=4, hidden_size=5, num_layers=2, zoneout=0.3, recurrent_dropout=0.2
        )
        .to(DT)
        .eval()
    )
    tokens = torch.randint(11, (2, 6))
    logits, state = model(tokens)
    step_state = None
    for t in range(6):
        step_logits, step_state = model.step(tokens[:, t], step_state)
        torch.testing.assert_close(step_logits, logits[:, t], **TOL)
