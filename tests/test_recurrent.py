"""The readable time loop (`lstmlab.Recurrent`, `lstmlab.run`) and `lstmlab.Stack`, by property.

The oracle here is a plain loop written in this file: one sequence at a time, over its own
length, calling `cell.step` -- no masking, no batching. Everything the runner adds (batching,
lengths in any order, padding, reversal, batch-first layout, chunking) must not change the maths.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import lstmlab

SETTINGS = settings(max_examples=30, deadline=None)
TIGHT = dict(rtol=1e-10, atol=1e-12)  # float64: only summation order may differ


# --------------------------------------------------------------------------------------------
# A user-defined cell: the minimal gated unit (Zhou et al. 2016), as in the Cell docstring.
# --------------------------------------------------------------------------------------------

from user_cells import MGU  # noqa: E402  (the shared user cell)

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

LSTM_SWITCHES = (
    "peephole",
    "coupled",
    "input_gate",
    "forget_gate",
    "output_gate",
    "input_activation",
    "output_activation",
    "gate_recurrence",
)


@st.composite
def lstm_variants(draw, hidden_size: int) -> dict:
    """A valid combination of LSTMCell switches (invalid ones are repaired, not rejected)."""
    kw = {k: draw(st.booleans()) for k in LSTM_SWITCHES}
    if kw["coupled"]:
        kw["input_gate"] = kw["forget_gate"] = True
    if not (kw["input_gate"] or kw["forget_gate"] or kw["output_gate"]):
        kw["peephole"] = kw["gate_recurrence"] = False
    kw["proj_size"] = draw(st.integers(0, hidden_size - 1)) if hidden_size > 1 else 0
    return kw


@st.composite
def cells(draw, input_size: int, hidden_size: int, kinds=("lstm", "gru", "rnn", "mgu")):
    """A float64 cell of a random kind (LSTM with random switches, GRU, RNN, the test's MGU)."""
    kind = draw(st.sampled_from(kinds))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    if kind == "lstm":
        cell = lstmlab.LSTMCell(
            input_size,
            hidden_size,
            draw(st.booleans()),
            dtype=torch.float64,
            **draw(lstm_variants(hidden_size)),
        )
    elif kind == "gru":
        cell = lstmlab.GRUCell(
            input_size,
            hidden_size,
            draw(st.booleans()),
            dtype=torch.float64,
            reset_after=draw(st.booleans()),
        )
    elif kind == "rnn":
        cell = lstmlab.RNNCell(
            input_size,
            hidden_size,
            draw(st.booleans()),
            draw(st.sampled_from(["tanh", "relu"])),
            dtype=torch.float64,
        )
    else:
        cell = MGU(input_size, hidden_size).double()
    # Larger weights than torch's init, so that the nonlinearities are exercised off their
    # linear region (a mix-up of steps or sequences then shows up clearly).
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(draw(st.sampled_from([1.0, 3.0])))
    return cell


@st.composite
def problems(draw, kinds=("lstm", "gru", "rnn", "mgu")):
    """A cell, a padded time-major batch, lengths in any order and an initial state (or None)."""
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    I, H = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    cell = draw(cells(I, H, kinds))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64) * 2  # (T, B, I)
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    state = None
    if draw(st.booleans()):
        state = tuple(
            torch.randn(B, n, generator=gen, dtype=torch.float64) for n in cell.state_sizes
        )
    return cell, x, lengths, state


# --------------------------------------------------------------------------------------------
# The oracle: one sequence at a time, no padding, no masks
# --------------------------------------------------------------------------------------------


def loop_reference(cell: lstmlab.Cell, x: Tensor, lengths: list[int], state, reverse: bool):
    """x (T, B, I) time-major; returns outputs (T, B, O), final state parts (B, s), gates (T, B, H).

    Steps past a sequence's length are zeros in the outputs and the gates, as documented.
    """
    T, B = x.shape[:2]
    if state is None:  # documented: None means zeros
        state = tuple(torch.zeros(B, n, dtype=x.dtype) for n in cell.state_sizes)
    outputs = torch.zeros(T, B, cell.output_size, dtype=x.dtype)
    gates: dict[str, Tensor] = {}
    finals = []
    with torch.no_grad():
        for b in range(B):
            s = tuple(part[b : b + 1] for part in state)  # (1, size) each
            steps = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
            for t in steps:
                h, s, g = cell.step(x[t, b : b + 1], s)
                outputs[t, b] = h[0]
                for name, value in g.items():
                    gates.setdefault(name, torch.zeros(T, B, value.shape[-1], dtype=x.dtype))
                    gates[name][t, b] = value[0]
            finals.append(s)
    final = tuple(torch.cat(parts) for parts in zip(*finals))
    return outputs, final, gates


