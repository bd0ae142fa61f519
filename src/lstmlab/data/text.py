"""Text for language modelling: corpora, a vocabulary, and streams for truncated BPTT.

The path from text to batches::

    docs = stdlib_corpus(max_chars=2_000_000)          # or text_corpus("my/folder")
    train, valid, test = split_documents(docs)
    vocab = Vocab.from_documents(train, level="char")
    stream = TokenStream([vocab.encode(vocab.tokenize(d)) for d in train], batch_size=32, bptt=64)
    for inputs, targets, starts in stream:             # each (32, 64)
        ...

A document is one string (one file). Vocabularies are saved as plain JSON beside a checkpoint
(:meth:`Vocab.to_json`), never pickled.

The code lives in :mod:`.vocab` (:func:`tokenize`, :class:`Vocab`), :mod:`.corpus` (the corpora
and :func:`split_documents`) and :mod:`.stream` (:class:`TokenStream`); this module gathers them
under one name.
"""

from lstmlab.data.corpus import split_documents, stdlib_corpus, text_corpus
from lstmlab.data.stream import Chunk, TokenStream
from lstmlab.data.vocab import EOS, LEVELS, UNK, Vocab, tokenize

__all__ = [
    "UNK",
    "EOS",
    "LEVELS",
    "tokenize",
    "Vocab",
    "stdlib_corpus",
    "text_corpus",
    "split_documents",
    "TokenStream",
    "Chunk",
]
