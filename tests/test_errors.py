"""Bad input fails early and says what is wrong.

Every case must raise exactly the exception class it lists, whose message names the argument,
what was expected and what came (README, "Bad input"): ``ShapeError`` (a ``ValueError`` and a
``RuntimeError``) for a wrong rank, shape, size or number of state parts, ``DtypeError`` (a
``TypeError``, ``ValueError`` and ``RuntimeError``) for a wrong dtype, ``DeviceError`` (a
``ValueError`` and a ``RuntimeError``) for a wrong device -- so code catching the type torch.nn
raises for the same mistake catches lstmlab's (tests/test_torch_module_db.py holds them to
torch's) -- ``TypeError`` for a wrong type and ``ValueError`` for any other bad value. Each case
lists the pieces its message must contain, matched literally: the first through
``pytest.raises(match=...)``, the rest one by one so that a failure says which piece is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlab
from lstmlab.nn import DeviceError, DtypeError, ShapeError

T, B, I, H = 5, 3, 4, 5


def x(*shape, **kw):
    return torch.randn(*(shape or (T, B, I)), **kw)


def zeros(*shape, **kw):
    return torch.zeros(*shape, **kw)


def with_nan(*shape):
    y = x(*shape)
    y.view(-1)[y.numel() // 2] = float("nan")
    return y


from user_cells import MGU  # noqa: E402  (the shared user cell)


def lstm(**kw):
    return lstmlab.LSTM(I, H, **kw)


def rec(cell=None, **kw):
    return lstmlab.Recurrent(cell or lstmlab.LSTMCell(I, H), **kw)


def bilstm2():
    return lstmlab.LSTM(I, H, num_layers=2, bidirectional=True)  # hx parts (4, B, H)


NO_GATES = dict(input_gate=False, forget_gate=False, output_gate=False)


def case(id: str, call: Callable[[], object], error: type[Exception], *pieces: str):
    return pytest.param(call, error, pieces, id=id)


CASES = [
    # ---- input rank -------------------------------------------------------------------------
    case("layer-1d", lambda: lstm()(x(I)), ShapeError, "input", "3-D", "got a 1-D tensor", "(4,)"),
    case(
        "layer-4d",
        lambda: lstm()(x(2, T, B, I)),
        ShapeError,
        "input",
        "3-D",
        "got a 4-D tensor",
        "(2, 5, 3, 4)",
    ),
    case(
        "gru-layer-4d",
        lambda: lstmlab.GRU(I, H)(x(1, T, B, I)),
        ShapeError,
        "input",
        "got a 4-D tensor",
    ),
    case("recurrent-1d", lambda: rec()(x(I)), ShapeError, "input", "3-D", "got a 1-D tensor"),
    case("recurrent-4d", lambda: rec()(x(2, T, B, I)), ShapeError, "input", "got a 4-D tensor"),
    case(
        "cell-3d",
        lambda: lstmlab.LSTMCell(I, H)(x(T, B, I)),
        ShapeError,
        "input",
        "2-D",
        "got a 3-D tensor",
        "(5, 3, 4)",
    ),
    case(
        "gru-cell-3d",
        lambda: lstmlab.GRUCell(I, H)(x(T, B, I)),
        ShapeError,
        "input",
        "got a 3-D tensor",
    ),
    case(
        "cell-0d",
        lambda: lstmlab.RNNCell(I, H)(torch.tensor(1.0)),
        ShapeError,
        "input",
        "got a 0-D tensor",
    ),
    # ---- feature size -----------------------------------------------------------------------
    case(
        "layer-features",
        lambda: lstm()(x(T, B, 3)),
        ShapeError,
        "input",
        "input_size=4",
        "(5, 3, 3)",
    ),
    case(
        "layer-features-batch-first",
        lambda: lstm(batch_first=True)(x(B, T, 6)),
        ShapeError,
        "input",
        "input_size=4",
        "(3, 5, 6)",
    ),
    case(
        "layer-features-unbatched",
        lambda: lstmlab.RNN(I, H)(x(T, 2)),
        ShapeError,
        "input",
        "input_size=4",
        "(5, 2)",
    ),
    case(
        "recurrent-features",
        lambda: rec(lstmlab.GRUCell(I, H))(x(T, B, 2)),
        ShapeError,
        "input",
        "input_size=4",
        "(5, 3, 2)",
    ),
    case(
        "cell-features",
        lambda: lstmlab.LSTMCell(I, H)(x(B, 7)),
        ShapeError,
        "input",
        "input_size=4",
        "(3, 7)",
    ),
    case(
        "stack-features",
        lambda: lstmlab.Stack(lambda n: MGU(n, H), I)(x(T, B, 9)),
        ShapeError,
        "input",
        "input_size=4",
        "(5, 3, 9)",
    ),
    # ---- input type and dtype ---------------------------------------------------------------
    case("layer-list", lambda: lstm()(x().tolist()), TypeError, "input", "torch.Tensor", "list"),
    case("layer-numpy", lambda: lstm()(x().numpy()), TypeError, "input", "torch.Tensor", "ndarray"),
    case("recurrent-none", lambda: rec()(None), TypeError, "input", "torch.Tensor", "NoneType"),
    case(
        "cell-list",
        lambda: lstmlab.GRUCell(I, H)([0.0] * I),
        TypeError,
        "input",
        "torch.Tensor",
        "list",
    ),
    case(
        "layer-int64",
        lambda: lstm()(torch.ones(T, B, I, dtype=torch.long)),
        DtypeError,
        "input",
        "floating-point",
        "torch.int64",
    ),
    case(
        "layer-bool",
        lambda: lstmlab.GRU(I, H)(torch.ones(T, B, I, dtype=torch.bool)),
        DtypeError,
        "input",
        "floating-point",
        "torch.bool",
    ),
    case(
        "cell-int32",
        lambda: lstmlab.LSTMCell(I, H)(torch.ones(B, I, dtype=torch.int32)),
        DtypeError,
        "input",
        "floating-point",
        "torch.int32",
    ),
    case(
        "recurrent-int",
        lambda: rec()(torch.ones(T, B, I, dtype=torch.int16)),
        DtypeError,
        "input",
        "torch.int16",
    ),
    case(
        "layer-float64-into-float32",
        lambda: lstm()(x(dtype=torch.float64)),
        DtypeError,
        "input",
        "torch.float64",
        "torch.float32",
    ),
    case(
        "gru-float64-into-float32",
        lambda: lstmlab.GRU(I, H)(x(dtype=torch.float64)),
        DtypeError,
        "input",
        "torch.float64",
        "torch.float32",
    ),
    case(
        "layer-float32-into-float64",
        lambda: lstm(dtype=torch.float64)(x()),
        DtypeError,
        "input",
        "torch.float32",
        "torch.float64",
    ),
    case(
        "recurrent-float64-into-float32",
        lambda: rec()(x(dtype=torch.float64)),
        DtypeError,
        "input",
        "torch.float64",
        "torch.float32",
    ),
    case(
        "cell-float64-into-float32",
        lambda: lstmlab.LSTMCell(I, H)(x(B, I, dtype=torch.float64)),
        DtypeError,
        "input",
        "torch.float64",
        "torch.float32",
    ),
    # ---- state: shapes, parts, types, dtypes ------------------------------------------------
    case(
        "hx-layers-times-directions",
        lambda: bilstm2()(x(), (zeros(2, B, H), zeros(4, B, H))),
        ShapeError,
        "hx[0]",
        "(4, 3, 5)",
        "(2, 3, 5)",
    ),
    case(
        "hx-batch",
        lambda: bilstm2()(x(), (zeros(4, 2, H), zeros(4, 2, H))),
        ShapeError,
        "hx[0]",
        "(4, 3, 5)",
        "(4, 2, 5)",
    ),
    case(
        "hx-hidden-size",
        lambda: bilstm2()(x(), (zeros(4, B, H), zeros(4, B, 6))),
        ShapeError,
        "hx[1]",
        "(4, 3, 5)",
        "(4, 3, 6)",
    ),
    case(
        "hx-projected-size",
        lambda: lstm(proj_size=2)(x(), (zeros(1, B, H), zeros(1, B, H))),
        ShapeError,
        "hx[0]",
        "(1, 3, 2)",
        "(1, 3, 5)",
    ),
    case(
        "hx-one-tensor-to-lstm",
        lambda: bilstm2()(x(), zeros(4, B, H)),
        ShapeError,
        "hx",
        "2 part",
        "got 1",
    ),
    case(
        "hx-three-parts-to-lstm",
        lambda: lstm()(x(), (zeros(1, B, H),) * 3),
        ShapeError,
        "hx",
        "2 part",
        "got 3",
    ),
    case(
        "hx-two-parts-to-gru",
        lambda: lstmlab.GRU(I, H)(x(), (zeros(1, B, H),) * 2),
        ShapeError,
        "hx",
        "1 part",
        "got 2",
    ),
    case(
        "hx-gru-shape",
        lambda: lstmlab.GRU(I, H)(x(), zeros(1, B, 4)),
        ShapeError,
        "hx",
        "(1, 3, 5)",
        "(1, 3, 4)",
    ),
    case(
        "hx-batched-for-unbatched-input",
        lambda: lstm()(x(T, I), (zeros(1, 1, H), zeros(1, 1, H))),
        ShapeError,
        "hx[0]",
        "(1, 5)",
        "(1, 1, 5)",
    ),
    case(
        "hx-part-not-tensor",
        lambda: lstm()(x(), (zeros(1, B, H), None)),
        TypeError,
        "hx[1]",
        "torch.Tensor",
        "NoneType",
    ),
    case(
        "hx-float64",
        lambda: lstm()(
            x(), (zeros(1, B, H, dtype=torch.float64), zeros(1, B, H, dtype=torch.float64))
        ),
        DtypeError,
        "hx[0]",
        "torch.float64",
        "torch.float32",
    ),
    case(
        "hx-gru-float16",
        lambda: lstmlab.GRU(I, H)(x(), zeros(1, B, H, dtype=torch.float16)),
        DtypeError,
        "hx",
        "torch.float16",
        "torch.float32",
    ),
    case(
        "state-recurrent-shape",
        lambda: rec()(x(), (zeros(B, H), zeros(B, 4))),
        ShapeError,
        "state[1]",
        "(3, 5)",
        "(3, 4)",
    ),
    case(
        "state-recurrent-batch-first",
        lambda: rec(batch_first=True)(x(B, T, I), (zeros(T, H), zeros(T, H))),
        ShapeError,
        "state[0]",
        "(3, 5)",
        "(5, 5)",
    ),
    case(
        "state-recurrent-one-tensor-to-lstm",
        lambda: rec()(x(), zeros(B, H)),
        ShapeError,
        "state",
        "2 part",
        "got 1",
    ),
    case(
        "state-recurrent-float64",
        lambda: rec(lstmlab.GRUCell(I, H))(x(), zeros(B, H, dtype=torch.float64)),
        DtypeError,
        "state",
        "torch.float64",
        "torch.float32",
    ),
    case(
        "hx-cell-shape",
        lambda: lstmlab.LSTMCell(I, H)(x(B, I), (zeros(B, H), zeros(2, H))),
        ShapeError,
        "hx[1]",
        "(3, 5)",
        "(2, 5)",
    ),
    case(
        "hx-cell-one-tensor-to-lstm",
        lambda: lstmlab.LSTMCell(I, H)(x(B, I), zeros(B, H)),
        TypeError,
        "hx",
        "tuple of 2 tensors",
        "one tensor",
    ),
    case(
        "hx-cell-float64",
        lambda: lstmlab.RNNCell(I, H)(x(B, I), zeros(B, H, dtype=torch.float64)),
        DtypeError,
        "hx",
        "torch.float64",
        "torch.float32",
    ),
    # ---- lengths ----------------------------------------------------------------------------
    case(
        "lengths-zero",
        lambda: lstm()(x(), lengths=[0, 3, 5]),
        ValueError,
        "lengths",
        "[1, 5]",
        "min 0",
    ),
    case(
        "lengths-zero-tensor",
        lambda: lstm()(x(), lengths=torch.tensor([5, 0, 2])),
        ValueError,
        "lengths",
        "[1, 5]",
        "min 0",
    ),
    case(
        "lengths-past-T",
        lambda: lstm()(x(), lengths=[6, 3, 5]),
        ValueError,
        "lengths",
        "[1, 5]",
        "max 6",
    ),
    case(
        "lengths-negative",
        lambda: lstm()(x(), lengths=[-1, 3, 5]),
        ValueError,
        "lengths",
        "[1, 5]",
        "min -1",
    ),
    case(
        "lengths-past-T-batch-first",
        lambda: rec(batch_first=True)(x(B, T, I), lengths=[5, 6, 1]),
        ValueError,
        "lengths",
        "[1, 5]",
        "max 6",
    ),
    case(
        "lengths-recurrent-zero",
        lambda: rec()(x(), lengths=[2, 0, 1]),
        ValueError,
        "lengths",
        "[1, 5]",
        "min 0",
    ),
    case(
        "lengths-too-few",
        lambda: lstm()(x(), lengths=[5, 3]),
        ShapeError,
        "lengths",
        "(3,)",
        "(2,)",
    ),
    case(
        "lengths-too-many",
        lambda: rec()(x(), lengths=torch.tensor([5, 3, 1, 1])),
        ShapeError,
        "lengths",
        "(3,)",
        "(4,)",
    ),
    case(
        "lengths-2d",
        lambda: lstm()(x(), lengths=torch.tensor([[5, 3, 1]])),
        ShapeError,
        "lengths",
        "(3,)",
        "(1, 3)",
    ),
    case(
        "lengths-float-list",
        lambda: lstm()(x(), lengths=[1.0, 2.0, 3.0]),
        TypeError,
        "lengths",
        "int",
        "1.0",
    ),
    case(
        "lengths-float-tensor",
        lambda: rec()(x(), lengths=torch.tensor([1.0, 2.0, 3.0])),
        TypeError,
        "lengths",
        "integers",
        "torch.float32",
    ),
    case(
        "lengths-bool-tensor",
        lambda: lstm()(x(), lengths=torch.ones(B, dtype=torch.bool)),
        TypeError,
        "lengths",
        "torch.bool",
    ),
    case(
        "lengths-with-unbatched-layer",
        lambda: lstm()(x(T, I), lengths=[T]),
        ValueError,
        "lengths",
        "batched",
    ),
    case(
        "lengths-with-unbatched-recurrent",
        lambda: rec()(x(T, I), lengths=[T]),
        ValueError,
        "lengths",
        "batched",
    ),
    case(
        "lengths-with-packed-sequence",
        lambda: lstm()(pack_padded_sequence(x(), [5, 4, 2]), lengths=[5, 4, 2]),
        ValueError,
        "lengths",
        "PackedSequence",
    ),
    # ---- empty batches and sequences --------------------------------------------------------
    case(
        "zero-length-sequence",
        lambda: lstm()(x(0, B, I)),
        ShapeError,
        "input",
        "time step",
        "(0, 3, 4)",
    ),
    case(
        "zero-length-unbatched",
        lambda: lstmlab.RNN(I, H)(x(0, I)),
        ShapeError,
        "input",
        "time step",
        "(0, 4)",
    ),
    case(
        "zero-length-recurrent",
        lambda: rec()(x(0, B, I)),
        ShapeError,
        "input",
        "time step",
        "(0, 3, 4)",
    ),
    case("nan-layer", lambda: lstm()(with_nan(T, B, I)), ValueError, "input", "NaN"),
    case(
        "nan-gru-unbatched", lambda: lstmlab.GRU(I, H)(with_nan(T, I)), ValueError, "input", "NaN"
    ),
    case("nan-recurrent", lambda: rec()(with_nan(T, B, I)), ValueError, "input", "NaN"),
    case(
        "nan-packed",
        lambda: lstm()(pack_padded_sequence(with_nan(T, B, I), [5, 5, 5])),
        ValueError,
        "input",
        "NaN",
    ),
    # ---- incompatible switches ----------------------------------------------------------------
    case(
        "coupled-without-forget-gate",
        lambda: lstmlab.LSTMCell(I, H, coupled=True, forget_gate=False),
        ValueError,
        "coupled=True",
        "forget_gate=True",
        "forget_gate=False",
    ),
    case(
        "coupled-without-forget-gate-layer",
        lambda: lstm(coupled=True, forget_gate=False),
        ValueError,
        "coupled=True",
        "forget_gate=False",
    ),
    case(
        "coupled-without-input-gate",
        lambda: lstm(coupled=True, input_gate=False),
        ValueError,
        "coupled=True",
        "input_gate=False",
    ),
    case(
        "gate-recurrence-without-gates",
        lambda: lstmlab.LSTMCell(I, H, gate_recurrence=True, **NO_GATES),
        ValueError,
        "gate_recurrence=True",
        "input_gate",
        "output_gate",
    ),
    case(
        "peephole-without-gates",
        lambda: lstm(peephole=True, **NO_GATES),
        ValueError,
        "peephole=True",
        "input_gate",
        "output_gate",
    ),
    case(
        "proj-size-equal-hidden",
        lambda: lstm(proj_size=H),
        ValueError,
        "proj_size",
        "hidden_size=5",
        "proj_size=5",
    ),
    case(
        "proj-size-above-hidden",
        lambda: lstmlab.LSTMCell(I, H, proj_size=7),
        ValueError,
        "proj_size",
        "hidden_size=5",
        "proj_size=7",
    ),
    case("proj-size-negative", lambda: lstm(proj_size=-1), ValueError, "proj_size", "-1"),
    # ---- constructor arguments ----------------------------------------------------------------
    case(
        "nonlinearity-layer",
        lambda: lstmlab.RNN(I, H, nonlinearity="gelu"),
        ValueError,
        "nonlinearity",
        "'tanh'",
        "'relu'",
        "'gelu'",
    ),
    case(
        "nonlinearity-cell",
        lambda: lstmlab.RNNCell(I, H, nonlinearity="sigmoid"),
        ValueError,
        "nonlinearity",
        "'tanh'",
        "'relu'",
        "'sigmoid'",
    ),
    case("num-layers-zero", lambda: lstmlab.LSTM(I, H, 0), ValueError, "num_layers", "got 0"),
    case("num-layers-negative", lambda: lstmlab.GRU(I, H, -1), ValueError, "num_layers", "got -1"),
    case(
        "num-layers-zero-stack",
        lambda: lstmlab.Stack(lambda n: MGU(n, H), I, num_layers=0),
        ValueError,
        "num_layers",
        "got 0",
    ),
    case(
        "dropout-negative",
        lambda: lstmlab.LSTM(I, H, 2, dropout=-0.1),
        ValueError,
        "dropout",
        "[0, 1]",
        "-0.1",
    ),
    case(
        "dropout-above-one",
        lambda: lstmlab.GRU(I, H, 2, dropout=1.5),
        ValueError,
        "dropout",
        "[0, 1]",
        "1.5",
    ),
    case(
        "dropout-stack",
        lambda: lstmlab.Stack(lambda n: MGU(n, H), I, 2, dropout=2),
        ValueError,
        "dropout",
        "[0, 1]",
        "2",
    ),
    case("hidden-size-zero-lstm", lambda: lstmlab.LSTM(I, 0), ValueError, "hidden_size", "got 0"),
    case("hidden-size-zero-gru", lambda: lstmlab.GRU(I, 0), ValueError, "hidden_size", "got 0"),
    case("hidden-size-zero-rnn", lambda: lstmlab.RNN(I, 0), ValueError, "hidden_size", "got 0"),
    case(
        "hidden-size-negative-rnn-cell",
        lambda: lstmlab.RNNCell(I, -2),
        ValueError,
        "hidden_size",
        "got -2",
    ),
    # ---- switches torch requires to be bools (torch.nn.RNNBase: TypeError) -----------------
    case("bias-int", lambda: lstmlab.GRU(I, H, bias=0), TypeError, "bias", "True or False", "0"),
    case("bias-str", lambda: lstm(bias="True"), TypeError, "bias", "'True'", "str"),
    case(
        "batch-first-str",
        lambda: lstmlab.RNN(I, H, batch_first="False"),
        TypeError,
        "batch_first",
        "True or False",
        "'False'",
    ),
    case("batch-first-int", lambda: lstm(batch_first=1), TypeError, "batch_first", "int"),
    case(
        "stack-batch-first-str",
        lambda: lstmlab.Stack(lambda n: MGU(n, H), I, batch_first="no"),
        TypeError,
        "batch_first",
        "'no'",
    ),
    # ---- proj_size on a layer without projection (torch: ValueError) ------------------------
    case(
        "proj-size-gru",
        lambda: lstmlab.GRU(I, H, proj_size=2),
        ValueError,
        "proj_size",
        "only supported for LSTM",
        "proj_size=2",
    ),
    case("proj-size-rnn", lambda: lstmlab.RNN(I, H, proj_size=0), ValueError, "proj_size", "LSTM"),
    case("hidden-size-zero-user-cell", lambda: MGU(I, 0), ValueError, "hidden_size", "got 0"),
    case("input-size-zero-layer", lambda: lstmlab.LSTM(0, H), ValueError, "input_size", "got 0"),
    case(
        "make-cell-returns-module",
        lambda: lstmlab.Stack(lambda n: nn.Linear(n, H), I),
        TypeError,
        "make_cell",
        "lstmlab.Cell",
        "Linear",
    ),
    case(
        "make-cell-returns-none",
        lambda: lstmlab.Stack(lambda n: None, I),
        TypeError,
        "make_cell",
        "lstmlab.Cell",
        "NoneType",
    ),
    case(
        "recurrent-of-module",
        lambda: lstmlab.Recurrent(nn.Linear(I, H)),
        TypeError,
        "cell",
        "lstmlab.Cell",
        "Linear",
    ),
    case(
        "recurrent-of-none",
        lambda: lstmlab.Recurrent(None),
        TypeError,
        "cell",
        "lstmlab.Cell",
        "NoneType",
    ),
    # ---- devices: the 'meta' device stands in for a GPU ---------------------------------------
    case("device-layer", lambda: lstm(device="meta")(x()), DeviceError, "input", "cpu", "meta"),
    case(
        "device-cell",
        lambda: lstmlab.LSTMCell(I, H, device="meta")(x(B, I)),
        DeviceError,
        "input",
        "cpu",
        "meta",
    ),
    case(
        "device-recurrent",
        lambda: rec(lstmlab.GRUCell(I, H, device="meta"))(x()),
        DeviceError,
        "input",
        "cpu",
        "meta",
    ),
    case(
        "device-hx",
        lambda: lstm()(x(), (zeros(1, B, H, device="meta"), zeros(1, B, H))),
        DeviceError,
        "hx[0]",
        "meta",
        "cpu",
    ),
    case(
        "device-state-recurrent",
        lambda: rec()(x(), (zeros(B, H), zeros(B, H, device="meta"))),
        DeviceError,
        "state[1]",
        "meta",
        "cpu",
    ),
    case(
        "device-hx-cell",
        lambda: lstmlab.GRUCell(I, H)(x(B, I), zeros(B, H, device="meta")),
        DeviceError,
        "hx",
        "meta",
        "cpu",
    ),
]


def check_message(error: BaseException, pieces: tuple[str, ...]) -> None:
    message = str(error)
    missing = [p for p in pieces if p not in message]
    assert not missing, f"message {message!r} does not mention {missing}"


@pytest.mark.parametrize("call, error, pieces", CASES)
def test_bad_input_raises_a_clear_error(call, error, pieces):
    torch.manual_seed(0)
    with pytest.raises(error, match=re.escape(pieces[0])) as info:
        call()
    assert type(info.value) is error, f"expected exactly {error.__name__}, got {info.type}"
    check_message(info.value, pieces)


def test_each_error_class_is_caught_as_each_type_torch_raises():
    """The classes exist so that ``except RuntimeError`` and ``except ValueError`` (and, for a
    dtype, ``except TypeError``) written for torch.nn catch lstmlab's errors too."""
    for error, bases in (
        (ShapeError, (ValueError, RuntimeError)),
        (DtypeError, (TypeError, ValueError, RuntimeError)),
        (DeviceError, (ValueError, RuntimeError)),
    ):
        assert all(issubclass(error, base) for base in bases), error
    with pytest.raises(RuntimeError):  # torch.nn.LSTM raises RuntimeError for these
        lstm()(x(), (zeros(1, B + 1, H), zeros(1, B + 1, H)))
    with pytest.raises(ValueError):  # and ValueError for this
        lstm()(x(T, B, I, dtype=torch.float64))