def as_lengths(lengths: list[int], form: str):
    return torch.tensor(lengths) if form == "tensor" else lengths


# --------------------------------------------------------------------------------------------
# 1. The runner is the plain loop
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(
    problem=problems(),
    reverse=st.booleans(),
    batch_first=st.booleans(),
    lengths_form=st.sampled_from(["list", "tensor", "none"]),
)
def test_recurrent_matches_step_by_step_loop(problem, reverse, batch_first, lengths_form):
    cell, x, lengths, state = problem
    T = x.shape[0]
    if lengths_form == "none":
        lengths = [T] * x.shape[1]
    want_out, want_state, want_gates = loop_reference(cell, x, lengths, state, reverse)

    rnn = lstmlab.Recurrent(cell, batch_first=batch_first, reverse=reverse)
    x_in = x.transpose(0, 1) if batch_first else x
    given_lengths = None if lengths_form == "none" else as_lengths(lengths, lengths_form)
    with torch.no_grad():
        out, final, gates = rnn(x_in, state, given_lengths, return_gates=True)
    if batch_first:
        out = out.transpose(0, 1)
        gates = {k: g.transpose(0, 1) for k, g in gates.items()}

    torch.testing.assert_close(out, want_out, **TIGHT)
    assert isinstance(final, tuple) and len(final) == len(cell.state_sizes)
    for got, want in zip(final, want_state):
        torch.testing.assert_close(got, want, **TIGHT)
    assert set(gates) == set(want_gates)
    for name in gates:
        torch.testing.assert_close(gates[name], want_gates[name], **TIGHT, msg=name)


@SETTINGS
@given(problem=problems(), reverse=st.booleans())
def test_run_function_matches_step_by_step_loop(problem, reverse):
    """`lstmlab.run` itself (time-major, a state tuple, a long lengths tensor)."""
    cell, x, lengths, state = problem
    if state is None:
        state = cell.initial_state(x.shape[1], dtype=x.dtype)
    want_out, want_state, want_gates = loop_reference(cell, x, lengths, state, reverse)
    with torch.no_grad():
        out, final, gates = lstmlab.run(
            cell, x, state, torch.tensor(lengths), reverse=reverse, keep_gates=True
        )
        _, _, no_gates = lstmlab.run(cell, x, state, torch.tensor(lengths), reverse=reverse)
    torch.testing.assert_close(out, want_out, **TIGHT)
    for got, want in zip(final, want_state, strict=True):
        torch.testing.assert_close(got, want, **TIGHT)
    assert set(gates) == set(want_gates) and no_gates == {}
    for name in gates:
        torch.testing.assert_close(gates[name], want_gates[name], **TIGHT, msg=name)


@SETTINGS
@given(problem=problems(), reverse=st.booleans())
def test_unbatched_is_a_batch_of_one(problem, reverse):
    cell, x, _, state = problem
    rnn = lstmlab.Recurrent(cell, reverse=reverse)
    s0 = None if state is None else tuple(p[0] for p in state)
    with torch.no_grad():
        out, final, gates = rnn(x[:, 0], s0, return_gates=True)  # (T, I)
        out_b, final_b, gates_b = rnn(
            x[:, :1], None if state is None else tuple(p[:1] for p in state), return_gates=True
        )
    torch.testing.assert_close(out, out_b[:, 0], **TIGHT)
    for a, b in zip(final, final_b, strict=True):
        assert a.shape == b.shape[1:]
        torch.testing.assert_close(a, b[0], **TIGHT)
    for name in gates_b:
        torch.testing.assert_close(gates[name], gates_b[name][:, 0], **TIGHT)


# --------------------------------------------------------------------------------------------
# 2. Padding never matters
# --------------------------------------------------------------------------------------------


def with_garbage(x: Tensor, lengths: list[int], scale: float, seed: int, batch_dim: int = 1):
    """A copy of ``x`` whose steps past each length hold random values of size ``scale``."""
    gen = torch.Generator().manual_seed(seed)
    y = x.clone()
    for b, n in enumerate(lengths):
        index = (slice(n, None), b) if batch_dim == 1 else (b, slice(n, None))
        y[index] = torch.randn(y[index].shape, generator=gen, dtype=y.dtype) * scale
    return y


