"""The cell protocol: a cell is one time step of a recurrent network.

A cell's :meth:`Cell.step` is the maths: ``step(x, state) -> (h, state, gates)`` where

- ``x`` is the input at one step, shape ``(B, input_size)``;
- ``state`` is a tuple of tensors, each ``(B, ...)`` (``(h, c)`` for an LSTM, ``(h,)`` for a GRU);
- ``h`` is the step's output, shape ``(B, output_size)``;
- ``gates`` maps gate names (``"input"``, ``"forget"``, ``"candidate"``, ``"output"``,
  ``"reset"``, ``"update"``, ...) to the activations the step computed, each ``(B, hidden_size)``.

Calling a cell (``cell(input, hx)``) behaves like its ``torch.nn`` namesake: unbatched input,
``hx=None`` for zeros, and the state handed back in torch's form (a tensor when the state has one
part, a tuple otherwise). Everything else -- running over time, lengths, reversal, stacking,
bidirectionality -- comes from :class:`lstmlab.Recurrent` and :class:`lstmlab.Stack`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lstmlab.nn import dispatch
from lstmlab.nn._checks import check_input, check_positive_int, check_state, state_parts

State = tuple[Tensor, ...]
Gates = dict[str, Tensor]


class Cell(nn.Module):
    """Base class of every cell. Subclasses set the sizes and write :meth:`step`.

    Attributes a subclass sets in ``__init__``:
        input_size: features of ``x``.
        hidden_size: units of the recurrent state.
        output_size: features of ``h`` (``hidden_size`` unless projected).
        state_sizes: the trailing size of each state part, e.g. ``(hidden_size, hidden_size)``.

    Class attribute:
        zoned_state_parts: how many leading state parts are recurrent vectors that zoneout
            (``Stack(zoneout=p)``) may hold at their previous values: 2 (``h`` and ``c``) by
            default, at most the number of parts. A cell whose state carries something else
            after ``h`` -- a step counter, as the clockwork RNN does -- sets 1.
        allows_zero_size: whether ``input_size`` and ``hidden_size`` may be 0 (False: each must
            be at least 1). The cells named after torch's set True, since
            ``torch.nn.RNNCell(10, 0)`` builds a cell with an empty state.

    Example -- a minimal gated unit (Zhou et al. 2016) in a dozen lines::

        class MGU(lstmlab.Cell):
            def __init__(self, input_size, hidden_size):
                super().__init__(input_size, hidden_size, state_sizes=(hidden_size,))
                self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
                self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
                self.bias = nn.Parameter(torch.empty(2 * hidden_size))
                self.reset_parameters()

            def step(self, x, state):
                (h,) = state
                xf, xg = (x @ self.weight_ih.T + self.bias).chunk(2, -1)
                hf, hg = self.weight_hh.chunk(2, 0)
                f = torch.sigmoid(xf + h @ hf.T)
                g = torch.tanh(xg + (f * h) @ hg.T)
                h = (1 - f) * h + f * g
                return h, (h,), {"forget": f, "candidate": g}
    """

    zoned_state_parts: int = 2
    allows_zero_size: bool = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        state_sizes: tuple[int, ...],
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        minimum = 0 if self.allows_zero_size else 1
        check_positive_int("input_size", input_size, minimum=minimum)
        check_positive_int("hidden_size", hidden_size, minimum=minimum)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size if output_size is None else output_size
        self.state_sizes = tuple(state_sizes)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        """One time step: ``x`` (B, input_size), ``state`` parts (B, size) -> (h, state, gates)."""
        raise NotImplementedError(f"{type(self).__name__} must implement step(x, state)")

    def initial_state(
        self,
        batch_size: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> State:
        """Zeros for every state part, each ``(batch_size, size)``."""
        ref = next(self.parameters(), None)
        dtype = dtype or (ref.dtype if ref is not None else torch.get_default_dtype())
        device = device or (ref.device if ref is not None else None)
        return tuple(
            torch.zeros(batch_size, n, dtype=dtype, device=device) for n in self.state_sizes
        )

    def reset_parameters(self) -> None:
        """torch's initialisation for recurrent cells: every parameter ~ U(-1/√H, 1/√H)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def output(self, state: State) -> Tensor:
        """The step's output for ``state``: h, ``state[0]``, for every built-in cell but a
        depth-gated one that emits its cell state too. The runner calls it when zoneout has
        changed the state the step returned, so the output is the zoned state's."""
        return state[0]

    def carry(self, gates: Gates) -> Tensor | None:
        """How much of ``h_{t-1}`` itself -- not through a weight -- this step passed into
        ``h_t``, from the step's gates: ``None`` (nothing; an LSTM or RNN reads h only through
        W_hh), or a weight (B, H): a GRU's update gate (``h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}``), 1
        for a clockwork module that held its state. Recurrent dropout masks h where weights see
        it, and gives such a carry back what the mask took (Gal & Ghahramani drop the weight
        products only). A cell of your own that carries h overrides this."""
        return None

    def forward(self, input: Tensor, hx: Tensor | State | None = None) -> Tensor | State:
        """Like ``torch.nn.LSTMCell/GRUCell/RNNCell``: one step, state in torch's form.

        ``input`` is ``(B, input_size)`` or unbatched ``(input_size,)``; ``hx`` is the state as
        torch passes it (a tensor for a one-part state, a tuple otherwise) or ``None`` for zeros.
        Returns the new state in the same form. Use :meth:`step` for the output and gates too.
        """
        batched = check_input(input, self, rank=2, name="input")
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            state = self.initial_state(x.shape[0], dtype=x.dtype, device=x.device)
        else:
            if isinstance(hx, Tensor) and len(self.state_sizes) > 1:  # torch: TypeError too
                raise TypeError(
                    f"hx must be a tuple of {len(self.state_sizes)} tensors (sizes "
                    f"{self.state_sizes}), got one tensor of shape {tuple(hx.shape)}"
                )
            parts = state_parts(hx, "hx")
            state = check_state(parts, self.state_sizes, x.shape[0], batched, x, name="hx")
            if not batched:
                state = tuple(s.unsqueeze(0) for s in state)
        fast = self._fast_step(x, state)
        state = fast if fast is not None else self.step(x, state)[1]
        if not batched:
            state = tuple(s.squeeze(0) for s in state)
        return state[0] if len(state) == 1 else state

    def _fast_step(self, x: Tensor, state: State) -> State | None:
        """The step through a registered one-step route or sequence op (built-in cells only;
        :mod:`lstmlab.nn.dispatch`), or None: the readable ``step`` runs."""
        one_step = dispatch.step_op(self, x, state)
        if one_step is not None:
            return one_step(self, x, state)
        op = dispatch.sequence_op(self, x)
        if op is None:
            return None
        return op(self, x.unsqueeze(0), state, None, False)[1]  # a sequence of one step

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
