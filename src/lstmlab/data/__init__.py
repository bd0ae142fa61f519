"""Data: synthetic tasks (:mod:`.tasks`), text for language modelling (:mod:`.vocab`,
:mod:`.corpus`, :mod:`.stream`; gathered in :mod:`.text`) and the encoder-decoder toy tasks
(:mod:`.seq2seq_tasks`)."""

from .corpus import split_documents, stdlib_corpus, text_corpus
from .seq2seq_tasks import DateTask, ReverseTask, Seq2SeqTask, exact_match
from .stream import Chunk, TokenStream
from .tasks import TASKS, AddingTask, CopyTask, RecallTask, Task, make_task
from .vocab import Vocab, tokenize

__all__ = ["Task", "AddingTask", "CopyTask", "RecallTask", "TASKS", "make_task", "Vocab",
           "tokenize", "stdlib_corpus", "text_corpus", "split_documents", "TokenStream", "Chunk",
           "DateTask", "ReverseTask", "Seq2SeqTask", "exact_match"]