def valid_mask(lengths: list[int], steps: int) -> Tensor:
    return torch.arange(steps)[:, None] < torch.tensor(lengths)[None, :]  # (T, B)


GARBAGE = st.sampled_from([1.0, 1e3, 1e30, 1e150, 1e300])


@SETTINGS
@given(problem=problems(), reverse=st.booleans(), scale=GARBAGE, seed=st.integers(0, 2**16))
def test_padded_input_never_reaches_outputs_or_state(problem, reverse, scale, seed):
    cell, x, lengths, state = problem
    rnn = lstmlab.Recurrent(cell, reverse=reverse)
    garbage = with_garbage(x, lengths, scale, seed)
    with torch.no_grad():
        out_a, st_a, g_a = rnn(x, state, lengths, return_gates=True)
        out_b, st_b, g_b = rnn(garbage, state, lengths, return_gates=True)
    valid = valid_mask(lengths, x.shape[0])
    torch.testing.assert_close(out_b[valid], out_a[valid], **TIGHT)
    for a, b in zip(st_a, st_b, strict=True):
        torch.testing.assert_close(b, a, **TIGHT)
    # Padded steps: exactly zero, in the outputs and in every gate.
    assert torch.equal(out_b[~valid], torch.zeros_like(out_b[~valid]))
    for name, g in g_b.items():
        assert torch.equal(g[~valid], torch.zeros_like(g[~valid])), name
        torch.testing.assert_close(g[valid], g_a[name][valid], **TIGHT)


def make_layer(kind: str, I: int, H: int, data, **kw):
    """A float64 drop-in layer of ``kind``, with random variant switches."""
    kw = dict(kw, dtype=torch.float64)
    if kind == "lstm":
        return lstmlab.LSTM(I, H, **kw, **data.draw(lstm_variants(H), label="variant"))
    if kind == "gru":
        return lstmlab.GRU(I, H, **kw, reset_after=data.draw(st.booleans(), label="reset_after"))
    return lstmlab.RNN(I, H, nonlinearity=data.draw(st.sampled_from(["tanh", "relu"])), **kw)


def parts_of(state) -> list[Tensor]:
    return [state] if isinstance(state, Tensor) else list(state)


