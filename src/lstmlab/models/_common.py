"""What the models share: the state in torch's form, token checks, and the cell options.

:class:`~lstmlab.models.language_model.LanguageModel` and
:class:`~lstmlab.models.sequence_model.SequenceModel` both take token ids and pass cell
options to their layer; the language model also carries its state from call to call.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor

from lstmlab.nn._checks import has_values

# The state in torch's form: h_n, or (h_n, c_n[, a_n]); each part (num_layers, B, size).
StateLike = Tensor | tuple[Tensor, ...]


def detach_state(state: StateLike) -> StateLike:
    """The state cut from the graph, same form (truncated BPTT: carry values, not gradients)."""
    return state.detach() if isinstance(state, Tensor) else tuple(s.detach() for s in state)


def _parts(state: StateLike) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def _torch_form(parts: tuple[Tensor, ...]) -> StateLike:
    """A one-part state is a bare tensor in torch (GRU, RNN); more parts stay a tuple."""
    return parts[0] if len(parts) == 1 else parts


def _cell_options(options: dict) -> dict:
    """The layer options a model passes on: not ones the model sets, and JSON (for config())."""
    owned = sorted({"input_size", "batch_first"} & options.keys())
    if owned:
        raise ValueError(f"{', '.join(owned)} are set by the model; do not pass them")
    try:
        json.dumps(options)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"cell options must be JSON values, as they are saved in config() "
            f"(move or convert the model with .to() instead); {error}"
        ) from None
    return dict(options)


def _check_tokens(tokens: object, vocab_size: int, *, rank: int) -> Tensor:
    """Token ids: an integer tensor of ``rank`` dims, each id in [0, vocab_size)."""
    shape = "(B, T)" if rank == 2 else "(B,)"
    if not isinstance(tokens, Tensor) or tokens.dtype not in (torch.long, torch.int):
        got = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
        raise TypeError(f"tokens must be a torch.long tensor {shape} of token ids, got {got}")
    if tokens.dim() != rank or tokens.numel() == 0:
        raise ValueError(
            f"tokens must be a non-empty {shape} tensor, got shape {tuple(tokens.shape)}"
        )
    if not has_values(tokens):  # traced (compile, export) or meta: no ids to read
        return tokens
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"token ids must lie in [0, {vocab_size}); got min {low}, max {high}")
    return tokens


def _check_starts(starts: object, tokens: Tensor) -> Tensor:
    if not isinstance(starts, Tensor) or starts.dtype != torch.bool:
        got = starts.dtype if isinstance(starts, Tensor) else type(starts).__name__
        raise TypeError(f"starts must be a bool tensor (B, T), got {got}")
    if starts.shape != tokens.shape:
        raise ValueError(
            f"starts must have the shape of tokens, {tuple(tokens.shape)}; got "
            f"{tuple(starts.shape)}"
        )
    return starts.to(tokens.device)
