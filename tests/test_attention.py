"""Attention modules against the papers' formulas, written out here one position at a time.

Oracles: Bahdanau et al. 2015 eq. 6 (e_j = v^T tanh(W s + U h_j)) and Luong et al. 2015 eq. 8
(s^T W h_j, s^T h_j), each followed by a softmax over the valid positions only and the weighted
sum of the keys; float64 gradcheck for the gradients.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.func import functional_call

from lstmlab.models.attention import AdditiveAttention, MultiplicativeAttention

B, S, Q, K = 3, 6, 5, 4
LENGTHS = [6, 2, 4]

MODULES = {
    "additive": partial(AdditiveAttention, Q, K, attention_size=7),
    "general": partial(MultiplicativeAttention, Q, K),
    "dot": partial(MultiplicativeAttention, K, K, general=False),
}


def inputs(name: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q_size = K if name == "dot" else Q
    query = torch.randn(B, q_size, generator=g, dtype=torch.float64)
    keys = torch.randn(B, S, K, generator=g, dtype=torch.float64)
    mask = torch.arange(S) < torch.tensor(LENGTHS).unsqueeze(1)  # (B, S)
    return query, keys, mask


def module(name: str):
    torch.manual_seed(1)
    return MODULES[name]().double()


def reference(name: str, m, query, keys, mask):
    """The paper's score for each (b, j) with plain loops, softmax over valid j, weighted sum."""
    contexts, all_weights = [], []
    for b in range(B):
        s, valid = query[b], [j for j in range(S) if mask[b, j]]
        if name == "additive":
            scores = [m.v @ torch.tanh(m.W @ s + m.U @ keys[b, j]) for j in valid]
        elif name == "general":
            scores = [s @ (m.W @ keys[b, j]) for j in valid]
        else:
            scores = [s @ keys[b, j] for j in valid]
        exps = torch.stack(scores).detach().exp()  # the scores are small: no overflow
        weights = torch.zeros(S, dtype=torch.float64)
        for j, e in zip(valid, exps):
            weights[j] = e / exps.sum()
        contexts.append(sum(weights[j] * keys[b, j] for j in valid))
        all_weights.append(weights)
    return torch.stack(contexts), torch.stack(all_weights)


@pytest.mark.parametrize("name", MODULES)
def test_matches_the_papers_formula(name):
    m = module(name)
    query, keys, mask = inputs(name)
    context, weights = m(query, keys, mask)
    want_context, want_weights = reference(name, m, query, keys, mask)
    torch.testing.assert_close(weights, want_weights, atol=1e-12, rtol=0)
    torch.testing.assert_close(context, want_context, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", MODULES)
def test_weights_sum_to_one_and_are_exactly_zero_on_padding(name):
    m = module(name)
    query, keys, mask = inputs(name)
    context, weights = m(query, keys, mask)
    assert context.shape == (B, K) and weights.shape == (B, S)
    torch.testing.assert_close(
        weights.sum(1), torch.ones(B, dtype=torch.float64), atol=1e-12, rtol=0
    )
    assert bool((weights[~mask] == 0).all())  # exactly 0, not merely small
    assert bool((weights[mask] > 0).all())
    # No mask: every position counts, as a full-length mask.
    full = torch.ones(B, S, dtype=torch.bool)
    torch.testing.assert_close(m(query, keys)[1], m(query, keys, full)[1], atol=0, rtol=0)


@pytest.mark.parametrize("name", MODULES)
def test_padding_never_reaches_outputs_or_gradients(name):
    m = module(name)
    query, keys, mask = inputs(name)
    dirty = keys.clone()
    dirty[~mask] = float("nan")  # garbage in the padded positions
    dirty.requires_grad_(True)
    context, weights = m(query, dirty, mask)
    clean_context, clean_weights = m(query, keys, mask)
    torch.testing.assert_close(context, clean_context, atol=0, rtol=0)
    torch.testing.assert_close(weights, clean_weights, atol=0, rtol=0)
    (context.sum() + weights.pow(2).sum()).backward()
    assert bool(torch.isfinite(dirty.grad).all())
    assert bool((dirty.grad[~mask] == 0).all()) and bool((dirty.grad[mask] != 0).any())


@pytest.mark.parametrize("name", MODULES)
def test_projected_keys_are_a_cache_only(name):
    m = module(name)
    query, keys, mask = inputs(name)
    cached = m(query, keys, mask, projected=m.project_keys(keys))
    for got, want in zip(cached, m(query, keys, mask)):
        torch.testing.assert_close(got, want, atol=1e-14, rtol=0)


@pytest.mark.parametrize("name", MODULES)
def test_gradcheck_float64(name):
    m = module(name)
    query, keys, mask = inputs(name)
    names = [n for n, _ in m.named_parameters()]

    def f(query, keys, *params):
        return functional_call(m, dict(zip(names, params)), (query, keys, mask))

    args = (
        query.requires_grad_(),
        keys.requires_grad_(),
        *(p.detach().clone().requires_grad_() for p in m.parameters()),
    )
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-8)


