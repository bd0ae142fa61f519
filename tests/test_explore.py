"""The gate explorer: activations against the LSTM/GRU equations and torch, the page in Chromium.

The browser tests drive the real page in headless Chromium (Debian's ``chromium`` through
Playwright, no browser download); they are skipped, saying why, only where neither can be found.
They measure the page's size and the time it takes to open (printed and recorded, not asserted:
no wall-clock limits in the tests), and check the text as the browser lays it out.
"""

from __future__ import annotations

import base64
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
from lstmlab.viz.diagram import cell_svg
from lstmlab.viz.explore import activations, pack, unpack, write_explorer

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
    assert forget["units"] == 12 and set(forget) == {"units", "lo", "step", "data"}
    within_half_a_level(unpack(forget), acts["layers"][0]["forget"], forget)
    assert "http://" not in html and "https://" not in html and "src=" not in html  # no network


def within_half_a_level(got: torch.Tensor, want: torch.Tensor, packed: dict, atol=1e-9):
    """``got`` (T, U) equals ``want`` within the packing's precision: half of each unit's step."""
    half = torch.tensor(packed["step"], dtype=torch.double) / 2
    err = (got.double() - want.double()).abs()
    assert got.shape == want.shape and bool((err <= half + atol).all()), float((err - half).max())


