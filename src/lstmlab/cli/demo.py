"""The main job (``make demo``, ``lstmlab demo``): the post's story, run for real on a CPU.

1. A character-level LSTM learns the Python standard library's own source for a few minutes,
   printing samples as it learns.
2. A vanilla RNN and an LSTM are trained from scratch on ``recall`` ("I grew up in France ... I
   speak fluent *French*") at gaps from 5 to 200 filler words, with the task's defaults (chrono
   initialisation): the RNN forgets, the LSTM remembers.
3. A look inside: the vanishing gradient measured (at initialisation and after training), the
   trained model's forget gates over held-out code, the gate explorer, a diagram of every cell.
4. A report folder, ``index.html`` with relative links only: PNGs, SVGs, the explorer page,
   the samples.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import cast

import torch

from lstmlab.data import RecallTask, split_documents, stdlib_corpus
from lstmlab.models.build import build_model, init_forget_bias
from lstmlab.models.generate import sample
from lstmlab.models.language_model import LanguageModel
from lstmlab.nn.layers.standard import GRU, LSTM, RNN
from lstmlab.nn.registry import VARIANTS, make_layer
from lstmlab.nn.stack import Stack
from lstmlab.train import TrainConfig, load_trained, train
from lstmlab.train.settings import task_config
from lstmlab.viz.diagram import draw_cell, draw_unrolled
from lstmlab.viz.explore import activations, write_explorer
from lstmlab.viz.gates import gate_values, plot_forget_gate_distribution
from lstmlab.viz.gradients import gradient_flow, plot_gradient_flow
from lstmlab.viz.plots import plot_accuracy_by_gap, plot_training_curves, read_metrics

RECALL_GAPS = (5, 15, 30, 100, 200)
RECALL_CELLS = ("rnn", "lstm")
EXPLORER_CHARS = 600  # ~1.5k numbers a character for 256 units: a page of ~4 MB
GATE_CHARS = 3000  # held-out characters whose forget gates make the histogram


def run_demo(
    out: Path,
    minutes: float = 3.5,
    *,
    gaps: tuple[int, ...] = RECALL_GAPS,
    cells: tuple[str, ...] = RECALL_CELLS,
    recall_minutes: float = 0.3,
    hidden_size: int = 256,
    max_chars: int = 1_500_000,
) -> int:
    """Run the demo into the folder ``out``; ``minutes`` for the language model, ``recall_minutes``
    for each (cell, gap) run of ``recall``. The rest are the sizes (small ones make a quick
    test): ``hidden_size`` of the language model, ``max_chars`` of the corpus."""
    if not gaps or any(not isinstance(g, int) or isinstance(g, bool) or g < 0 for g in gaps):
        raise ValueError(f"gaps must be a non-empty tuple of integers >= 0, got {gaps!r}")
    unknown = [c for c in cells if c not in VARIANTS]
    if not cells or unknown:
        raise ValueError(
            f"cells must be a non-empty tuple of names from: {', '.join(VARIANTS)}; got {cells!r}"
        )
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs"
    start = time.perf_counter()

    print(f"1/3  a character-level LSTM learns Python from the standard library ({minutes:g} min)")
    samples: list[tuple[int, float, str]] = []

    def show_sample(step: int, metrics: dict, model, vocab) -> None:
        text = "".join(sample(model, vocab, "def ", length=240, temperature=0.7, seed=0))
        samples.append((step, metrics["bits_per_token"], "def " + text))
        print(f"\n--- step {step}, {metrics['bits_per_token']:.3f} bits/char ---\ndef {text}\n---")

    lm = TrainConfig(
        task="text",
        cell="lstm",
        hidden_size=hidden_size,
        embed_size=32,
        batch_size=32,
        bptt=100,
        lr=3e-3,
        steps=max(1, int(900 * minutes)),
        minutes=minutes,
        eval_every=250,
        checkpoint_every=500,
        max_chars=max_chars,
        out=str(runs / "char-lstm"),
    )
    final = train(
        lm,
        overwrite=True,
        on_eval=lambda step, metrics, job: show_sample(step, metrics, job.model, job.vocab),
    )
    trained = load_trained(runs / "char-lstm" / "checkpoint")  # (model, vocab, TrainConfig)
    last_step = read_metrics(runs / "char-lstm" / "metrics.jsonl")[-1]["step"]
    if not samples or samples[-1][0] != last_step:  # stopped by the clock between evaluations
        show_sample(last_step, final, *trained[:2])

    print(f"\n2/3  remembering across a gap: {' against '.join(cells)} on 'recall'")
    accuracy: dict[str, dict[int, float]] = {cell: {} for cell in cells}
    for cell in cells:
        for gap in sorted(gaps):  # each gap from scratch, as `lstmlab train --task recall`
            cfg = task_config(
                task="recall",
                gap=gap,
                cell=cell,
                hidden_size=64,
                embed_size=16,
                batch_size=32,
                lr=3e-3,
                steps=1500,
                minutes=recall_minutes,
                eval_every=250,
                checkpoint_every=1500,
                patience=0,
                out=str(runs / f"recall-{cell}-{gap}"),
            )
            metrics = train(cfg, overwrite=True, progress=False)
            accuracy[cell][gap] = metrics["accuracy"]
            print(f"  gap {gap:3d}  {cell:5}  accuracy {100 * metrics['accuracy']:5.1f} %")

    print("\n3/3  a look inside: gradient flow, forget gates, the explorer, cell diagrams")
    plot_training_curves({"char LSTM": runs / "char-lstm" / "metrics.jsonl"}, out / "lm-loss.png")
    plot_accuracy_by_gap(accuracy, out / "recall-by-gap.png", chance=1 / 12)
    held_out = _held_out_code(max_chars)
    inside = _look_inside(out, runs, trained, held_out, cells, max(gaps))
    (out / "samples.txt").write_text(
        "\n\n".join(f"# step {step}, {bits:.3f} bits/char\n{text}" for step, bits, text in samples)
    )
    (out / "recall.json").write_text(json.dumps(accuracy, indent=1))
    index = _write_index(out, samples, accuracy, inside, time.perf_counter() - start)
    print(f"\nreport: {index.resolve()}")
    return 0


def _held_out_code(max_chars: int) -> str:
    """The longest test-split file of the corpus the model trained on (never seen in training),
    from its first top-level ``def`` or ``class``: code rather than a licence header."""
    _, _, test = split_documents(stdlib_corpus(max_chars))
    doc = max(test, key=len)
    starts = [k + 1 for k in (doc.find("\ndef "), doc.find("\nclass ")) if k >= 0]
    return doc[min(starts, default=0) :]


def _look_inside(
    out: Path, runs: Path, language_model, held_out: str, cells: tuple[str, ...], gap: int
) -> dict:
    """Gradient flow, forget gates, explorer and diagrams into ``out``; what the page says.
    ``language_model`` is the trained char LSTM as :func:`~lstmlab.train.load_trained` gives it."""
    lm, vocab, lm_cfg = language_model

    # The vanishing gradient at initialisation: torch's init, 16 inputs, 64 units, T = 100.
    torch.manual_seed(0)
    fresh = {
        "RNN": RNN(16, 64),
        "GRU": GRU(16, 64),
        "LSTM, torch's init (forget bias ~0)": LSTM(16, 64),
        "LSTM, forget bias 1": LSTM(16, 64),
    }
    init_forget_bias(fresh["LSTM, forget bias 1"], 1.0)
    at_init = {label: gradient_flow(layer, steps=100, batch=16) for label, layer in fresh.items()}
    plot_gradient_flow(
        at_init, out / "gradient-flow-init.png", title="at initialisation (random inputs, 64 units)"
    )

    # After training, each model on its own inputs: the char LSTM on held-out code (8 chunks of
    # 100 characters), the recall models on recall sequences at the longest gap.
    ids = vocab.encode(vocab.tokenize(held_out))
    chunks = min(8, max(1, len(ids) // 100))
    steps = min(100, len(ids))
    tokens = ids[: chunks * steps].view(chunks, steps)  # (B, T)
    trained = {
        "char LSTM (held-out code)": gradient_flow(
            lm.rnn, inputs=lm.embedding(tokens).transpose(0, 1)
        )
    }  # (T, B, E)
    x, _ = RecallTask(gap).batch(16, torch.Generator().manual_seed(0))  # (B, T)
    for cell in cells:
        model, _, _ = load_trained(runs / f"recall-{cell}-{gap}" / "checkpoint")
        trained[f"recall {cell.upper()} (gap {gap})"] = gradient_flow(
            model.rnn, inputs=model.embedding(x).transpose(0, 1)
        )
    plot_gradient_flow(trained, out / "gradient-flow-trained.png", title="after training")

    # Forget gates over held-out code: the model as trained, and a fresh one initialised as
    # train() initialises it (its seed, its forget-gate bias).
    torch.manual_seed(lm_cfg.seed)
    start = cast(LanguageModel, build_model(lm.config()))  # lm's own kind
    init_forget_bias(start, lm_cfg.forget_bias)
    text = held_out[:GATE_CHARS]
    forget = {
        "char LSTM at initialisation": gate_values(start, vocab, text)[0],
        "char LSTM after training": gate_values(lm, vocab, text)[0],
    }
    plot_forget_gate_distribution(
        forget, out / "forget-gates.png", title=f"forget gates over {len(text)} held-out characters"
    )

    acts = activations(lm, vocab, held_out[:EXPLORER_CHARS])
    write_explorer(acts, out / "explore.html", title="lstmlab demo: the char LSTM on held-out code")
    return {
        "diagrams": _draw_diagrams(out / "diagrams"),
        "explorer_chars": len(acts["tokens"]),
        "at_init": {k: float(g[50]) for k, g in at_init.items()},
        "gate_chars": len(text),
        "forget_mean": {k: float(v.mean()) for k, v in forget.items()},
    }


def _draw_diagrams(folder: Path) -> list[tuple[str, str]]:
    """The diagram of every built-in cell that a layer of cells is made of, and one LSTM unrolled
    over three steps: ``[(file name, caption), ...]``, relative to the report."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, (_, _, about) in VARIANTS.items():
        layer = make_layer(name, 8, 16)
        if isinstance(layer, Stack):  # the Grid LSTM's blocks span depth: not one cell
            draw_cell(layer.cells[0], folder / f"{name}.svg")
            drawn.append((f"diagrams/{name}.svg", f"{name}: {about}"))
    draw_unrolled(LSTM(8, 16).cells[0], folder / "unrolled-lstm.svg", steps=3)
    drawn.append(("diagrams/unrolled-lstm.svg", "the LSTM unrolled over three steps"))
    return drawn