def test_parameters_are_the_papers_matrices():
    additive = AdditiveAttention(Q, K, attention_size=7)
    assert {n: tuple(p.shape) for n, p in additive.named_parameters()} == {
        "W": (7, Q),
        "U": (7, K),
        "v": (7,),
    }
    assert AdditiveAttention(Q, K).attention_size == K
    general = MultiplicativeAttention(Q, K)
    assert {n: tuple(p.shape) for n, p in general.named_parameters()} == {"W": (Q, K)}
    assert list(MultiplicativeAttention(K, K, general=False).parameters()) == []


@pytest.mark.parametrize(
    "call, error, pieces",
    [
        (
            lambda m: m(torch.randn(B, Q + 1), torch.randn(B, S, K)),
            ValueError,
            ["query must have shape", "query_size=5", "(3, 6)"],
        ),
        (
            lambda m: m(torch.randn(B, Q), torch.randn(B, S)),
            ValueError,
            ["keys must have shape", "key_size=4", "(3, 6)"],
        ),
        (
            lambda m: m(torch.randn(B, Q), torch.randn(B + 1, S, K)),
            ValueError,
            ["keys must have shape (B=3", "(4, 6, 4)"],
        ),
        (lambda m: m(torch.randn(B, Q), torch.randn(B, 0, K)), ValueError, ["at least one source"]),
        (
            lambda m: m(
                torch.randn(B, Q), torch.randn(B, S, K), torch.ones(B, S - 1, dtype=torch.bool)
            ),
            ValueError,
            ["mask must have shape (B, S) = (3, 6)", "(3, 5)"],
        ),
        (
            lambda m: m(torch.randn(B, Q), torch.randn(B, S, K), torch.ones(B, S)),
            TypeError,
            ["mask must be a bool tensor", "torch.float32"],
        ),
        (
            lambda m: m(
                torch.randn(B, Q),
                torch.randn(B, S, K),
                torch.tensor([[True] * S, [False] * S, [True] * S]),
            ),
            ValueError,
            ["at least one valid position", "[1]"],
        ),
        (
            lambda m: m([0.0] * Q, torch.randn(B, S, K)),
            TypeError,
            ["must be torch.Tensors", "list"],
        ),
        (
            lambda m: MultiplicativeAttention(Q, K, general=False),
            ValueError,
            ["query_size == key_size", "query_size=5, key_size=4"],
        ),
        (lambda m: AdditiveAttention(Q, 0), ValueError, ["key_size must be an integer >= 1"]),
    ],
)
@pytest.mark.parametrize("make", [AdditiveAttention, MultiplicativeAttention])
def test_bad_input_says_what_is_wrong(make, call, error, pieces):
    m = make(Q, K)
    with pytest.raises(error) as info:
        call(m)
    for piece in pieces:
        assert piece in str(info.value), f"{piece!r} missing from: {info.value}"
