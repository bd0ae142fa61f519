"""Text for language modelling (`lstmlab.data.text`): vocabulary, corpora, split, BPTT streams.

TokenStream's oracle: documents made of distinct token values (document k holds a run of
consecutive integers), so every token says where it came from; the streams, targets and document
starts are then recomputed here with plain Python lists.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmlab.data import TokenStream, Vocab, split_documents, stdlib_corpus, text_corpus, tokenize
from lstmlab.data.corpus import _stdlib_files

# ---- tokenize and Vocab --------------------------------------------------------------------


def test_tokenize_by_char_and_by_word():
    assert tokenize("ab c\n", "char") == ["a", "b", " ", "c", "\n"]
    assert tokenize("the cat\n sat  down\n\nend", "word") == [
        "the",
        "cat",
        "<eos>",
        "sat",
        "down",
        "<eos>",
        "<eos>",
        "end",
    ]
    assert tokenize("a b\n", "word") == ["a", "b", "<eos>"]
    with pytest.raises(ValueError, match=r"level must be one of \('char', 'word'\), got 'byte'"):
        tokenize("x", "byte")


def test_vocab_order_counts_and_limits():
    vocab = Vocab.build("abracadabra", level="char")  # a5 b2 r2 c1 d1
    assert vocab.tokens == ("<unk>", "a", "b", "r", "c", "d")
    assert Vocab.build("abracadabra", min_count=2).tokens == ("<unk>", "a", "b", "r")
    assert Vocab.build("abracadabra", max_size=3).tokens == ("<unk>", "a", "b")
    assert Vocab.build(reversed("abracadabra")) == vocab  # ids do not depend on order
    assert len(vocab) == 6 and vocab.level == "char"


def test_vocab_round_trip_and_unknown_symbols():
    text = "def f(x):\n    return x + 1\n"
    vocab = Vocab.from_documents([text], level="char")
    ids = vocab.encode(vocab.tokenize(text))
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert "".join(vocab.decode(ids)) == text
    assert (ids > 0).all()
    assert vocab.encode("x?y").tolist() == [vocab.index["x"], 0, 0]
    assert vocab.decode([0]) == ["<unk>"]
    with pytest.raises(ValueError, match=r"ids must be integers in \[0, \d+\); got \[99\]"):
        vocab.decode([1, 99])


def test_word_vocab_and_a_literal_unk_in_the_text():
    docs = ["the cat sat\nthe <unk> ran\n", "the dog"]
    vocab = Vocab.from_documents(docs, level="word")
    assert vocab.tokens[:3] == ("<unk>", "the", "<eos>")
    assert vocab.tokens.count("<unk>") == 1
    ids = vocab.encode(vocab.tokenize("the <unk> zebra\n"))
    assert ids.tolist() == [1, 0, 0, 2]
    assert vocab.decode(vocab.encode(vocab.tokenize(docs[0]))) == tokenize(docs[0], "word")


def test_vocab_json_round_trip():
    vocab = Vocab.from_documents(["héllo wörld\n", "ünïcode ✓"], level="word")
    data = json.loads(json.dumps(vocab.to_json()))
    assert data == {"level": "word", "tokens": list(vocab.tokens)}
    again = Vocab.from_json(data)
    assert again == vocab and again.index == vocab.index
    assert again != Vocab(vocab.tokens, "char")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"level": "char", "tokens": ["a", "<unk>"]}, r"tokens\[0\] must be '<unk>', got \('a',\)"),
        (
            {"level": "char", "tokens": ["<unk>", "a", "a"]},
            r"tokens must be unique; repeated: \['a'\]",
        ),
        ({"level": "line", "tokens": ["<unk>"]}, r"level must be one of"),
        ({"tokens": ["<unk>"]}, r"with 'level' and 'tokens'"),
        ({"level": "char", "tokens": ["<unk>", 3]}, r"'tokens' must be a list of strings"),
    ],
)
def test_vocab_from_json_rejects_bad_data(data, message):
    with pytest.raises(ValueError, match=message):
        Vocab.from_json(data)


def test_vocab_build_checks_its_arguments():
    with pytest.raises(ValueError, match=r"min_count must be an integer >= 1, got 0"):
        Vocab.build("abc", min_count=0)
    with pytest.raises(ValueError, match=r"max_size must be None or an integer >= 1, got 0"):
        Vocab.build("abc", max_size=0)


# ---- corpora -------------------------------------------------------------------------------


def test_stdlib_corpus_is_capped_ordered_and_deterministic():
    docs = stdlib_corpus(max_chars=100_000)
    assert len(docs) > 1 and all(docs)
    assert sum(map(len, docs)) == 100_000
    assert stdlib_corpus(max_chars=100_000) == docs
    root = Path(sysconfig.get_paths()["stdlib"])
    first = (root / "__future__.py").read_text(encoding="utf-8")
    assert docs[0] == first[:100_000]  # sorted: __future__.py first
    assert stdlib_corpus(max_chars=10) == [first[:10]]


def test_stdlib_files_leave_out_tests_and_installed_packages():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = _stdlib_files()
    rel = [p.relative_to(root).parts for p in files]
    assert len(files) > 300 and rel == sorted(rel)
    assert all(p.suffix == ".py" for p in files)
    left_out = {"test", "tests", "idle_test", "site-packages"}
    assert not any(left_out & set(parts) for parts in rel)
    assert ("os.py",) in rel and ("json", "decoder.py") in rel


def test_text_corpus_reads_a_file_or_a_folder_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("bee")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "z.txt").write_text("zed")
    (tmp_path / "a" / "b.md").write_text("a-bee")
    (tmp_path / "a" / "empty.txt").write_text("")
    (tmp_path / ".hidden").write_text("secret")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("secret")
    (tmp_path / "bad.txt").write_bytes(b"ok \xff\xfe end")
    assert text_corpus(tmp_path) == ["a-bee", "zed", "bee", "ok \ufffd\ufffd end"]
    assert text_corpus(str(tmp_path / "b.txt")) == ["bee"]
    assert text_corpus(tmp_path, max_chars=7) == ["a-bee", "ze"]


def test_text_corpus_missing_or_empty(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"text corpus not found: .*nowhere"):
        text_corpus(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"the text corpus at .*empty' is empty"):
        text_corpus(tmp_path / "empty")
    (tmp_path / "empty" / "blank.txt").write_text("")
    with pytest.raises(ValueError, match=r"is empty"):
        text_corpus(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"max_chars must be None or an integer >= 1, got 0"):
        stdlib_corpus(max_chars=0)


# ---- split ---------------------------------------------------------------------------------


def test_split_documents_is_a_deterministic_partition():
    docs = [f"document {k}\n" * (k % 7 + 1) for k in range(200)]
    train, valid, test = split_documents(docs, valid_fraction=0.1, test_fraction=0.05)
    assert (len(train), len(valid), len(test)) == (170, 20, 10)
    assert sorted(train + valid + test) == sorted(docs)
    for part in (train, valid, test):  # corpus order kept
        assert [docs.index(d) for d in part] == sorted(docs.index(d) for d in part)
    assert split_documents(docs, 0.1, 0.05) == (train, valid, test)
    # a document's split does not depend on where it sits in the corpus
    shuffled = docs[::-1]
    assert [sorted(p) for p in split_documents(shuffled, 0.1, 0.05)] == [
        sorted(p) for p in (train, valid, test)
    ]
    # held-out documents come from all over, not only the tail
    assert min(docs.index(d) for d in test) < 100


def test_split_documents_small_and_bad_inputs():
    assert split_documents(["a", "b", "c"]) != ([], [], [])
    assert [len(p) for p in split_documents(["a", "b", "c"])] == [1, 1, 1]
    assert split_documents(["a"], 0, 0) == (["a"], [], [])
    with pytest.raises(ValueError, match=r"needs at least 3 documents .* got 1 \(a single text"):
        split_documents(["just one file"])
    with pytest.raises(ValueError, match=r"valid_fraction must be a number in \[0, 1\), got 1.5"):
        split_documents(["a"] * 10, valid_fraction=1.5)
    with pytest.raises(ValueError, match=r"valid_fraction \+ test_fraction must be < 1"):
        split_documents(["a"] * 10, 0.5, 0.5)


# ---- TokenStream ---------------------------------------------------------------------------


def numbered_documents(lengths: list[int]) -> list[torch.Tensor]:
    """Document k: consecutive integers, distinct across documents."""
    docs, start = [], 0
    for n in lengths:
        docs.append(torch.arange(start, start + n))
        start += n
    return docs


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=8),
    batch_size=st.integers(1, 5),
    bptt=st.integers(1, 9),
)
def test_stream_reproduces_the_documents_stream_by_stream(lengths, batch_size, bptt):
    total = sum(lengths)
    if total < 2 * batch_size:
        with pytest.raises(
            ValueError,
            match=rf"at least 2 \* batch_size = {2 * batch_size} "
            rf"tokens .* got {total}",
        ):
            TokenStream(numbered_documents(lengths), batch_size, bptt)
        return
    stream = TokenStream(numbered_documents(lengths), batch_size, bptt)
    flat = list(range(total))  # the documents end to end (values = positions)
    firsts = {sum(lengths[:k]) for k, n in enumerate(lengths) if n > 0}
    per = total // batch_size
    chunks = list(stream)
    assert len(chunks) == len(stream) == -(-(per - 1) // bptt)
    assert all(c.inputs.shape == (batch_size, bptt) for c in chunks[:-1])
    assert 1 <= chunks[-1].inputs.shape[1] <= bptt
    inputs = torch.cat([c.inputs for c in chunks], dim=1)
    targets = torch.cat([c.targets for c in chunks], dim=1)
    starts = torch.cat([c.starts for c in chunks], dim=1)
    for b in range(batch_size):
        expected = flat[b * per : (b + 1) * per]
        assert inputs[b].tolist() == expected[:-1]
        assert targets[b].tolist() == expected[1:]
        assert starts[b].tolist() == [t in firsts for t in expected[:-1]]
    for before, after in zip(chunks, chunks[1:]):  # shifted by one across chunk edges
        assert torch.equal(before.targets[:, -1], after.inputs[:, 0])


def test_stream_marks_document_starts_mid_chunk():
    stream = TokenStream(numbered_documents([4, 3, 9]), batch_size=2, bptt=5)  # S = 8
    first = stream[0]
    assert first.inputs.tolist() == [[0, 1, 2, 3, 4], [8, 9, 10, 11, 12]]
    assert first.starts.tolist() == [[True, False, False, False, True], [False] * 5]
    assert stream[1].inputs.tolist() == [[5, 6], [13, 14]]
    assert stream[1].targets.tolist() == [[6, 7], [14, 15]]
    # document 2 starts at token 7, stream 0's last token: a target there, never an input
    assert stream[1].starts.tolist() == [[False, False], [False, False]]
    with pytest.raises(IndexError, match=r"chunk index must be in \[0, 2\), got 2"):
        stream[2]
    # empty documents have no start and change nothing
    with_empty = TokenStream(numbered_documents([0, 4, 0, 3, 9, 0]), batch_size=2, bptt=5)
    for k in range(2):
        assert all(torch.equal(a, b) for a, b in zip(with_empty[k], stream[k]))


def test_stream_chunks_are_copies():
    stream = TokenStream(numbered_documents([20]), batch_size=2, bptt=4)
    stream[0].inputs.zero_()
    assert stream[0].inputs[0, 1] == 1


def test_stream_resumes_at_the_same_chunk():
    docs = numbered_documents([37, 5, 61, 12])
    reference = list(TokenStream(docs, 3, 4))
    stream = TokenStream(docs, 3, 4)
    for _ in zip(range(4), stream):
        pass  # chunks 0..3 handed out
    state = json.loads(json.dumps(stream.state_dict()))  # plain JSON, as in a checkpoint
    assert state["position"] == 4
    resumed = TokenStream(docs, 3, 4)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(reference) - 4
    for got, want in zip(rest, reference[4:]):
        assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert resumed.position == 0  # a finished pass rewinds
    assert len(list(resumed)) == len(reference)


def test_stream_refuses_a_state_from_another_layout():
    docs = numbered_documents([50])
    state = TokenStream(docs, 2, 5).state_dict()
    with pytest.raises(ValueError, match=r"state bptt=5 does not match this stream's bptt=6"):
        TokenStream(docs, 2, 6).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state steps=25 does not match this stream's steps=24"):
        TokenStream(numbered_documents([48]), 2, 5).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state position must be an integer in \[0, 5\], got 9"):
        TokenStream(docs, 2, 5).load_state_dict({**state, "position": 9})


def test_stream_checks_its_arguments():
    docs = numbered_documents([10])
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        TokenStream(docs, 0, 4)
    with pytest.raises(ValueError, match=r"bptt must be an integer >= 1, got 0"):
        TokenStream(docs, 2, 0)
    with pytest.raises(
        TypeError,
        match=r"documents\[1\] must be an integer tensor .* "
        r"got torch.float32",
    ):
        TokenStream([torch.arange(4), torch.zeros(3)], 1, 2)
    with pytest.raises(ValueError, match=r"documents\[0\] must be 1-D \(N,\), got shape \(2, 2\)"):
        TokenStream([torch.zeros(2, 2, dtype=torch.long)], 1, 2)
    with pytest.raises(ValueError, match=r"at least 2 \* batch_size = 2 tokens .* got 0"):
        TokenStream([], 1, 2)


def test_from_stdlib_text_to_chunks():
    docs = stdlib_corpus(max_chars=20_000)
    vocab = Vocab.from_documents(docs, level="char")
    encoded = [vocab.encode(vocab.tokenize(d)) for d in docs]
    stream = TokenStream(encoded, batch_size=4, bptt=32)
    inputs, targets, starts = stream[0]
    assert inputs.shape == targets.shape == starts.shape == (4, 32)
    assert "".join(vocab.decode(inputs[0])) == docs[0][:32]
    assert int(starts.sum()) == 1 and bool(starts[0, 0])
    # every document start that lands on an input step (not a stream's last token), once
    offsets = torch.tensor([0] + [len(d) for d in docs]).cumsum(0)[:-1].tolist()
    per = sum(map(len, docs)) // 4
    expected = sum(1 for p in offsets if p < 4 * per and p % per != per - 1)
    assert sum(int(c.starts.sum()) for c in stream) == expected == len(docs)