def test_good_input_next_to_each_bad_one_runs():
    """The bad cases above differ from these working calls by the one thing they break."""
    lstm()(x(), (zeros(1, B, H), zeros(1, B, H)), lengths=[5, 1, 3])
    bilstm2()(x(), (zeros(4, B, H), zeros(4, B, H)))
    lstm(proj_size=2)(x(), (zeros(1, B, 2), zeros(1, B, H)))
    lstm(batch_first=True)(x(B, T, I), lengths=torch.tensor([1, 5, 2]))
    lstm()(x(T, I), (zeros(1, H), zeros(1, H)))
    lstmlab.GRU(I, H)(x(), zeros(1, B, H))
    rec()(x(), (zeros(B, H), zeros(B, H)), [5, 5, 1])
    rec(batch_first=True)(x(B, T, I), (zeros(B, H), zeros(B, H)), [5, 5, 1])
    rec(lstmlab.GRUCell(I, H))(x(), zeros(B, H))
    lstmlab.LSTMCell(I, H)(x(B, I), (zeros(B, H), zeros(B, H)))
    lstmlab.LSTMCell(I, H)(x(I))
    lstmlab.LSTMCell(I, H, proj_size=4, coupled=True, peephole=True)
    lstmlab.LSTMCell(I, H, gate_recurrence=True, input_gate=False, forget_gate=False)
    lstmlab.Stack(lambda n: MGU(n, H), I, 2, dropout=1)
    lstmlab.LSTM(I, H, 2, dropout=0)
    lstmlab.GRU(I, H, bias=False, batch_first=True)
    lstm()(x(T, 0, I))  # an empty batch runs, as in torch (tests/test_torch_oracle.py)
    lstmlab.GRUCell(0, H)(x(B, 0))


