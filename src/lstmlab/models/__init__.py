"""Whole models around a recurrent layer: a language model, a sequence classifier/regressor, an
encoder-decoder with attention, and text generation. Built on :mod:`lstmlab.nn` (and
:mod:`lstmlab.data`'s vocabulary); nothing here imports the training stack.

The language and sequence models take any built-in cell by name
(:data:`lstmlab.nn.registry.VARIANTS`) plus that cell's own options (``proj_size=64``,
``nonlinearity="relu"``, ...), and describe themselves as plain JSON
(:meth:`~lstmlab.models.language_model.LanguageModel.config`) that :func:`build_model` turns back
into a model -- what a checkpoint stores next to the weights::

    model = build_model(json.loads(json.dumps(old.config())))
    model.load_state_dict(old.state_dict())
"""

from lstmlab.models._common import StateLike, detach_state
from lstmlab.models.attention import AdditiveAttention, MultiplicativeAttention
from lstmlab.models.build import MODELS, build_model, init_forget_bias
from lstmlab.models.language_model import LanguageModel
from lstmlab.models.seq2seq import Seq2Seq
from lstmlab.models.sequence_model import SequenceModel

__all__ = [
    "LanguageModel",
    "SequenceModel",
    "MODELS",
    "StateLike",
    "build_model",
    "detach_state",
    "init_forget_bias",
    "Seq2Seq",
    "AdditiveAttention",
    "MultiplicativeAttention",
]
