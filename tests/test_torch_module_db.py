"""PyTorch's own module test inputs (``torch.testing._internal.common_modules.module_db``) run
against lstmlab's drop-ins.

For each of torch's recurrent modules -- RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell -- every
sample of its ``module_inputs_func`` builds torch's module and lstmlab's from the same constructor
arguments, copies torch's weights into lstmlab's (``load_state_dict``) and compares outputs and
gradients, through the fused kernels and through the readable loop. Every error input of its
``module_error_inputs_func`` must make lstmlab raise an exception of the type torch raises (the
messages are lstmlab's own).
"""

from __future__ import annotations

import copy
import sys
import types
import unittest

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

try:  # torch's test helpers import expecttest, a package of torch's own test suite
    import expecttest  # noqa: F401
except ImportError:  # they use only its TestCase base class: unittest's stands in for it
    sys.modules["expecttest"] = types.ModuleType("expecttest")
    sys.modules["expecttest"].TestCase = unittest.TestCase  # type: ignore[attr-defined]

from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

import lstmlab

OURS = {
    torch.nn.RNN: lstmlab.RNN,
    torch.nn.LSTM: lstmlab.LSTM,
    torch.nn.GRU: lstmlab.GRU,
    torch.nn.RNNCell: lstmlab.RNNCell,
    torch.nn.LSTMCell: lstmlab.LSTMCell,
    torch.nn.GRUCell: lstmlab.GRUCell,
}
INFOS = [info for info in module_db if info.module_cls in OURS]
DTYPES = (torch.float32, torch.float64)
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-9, atol=1e-9)}


def _samples(error: bool) -> list:
    """``(id, info, dtype, index)``: one per module_db sample (or error input)."""
    out = []
    for info in INFOS:
        for dtype in DTYPES:
            inputs = (
                info.module_error_inputs_func(info, "cpu", dtype, False, True)
                if error
                else info.module_inputs_func(
                    info, "cpu", dtype, True, True, with_packed_sequence=True
                )
            )
            for index in range(len(inputs)):
                name = f"{info.module_cls.__name__}-{str(dtype)[6:]}-{index}"
                out.append(pytest.param(info, dtype, index, id=name))
    return out


def test_module_db_has_the_recurrent_modules():
    assert {info.module_cls for info in INFOS} == set(OURS)


def _leaves(obj) -> list[torch.Tensor]:
    """The tensors of a (nested) output or input, a PackedSequence as its data."""
    if isinstance(obj, PackedSequence):
        return [obj.data]
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _leaves(item)]
    return []


def _fresh(args, kwargs):
    """A deep copy of the forward inputs, so the two modules' input gradients stay apart."""
    return copy.deepcopy(args), copy.deepcopy(kwargs)


def _run(module, args, kwargs):
    out = module(*args, **kwargs)
    outputs = _leaves(out)
    torch.manual_seed(0)  # the same output weights for both modules
    loss = sum((o * torch.randn_like(o)).sum() for o in outputs)
    leaves = [t for t in _leaves((args, list(kwargs.values()))) if t.requires_grad]
    params = [p for _, p in module.named_parameters()]
    grads = torch.autograd.grad(loss, leaves + params, allow_unused=True)
    return out, outputs, grads, [n for n, _ in module.named_parameters()]


@pytest.mark.parametrize("path", ["fused", "readable"])
@pytest.mark.parametrize("info, dtype, index", _samples(error=False))
def test_sample_matches_torch(info, dtype, index, path):
    sample = info.module_inputs_func(info, "cpu", dtype, True, True, with_packed_sequence=True)[
        index
    ]
    cargs, ckwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    torch.manual_seed(index)
    ref = info.module_cls(*cargs, **ckwargs).to(dtype)
    ours = OURS[info.module_cls](*cargs, **ckwargs).to(dtype)
    ours.load_state_dict(ref.state_dict())
    fargs, fkwargs = sample.forward_input.args, sample.forward_input.kwargs

    ref_out, ref_outputs, ref_grads, ref_names = _run(ref, *_fresh(fargs, fkwargs))
    if path == "readable":
        with lstmlab.kernels.disabled():
            out, outputs, grads, names = _run(ours, *_fresh(fargs, fkwargs))
    else:
        out, outputs, grads, names = _run(ours, *_fresh(fargs, fkwargs))

    assert names == ref_names
    assert type(out) is type(ref_out)
    assert isinstance(outputs[0], torch.Tensor) and len(outputs) == len(ref_outputs)
    if isinstance(ref_out, tuple) and isinstance(ref_out[0], PackedSequence):
        assert torch.equal(out[0].batch_sizes, ref_out[0].batch_sizes)
    for got, want in zip(outputs, ref_outputs):
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, **TOLERANCE[dtype])
    assert len(grads) == len(ref_grads)
    for got, want in zip(grads, ref_grads):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want, **TOLERANCE[dtype])


def _raised(make, call) -> BaseException:
    """The exception of building the module (``make``) or, if it builds, of ``call``-ing it."""
    try:
        module = make()
        call(module)
    except Exception as error:  # the point is which type comes out
        return error
    raise AssertionError("no exception was raised")


@pytest.mark.parametrize("info, dtype, index", _samples(error=True))
def test_error_input_raises_torchs_exception_type(info, dtype, index):
    error_input = info.module_error_inputs_func(info, "cpu", dtype, False, True)[index]
    sample = error_input.module_error_input
    cargs, ckwargs = sample.constructor_input.args, sample.constructor_input.kwargs

    def call(module):
        if error_input.error_on == ModuleErrorEnum.FORWARD_ERROR:
            module(*sample.forward_input.args, **sample.forward_input.kwargs)

    torch_error = _raised(lambda: info.module_cls(*cargs, **ckwargs), call)
    assert isinstance(torch_error, error_input.error_type)  # what module_db documents
    ours_error = _raised(lambda: OURS[info.module_cls](*cargs, **ckwargs), call)
    assert isinstance(ours_error, type(torch_error)), (
        f"torch raises {type(torch_error).__name__}({torch_error}); "
        f"lstmlab raises {type(ours_error).__name__}({ours_error})"
    )
    # Raised where torch raises it: while building the module, or in forward.
    built = OURS[info.module_cls]
    if error_input.error_on == ModuleErrorEnum.FORWARD_ERROR:
        built(*cargs, **ckwargs)
    else:
        with pytest.raises(type(torch_error)):
            built(*cargs, **ckwargs)