# ----------------------------------------------------------------------------------------------
# Cases the library gets wrong today (see the report); each says what it should do.
# ----------------------------------------------------------------------------------------------


def test_stack_rejects_a_cell_that_ignores_its_input_size():
    """make_cell(n) must build a cell reading n features; today a deep RuntimeError from matmul
    ("mat1 and mat2 shapes cannot be multiplied") comes at the first forward instead."""
    with pytest.raises(ValueError, match="make_cell") as info:
        stack = lstmlab.Stack(lambda n: MGU(5, H), input_size=7)
        stack(x(T, B, 7))
    check_message(info.value, ("input_size", "7", "5"))


def test_stack_rejects_cells_whose_state_sizes_differ_between_layers():
    """h_n stacks every layer's state, so every cell needs the same state sizes; today a deep
    RuntimeError comes at the first forward."""
    with pytest.raises(ValueError, match="make_cell") as info:
        stack = lstmlab.Stack(lambda n: MGU(n, n + 1), input_size=3, num_layers=2)  # H 4, then 5
        stack(x(T, B, 3))
    check_message(info.value, ("4", "5"))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: lstm()(x(), 0), id="layer-hx-int"),
        pytest.param(lambda: lstmlab.GRU(I, H)(x(), 1.5), id="layer-hx-float"),
        pytest.param(lambda: rec()(x(), 0), id="recurrent-state-int"),
        pytest.param(lambda: lstmlab.LSTMCell(I, H)(x(B, I), 0), id="cell-hx-int"),
    ],
)
def test_state_that_is_neither_tensor_nor_tuple_is_named(call):
    """Today: TypeError "'int' object is not iterable", which names neither hx/state nor what
    was expected."""
    with pytest.raises(TypeError, match=r"\b(hx|state)\b") as info:
        call()
    check_message(info.value, ("torch.Tensor",))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: lstmlab.Recurrent(nn.LSTMCell(I, H)), id="recurrent"),
        pytest.param(lambda: lstmlab.Stack(lambda n: nn.LSTMCell(n, H), I), id="stack"),
    ],
)
def test_a_torch_cell_is_told_apart_from_ours(call):
    """Today: "cell must be an lstmlab.Cell, got LSTMCell" -- which reads as a contradiction,
    since lstmlab has an LSTMCell too. The message should give the type's module."""
    with pytest.raises(TypeError, match="lstmlab.Cell") as info:
        call()
    check_message(info.value, ("torch.nn",))


def test_make_cell_that_is_not_callable_is_named():
    """Today: TypeError "'int' object is not callable"."""
    with pytest.raises(TypeError, match="make_cell") as info:
        lstmlab.Stack(5, input_size=I)
    check_message(info.value, ("int",))


@pytest.mark.parametrize(
    "call, name",
    [
        pytest.param(lambda: lstmlab.LSTM(I, 5.0), "hidden_size", id="lstm-hidden-float"),
        pytest.param(lambda: lstmlab.GRUCell(I, 5.0), "hidden_size", id="gru-cell-hidden-float"),
        pytest.param(lambda: lstmlab.RNN(4.0, H), "input_size", id="rnn-input-float"),
        pytest.param(
            lambda: lstmlab.LSTM(I, H, num_layers=1.5), "num_layers", id="num-layers-float"
        ),
    ],
)
def test_sizes_of_the_wrong_type_raise_type_error(call, name):
    """A wrong type is a TypeError (README, "Bad input"; torch.nn.LSTM(4, 5.0) raises TypeError
    too). Today these raise ValueError."""
    with pytest.raises(TypeError, match=name) as info:
        call()
    check_message(info.value, ("float",))
