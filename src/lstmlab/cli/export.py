"""``lstmlab export RUN --format onnx``: a trained checkpoint as an ONNX model for onnxruntime.

A language model becomes ``logits, *state = model(tokens, *state)`` with ``tokens`` (B, T)
int64 and the recurrent state in torch's form, one input and one output per part ((L, B, size)
each: ``h`` for a GRU or RNN, ``h, c`` for an LSTM), batch and length dynamic, so one file both
reads a prompt and generates token by token; its vocabulary is written beside it as
``vocab.json``. A task's model becomes ``prediction = model(inputs)``. Standard layers are ONNX's
own LSTM/GRU/RNN operators, every other cell a ``Scan`` (:mod:`lstmlab.kernels.to_onnx`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from lstmlab.kernels import to_onnx
from lstmlab.models import LanguageModel, SequenceModel
from lstmlab.train import load_trained


class _Stepper(nn.Module):
    """A language model with its state as separate tensors, as ONNX inputs and outputs."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, new = self.model(tokens, state[0] if len(state) == 1 else state)
        return (logits, *(new if isinstance(new, tuple) else (new,)))


def export_onnx(checkpoint: Path, out: Path) -> list[Path]:
    """Write the checkpoint's model to ``out`` (and, for a language model, ``vocab.json`` beside
    it); returns the files written."""
    model, vocab, _ = load_trained(checkpoint)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # it lists every op it skips
    out.parent.mkdir(parents=True, exist_ok=True)
    batch, steps = Dim("batch", min=1, max=4096), Dim("steps", min=1, max=1 << 20)
    if isinstance(model, LanguageModel):
        state = model.init_state(2)
        parts = state if isinstance(state, tuple) else (state,)
        names = ["h", "c", "a"][: len(parts)]
        tokens = torch.zeros(2, 3, dtype=torch.long)
        program = to_onnx.export(
            _Stepper(model).eval(),
            (tokens, *parts),
            dynamic_shapes=({0: batch, 1: steps}, tuple({1: batch} for _ in parts)),  # *state
            input_names=["tokens", *names],
            output_names=["logits", *[f"{n}_n" for n in names]],
        )
    elif isinstance(model, SequenceModel):
        if model.embedding is not None:  # token ids (B, T)
            inputs = torch.zeros(2, 3, dtype=torch.long)
        else:  # features (B, T, input_size)
            inputs = torch.zeros(2, 3, model.rnn.input_size)
        program = to_onnx.export(
            model.eval(),
            (inputs,),
            dynamic_shapes=({0: batch, 1: steps},),
            input_names=["inputs"],
            output_names=["prediction"],
        )
    else:
        raise ValueError(
            f"{checkpoint}: ONNX export takes a language model or a task's sequence model; "
            f"got a {type(model).__name__}"
        )
    program.save(str(out))
    written = [out]
    if vocab is not None:
        (out.parent / "vocab.json").write_text(json.dumps(vocab.to_json()), encoding="utf-8")
        written.append(out.parent / "vocab.json")
    return written