@SETTINGS
@given(
    T=st.integers(1, 6),
    B=st.integers(1, 4),
    I=st.integers(1, 4),
    H=st.integers(2, 5),
    kind=st.sampled_from(["lstm", "lstm", "gru", "rnn"]),
    data=st.data(),
    scale=GARBAGE,
    seed=st.integers(0, 2**16),
)
def test_padding_never_matters_in_bidirectional_two_layer_layers(
    T, B, I, H, kind, data, scale, seed
):
    """LSTM (and GRU, RNN), 2 layers, bidirectional, ``lengths=``: with and without gates."""
    lengths = data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B), label="lengths")
    batch_first = data.draw(st.booleans(), label="batch_first")
    torch.manual_seed(seed)
    layer = make_layer(kind, I, H, data, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = (
        torch.randn(B, T, I, dtype=torch.float64)
        if batch_first
        else torch.randn(T, B, I, dtype=torch.float64)
    )
    garbage = with_garbage(x, lengths, scale, seed + 1, batch_dim=0 if batch_first else 1)
    with torch.no_grad():
        out_a, st_a = layer(x, lengths=lengths)
        out_b, st_b = layer(garbage, lengths=torch.tensor(lengths))
        out_c, st_c, g_c = layer(garbage, lengths=lengths, return_gates=True)
        _, _, g_a = layer(x, lengths=lengths, return_gates=True)
    valid = valid_mask(lengths, T)
    if batch_first:
        valid = valid.T
    assert out_a.shape[-1] == 2 * (getattr(layer, "proj_size", 0) or H)
    for out, state in ((out_b, st_b), (out_c, st_c)):
        torch.testing.assert_close(out[valid], out_a[valid], **TIGHT)
        assert torch.equal(out[~valid], torch.zeros_like(out[~valid]))
        for a, b in zip(parts_of(st_a), parts_of(state), strict=True):
            torch.testing.assert_close(b, a, **TIGHT)
    assert len(g_c) == 4  # layers x directions
    for layer_a, layer_c in zip(g_a, g_c):
        assert set(layer_a) == set(layer_c)
        for name, g in layer_c.items():
            assert torch.equal(g[~valid], torch.zeros_like(g[~valid])), name
            torch.testing.assert_close(g[valid], layer_a[name][valid], **TIGHT)


@SETTINGS
@given(
    problem=problems(),
    reverse=st.booleans(),
    sign=st.sampled_from([1.0, -1.0]),
    seed=st.integers(0, 2**16),
)
def test_padding_with_infinities_leaves_gradients_alone(problem, reverse, sign, seed):
    """Gradients are a result too: +-inf in the padding must not turn them into NaN.

    (Padding with a sentinel such as -inf is common; torch's PackedSequence never reads it.)
    """
    cell, x, lengths, state = problem
    T = x.shape[0]
    if T > 1 and min(lengths) == T:  # make sure something is padded
        lengths = [*lengths[:-1], T - 1]
    rnn = lstmlab.Recurrent(cell, reverse=reverse)
    garbage = with_garbage(x, lengths, 1.0, seed)
    garbage[~valid_mask(lengths, T)] = sign * float("inf")

    def grads(inp):
        out, final = rnn(inp, state, lengths)
        loss = out.square().sum() + sum(s.sum() for s in final)
        return torch.autograd.grad(loss, list(cell.parameters()))

    for name_p, a, b in zip([n for n, _ in cell.named_parameters()], grads(x), grads(garbage)):
        torch.testing.assert_close(b, a, **TIGHT, msg=f"grad of {name_p} with +-inf padding")


@pytest.mark.parametrize("return_gates", [False, True], ids=["default-path", "with-gates"])
@pytest.mark.parametrize("kind", ["lstm", "lstm-peephole", "gru", "rnn-relu"])
def test_layer_padding_with_infinities_leaves_gradients_alone(kind, return_gates):
    """The same through the drop-in layers (2 layers, bidirectional, ``lengths=``)."""
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, dtype=torch.float64)
    layer = {
        "lstm": lambda: lstmlab.LSTM(4, 5, **kw),
        "lstm-peephole": lambda: lstmlab.LSTM(4, 5, peephole=True, **kw),
        "gru": lambda: lstmlab.GRU(4, 5, **kw),
        "rnn-relu": lambda: lstmlab.RNN(4, 5, nonlinearity="relu", **kw),
    }[kind]()
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    lengths = [6, 2, 4]
    padded = x.clone()
    padded[2:, 1], padded[4:, 2] = float("inf"), -float("inf")

    def grads(inp):
        out, state = layer(inp, lengths=lengths, return_gates=return_gates)[:2]
        loss = out.square().sum() + sum(s.sum() for s in parts_of(state))
        return torch.autograd.grad(loss, list(layer.parameters()))

    for (name, _), a, b in zip(layer.named_parameters(), grads(x), grads(padded)):
        torch.testing.assert_close(b, a, **TIGHT, msg=f"grad of {name} with +-inf padding")


# --------------------------------------------------------------------------------------------
# 3. A padded batch is its sequences run alone, in any order of lengths
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(problem=problems(), reverse=st.booleans())
def test_batch_with_lengths_equals_each_sequence_alone(problem, reverse):
    cell, x, lengths, state = problem
    rnn = lstmlab.Recurrent(cell, reverse=reverse)
    with torch.no_grad():
        out, final = rnn(x, state, lengths)
        for b, n in enumerate(lengths):
            s_b = None if state is None else tuple(p[b] for p in state)  # unbatched state
            out_b, final_b = rnn(x[:n, b], s_b)  # (n, I), no padding
            torch.testing.assert_close(out[:n, b], out_b, **TIGHT)
            for whole, alone in zip(final, final_b, strict=True):
                torch.testing.assert_close(whole[b], alone, **TIGHT)


@SETTINGS
@given(problem=problems(), reverse=st.booleans(), enforce_sorted=st.booleans())
def test_recurrent_on_a_packed_sequence_equals_lengths(problem, reverse, enforce_sorted):
    """A PackedSequence in, a PackedSequence out, holding what ``lengths=`` gives."""
    cell, x, lengths, state = problem
    rnn = lstmlab.Recurrent(cell, reverse=reverse)
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    with torch.no_grad():
        out, final = rnn(x, state, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, torch.tensor(lengths), enforce_sorted=enforce_sorted
        )
        out_p, final_p = rnn(packed, state)
    assert isinstance(out_p, nn.utils.rnn.PackedSequence)
    padded, got = nn.utils.rnn.pad_packed_sequence(out_p, total_length=x.shape[0])
    assert got.tolist() == list(lengths)
    torch.testing.assert_close(padded, out, **TIGHT)
    for a, b in zip(final_p, final, strict=True):
        torch.testing.assert_close(a, b, **TIGHT)


