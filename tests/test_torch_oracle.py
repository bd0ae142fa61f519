"""The drop-in layers and cells against torch.nn with copied weights: outputs, states, gradients."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmlab


@pytest.fixture(params=["fused", "readable"], autouse=True)
def path(request):
    """Every oracle test runs twice: through the fast paths and through the readable loop."""
    if request.param == "readable":
        with lstmlab.kernels.disabled():
            yield request.param
    else:
        yield request.param


KINDS = {
    "lstm": (torch.nn.LSTM, lstmlab.LSTM, {}),
    "gru": (torch.nn.GRU, lstmlab.GRU, {}),
    "rnn_tanh": (torch.nn.RNN, lstmlab.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (torch.nn.RNN, lstmlab.RNN, {"nonlinearity": "relu"}),
}


def random_config(kind: str, seed: int) -> dict:
    rng = random.Random(seed)
    cfg = dict(
        input_size=rng.randint(1, 6),
        hidden_size=rng.randint(2, 7),
        num_layers=rng.randint(1, 3),
        bias=rng.random() < 0.8,
        batch_first=rng.random() < 0.5,
        bidirectional=rng.random() < 0.5,
        **KINDS[kind][2],
    )
    if kind == "lstm" and rng.random() < 0.4:
        cfg["proj_size"] = rng.randint(1, cfg["hidden_size"] - 1)
    return cfg


def twins(kind: str, cfg: dict):
    torch_cls, ours_cls, _ = KINDS[kind]
    ref = torch_cls(**cfg)
    ours = ours_cls(**cfg)
    assert [(n, p.shape) for n, p in ref.named_parameters()] == [
        (n, p.shape) for n, p in ours.named_parameters()
    ]
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def flat(state) -> list[torch.Tensor]:
    return [state] if isinstance(state, torch.Tensor) else list(state)


def state_shapes(kind: str, cfg: dict, batch: int | None) -> list[tuple[int, ...]]:
    lead = cfg["num_layers"] * (2 if cfg["bidirectional"] else 1)
    b = () if batch is None else (batch,)
    h = cfg.get("proj_size", 0) or cfg["hidden_size"]
    shapes = [(lead, *b, h)]
    if kind == "lstm":
        shapes.append((lead, *b, cfg["hidden_size"]))
    return shapes


def compare(ref, ours, run_ref, run_ours, leaves: list[torch.Tensor]):
    """Run both, check outputs and states, then backprop one random functional and compare grads."""
    out_r, st_r = run_ref(ref)
    out_o, st_o = run_ours(ours)
    outs_r, outs_o = [out_r, *flat(st_r)], [out_o, *flat(st_o)]
    assert len(outs_r) == len(outs_o)
    for a, b in zip(outs_r, outs_o):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    probes = [torch.randn_like(a) for a in outs_r]
    grads_r = torch.autograd.grad(
        sum((a * p).sum() for a, p in zip(outs_r, probes)), [*ref.parameters(), *leaves]
    )
    leaves_o = [leaf for leaf in leaves]
    grads_o = torch.autograd.grad(
        sum((a * p).sum() for a, p in zip(outs_o, probes)), [*ours.parameters(), *leaves_o]
    )
    for (name, _), gr, go in zip(
        [*ref.named_parameters(), *[("leaf", None)] * len(leaves)], grads_r, grads_o
    ):
        torch.testing.assert_close(go, gr, atol=1e-5, rtol=0, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("seed", range(8))
def test_batched_with_and_without_initial_state(kind, seed):
    torch.manual_seed(seed)
    cfg = random_config(kind, seed)
    ref, ours = twins(kind, cfg)
    T, B = random.Random(seed).randint(1, 6), random.Random(seed + 1).randint(1, 4)
    x = (
        torch.randn(B, T, cfg["input_size"])
        if cfg["batch_first"]
        else torch.randn(T, B, cfg["input_size"])
    )
    x.requires_grad_(True)
    hx = [torch.randn(s, requires_grad=True) for s in state_shapes(kind, cfg, B)]
    h_arg = hx[0] if len(hx) == 1 else tuple(hx)
    if seed % 2:
        compare(ref, ours, lambda m: m(x, h_arg), lambda m: m(x, h_arg), [x, *hx])
    else:
        compare(ref, ours, lambda m: m(x), lambda m: m(x), [x])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("seed", range(4))
def test_unbatched(kind, seed):
    torch.manual_seed(seed)
    cfg = random_config(kind, 100 + seed)
    ref, ours = twins(kind, cfg)
    x = torch.randn(5, cfg["input_size"], requires_grad=True)
    hx = [torch.randn(s, requires_grad=True) for s in state_shapes(kind, cfg, None)]
    h_arg = hx[0] if len(hx) == 1 else tuple(hx)
    compare(ref, ours, lambda m: m(x, h_arg), lambda m: m(x, h_arg), [x, *hx])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_variable_lengths(kind, seed, enforce_sorted):
    torch.manual_seed(seed)
    cfg = random_config(kind, 200 + seed)
    cfg["batch_first"] = False
    ref, ours = twins(kind, cfg)
    B, T = 5, 7
    lengths = torch.randint(1, T + 1, (B,))
    lengths[0] = T
    if seed == 5:
        lengths[:] = T  # packed, yet nothing padded
    if enforce_sorted:
        lengths = lengths.sort(descending=True).values
    x = torch.randn(T, B, cfg["input_size"], requires_grad=True)
    hx = [torch.randn(s, requires_grad=True) for s in state_shapes(kind, cfg, B)]
    h_arg = hx[0] if len(hx) == 1 else tuple(hx)

    def go(m):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
        out, st = m(packed, h_arg)
        assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
        return pad_packed_sequence(out)[0], st

    compare(ref, ours, go, go, [x, *hx])


@pytest.mark.parametrize("kind", list(KINDS))
def test_lengths_argument_matches_packing(kind):
    """Our `lengths=` shortcut gives what torch gives on the packed batch."""
    torch.manual_seed(3)
    cfg = dict(random_config(kind, 7), batch_first=True, bidirectional=True)
    ref, ours = twins(kind, cfg)
    lengths = torch.tensor([2, 6, 1, 4])
    x = torch.randn(4, 6, cfg["input_size"])
    out_r, st_r = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out_r = pad_packed_sequence(out_r, batch_first=True, total_length=6)[0]
    out_o, st_o = ours(x, lengths=lengths)
    torch.testing.assert_close(out_o, out_r, atol=1e-5, rtol=0)
    for a, b in zip(flat(st_r), flat(st_o)):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


CELLS = {
    "lstm": (torch.nn.LSTMCell, lstmlab.LSTMCell, {}),
    "gru": (torch.nn.GRUCell, lstmlab.GRUCell, {}),
    "rnn_tanh": (torch.nn.RNNCell, lstmlab.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (torch.nn.RNNCell, lstmlab.RNNCell, {"nonlinearity": "relu"}),
}


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("given_state", [True, False])
def test_cells_are_drop_in(kind, bias, batched, given_state):
    torch.manual_seed(0)
    torch_cls, ours_cls, kw = CELLS[kind]
    ref, ours = torch_cls(4, 6, bias=bias, **kw), ours_cls(4, 6, bias=bias, **kw)
    assert [n for n, _ in ref.named_parameters()] == [n for n, _ in ours.named_parameters()]
    ours.load_state_dict(ref.state_dict())
    b = (3,) if batched else ()
    x = torch.randn(*b, 4, requires_grad=True)
    hx = [torch.randn(*b, 6, requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    h_arg = (hx[0] if len(hx) == 1 else tuple(hx)) if given_state else None
    out_r, out_o = flat(ref(x, h_arg)), flat(ours(x, h_arg))
    for a, o in zip(out_r, out_o):
        torch.testing.assert_close(o, a, atol=1e-6, rtol=0)
    leaves = [*ref.parameters(), x, *(hx if given_state else [])]
    probes = [torch.randn_like(a) for a in out_r]
    g_r = torch.autograd.grad(sum((a * p).sum() for a, p in zip(out_r, probes)), leaves)
    leaves = [*ours.parameters(), x, *(hx if given_state else [])]
    g_o = torch.autograd.grad(sum((a * p).sum() for a, p in zip(out_o, probes)), leaves)
    for a, o in zip(g_r, g_o):
        torch.testing.assert_close(o, a, atol=1e-6, rtol=0)


def test_state_dict_round_trip_both_ways():
    ours = lstmlab.LSTM(3, 5, 2, bidirectional=True, proj_size=2)
    ref = torch.nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-5, rtol=0)


def test_parameters_follow_to_and_assign_loads():
    """Cells see the stack's tensors after .double() and load_state_dict(assign=True)."""
    ours = lstmlab.GRU(3, 4).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    ref = torch.nn.GRU(3, 4).double()
    ours.load_state_dict(ref.state_dict(), assign=True)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    assert ours.cells[0].weight_ih is ours.weight_ih_l0


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    ours = lstmlab.LSTM(3, 8, 2, dropout=0.5)
    x = torch.randn(6, 2, 3)
    ours.eval()
    a, b = ours(x)[0], ours(x)[0]
    torch.testing.assert_close(a, b)
    ours.train()
    c, d = ours(x)[0], ours(x)[0]
    assert not torch.allclose(c, d)


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="dropout"):
        lstmlab.LSTM(3, 4, 1, dropout=0.3)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("given_state", [False, True])
