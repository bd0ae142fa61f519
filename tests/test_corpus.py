"""Corpora that just work: a single text file holds out its last lines; entries of a folder that
are not regular files are skipped without being opened; a binary file is named in a warning."""

from __future__ import annotations

import os
import signal
import warnings
from contextlib import contextmanager

import pytest

from lstmlab.cli.main import main as cli
from lstmlab.data import CorpusWarning, split_corpus, text_corpus


@contextmanager
def within(seconds: int):
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""

    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_single_text_file_holds_out_its_last_lines(tmp_path):
    text = "".join(f"line {k}: to be, or not to be\n" for k in range(1, 401))
    train, valid, test, note = split_corpus([text])
    assert len(train) == len(valid) == len(test) == 1
    assert train[0] + valid[0] + test[0] == text  # by position, nothing lost or reordered
    assert train[0].endswith("\n") and valid[0].endswith("\n")  # cut at line boundaries
    assert test[0].startswith("line 381:") and valid[0].startswith("line 361:")  # 5% + 5%
    assert "lines 1-360" in note and "lines 361-380" in note and "lines 381-400" in note
    # a text without line breaks is cut where the fractions say
    train, valid, test, _ = split_corpus(["x" * 1000])
    assert [len(train[0]), len(valid[0]), len(test[0])] == [900, 50, 50]
    with pytest.raises(ValueError, match="too short"):
        split_corpus(["ab"])
    # enough files: whole documents, as before
    docs = [f"document {k}\n" for k in range(40)]
    train, valid, test, note = split_corpus(docs)
    assert (len(train), len(valid), len(test)) == (36, 2, 2) and "held out whole" in note


def test_cli_trains_on_one_text_file_and_says_what_it_held_out(tmp_path, capsys):
    book = tmp_path / "input.txt"
    book.write_text("".join(f"First Citizen: speak, speak {k}.\n" for k in range(300)))
    out = tmp_path / "run"
    args = ["train", "--text", str(book), "--hidden-size", "8", "--embed-size", "8"]
    args += ["--batch-size", "4", "--bptt", "16", "--steps", "2", "--eval-every", "2"]
    assert cli([*args, "--out", str(out)]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "held out" in line]
    assert len(said) == 1 and str(book) in said[0] and "lines 286-300" in said[0], said
    assert cli(["eval", str(out / "best"), "--split", "test"]) == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_folder_skips_fifos_devices_and_symlink_loops_with_a_warning(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    (folder / "link.txt").symlink_to(folder / "a.txt")  # a link to a file is read
    os.mkfifo(folder / "pipe")
    (folder / "null").symlink_to(os.devnull)
    (folder / "self").symlink_to(folder / "self")  # ELOOP
    (folder / "sub" / "up").symlink_to(folder)  # a loop through a folder link
    (folder / "gone").symlink_to(folder / "nowhere")
    with within(20), pytest.warns(CorpusWarning) as caught:
        docs = text_corpus(folder)
    assert docs == ["alpha", "alpha", "beta"]
    said = " | ".join(str(w.message) for w in caught)
    for name in ("pipe", "null", "self", "up", "gone"):
        assert f"{folder}/{name}" in said or f"{folder}/sub/{name}" in said, (name, said)
    assert "FIFO" in said and "device" in said
    os.mkfifo(tmp_path / "fifo")
    with within(20), pytest.raises(ValueError, match="not a file or folder"):
        text_corpus(tmp_path / "fifo")


def test_a_binary_corpus_is_named_in_a_warning(tmp_path):
    elf = tmp_path / "ls"
    elf.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 8)
    latin = tmp_path / "packed.bin"
    latin.write_bytes(bytes(range(128, 256)) * 8)  # no NUL, but hardly any valid UTF-8
    for path in (elf, latin):
        with pytest.warns(CorpusWarning, match=rf"{path}: looks binary"):
            text_corpus(path)
    prose = tmp_path / "prose.txt"
    prose.write_text(
        "Übermut tut selten gut, ça va.\n" * 40 + "one odd byte: \udcff\n",
        "utf-8",
        "surrogateescape",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert text_corpus(prose)[0].startswith("Übermut")


def test_cli_shows_a_corpus_warning_as_one_line(tmp_path, capsys):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(6):
        (folder / f"doc{k}.txt").write_text(f"def f{k}(x):\n    return x + {k}\n" * 20)
    (folder / "loop").symlink_to(folder / "loop")
    args = ["train", "--text", str(folder), "--hidden-size", "8", "--batch-size", "2"]
    assert cli([*args, "--bptt", "8", "--steps", "1", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if "warning" in line]
    assert said == [
        f"lstmlab train: warning: {folder}/loop: skipped (Too many levels of symbolic links)"
    ]
