"""Data: synthetic tasks (:mod:`.tasks`), text for language modelling (:mod:`.text`) and the
encoder-decoder toy tasks (:mod:`.seq2seq_tasks`)."""

from .seq2seq_tasks import DateTask, ReverseTask, Seq2SeqTask, exact_match
from .tasks import TASKS, AddingTask, CopyTask, RecallTask, Task, make_task
from .text import (Chunk, TokenStream, Vocab, split_documents, stdlib_corpus, text_corpus,
                   tokenize)

__all__ = ["Task", "AddingTask", "CopyTask", "RecallTask", "TASKS", "make_task", "Vocab", "tokenize",
           "stdlib_corpus", "text_corpus", "split_documents", "TokenStream", "Chunk",
           "DateTask", "ReverseTask", "Seq2SeqTask", "exact_match"]