def test_empty_batch_matches_torch(kind, batch_first, given_state):
    """A batch of 0 sequences: empty outputs and states of torch's shapes, and a backward that
    gives torch's (empty or zero) gradients."""
    torch.manual_seed(0)
    cfg = dict(random_config(kind, 1), batch_first=batch_first, num_layers=2, bidirectional=True)
    ref, ours = twins(kind, cfg)
    x = torch.randn(*((0, 5) if batch_first else (5, 0)), cfg["input_size"], requires_grad=True)
    states = [torch.zeros(s, requires_grad=True) for s in state_shapes(kind, cfg, 0)]
    hx = (tuple(states) if kind == "lstm" else states[0]) if given_state else None
    compare(
        ref, ours, lambda m: m(x, hx), lambda m: m(x, hx), [x, *(states if given_state else [])]
    )


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("sizes", [(4, 0, 3), (0, 6, 3), (4, 6, 0)], ids=["H0", "I0", "B0"])
def test_cells_with_empty_sizes_match_torch(kind, sizes):
    """torch's cells take hidden_size 0, input_size 0 and an empty batch."""
    torch.manual_seed(0)
    input_size, hidden_size, batch = sizes
    torch_cls, ours_cls, kw = CELLS[kind]
    ref, ours = torch_cls(input_size, hidden_size, **kw), ours_cls(input_size, hidden_size, **kw)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(batch, input_size, requires_grad=True)
    out_r, out_o = flat(ref(x)), flat(ours(x))
    assert [o.shape for o in out_o] == [a.shape for a in out_r]
    for a, o in zip(out_r, out_o):
        torch.testing.assert_close(o, a)
    g_r = torch.autograd.grad(sum(a.sum() for a in out_r), [x, *ref.parameters()])
    g_o = torch.autograd.grad(sum(o.sum() for o in out_o), [x, *ours.parameters()])
    for a, o in zip(g_r, g_o):
        torch.testing.assert_close(o, a)


