"""Data: synthetic tasks (:mod:`.tasks`) and text for language modelling (:mod:`.text`)."""

from .tasks import TASKS, AddingTask, RecallTask, Task, make_task
from .text import (Chunk, TokenStream, Vocab, split_documents, stdlib_corpus, text_corpus,
                   tokenize)

__all__ = ["Task", "AddingTask", "RecallTask", "TASKS", "make_task", "Vocab", "tokenize",
           "stdlib_corpus", "text_corpus", "split_documents", "TokenStream", "Chunk"]
