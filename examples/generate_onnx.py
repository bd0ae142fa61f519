"""Generate text from a language model exported by ``lstmlab export``, with onnxruntime alone.

No torch and no lstmlab here: numpy, onnxruntime and the ``vocab.json`` written beside the
model. The prompt is read in one call (the whole sequence at once); then each new token goes
in with the state the previous call returned.

    lstmlab train --text corpus.txt --out run
    lstmlab export run/best -o deploy/model.onnx
    python examples/generate_onnx.py deploy/model.onnx --prompt "The " --length 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model.onnx, with vocab.json beside it")
    parser.add_argument("--prompt", default="", help="text to start from")
    parser.add_argument("--length", type=int, default=200, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    vocab = json.loads((args.model.parent / "vocab.json").read_text(encoding="utf-8"))
    tokens, level = vocab["tokens"], vocab["level"]
    ids = {t: i for i, t in enumerate(tokens)}
    pieces = list(args.prompt) if level == "char" else args.prompt.split()
    prompt = [ids.get(t, 0) for t in pieces] or [0]  # unknown symbols read as <unk> (id 0)

    runtime = onnxruntime.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    # The state inputs (h, c, ...): (layers, batch, size) each, zeros to start.
    state = {
        i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.float32)
        for i in runtime.get_inputs()
        if i.name != "tokens"
    }
    rng = np.random.default_rng(args.seed)
    feed = np.array([prompt], dtype=np.int64)  # (1, T): the prompt at once
    out = []
    for _ in range(args.length):
        logits, *new_state = runtime.run(None, {"tokens": feed, **state})
        state = dict(zip(state, new_state))
        z = logits[0, -1] / max(args.temperature, 1e-6)  # the next token's logits, (V,)
        p = np.exp(z - z.max())
        token = int(rng.choice(len(p), p=p / p.sum()))
        out.append(tokens[token])
        feed = np.array([[token]], dtype=np.int64)  # (1, 1): one token at a time
    joiner = "" if level == "char" else " "
    print(args.prompt + joiner.join(out).replace(" <eos> ", "\n"))


if __name__ == "__main__":
    main()
