"""The main job (``make demo``, ``lstmlab demo``): the post's story, run for real on a CPU.

1. A character-level LSTM learns the Python standard library's own source for a few minutes,
   printing samples as it learns.
2. A vanilla RNN and an LSTM are trained on ``recall`` ("I grew up in France ... I speak fluent
   *French*") at growing gaps: the RNN forgets, the LSTM remembers.
3. A report folder: loss curves and accuracy by gap (PNG), the samples, and ``index.html``.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from .generate import sample
from .train import TrainConfig, train
from .viz.plots import plot_accuracy_by_gap, plot_training_curves

RECALL_GAPS = (5, 15, 30, 60)
RECALL_CELLS = ("rnn", "lstm")


def run_demo(out: Path, minutes: float = 3.5) -> int:
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs"
    start = time.perf_counter()

    print(f"1/2  a character-level LSTM learns Python from the standard library ({minutes:g} min)")
    samples: list[tuple[int, float, str]] = []

    def show_sample(step: int, metrics: dict, job) -> None:
        text = "".join(sample(job.model, job.vocab, "def ", length=240, temperature=0.7, seed=0))
        samples.append((step, metrics["bits_per_token"], "def " + text))
        print(f"\n--- step {step}, {metrics['bits_per_token']:.3f} bits/char ---\n"
              f"def {text}\n---")

    lm = TrainConfig(task="text", cell="lstm", hidden_size=256, embed_size=32, batch_size=32,
                     bptt=100, lr=3e-3, steps=int(900 * minutes), minutes=minutes, eval_every=250,
                     checkpoint_every=500, max_chars=1_500_000, out=str(runs / "char-lstm"))
    train(lm, on_eval=show_sample)

    print("\n2/2  remembering across a gap: vanilla RNN against LSTM on 'recall'")
    accuracy: dict[str, dict[int, float]] = {cell: {} for cell in RECALL_CELLS}
    for gap in RECALL_GAPS:
        for cell in RECALL_CELLS:
            cfg = TrainConfig(task="recall", gap=gap, cell=cell, hidden_size=64, embed_size=16,
                              batch_size=32, lr=3e-3, steps=3000, minutes=0.3, eval_every=200,
                              checkpoint_every=1500, patience=0, out=str(runs / f"recall-{cell}-{gap}"))
            metrics = train(cfg, progress=False)
            accuracy[cell][gap] = metrics["accuracy"]
            print(f"  gap {gap:3d}  {cell:5}  accuracy {100 * metrics['accuracy']:5.1f} %")

    plot_training_curves({"char LSTM": runs / "char-lstm" / "metrics.jsonl"}, out / "lm-loss.png")
    plot_accuracy_by_gap(accuracy, out / "recall-by-gap.png", chance=1 / 12)
    (out / "samples.txt").write_text("\n\n".join(
        f"# step {step}, {bits:.3f} bits/char\n{text}" for step, bits, text in samples))
    (out / "recall.json").write_text(json.dumps(accuracy, indent=1))
    index = _write_index(out, samples, accuracy, time.perf_counter() - start)
    print(f"\nreport: {index.resolve()}")
    return 0


def _write_index(out: Path, samples, accuracy, seconds: float) -> Path:
    rows = "".join(f"<tr><td>{gap}</td>" + "".join(
        f"<td>{100 * accuracy[c][gap]:.1f} %</td>" for c in RECALL_CELLS) + "</tr>"
        for gap in RECALL_GAPS)
    shown = "".join(f"<h3>step {step} &middot; {bits:.3f} bits/char</h3>"
                    f"<pre>{html.escape(text)}</pre>" for step, bits, text in samples[-3:])
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lstmlab demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}td,th{{padding:.2em 1em}}
img{{max-width:100%}}</style></head><body>
<h1>lstmlab demo</h1>
<p>Made by <code>make demo</code> in {seconds / 60:.1f} minutes on this machine.</p>
<h2>1. A character-level LSTM learns Python</h2>
<p>Trained on the Python standard library's own source by truncated backpropagation through
time; samples are drawn from the model as it learns (temperature 0.7).</p>
<img src="lm-loss.png" alt="training and validation loss">
{shown}
<p>All samples: <a href="samples.txt">samples.txt</a>.</p>
<h2>2. Remembering across a gap</h2>
<p>"I grew up in France &hellip; I speak fluent <em>French</em>": after a fact sentence and a
gap of filler words, the model must name the language. The vanilla RNN's gradient vanishes
across the gap; the LSTM's cell state carries the fact.</p>
<img src="recall-by-gap.png" alt="accuracy by gap">
<table><tr><th>gap</th>{"".join(f"<th>{c}</th>" for c in RECALL_CELLS)}</tr>{rows}</table>
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return index