REPR_CONFIGS = [
    pytest.param(kind, cfg, id=f"{kind}-{','.join(cfg) or 'default'}")
    for kind in ("lstm", "gru", "rnn_tanh")
    for cfg in (
        dict(),
        dict(num_layers=2, batch_first=True),
        dict(bias=False, dropout=0.5, num_layers=3, bidirectional=True),
        *([dict(proj_size=3)] if kind == "lstm" else []),
        *([dict(nonlinearity="relu", num_layers=2)] if kind == "rnn_tanh" else []),
    )
]


@pytest.mark.parametrize("kind, cfg", REPR_CONFIGS)
def test_repr_and_flat_weights_as_torch(kind, cfg):
    """The layers print as torch's, and list their parameters in torch's `_flat_weights` order
    (read by torch.nn.utils, torch.ao and the ONNX exporter)."""
    torch_cls, ours_cls, _ = KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropout with one layer
        ref, ours = torch_cls(10, 20, **cfg), ours_cls(10, 20, **cfg)
    assert repr(ours) == repr(ref)
    assert ours._flat_weights_names == ref._flat_weights_names
    assert isinstance(ours._flat_weights, list)
    assert [w.shape for w in ours._flat_weights] == [w.shape for w in ref._flat_weights]
    assert [[w.shape for w in ws] for ws in ours.all_weights] == [
        [w.shape for w in ws] for ws in ref.all_weights
    ]


def test_repr_shows_lstmlabs_own_switches_when_set():
    assert repr(lstmlab.LSTM(10, 20, peephole=True)) == "LSTM(10, 20, peephole=True)"
    assert repr(lstmlab.GRU(10, 20, 2, reset_after=False, zoneout=0.1)) == (
        "GRU(10, 20, num_layers=2, reset_after=False, zoneout=0.1)"
    )
    assert repr(lstmlab.LSTM(10, 20, layer_norm=True, recurrent_dropout=0.25)) == (
        "LSTM(10, 20, layer_norm=True, recurrent_dropout=0.25)"
    )


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("name", ["weight_hh_l0", "weight_ih_l1_reverse"])
def test_weight_norm_works_as_on_torch(kind, name):
    """torch.nn.utils.weight_norm replaces a parameter by a computed tensor: the layer must use
    that tensor (through `_flat_weights` and the cells), on every path, as torch's does."""
    torch.manual_seed(0)
    cfg = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    ref, ours = twins(kind, dict(cfg, **KINDS[kind][2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # weight_norm is deprecated in torch
        torch.nn.utils.weight_norm(ref, name)
        torch.nn.utils.weight_norm(ours, name)
    with torch.no_grad():  # a norm that differs from the weight's, so a stale weight shows
        getattr(ref, name + "_g").mul_(1.5)
        getattr(ours, name + "_g").mul_(1.5)
    x = torch.randn(5, 2, 3)
    compare(ref, ours, lambda m: m(x), lambda m: m(x), [])


@pytest.mark.parametrize("ours_cls", [lstmlab.LSTM, lstmlab.GRU, lstmlab.RNN])
@pytest.mark.parametrize(
    "kwargs", [dict(bias=0), dict(bias="True"), dict(batch_first="False"), dict(batch_first=1)]
)
def test_switches_of_the_wrong_type_raise_type_error_as_torch(ours_cls, kwargs):
    torch_cls = getattr(torch.nn, ours_cls.__name__)
    with pytest.raises(TypeError):
        torch_cls(3, 5, **kwargs)
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        ours_cls(3, 5, **kwargs)
