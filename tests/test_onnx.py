"""ONNX export (torch.onnx.export, dynamo=True) of every layer family, run by onnxruntime at the
traced length and at another one, with dynamic batch and padded sequences."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch.export import Dim

from lstmlab import GRU, LSTM, RNN
from lstmlab.kernels import to_onnx
from lstmlab.nn.registry import VARIANTS, make_layer


@pytest.fixture(autouse=True)
def quiet_exporter():
    logging.disable(logging.WARNING)  # the exporter logs every torchvision op it skips
    yield
    logging.disable(logging.NOTSET)


class Outputs(torch.nn.Module):
    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        out, state = self.layer(x, lengths=lengths)
        return (out, *(state if isinstance(state, tuple) else (state,)))


def export_and_compare(model, export, tmp_path):
    """Export with dynamic steps and batch, then run onnxruntime at two sizes against eager.
    Returns the ONNX graph's operator types."""
    x, lengths = torch.randn(5, 3, 3), torch.tensor([5, 3, 2])
    batch = Dim("batch", min=1, max=1024)
    shapes = {"x": {0: Dim("steps", min=2, max=4096), 1: batch}, "lengths": {0: batch}}
    program = export(model, (x, lengths), dynamic_shapes=shapes)
    path = tmp_path / "model.onnx"
    program.save(str(path))
    runtime = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for steps, size in ((5, 3), (11, 2)):
        x2 = torch.randn(steps, size, 3)
        lengths2 = torch.tensor([steps] + [max(1, steps - 3)] * (size - 1))
        got = runtime.run(None, {"x": x2.numpy(), "lengths": lengths2.numpy()})
        with torch.no_grad():
            expected = model(x2, lengths2)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=1e-4)
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def plain_export(model, args, dynamic_shapes):
    return torch.onnx.export(model, args, dynamo=True, dynamic_shapes=dynamic_shapes)


# torch 2.13's exporter traces the Scan body's backward when parameters require grad, and the
# mLSTM step's backward needs the symbolic batch size, which torch's scan cannot stack.
PLAIN_EXPORT_FAILS = {"mlstm"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="scan backward of SymInt"))
        if n in PLAIN_EXPORT_FAILS
        else n
        for n in VARIANTS
    ],
)
def test_every_layer_exports_with_standard_operators_only(name, tmp_path):
    torch.manual_seed(0)
    depth = {"num_layers": 2} if name == "depth-gated" else {}
    model = Outputs(make_layer(name, 3, 4, **depth)).eval()
    ops = export_and_compare(model, plain_export, tmp_path)
    assert "Scan" in ops  # the readable loop, traced once for any length
    assert all(not op.startswith("lstmlab") for op in ops)


@pytest.mark.parametrize("name", [*PLAIN_EXPORT_FAILS, "slstm", "minlstm"])
def test_lstmlabs_export_takes_the_cells_plain_export_cannot(name, tmp_path):
    torch.manual_seed(0)
    depth = {"num_layers": 2} if name == "depth-gated" else {}
    model = Outputs(make_layer(name, 3, 4, **depth)).eval()
    ops = export_and_compare(model, to_onnx.export, tmp_path)
    assert all(not op.startswith("lstmlab") for op in ops)
    assert all(p.requires_grad for p in model.parameters())  # given back as they were


@pytest.mark.parametrize(
    "layer, operator",
    [
        (lambda: LSTM(3, 4, num_layers=2, bidirectional=True), "LSTM"),
        (lambda: LSTM(3, 4, bias=False), "LSTM"),
        (lambda: GRU(3, 4, num_layers=2, bidirectional=True), "GRU"),
        (lambda: GRU(3, 4, reset_after=False), "GRU"),  # ONNX's linear_before_reset=0
        (lambda: RNN(3, 4, nonlinearity="relu", bidirectional=True), "RNN"),
        (lambda: RNN(3, 4, bias=False), "RNN"),
    ],
    ids=["lstm-bi", "lstm-no-bias", "gru-bi", "gru-reset-before", "rnn-relu-bi", "rnn-no-bias"],
)
def test_standard_layers_become_onnx_rnn_operators(layer, operator, tmp_path):
    torch.manual_seed(0)
    ops = export_and_compare(Outputs(layer()).eval(), to_onnx.export, tmp_path)
    assert operator in ops and "Scan" not in ops


def test_a_variant_keeps_its_scan_with_the_translations(tmp_path):
    torch.manual_seed(0)
    model = Outputs(LSTM(3, 4, peephole=True, bidirectional=True)).eval()
    ops = export_and_compare(model, to_onnx.export, tmp_path)
    assert "Scan" in ops and "LSTM" not in ops


def test_after_the_translations_a_plain_export_uses_them_too(tmp_path):
    to_onnx.translations()
    ops = export_and_compare(Outputs(GRU(3, 4)).eval(), plain_export, tmp_path)
    assert "GRU" in ops and "Scan" not in ops


def test_cli_export_and_generation_with_onnxruntime_alone(tmp_path):
    """``lstmlab export`` on a trained language model; then examples/generate_onnx.py, which
    imports neither torch nor lstmlab, reads a prompt and generates with the exported file; its
    logits equal the model's."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from lstmlab.cli.main import main as cli
    from lstmlab.train import load_trained

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 20)
    run = tmp_path / "run"
    train = ["train", "--text", str(text), "--hidden-size", "8", "--steps", "3"]
    assert cli([*train, "--batch-size", "2", "--out", str(run)]) == 0
    model_file = tmp_path / "deploy" / "model.onnx"
    assert cli(["export", str(run / "best"), "-o", str(model_file)]) == 0
    assert (model_file.parent / "vocab.json").is_file()

    model, vocab, _ = load_trained(run / "best")
    tokens = vocab.encode(vocab.tokenize("the cat")).unsqueeze(0)  # (1, T)
    runtime = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    state = [np.zeros((1, 1, 8), np.float32), np.zeros((1, 1, 8), np.float32)]
    logits, *_ = runtime.run(None, {"tokens": tokens.numpy(), "h": state[0], "c": state[1]})
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(tokens)[0].numpy(), atol=1e-4, rtol=1e-4)

    script = Path(__file__).parent.parent / "examples" / "generate_onnx.py"
    probe = (
        f"import runpy, sys; sys.argv = ['generate_onnx.py', {str(model_file)!r}, '--prompt', "
        f"'the ', '--length', '20']; runpy.run_path({str(script)!r}, run_name='__main__'); "
        "assert 'torch' not in sys.modules and 'lstmlab' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the ") and len(done.stdout) > 10
    assert json.loads((model_file.parent / "vocab.json").read_text())["level"] == "char"