def _write_index(out: Path, samples, accuracy, inside: dict, seconds: float) -> Path:
    gaps = sorted({gap for by_gap in accuracy.values() for gap in by_gap})
    rows = "".join(
        f"<tr><td>{gap}</td>"
        + "".join(f"<td>{100 * accuracy[c][gap]:.1f} %</td>" for c in accuracy)
        + "</tr>"
        for gap in gaps
    )
    shown = "".join(
        f"<h3>step {step} &middot; {bits:.3f} bits/char</h3><pre>{html.escape(text)}</pre>"
        for step, bits, text in samples[-3:]
    )
    g50 = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{value:.1e}</td></tr>"
        for label, value in inside["at_init"].items()
    )
    means = ", ".join(f"{html.escape(k)} {v:.2f}" for k, v in inside["forget_mean"].items())
    figures = "".join(
        f'<figure><a href="{path}"><img src="{path}" alt="{html.escape(caption)}">'
        f"</a><figcaption>{html.escape(caption)}</figcaption></figure>"
        for path, caption in inside["diagrams"]
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lstmlab demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}td,th{{padding:.2em 1em}}
img{{max-width:100%}}figure{{display:inline-block;width:28em;max-width:100%;margin:0 1em 1em 0;
vertical-align:top}}figcaption{{font-size:90%}}</style></head><body>
<h1>lstmlab demo</h1>
<p>Made by <code>make demo</code> in {seconds / 60:.1f} minutes on this machine.
Contents: <a href="#lm">a char LSTM learns Python</a> &middot; <a href="#recall">remembering
across a gap</a> &middot; <a href="#gradient">the vanishing gradient</a> &middot;
<a href="#forget">forget gates</a> &middot; <a href="explore.html">the gate explorer</a> &middot;
<a href="#diagrams">cell diagrams</a>.</p>
<h2 id="lm">1. A character-level LSTM learns Python</h2>
<p>Trained on the Python standard library's own source by truncated backpropagation through
time; samples are drawn from the model as it learns (temperature 0.7).</p>
<img src="lm-loss.png" alt="training and validation loss">
{shown}
<p>All samples: <a href="samples.txt">samples.txt</a>.</p>
<h2 id="recall">2. Remembering across a gap</h2>
<p>"I grew up in France &hellip; I speak fluent <em>French</em>": after a fact sentence and a
gap of filler words, the model must name the language. Each cell is trained from scratch at
each gap, as <code>lstmlab train --task recall</code> trains it (chrono initialisation: the
LSTM's forget gates start with time scales spread up to the sequence length). The vanilla RNN's
gradient vanishes across the gap, and beyond a few words it stays at chance (1 in 12); the
LSTM's cell state carries the fact.</p>
<img src="recall-by-gap.png" alt="accuracy by gap">
<table><tr><th>gap</th>{"".join(f"<th>{c}</th>" for c in accuracy)}</tr>{rows}</table>
<h2 id="gradient">3. The vanishing gradient, measured</h2>
<p>How much of the gradient of the last output h<sub>T</sub> (projected on a fixed random unit
vector) reaches the input k steps earlier: the norm of
&part;h<sub>T</sub>/&part;x<sub>T&minus;k</sub>, mean over sequences, one backward pass
(<code>lstmlab.viz.gradients.gradient_flow</code>). Through a vanilla RNN it is multiplied by
the recurrent Jacobian at every step and falls geometrically; the LSTM's cell state is updated
additively, c<sub>t</sub> = f<sub>t</sub> &odot; c<sub>t&minus;1</sub> + i<sub>t</sub> &odot;
g<sub>t</sub>, so with forget gates near 1 it carries the gradient much further.</p>
<img src="gradient-flow-init.png" alt="gradient flow at initialisation">
<table><tr><th>at initialisation</th><th>k = 50</th></tr>{g50}</table>
<img src="gradient-flow-trained.png" alt="gradient flow after training">
<h2 id="forget">4. Where the forget gates sit</h2>
<p>The char LSTM's forget-gate values over {inside["gate_chars"]} characters of a held-out
standard-library file, before and after training (mean: {means}). The explorer page shows them
character by character, with every other gate and state:
<a href="explore.html">explore.html</a> ({inside["explorer_chars"]} characters).</p>
<img src="forget-gates.png" alt="forget gate histogram">
<h2 id="diagrams">5. The cells, drawn from their code</h2>
<p>Each diagram is traced from the cell's own <code>step</code> and laid out in the post's visual
language (<code>lstmlab diagram</code>).</p>
{figures}
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return index