@SETTINGS
@given(
    T=st.integers(1, 6),
    B=st.integers(1, 4),
    I=st.integers(1, 4),
    H=st.integers(1, 5),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    kind=st.sampled_from(["lstm", "gru", "rnn"]),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_layer_batch_with_lengths_equals_each_sequence_alone(
    T, B, I, H, layers, bidirectional, kind, data, seed
):
    lengths = data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B), label="lengths")
    torch.manual_seed(seed)
    layer = make_layer(kind, I, H, data, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        out, h_n = layer(x, lengths=lengths)
        parts = parts_of(h_n)
        for b, n in enumerate(lengths):
            out_b, h_b = layer(x[:n, b])  # unbatched, alone
            parts_b = parts_of(h_b)
            torch.testing.assert_close(out[:n, b], out_b, **TIGHT)
            assert torch.equal(out[n:, b], torch.zeros_like(out[n:, b]))
            for whole, alone in zip(parts, parts_b, strict=True):
                torch.testing.assert_close(whole[:, b], alone, **TIGHT)


# --------------------------------------------------------------------------------------------
# 4. A user's cell gets the runner, stacking, bidirectionality and gates for free
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(problem=problems(kinds=("mgu",)), reverse=st.booleans(), batch_first=st.booleans())
def test_user_cell_through_recurrent(problem, reverse, batch_first):
    cell, x, lengths, state = problem
    T, B = x.shape[:2]
    rnn = lstmlab.Recurrent(cell, batch_first=batch_first, reverse=reverse)
    with torch.no_grad():
        out, final, gates = rnn(
            x.transpose(0, 1) if batch_first else x,
            None if state is None else state[0],  # a one-part state: a tensor
            lengths,
            return_gates=True,
        )
    layout = (B, T) if batch_first else (T, B)
    assert out.shape == (*layout, cell.hidden_size)
    assert set(gates) == {"forget", "candidate"}
    assert all(g.shape == (*layout, cell.hidden_size) for g in gates.values())
    want_out, want_state, want_gates = loop_reference(cell, x, lengths, state, reverse)
    if batch_first:
        out, gates = out.transpose(0, 1), {k: g.transpose(0, 1) for k, g in gates.items()}
    torch.testing.assert_close(out, want_out, **TIGHT)
    torch.testing.assert_close(final[0], want_state[0], **TIGHT)
    for name in gates:
        torch.testing.assert_close(gates[name], want_gates[name], **TIGHT)


def test_user_cell_stack_parameter_names_and_shapes():
    stack = lstmlab.Stack(lambda n: MGU(n, 6), input_size=3, num_layers=2, bidirectional=True)
    shapes = {name: tuple(p.shape) for name, p in stack.named_parameters()}
    expected = {}
    for layer, size in ((0, 3), (1, 12)):
        for suffix in ("", "_reverse"):
            expected[f"weight_ih_l{layer}{suffix}"] = (12, size)
            expected[f"weight_hh_l{layer}{suffix}"] = (12, 6)
            expected[f"bias_l{layer}{suffix}"] = (12,)
    assert shapes == expected
    # The cells share the stack's tensors (no second copy to train or save).
    assert stack.cells[3].weight_hh is stack.weight_hh_l1_reverse
    assert set(stack.state_dict()) == set(expected)


@SETTINGS
@given(
    T=st.integers(1, 5),
    B=st.integers(1, 3),
    I=st.integers(1, 3),
    H=st.integers(1, 4),
    batch_first=st.booleans(),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_user_cell_stack_is_layers_of_recurrent(T, B, I, H, batch_first, data, seed):
    """Stack(2 layers, bidirectional) == Recurrent forward and reverse, concatenated, twice."""
    lengths = data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    torch.manual_seed(seed)
    stack = lstmlab.Stack(
        lambda n: MGU(n, H), input_size=I, num_layers=2, bidirectional=True, batch_first=batch_first
    ).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(4, B, H, dtype=torch.float64)
    with torch.no_grad():
        out, h_n, gates = stack(
            x.transpose(0, 1) if batch_first else x, h0, lengths=lengths, return_gates=True
        )
        if batch_first:
            out, gates = (
                out.transpose(0, 1),
                [{k: g.transpose(0, 1) for k, g in d.items()} for d in gates],
            )
        assert out.shape == (T, B, 2 * H) and h_n.shape == (4, B, H)
        assert len(gates) == 4
        inp = x
        for layer in range(2):
            outs = []
            for direction in range(2):
                k = 2 * layer + direction
                rnn = lstmlab.Recurrent(stack.cells[k], reverse=direction == 1)
                o, (h,), g = rnn(inp, h0[k], lengths, return_gates=True)
                outs.append(o)
                torch.testing.assert_close(h_n[k], h, **TIGHT)
                assert set(gates[k]) == {"forget", "candidate"}
                for name in g:
                    assert gates[k][name].shape == (T, B, H)
                    torch.testing.assert_close(gates[k][name], g[name], **TIGHT)
            inp = torch.cat(outs, dim=-1)
        torch.testing.assert_close(out, inp, **TIGHT)


def test_user_cell_stack_gradcheck():
    """Gradients through a 2-layer bidirectional stack of the user's cell, with padding."""
    torch.manual_seed(0)
    stack = lstmlab.Stack(
        lambda n: MGU(n, 2), input_size=2, num_layers=2, bidirectional=True
    ).double()
    names = [n for n, _ in stack.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in stack.parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    lengths = [1, 3]

    def f(x, h0, *params):
        out, h_n = torch.func.functional_call(
            stack, dict(zip(names, params)), (x, h0), {"lengths": lengths}
        )
        return out, h_n

    assert torch.autograd.gradcheck(f, (x, h0, *params), eps=1e-6, atol=1e-6)
    # And gradient actually reaches every parameter (no detached path, no dead direction).
    out, h_n = f(x, h0, *params)
    grads = torch.autograd.grad(out.sum() + h_n.sum(), params)
    for name, g in zip(names, grads):
        assert g.abs().sum() > 0, name


# --------------------------------------------------------------------------------------------
# 5. The final state carries on: chunked runs equal whole runs (truncated-BPTT readiness)
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(problem=problems(), reverse=st.booleans(), data=st.data())
def test_recurrent_chunks_continue_exactly(problem, reverse, data):
    cell, x, _, state = problem
    T, B = x.shape[:2]
    if T < 2:
        x = torch.cat([x, x.flip(0)])
        T = x.shape[0]
    k = data.draw(st.integers(1, T - 1), label="split")
    # Every sequence reaches past the split, so that both chunks have >= 1 valid step each.
    lengths = data.draw(st.lists(st.integers(k + 1, T), min_size=B, max_size=B), label="lengths")
    rnn = lstmlab.Recurrent(cell, reverse=reverse)
    with torch.no_grad():
        whole, final = rnn(x, state, lengths)
        head, tail = x[:k], x[k:]
        tail_lengths = [n - k for n in lengths]
        if not reverse:
            out1, s1 = rnn(head, state)
            out2, s2 = rnn(tail, s1, tail_lengths)
        else:  # backwards in time: the later chunk runs first
            out2, s1 = rnn(tail, state, tail_lengths)
            out1, s2 = rnn(head, s1)
    torch.testing.assert_close(torch.cat([out1, out2]), whole, **TIGHT)
    for a, b in zip(s2, final, strict=True):
        torch.testing.assert_close(a, b, **TIGHT)


@SETTINGS
@given(
    T=st.integers(2, 7),
    B=st.integers(1, 3),
    I=st.integers(1, 4),
    H=st.integers(1, 5),
    layers=st.integers(1, 3),
    batch_first=st.booleans(),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_lstm_layer_chunks_continue_exactly(T, B, I, H, layers, batch_first, data, seed):
    torch.manual_seed(seed)
    variant = data.draw(lstm_variants(H))
    lstm = lstmlab.LSTM(I, H, layers, batch_first=batch_first, dtype=torch.float64, **variant)
    x = (
        torch.randn(B, T, I, dtype=torch.float64)
        if batch_first
        else torch.randn(T, B, I, dtype=torch.float64)
    )
    k = data.draw(st.integers(1, T - 1), label="split")
    time = 1 if batch_first else 0
    with torch.no_grad():
        whole, state = lstm(x)
        out1, s1 = lstm(x.narrow(time, 0, k))
        # Detached, as truncated BPTT feeds it; the values must carry on unchanged.
        out2, s2 = lstm(x.narrow(time, k, T - k), tuple(s.detach() for s in s1))
    assert len(state) == (3 if variant["gate_recurrence"] else 2)
    torch.testing.assert_close(torch.cat([out1, out2], dim=time), whole, **TIGHT)
    for a, b in zip(s2, state, strict=True):
        torch.testing.assert_close(a, b, **TIGHT)
