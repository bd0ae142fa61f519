"""The gate explorer: activations against the LSTM/GRU equations and torch, the page in Chromium.

The browser test drives the real page in headless Chromium (Debian's ``chromium`` through
Playwright, no browser download); it is skipped, saying why, only where neither can be found.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

import pytest
import torch

from lstmlab.data import Vocab
from lstmlab.models import LanguageModel, SequenceModel
from lstmlab.train import TrainConfig, load_trained
from lstmlab.train.checkpoint import save_checkpoint
from lstmlab.viz.explore import activations, write_explorer

TEXT = (
    "def f(x):\n    return x + 1  # <script>window.__pwned=1</script>\n"
    "s = '</script><script>window.__pwned=2</script>' <!-- & \u2028 é\n"
)
POS, NEG = (214, 96, 77), (59, 118, 175)


@torch.no_grad()
def lstm_reference(model: LanguageModel, text: str, vocab: Vocab) -> list[dict]:
    """Hochreiter & Schmidhuber 1997 with a forget gate, written out in float64 from the weights:
    per layer {hidden, cell, input, forget, candidate, output}, each (T, H)."""
    x = model.embedding.weight.double()[vocab.encode(vocab.tokenize(text))]  # (T, E)
    layers = []
    for k in range(model.num_layers):
        w = {
            n: getattr(model.rnn, f"{n}_l{k}").double()
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
        H = w["weight_hh"].shape[1]
        h, c, rows = torch.zeros(H, dtype=torch.double), torch.zeros(H, dtype=torch.double), []
        for x_t in x:
            z = w["weight_ih"] @ x_t + w["bias_ih"] + w["weight_hh"] @ h + w["bias_hh"]
            i, f, g, o = (
                z[:H].sigmoid(),
                z[H : 2 * H].sigmoid(),
                z[2 * H : 3 * H].tanh(),
                z[3 * H :].sigmoid(),
            )
            c = f * c + i * g
            h = o * c.tanh()
            rows.append(dict(hidden=h, cell=c, input=i, forget=f, candidate=g, output=o))
        layers.append({q: torch.stack([r[q] for r in rows]) for q in rows[0]})
        x = layers[-1]["hidden"]
    return layers


def char_model(cell: str = "lstm", num_layers: int = 2, hidden: int = 12, seed: int = 0):
    torch.manual_seed(seed)
    vocab = Vocab.build(TEXT, level="char")
    model = LanguageModel(len(vocab), cell, embed_size=6, hidden_size=hidden, num_layers=num_layers)
    with torch.no_grad():  # larger weights than torch's init: livelier units
        for p in model.rnn.parameters():
            p.mul_(3.0)
    return model.eval(), vocab


def saved(model: LanguageModel, vocab: Vocab, folder) -> tuple:
    """The model through a checkpoint, as `lstmlab explore` loads it."""
    cfg = TrainConfig(
        task="text",
        hidden_size=model.hidden_size,
        embed_size=model.embed_size,
        num_layers=model.num_layers,
        cell=model.cell_name,
    )
    ckpt = save_checkpoint(
        folder / "ckpt",
        model=model,
        vocab=vocab.to_json(),
        config={"train": dataclasses.asdict(cfg), "model": model.config()},
    )
    model, vocab, _ = load_trained(ckpt)
    return model, vocab


def test_lstm_activations_match_the_equations_and_torch(tmp_path):
    model, vocab = saved(*char_model(), tmp_path)
    acts = activations(model, vocab, TEXT)
    expected = lstm_reference(model, TEXT, vocab)
    assert acts["tokens"] == list(TEXT) and acts["total"] == len(TEXT) and acts["cell"] == "lstm"
    for got, want in zip(acts["layers"], expected, strict=True):
        assert list(got) == ["hidden", "cell", "input", "forget", "candidate", "output"]
        for q, v in want.items():
            torch.testing.assert_close(got[q].double(), v, atol=1e-5, rtol=1e-5)
    # the top layer's h and the last c, as the layer itself computes them (torch's kernel)
    out, (h_n, c_n) = model.rnn(model.embedding(vocab.encode(list(TEXT)))[None])
    torch.testing.assert_close(acts["layers"][-1]["hidden"], out[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(acts["layers"][-1]["cell"][-1], c_n[-1, 0], atol=1e-5, rtol=1e-5)


def test_gru_and_variants_show_their_own_gates():
    model, vocab = char_model("gru")
    acts = activations(model, vocab, TEXT)
    out, h_n = model.rnn(model.embedding(vocab.encode(list(TEXT)))[None])
    assert [list(layer) for layer in acts["layers"]] == [
        ["hidden", "reset", "update", "candidate"]
    ] * 2
    torch.testing.assert_close(acts["layers"][1]["hidden"], out[0], atol=1e-5, rtol=1e-5)
    model, vocab = char_model("coupled", num_layers=1)
    layer = activations(model, vocab, TEXT)["layers"][0]
    torch.testing.assert_close(layer["forget"], 1 - layer["input"])  # CIFG: f = 1 - i
    torch.testing.assert_close(
        layer["cell"][1:],
        layer["forget"][1:] * layer["cell"][:-1] + layer["input"][1:] * layer["candidate"][1:],
    )


def test_long_text_is_cut_with_a_warning_and_a_note(tmp_path):
    model, vocab = char_model(num_layers=1)
    with pytest.warns(UserWarning, match="first 50 of 200 tokens"):
        acts = activations(model, vocab, "ab\n" * 66 + "ab", max_tokens=50)
    assert len(acts["tokens"]) == 50 and acts["total"] == 200
    per_token = 12 * 6  # h, c and 4 gates of 12 units
    with pytest.warns(UserWarning, match=f"first 10 of 200 tokens .*{per_token} per token"):
        assert (
            len(
                activations(model, vocab, "ab\n" * 66 + "ab", max_values=10 * per_token + 5)[
                    "tokens"
                ]
            )
            == 10
        )
    page = write_explorer(acts, tmp_path / "cut.html").read_text()
    assert '"total":200' in page and "Showing the first" in page


def page_data(html: str) -> dict:
    blob = re.search(
        r'<script id="lstmlab-data" type="application/json">(.*?)</script>', html, re.S
    ).group(1)
    return json.loads(blob)


def test_page_embeds_the_corpus_as_escaped_json(tmp_path):
    model, vocab = char_model(num_layers=1)
    acts = activations(model, vocab, TEXT)
    html = write_explorer(acts, tmp_path / "e.html", title="<b>t</b>").read_text()
    blob = re.search(r'type="application/json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in blob and ">" not in blob and "&" not in blob  # nothing the parser sees
    data = page_data(html)
    assert "".join(data["tokens"]) == TEXT and data["title"] == "<b>t</b>"
    forget = data["layers"][0]["forget"]
    assert (
        forget["units"] == 12
        and forget["values"]
        == torch.round(acts["layers"][0]["forget"] * 1000).long().flatten().tolist()
    )
    assert "http://" not in html and "https://" not in html and "src=" not in html  # no network


def test_bad_inputs_name_the_problem(tmp_path):
    model, vocab = char_model(num_layers=1)
    with pytest.raises(ValueError, match="non-empty"):
        activations(model, vocab, "")
    with pytest.raises(ValueError, match="max_tokens must be a positive integer"):
        activations(model, vocab, "ab", max_tokens=0)
    with pytest.raises(ValueError, match="vocabulary"):
        activations(model, None, "ab")
    task_model = SequenceModel("lstm", None, 3, hidden_size=4, vocab_size=5)
    with pytest.raises(ValueError, match="language model"):
        activations(task_model, vocab, "ab")
    with pytest.raises(ValueError, match="no tokens"):
        activations(model, Vocab.build(["a"], level="word"), " \t ")
    grid_model, vocab = char_model("grid")
    with pytest.raises(ValueError, match="'grid' model's layers \\(GridLSTM\\) have no per-layer"):
        activations(grid_model, vocab, "ab")


# --- the page in a real browser ---


def chromium() -> str:
    path = (
        os.environ.get("LSTMLAB_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if path is None:
        pytest.skip(
            "no Chromium to drive the explorer page: apt-get install -y chromium "
            "(or set LSTMLAB_CHROMIUM to a Chromium binary)"
        )
    return path


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the browser test needs Playwright's Python package: pip install playwright")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


def colour(v: float, s: float) -> tuple[int, ...]:
    a, c = (min(1.0, abs(v) / s) if s > 0 else 0.0), (POS if v >= 0 else NEG)
    return tuple(int(round(255 + a * (k - 255) + 1e-9)) for k in c)  # JS rounds .5 up


def test_explorer_page_in_chromium(tmp_path, browser):
    model, vocab = saved(*char_model(), tmp_path)
    page = write_explorer(
        activations(model, vocab, TEXT),
        tmp_path / "explore.html",
        title="<img src=x onerror=window.__pwned=3>",
    )
    want = lstm_reference(model, TEXT, vocab)  # the oracle, not the explorer's own numbers

    tab = browser.new_page(viewport={"width": 1300, "height": 800})
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(page.as_uri())
    tab.wait_for_selector("#text .tok")

    # the corpus and the title are text: nothing in them ran, all of it is shown
    assert tab.evaluate("window.__pwned") is None
    shown = tab.evaluate("[...document.querySelectorAll('#text .tok')].map(s => s.textContent)")
    assert "".join(shown).replace("↵", "\n") == TEXT
    assert tab.text_content("#title") == "<img src=x onerror=window.__pwned=3>"

    layer, unit, gate = 1, 5, "forget"
    tab.select_option("#layer", str(layer))
    tab.select_option("#quantity", gate)
    tab.fill("#unit", str(unit))
    assert tab.input_value("#unit") == str(unit)

    # every token's colour is its forget-gate value on the unit's own scale
    values = want[layer][gate][:, unit].round(decimals=3)  # the page keeps 3 decimals
    s = float(values.abs().max())
    backgrounds = tab.evaluate(
        "[...document.querySelectorAll('#text .tok')].map(s => getComputedStyle(s).backgroundColor)"
    )
    for t, (v, bg) in enumerate(zip(values.tolist(), backgrounds, strict=True)):
        got = tuple(int(n) for n in re.findall(r"\d+", bg))
        assert max(abs(a - b) for a, b in zip(got, colour(v, s))) <= 1, (t, v, bg)

    # centred on the unit's mean: v - m on the scale of the largest |v - m|
    tab.check("#centre")
    m = float(values.double().mean())
    s_centred = float((values.double() - m).abs().max())
    backgrounds = tab.evaluate(
        "[...document.querySelectorAll('#text .tok')].map(s => getComputedStyle(s).backgroundColor)"
    )
    for t, (v, bg) in enumerate(zip(values.tolist(), backgrounds, strict=True)):
        got = tuple(int(n) for n in re.findall(r"\d+", bg))
        assert max(abs(a - b) for a, b in zip(got, colour(v - m, s_centred))) <= 1, (t, v, bg)
    assert abs(float(tab.text_content("#lo")) - (m - s_centred)) <= 1e-3
    assert abs(float(tab.text_content("#hi")) - (m + s_centred)) <= 1e-3
    tab.uncheck("#centre")

    # hovering a token shows every quantity of the chosen unit there
    t = TEXT.index("<script>") + 3
    tab.hover(f'#text .tok[data-i="{t}"]')
    assert tab.text_content("#at-token") == TEXT[t]
    for q in ("hidden", "cell", "input", "forget", "candidate", "output"):
        text = tab.text_content(f'#values tr[data-q="{q}"] td.value')
        assert abs(float(text) - float(want[layer][q][t, unit])) <= 1e-3, (q, text)

    # selecting a span with the mouse ranks units by mean inside minus mean outside
    a, b = TEXT.index("return"), TEXT.index("return") + 5
    box_a = tab.locator(f'#text .tok[data-i="{a}"]').bounding_box()
    box_b = tab.locator(f'#text .tok[data-i="{b}"]').bounding_box()
    tab.mouse.move(box_a["x"] + 1, box_a["y"] + box_a["height"] / 2)
    tab.mouse.down()
    tab.mouse.move(box_b["x"] + box_b["width"] - 1, box_b["y"] + box_b["height"] / 2, steps=5)
    tab.mouse.up()
    assert tab.get_attribute("#selected", "data-start") == str(a)
    assert tab.get_attribute("#selected", "data-end") == str(b)
    # a selection that ends where the next token begins, or starts where the one before ends,
    # covers none of that token
    tab.evaluate(
        """([a, b]) => { const s = document.querySelectorAll('#text .tok');
        getSelection().setBaseAndExtent(s[a - 1].firstChild, 1, s[b + 1].firstChild, 0);
        document.getElementById('text').dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
    }""",
        [a, b],
    )
    assert tab.get_attribute("#selected", "data-start") == str(a)
    assert tab.get_attribute("#selected", "data-end") == str(b)
    inside = torch.zeros(len(TEXT), dtype=torch.bool)
    inside[a : b + 1] = True
    gates = want[layer][gate]
    diff = gates[inside].mean(0) - gates[~inside].mean(0)  # (H,)
    ranked = tab.evaluate(
        "[...document.querySelectorAll('#rank-up button')]"
        ".map(b => [+b.dataset.unit, +b.dataset.diff])"
    )
    assert len(ranked) == 8
    for j, d in ranked:
        assert abs(d - float(diff[j])) <= 2e-3
    assert abs(ranked[0][1] - float(diff.max())) <= 2e-3
    assert [d for _, d in ranked] == sorted((d for _, d in ranked), reverse=True)
    lowest = tab.evaluate("+document.querySelector('#rank-down button').dataset.diff")
    assert abs(lowest - float(diff.min())) <= 2e-3

    # clicking a ranked unit shows it
    tab.click("#rank-up button >> nth=1")
    assert tab.input_value("#unit") == str(ranked[1][0])
    assert errors == []
    tab.close()


def test_word_level_page_shows_markup_as_words(tmp_path, browser):
    text = "a <img/src=x/onerror=window.__pwned=4> b\n<script>window.__pwned=1</script> a"
    words = Vocab(["<unk>"], "word").tokenize(text)
    vocab = Vocab.build(words, level="word")
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), "gru", embed_size=4, hidden_size=5, num_layers=1).eval()
    page = write_explorer(activations(model, vocab, text), tmp_path / "words.html")
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(page.as_uri())
    tab.wait_for_selector("#text .tok")
    assert tab.evaluate("window.__pwned") is None
    assert tab.evaluate("document.querySelectorAll('#text *:not(span)').length") == 0
    shown = tab.evaluate("[...document.querySelectorAll('#text .tok')].map(s => s.textContent)")
    assert shown == [w if w != "<eos>" else "↵" for w in words]
    options = tab.evaluate("[...document.querySelectorAll('#quantity option')].map(o => o.value)")
    assert options == ["hidden", "reset", "update", "candidate"]
    assert errors == []
    tab.close()
