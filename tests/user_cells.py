"""A user's own cell, shared by the tests that need one (imported, not a fixture: tests
subclass and build it with different sizes)."""

import torch
from torch import nn

import lstmlab


class MGU(lstmlab.Cell):
    """Zhou et al. 2016: the README's example of a user's own cell (for Stack, Recurrent,
    diagrams)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, state_sizes=(hidden_size,))
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size))
        self.reset_parameters()

    def step(self, x, state):
        (h,) = state
        xf, xg = (x @ self.weight_ih.T + self.bias).chunk(2, -1)
        uf, ug = self.weight_hh.chunk(2, 0)
        f = torch.sigmoid(xf + h @ uf.T)
        g = torch.tanh(xg + (f * h) @ ug.T)
        h = (1 - f) * h + f * g
        return h, (h,), {"forget": f, "candidate": g}