def test_packing_keeps_each_value_within_half_a_level():
    torch.manual_seed(1)
    v = torch.cat(
        [torch.randn(300, 3) * torch.tensor([0.01, 1.0, 50.0]), torch.full((300, 1), 0.25)], 1
    )
    packed = pack(v)
    assert packed["units"] == 4 and len(packed["data"]) == 4 * -(-300 * 4 // 3)  # base64
    got = unpack(packed)
    within_half_a_level(got, v, packed)
    assert packed["step"][3] == 0 and bool((got[:, 3] == 0.25).all())  # a unit that never moves
    # a unit's smallest and largest values are levels 0 and 255: kept exactly (to rounding)
    torch.testing.assert_close(got.min(0).values, v.double().min(0).values)
    torch.testing.assert_close(got.max(0).values, v.double().max(0).values)
    json.dumps(pack(torch.tensor([[float("nan")], [1.0]])), allow_nan=False)  # valid JSON


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


def test_explore_command_counts_replaced_bytes(tmp_path):
    from lstmlab.cli.main import main

    saved(*char_model(num_layers=1), tmp_path)
    text = tmp_path / "latin1.txt"
    # two invalid sequences (a lone 0xff, a cut-off two-byte sequence) and one real U+FFFD
    text.write_bytes(b"def f(x):\xff\n    return x\xc3 + 1 \xef\xbf\xbd\n")
    out = tmp_path / "e.html"
    assert main(["explore", str(tmp_path / "ckpt"), "--text", str(text), "-o", str(out)]) == 0
    data = page_data(out.read_text())
    assert data["replaced"] == 2 and "".join(data["tokens"]).count("\ufffd") == 3
    text.write_text("def f(x): \ufffd\n", encoding="utf-8")  # valid UTF-8: no notice
    assert main(["explore", str(tmp_path / "ckpt"), "--text", str(text), "-o", str(out)]) == 0
    assert page_data(out.read_text())["replaced"] == 0
    with pytest.raises(ValueError, match="replaced must be a non-negative integer"):
        write_explorer(activations(*char_model(num_layers=1), "ab"), out, replaced=-1)


BIG_CHARS, BIG_UNITS, BIG_LIMIT = 5_000, 32, 1_500_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """5,000 characters of Python read by a one-layer 32-unit LSTM: the page and its values."""
    with open(__file__, encoding="utf-8") as f:
        source = f.read()
    text = (source * (BIG_CHARS // len(source) + 1))[:BIG_CHARS]
    torch.manual_seed(0)
    vocab = Vocab.build(text, level="char")
    model = LanguageModel(
        len(vocab), "lstm", embed_size=32, hidden_size=BIG_UNITS, num_layers=1
    ).eval()  # as `lstmlab train --task text --hidden-size 32` makes it
    acts = activations(model, vocab, text)
    page = write_explorer(acts, tmp_path_factory.mktemp("big") / "big.html")
    return acts, page


def test_page_for_5000_characters_of_a_32_unit_model_is_small(big):
    acts, page = big
    assert len(acts["tokens"]) == BIG_CHARS
    assert page.stat().st_size <= BIG_LIMIT, page.stat().st_size
    data = page_data(page.read_text(encoding="utf-8"))
    for got, want in zip(data["layers"], acts["layers"], strict=True):
        for q, v in want.items():
            within_half_a_level(unpack(got[q]), v, got[q])


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


def open_page(browser, page, **kwargs):
    """A tab with ``page`` open and drawn; the errors its script reports are collected in
    ``tab.errors``."""
    tab = browser.new_page(**kwargs)
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.goto(page.as_uri())
    tab.wait_for_selector("html[data-ready=true]", state="attached")
    return tab


def page_values(tab, layer: int, quantity: str, units: int) -> torch.Tensor:
    """The values the page's script decoded, (T, units)."""
    got = tab.evaluate(  # as float64 bytes in base64: quicker to hand over than a list
        """([l, q]) => { const b = new Uint8Array(new Float64Array(window.lstmlab.values(l, q))
        .buffer); let s = ""; for (let i = 0; i < b.length; i += 8192)
        s += String.fromCharCode(...b.subarray(i, i + 8192)); return btoa(s); }""",
        [layer, quantity],
    )
    raw = bytearray(base64.b64decode(got))
    return torch.frombuffer(raw, dtype=torch.double).reshape(-1, units)


def test_big_page_opens_quickly_with_the_models_values(big, browser, record_property):
    acts, page = big
    size = page.stat().st_size
    tab = open_page(browser, page)
    ready_ms = tab.evaluate("performance.getEntriesByName('lstmlab-ready')[0].startTime")
    tab.close()
    tab = open_page(browser, page)  # again, with the browser warm
    warm_ms = tab.evaluate("performance.getEntriesByName('lstmlab-ready')[0].startTime")
    record_property("explorer_page_bytes", size)
    record_property("explorer_load_ms", round(ready_ms))
    record_property("explorer_load_ms_warm", round(warm_ms))
    print(
        f"\nexplorer page, {BIG_CHARS} characters, {BIG_UNITS}-unit LSTM: {size / 1e6:.2f} MB, "
        f"drawn {ready_ms:.0f} ms after navigation ({warm_ms:.0f} ms warm)"
    )
    assert size <= BIG_LIMIT
    assert tab.evaluate("document.querySelectorAll('#text .tok').length") == BIG_CHARS
    data = page_data(page.read_text(encoding="utf-8"))
    for q, v in acts["layers"][0].items():  # what the page decodes is the model's, to a level
        within_half_a_level(page_values(tab, 0, q, v.shape[1]), v, data["layers"][0][q])
    assert tab.errors == []
    tab.close()


def colour(v: float, s: float) -> tuple[int, ...]:
    a, c = (min(1.0, abs(v) / s) if s > 0 else 0.0), (POS if v >= 0 else NEG)
    return tuple(int(round(255 + a * (k - 255) + 1e-9)) for k in c)  # JS rounds .5 up


def shown_text(text: str) -> str:
    """``TEXT`` as the page's boxes show it: a newline as ↵, a line separator as LSEP."""
    return text.replace("\n", "↵").replace("\u2028", "LSEP")


def test_explorer_page_in_chromium(tmp_path, browser):
    model, vocab = saved(*char_model(), tmp_path)
    page = write_explorer(
        activations(model, vocab, TEXT),
        tmp_path / "explore.html",
        title="<img src=x onerror=window.__pwned=3>",
    )
    want = lstm_reference(model, TEXT, vocab)  # the oracle, not the explorer's own numbers
    data = page_data(page.read_text(encoding="utf-8"))
    tab = open_page(browser, page, viewport={"width": 1300, "height": 800})

    # the corpus and the title are text: nothing in them ran, all of it is shown
    assert tab.evaluate("window.__pwned") is None
    shown = tab.evaluate("[...document.querySelectorAll('#text .tok')].map(s => s.textContent)")
    assert "".join(shown) == shown_text(TEXT)
    assert tab.text_content("#title") == "<img src=x onerror=window.__pwned=3>"

    # every value the page decodes is the model's (the float64 equations), to half a level
    decoded = {}
    for k, layer_want in enumerate(want):
        for q, v in layer_want.items():
            decoded[k, q] = page_values(tab, k, q, v.shape[1])
            within_half_a_level(decoded[k, q], v, data["layers"][k][q], atol=1e-5)

    layer, unit, gate = 1, 5, "forget"
    tab.select_option("#layer", str(layer))
    tab.select_option("#quantity", gate)
    tab.fill("#unit", str(unit))
    assert tab.input_value("#unit") == str(unit)

    # every token's colour is its forget-gate value on the unit's own scale
    values = decoded[layer, gate][:, unit]
    s = float(values.abs().max())
    backgrounds = tab.evaluate(
        "[...document.querySelectorAll('#text .tok')].map(s => getComputedStyle(s).backgroundColor)"
    )
    for t, (v, bg) in enumerate(zip(values.tolist(), backgrounds, strict=True)):
        got = tuple(int(n) for n in re.findall(r"\d+", bg))
        assert max(abs(a - b) for a, b in zip(got, colour(v, s))) <= 1, (t, v, bg)

    # centred on the unit's mean: v - m on the scale of the largest |v - m|
    tab.check("#centre")
    m = float(values.mean())
    s_centred = float((values - m).abs().max())
    backgrounds = tab.evaluate(
        "[...document.querySelectorAll('#text .tok')].map(s => getComputedStyle(s).backgroundColor)"
    )
    for t, (v, bg) in enumerate(zip(values.tolist(), backgrounds, strict=True)):
        got = tuple(int(n) for n in re.findall(r"\d+", bg))
        assert max(abs(a - b) for a, b in zip(got, colour(v - m, s_centred))) <= 1, (t, v, bg)
    assert abs(float(tab.text_content("#lo")) - (m - s_centred)) <= 1e-3
    assert abs(float(tab.text_content("#hi")) - (m + s_centred)) <= 1e-3
    tab.uncheck("#centre")

    # hovering a token shows every quantity of the chosen unit there, to the packing's precision
    t = TEXT.index("<script>") + 3
    tab.hover(f'#text .tok[data-i="{t}"]')
    assert tab.text_content("#at-token") == TEXT[t]
    assert tab.text_content("#at-code") == f"U+{ord(TEXT[t]):04X}"
    for q in ("hidden", "cell", "input", "forget", "candidate", "output"):
        text = tab.text_content(f'#values tr[data-q="{q}"] td.value')
        half = data["layers"][layer][q]["step"][unit] / 2
        assert abs(float(text) - float(want[layer][q][t, unit])) <= half + 5e-4 + 1e-5, (q, text)

    # the cell's diagram beside the text: the library's own SVG, each gate's box lit by that
    # gate's value for the chosen unit at the hovered token, on the unit's scale over the text
    svg = cell_svg(model.rnn.cells[0])
    assert data["diagram"] == svg.split("?>", 1)[1].strip().replace(
        ' xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert (
        tab.evaluate("document.querySelectorAll('#diagram script, #diagram [onload]').length") == 0
    )
    gates = ("input", "forget", "candidate", "output")
    assert sorted(
        tab.evaluate(
            "[...document.querySelectorAll('#diagram g.layer[data-gate]')].map(g => g.dataset.gate)"
        )
    ) == sorted(gates)

    def lit(t: int) -> dict[str, tuple[float, tuple[int, ...]]]:
        tab.hover(f'#text .tok[data-i="{t}"]')
        got = tab.evaluate(
            """[...document.querySelectorAll('#diagram g[data-gate]')].map(g => [g.dataset.gate,
            +g.dataset.value, getComputedStyle(g.querySelector('rect, ellipse')).fill])"""
        )
        return {q: (v, tuple(int(n) for n in re.findall(r"\d+", fill))) for q, v, fill in got}

    seen = {}
    for t in (TEXT.index("return"), TEXT.index("<script>") + 3):
        seen[t] = lit(t)
        for q in gates:
            v, fill = seen[t][q]
            half = data["layers"][layer][q]["step"][unit] / 2
            assert abs(v - float(want[layer][q][t, unit])) <= half + 1e-5, (t, q, v)
            values_q = decoded[layer, q][:, unit]
            expected = colour(float(values_q[t]), float(values_q.abs().max()))
            assert max(abs(a - b) for a, b in zip(fill, expected)) <= 1, (t, q, fill, expected)
    a_t, b_t = seen
    assert any(seen[a_t][q][1] != seen[b_t][q][1] for q in gates)  # the boxes follow the mouse

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
    for gates, tol in ((decoded[layer, gate], 1e-9), (want[layer][gate], None)):
        diff = gates[inside].mean(0) - gates[~inside].mean(0)  # (H,)
        ranked = tab.evaluate(
            "[...document.querySelectorAll('#rank-up button')]"
            ".map(b => [+b.dataset.unit, +b.dataset.diff])"
        )
        assert len(ranked) == 8
        # to the decoded values exactly; to the model's within the unit's step
        steps = data["layers"][layer][gate]["step"]
        for j, d in ranked:
            assert abs(d - float(diff[j])) <= (tol if tol is not None else steps[j] / 2 + 1e-5)
        if tol is not None:
            assert abs(ranked[0][1] - float(diff.max())) <= tol
            lowest = tab.evaluate("+document.querySelector('#rank-down button').dataset.diff")
            assert abs(lowest - float(diff.min())) <= tol
    assert [d for _, d in ranked] == sorted((d for _, d in ranked), reverse=True)

    # clicking a ranked unit shows it
    tab.click("#rank-up button >> nth=1")
    assert tab.input_value("#unit") == str(ranked[1][0])
    assert tab.errors == []
    tab.close()


FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl
FLAG = "\U0001f1eb\U0001f1f7"  # regional indicators F, R
THUMB = "\U0001f44d\U0001f3fd"  # thumbs up, medium skin tone
ACCENT = "e\u0301"  # e and a combining acute accent
HEBREW = "\u05e9\u05dc\u05d5\u05dd"  # shalom
FAITHFUL = (
    f"abc {HEBREW} reversed {HEBREW}!\n"
    "\u202ereversed\u202c ok\n"
    f"fam {FAMILY} flag {FLAG} thumb {THUMB} {ACCENT}\n"
    "nul\x00bel\x07esc\x1bcr\rsame line\r\nnext \ufffd"
)


def test_text_is_shown_faithfully(tmp_path, browser):
    vocab = Vocab.build(FAITHFUL, level="char")
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), "lstm", embed_size=4, hidden_size=6).eval()
    acts = activations(model, vocab, FAITHFUL)
    page = write_explorer(acts, tmp_path / "faithful.html", replaced=2)
    tab = open_page(browser, page, viewport={"width": 1300, "height": 800})
    boxes = tab.evaluate(
        """[...document.querySelectorAll('#text .tok')].map(s => { const r =
        s.getBoundingClientRect(); return {i: +s.dataset.i, n: +(s.dataset.n || 1),
        text: s.textContent, cls: s.className, x: r.left, right: r.right, y: r.top + r.height / 2,
        background: getComputedStyle(s).backgroundImage}; })"""
    )
    at = {b["i"]: b for b in boxes}
    # every token in exactly one box, in order
    assert [t for b in boxes for t in range(b["i"], b["i"] + b["n"])] == list(range(len(FAITHFUL)))

    # boxes run left to right in the order the model reads them: right-to-left letters stay in
    # logical order, "reversed" beside them or after an RLO is not reversed
    lines: list[list[dict]] = [[]]
    for b in boxes:
        lines[-1].append(b)
        if b["text"] == "↵":
            lines.append([])
    for line in lines:
        for left, right in zip(line, line[1:]):
            assert right["x"] >= left["right"] - 0.5, (left, right)
            assert abs(right["y"] - left["y"]) < 8, (left, right)  # a CR does not break the line
    for above, below in zip(lines, lines[1:]):
        assert below[0]["y"] > above[0]["y"] + 8  # a newline does
    assert "".join(b["text"] for b in lines[0]) == f"abc {HEBREW} reversed {HEBREW}!↵"
    assert "".join(b["text"] for b in lines[1]) == "RLOreversedPDF ok↵"
    assert "abbr" in at[FAITHFUL.index("\u202e")]["cls"]

    # a grapheme cluster is one box holding all its code points, one colour stripe for each
    # (left to right, each as wide as the others: a colour stop at its start and its end)
    layers = page_data(page.read_text(encoding="utf-8"))["layers"]
    hidden = unpack(layers[0]["hidden"])[:, 0]  # what the page shows first: h, unit 0
    for cluster in (FAMILY, FLAG, THUMB, ACCENT):
        first = FAITHFUL.index(cluster)
        box = at[first]
        assert box["n"] == len(cluster) and box["text"] == cluster, box
        stops = re.findall(r"rgb\((\d+), (\d+), (\d+)\) ([\d.]+)%", box["background"])
        assert len(stops) == 2 * len(cluster), box
        for k in range(len(cluster)):
            want = colour(float(hidden[first + k]), float(hidden.abs().max()))
            for stop, at_pos in zip(stops[2 * k : 2 * k + 2], (k, k + 1), strict=True):
                assert max(abs(int(a) - b) for a, b in zip(stop[:3], want)) <= 1, (k, stop)
                assert abs(float(stop[3]) - 100 * at_pos / len(cluster)) < 1e-3, (k, stop)
    # ... and the mouse over a stripe shows that code point's values
    first = FAITHFUL.index(FAMILY)
    tab.select_option("#quantity", "cell")
    r = tab.locator(f'#text .tok[data-i="{first}"]').bounding_box()
    cell = unpack(layers[0]["cell"])
    for k in range(len(FAMILY)):
        tab.mouse.move(r["x"] + (k + 0.5) * r["width"] / len(FAMILY), r["y"] + r["height"] / 2)
        assert tab.text_content("#at-where").startswith(f"token {first + k} ")
        assert tab.text_content("#at-token") == FAMILY
        code = f"U+{ord(FAMILY[k]):04X}{' ZWJ' * (k % 2)} · code point {k + 1} of {len(FAMILY)}"
        assert tab.text_content("#at-code").startswith(code)
        got = float(tab.text_content('#values tr[data-q="cell"] td.value'))
        assert abs(got - float(cell[first + k, 0])) <= 5e-4 + 1e-9

    # control characters as symbols, named in the side panel
    controls = (("\x00", "␀", "NUL"), ("\x07", "␇", "BEL"), ("\x1b", "␛", "ESC"), ("\r", "⏎", "CR"))
    for char, symbol, name in controls:
        t = FAITHFUL.index(char)
        assert at[t]["text"] == symbol and "ctl" in at[t]["cls"], at[t]
        tab.hover(f'#text .tok[data-i="{t}"]')
        assert tab.text_content("#at-code") == f"U+{ord(char):04X} {name}"
    crlf = FAITHFUL.index("\r\n")
    assert at[crlf]["text"] == "⏎" and at[crlf + 1]["text"] == "↵"

    # the notice for replaced bytes, the U+FFFD underlined
    notice = tab.locator("#note-replaced")
    assert notice.is_visible()
    assert "not valid UTF-8: 2 invalid byte sequences were replaced" in notice.text_content()
    assert "replaced" in at[FAITHFUL.index("\ufffd")]["cls"]
    assert tab.locator("#note-cut").count() == 0
    assert tab.errors == []
    tab.close()


def test_word_level_page_shows_markup_as_words(tmp_path, browser):
    text = (
        "a <img/src=x/onerror=window.__pwned=4> b\n<script>window.__pwned=1</script> a\n"
        f"{HEBREW} reversed \u202etxt.exe {HEBREW}"
    )
    words = Vocab(["<unk>"], "word").tokenize(text)
    vocab = Vocab.build(words, level="word")
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), "gru", embed_size=4, hidden_size=5, num_layers=1).eval()
    page = write_explorer(activations(model, vocab, text), tmp_path / "words.html")
    tab = open_page(browser, page)
    assert tab.evaluate("window.__pwned") is None
    assert tab.evaluate("document.querySelectorAll('#text *:not(span)').length") == 0
    shown = tab.evaluate("[...document.querySelectorAll('#text .tok')].map(s => s.textContent)")
    assert shown == [w.replace("\u202e", "RLO") if w != "<eos>" else "↵" for w in words]
    # words left to right in the order read, each in its own direction: no RLO reaches the page
    xs = tab.evaluate(
        "[...document.querySelectorAll('#text .tok')].slice(-4)"
        ".map(s => [s.textContent, s.getBoundingClientRect().left])"
    )
    assert [w for w, _ in xs] == [HEBREW, "reversed", "RLOtxt.exe", HEBREW]
    assert [x for _, x in xs] == sorted(x for _, x in xs)
    options = tab.evaluate("[...document.querySelectorAll('#quantity option')].map(o => o.value)")
    assert options == ["hidden", "reset", "update", "candidate"]
    assert tab.errors == []
    tab.close()
