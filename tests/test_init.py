"""The initialisations of lstmlab.nn.init (chrono, forget bias, orthogonal, identity) on every
layer and direction, the gates they may not touch, and ``lstmlab train --init``."""

from __future__ import annotations

import math

import pytest
import safetensors.torch
import torch

import lstmlab
from lstmlab import GRU, LSTM, RNN, ClockworkRNN, GridLSTM
from lstmlab.cli.main import build_parser, train_config
from lstmlab.cli.main import main as cli
from lstmlab.models.build import init_recurrent, parse_init
from lstmlab.nn.init import chrono_, forget_bias_, gate_rows, identity_, orthogonal_
from lstmlab.train import TrainConfig, make_job, train
from lstmlab.train.checkpoint import load_checkpoint
from lstmlab.train.settings import TASK_DEFAULTS, task_config


def suffixes(layer) -> list[str]:
    """Every layer and direction's name suffix, in torch's order."""
    directions = ["", "_reverse"][: layer.num_directions]
    return [f"_l{k}{d}" for k in range(layer.num_layers) for d in directions]


def rows(layer, name: str, suffix: str, gate: str, cell=None) -> torch.Tensor:
    """The gate's block of a layer's parameter, e.g. ``bias_ih_l1_reverse``'s forget rows."""
    cell = cell or layer.cells[0]
    H, k = layer.hidden_size, gate_rows(cell).index(gate)
    return getattr(layer, name + suffix).detach()[k * H : (k + 1) * H]


def test_the_names_are_exported():
    for name in ("chrono_", "forget_bias_", "orthogonal_", "identity_"):
        assert getattr(lstmlab, name) is getattr(lstmlab.nn, name) is getattr(lstmlab.nn.init, name)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_layers=2, bidirectional=True),
        dict(num_layers=2, proj_size=5),
        dict(layer_norm=True),
    ],
)
def test_chrono_draws_forget_biases_in_range_and_sets_input_biases_to_their_negative(kwargs):
    t_max, H = 50, 300
    lstm = LSTM(7, H, **kwargs)
    before = {k: v.detach().clone() for k, v in lstm.named_parameters()}
    assert chrono_(lstm, t_max, generator=torch.Generator().manual_seed(0)) is lstm
    for s in suffixes(lstm):
        b_f = rows(lstm, "bias_ih", s, "forget")
        assert b_f.min() >= 0.0 and b_f.max() <= math.log(t_max - 1) + 1e-6
        u = b_f.exp()  # ~ U(1, t_max - 1): spread over the range, not one value
        assert u.min() < 5 and u.max() > t_max - 5
        assert abs(u.mean().item() - t_max / 2) < 4
        assert torch.equal(rows(lstm, "bias_ih", s, "input"), -b_f)
        for gate in ("input", "forget"):
            assert torch.all(rows(lstm, "bias_hh", s, gate) == 0)
        for gate in ("candidate", "output"):  # the other gates keep their values
            for name in ("bias_ih", "bias_hh"):
                assert torch.equal(rows(lstm, name, s, gate), rows_of(before, name + s, gate, H))
        for name in ("weight_ih", "weight_hh"):
            assert torch.equal(getattr(lstm, name + s).detach(), before[name + s])
    drawn = [rows(lstm, "bias_ih", s, "forget") for s in suffixes(lstm)]
    assert all(not torch.equal(drawn[0], b) for b in drawn[1:])  # per layer and direction


def rows_of(params: dict, name: str, gate: str, H: int) -> torch.Tensor:
    k = ("input", "forget", "candidate", "output").index(gate)
    return params[name][k * H : (k + 1) * H]


def test_chrono_makes_the_forget_gate_sigmoid_of_the_drawn_bias():
    """The rows set are the ones the cell reads as its forget and input gates."""
    lstm = LSTM(3, 40, batch_first=True)
    chrono_(lstm, 20)
    with torch.no_grad():
        lstm.weight_ih_l0.zero_()
    _, _, gates = lstm(torch.randn(2, 1, 3), return_gates=True)
    b_f = rows(lstm, "bias_ih", "_l0", "forget")
    assert torch.allclose(gates[0]["forget"][0, 0], torch.sigmoid(b_f), atol=1e-6)
    assert torch.allclose(gates[0]["input"][0, 0], torch.sigmoid(-b_f), atol=1e-6)
    assert gates[0]["forget"].min() >= 0.5 - 1e-6  # sigma(log u) = 1 - 1/u >= 1/2


def test_chrono_is_reproducible_with_a_generator():
    a, b = LSTM(3, 8), LSTM(3, 8)
    chrono_(a, 30, generator=torch.Generator().manual_seed(4))
    chrono_(b, 30, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.bias_ih_l0[:16], b.bias_ih_l0[:16])  # the input and forget rows


def test_chrono_on_the_variants_uses_the_gates_they_have():
    nig = chrono_(LSTM(3, 16, input_gate=False), 10)  # rows f, g, o: the forget bias only
    assert gate_rows(nig.cells[0]) == ("forget", "candidate", "output")
    b_f = rows(nig, "bias_ih", "_l0", "forget")
    assert b_f.min() >= 0 and b_f.max() <= math.log(9) + 1e-6 and b_f.std() > 0
    coupled = chrono_(LSTM(3, 16, coupled=True), 10)  # f = 1 - sigma(b_i) = sigma(-b_i)
    b_i = rows(coupled, "bias_ih", "_l0", "input")
    assert b_i.max() <= 0 and b_i.min() >= -math.log(9) - 1e-6 and b_i.std() > 0
    gru = GRU(3, 16, bidirectional=True)
    reset = gru.bias_ih_l0_reverse.detach()[:16].clone()
    chrono_(gru, 10)  # the update gate keeps h: b_z = log U(1, T - 1)
    for s in suffixes(gru):
        b_z = rows(gru, "bias_ih", s, "update")
        assert b_z.min() >= 0 and b_z.max() <= math.log(9) + 1e-6 and b_z.std() > 0
        assert torch.all(rows(gru, "bias_hh", s, "update") == 0)
    assert torch.equal(gru.bias_ih_l0_reverse.detach()[:16], reset)


def test_chrono_on_a_grid_lstm_sets_every_dimensions_rows():
    grid = chrono_(GridLSTM(3, 8, num_layers=2), 12)
    for block in (m for m in grid.modules() if isinstance(m, lstmlab.GridLSTMCell)):
        bias = block.bias.detach().view(block.dims, 4, 8)
        assert bias[:, 1].min() >= 0 and bias[:, 1].max() <= math.log(11) + 1e-6
        assert torch.equal(bias[:, 0], -bias[:, 1])


@pytest.mark.parametrize(
    "layer, message",
    [
        (lambda: RNN(3, 8), "no forget gate"),
        (lambda: LSTM(3, 8, forget_gate=False), "no forget gate"),
        (lambda: ClockworkRNN(3, 8), "no forget gate"),
        (lambda: LSTM(3, 8, bias=False), "bias=False"),
    ],
)
def test_chrono_refuses_a_layer_without_the_gate_and_changes_nothing(layer, message):
    layer = layer()
    before = {k: v.detach().clone() for k, v in layer.named_parameters()}
    with pytest.raises(ValueError, match=message):
        chrono_(layer, 10)
    assert all(torch.equal(v, before[k]) for k, v in layer.named_parameters())


@pytest.mark.parametrize("t_max", [2, 1.5, 0, -3, True, "10"])
def test_chrono_needs_t_max_above_two(t_max):
    with pytest.raises(ValueError, match="t_max"):
        chrono_(LSTM(3, 8), t_max)


def test_a_module_that_is_not_an_lstmlab_layer_is_a_type_error():
    with pytest.raises(TypeError, match="lstmlab layer"):
        chrono_(torch.nn.LSTM(3, 8), 10)


def test_forget_bias_sets_the_forget_rows_and_refuses_layers_without_them():
    lstm = forget_bias_(LSTM(3, 8, num_layers=2, bidirectional=True), 2.5)
    for s in suffixes(lstm):
        assert torch.all(rows(lstm, "bias_ih", s, "forget") == 2.5)
        assert torch.all(rows(lstm, "bias_hh", s, "forget") == 0)
    for layer in (GRU(3, 8), RNN(3, 8), LSTM(3, 8, coupled=True)):
        with pytest.raises(ValueError, match="no forget gate"):
            forget_bias_(layer, 1.0)


@pytest.mark.parametrize("exponential_forget", [False, True])
def test_chrono_on_the_slstm_sets_its_forget_rows_alone(exponential_forget):
    t_max, H = 40, 200
    slstm = lstmlab.SLSTM(3, H, num_layers=2, num_heads=4, exponential_forget=exponential_forget)
    before = {k: v.detach().clone() for k, v in slstm.named_parameters()}
    chrono_(slstm, t_max, generator=torch.Generator().manual_seed(1))
    for s in suffixes(slstm):
        b_f = rows(slstm, "bias_ih", s, "forget")
        log_f = b_f if exponential_forget else torch.nn.functional.logsigmoid(b_f)
        u = 1 / torch.expm1(-log_f)  # f = u / (1 + u), u ~ U(1, t_max - 1)
        assert u.min() >= 1 - 1e-3 and u.max() <= t_max - 1 + 1e-2
        assert u.min() < 5 and u.max() > t_max - 5
        assert torch.all(rows(slstm, "bias_hh", s, "forget") == 0)
        for gate in ("input", "candidate", "output"):  # the exponential input gate too
            for name in ("bias_ih", "bias_hh"):
                assert torch.equal(rows(slstm, name, s, gate), rows_of(before, name + s, gate, H))


def test_chrono_gives_exponential_and_sigmoid_forget_gates_the_same_forget_values():
    sigmoid = lstmlab.SLSTMCell(3, 8)
    exponential = lstmlab.SLSTMCell(3, 8, exponential_forget=True)
    exponential.load_state_dict(sigmoid.state_dict())
    for cell in (sigmoid, exponential):
        chrono_(cell, 10, generator=torch.Generator().manual_seed(2))
    state = sigmoid.initial_state(1)
    x = torch.zeros(1, 3)
    with torch.no_grad():
        for cell in (sigmoid, exponential):  # the same pre-activations at every step
            cell.weight_ih.zero_()
            cell.weight_hh.zero_()
        state = sigmoid.step(x, state)[1]  # m = log i: then f' = exp(log f + m - m) = f
        f_sig = sigmoid.step(x, state)[2]["forget"]
        f_exp = exponential.step(x, state)[2]["forget"]
    b_f = sigmoid.bias_ih.detach()[8:16]
    assert torch.allclose(f_sig[0], torch.sigmoid(b_f)) and torch.allclose(f_exp, f_sig)


@pytest.mark.parametrize("exponential_forget", [False, True])
def test_chrono_and_forget_bias_on_the_mlstm_set_its_per_head_forget_rows(exponential_forget):
    H, heads = 8, 4
    mlstm = lstmlab.MLSTM(3, H, num_heads=heads, exponential_forget=exponential_forget)
    before = mlstm.bias_ih_l0.detach().clone()
    chrono_(mlstm, 30)
    bias = mlstm.bias_ih_l0.detach()
    b_f = bias[4 * H + heads :]  # rows q, k, v, o, then i, f: one per head
    log_f = b_f if exponential_forget else torch.nn.functional.logsigmoid(b_f)
    u = 1 / torch.expm1(-log_f)
    assert b_f.shape == (heads,) and u.min() >= 1 - 1e-3 and u.max() <= 29 + 1e-2
    assert torch.equal(bias[: 4 * H + heads], before[: 4 * H + heads])
    forget_bias_(mlstm, 3.0)
    assert torch.all(mlstm.bias_ih_l0[4 * H + heads :] == 3.0)
    assert torch.equal(mlstm.bias_ih_l0.detach()[: 4 * H + heads], before[: 4 * H + heads])


def test_chrono_on_min_lstm_and_min_gru_sets_their_carry_to_sigma_of_the_drawn_bias():
    """minLSTM keeps f' = σ(b_f) / (σ(b_f) + σ(b_i)) of h, minGRU keeps 1 - z: both σ(log u)."""
    for layer in (lstmlab.MinLSTM(3, 16), lstmlab.MinGRU(3, 16)):
        chrono_(layer, 12, generator=torch.Generator().manual_seed(3))
        cell = layer.cells[0]
        with torch.no_grad():
            cell.weight_ih.zero_()
        gates = cell.step(torch.randn(2, 3), cell.initial_state(2))[2]
        carry = cell.carry(gates)[0]
        u = carry / (1 - carry)  # σ(log u) = u / (1 + u)
        assert u.min() >= 1 - 1e-4 and u.max() <= 11 + 1e-3 and u.std() > 1
    minlstm = lstmlab.MinLSTM(3, 16)
    chrono_(minlstm, 12)
    b = minlstm.bias_ih_l0.detach()
    assert torch.equal(b[16:32], -b[:16])  # rows f, i, h̃
    assert torch.equal(forget_bias_(minlstm, 2.0).bias_ih_l0.detach()[:16], torch.full((16,), 2.0))
    with pytest.raises(ValueError, match="no forget gate"):
        forget_bias_(lstmlab.MinGRU(3, 8), 1.0)  # z writes; chrono_ is its form
    with pytest.raises(ValueError, match="bias=False"):
        chrono_(lstmlab.SLSTM(3, 8, bias=False), 10)


def assert_orthogonal(w: torch.Tensor, gain: float = 1.0) -> None:
    """W Wᵀ = gain² I for a square or wide block, Wᵀ W = gain² I for a tall one."""
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    assert torch.allclose(gram, gain**2 * torch.eye(gram.shape[0]), atol=1e-5)


@pytest.mark.parametrize(
    "make, blocks",
    [
        (lambda: LSTM(5, 12, num_layers=2, bidirectional=True), 4),
        (lambda: LSTM(5, 12, num_layers=2, proj_size=4), 4),
        (lambda: LSTM(5, 12, peephole=True, input_gate=False), 3),
        (lambda: GRU(5, 12, num_layers=2, bidirectional=True), 3),
        (lambda: RNN(5, 12, num_layers=2), 1),
    ],
)
def test_orthogonal_makes_every_gate_block_orthogonal(make, blocks):
    layer = make()
    w_ih = layer.weight_ih_l0.detach().clone()
    assert orthogonal_(layer, gain=1.5) is layer
    for s in suffixes(layer):
        w = getattr(layer, "weight_hh" + s).detach()
        parts = w.split(layer.hidden_size)
        assert len(parts) == blocks
        for block in parts:
            assert_orthogonal(block, 1.5)
        if blocks > 1:  # independent blocks, not one matrix repeated
            assert not torch.allclose(parts[0], parts[1])
    assert torch.equal(layer.weight_ih_l0.detach(), w_ih)


def test_orthogonal_on_a_grid_lstm_and_not_on_a_clockwork_rnn():
    grid = orthogonal_(GridLSTM(3, 6, num_layers=2))
    for block in (m for m in grid.modules() if isinstance(m, lstmlab.GridLSTMCell)):
        for rows_ in block.weight.detach().split(6):  # (H, N·H): orthonormal rows
            assert_orthogonal(rows_)
    with pytest.raises(ValueError, match="clockwork"):
        orthogonal_(ClockworkRNN(3, 8))


def test_identity_carries_the_state_of_a_relu_rnn():
    """The IRNN (Le et al. 2015): W_hh = I, zero biases -> with no input h stays as it was."""
    rnn = identity_(RNN(3, 6, num_layers=2, nonlinearity="relu", bidirectional=True))
    for s in suffixes(rnn):
        assert torch.equal(getattr(rnn, "weight_hh" + s).detach(), torch.eye(6))
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if not name.startswith("weight_hh"):
                p.zero_()
    h0 = torch.rand(4, 2, 6)  # (L·D, B, H), positive: relu keeps it
    _, h_n = rnn(torch.zeros(9, 2, 3), h0)
    assert torch.allclose(h_n[:2], h0[:2])  # layer 0, both directions: unchanged


def test_identity_scales_by_the_gain_and_needs_square_blocks():
    lstm = identity_(LSTM(3, 5), gain=0.5)
    for block in lstm.weight_hh_l0.detach().split(5):
        assert torch.equal(block, 0.5 * torch.eye(5))
    with pytest.raises(ValueError, match="square"):
        identity_(LSTM(3, 8, proj_size=2))


def test_init_recurrent_parses_its_names():
    assert parse_init("chrono+orthogonal") == ("chrono", "orthogonal")
    for bad in ("glorot", "orthogonal+identity", "default+chrono", "chrono+chrono", ""):
        with pytest.raises(ValueError, match="init"):
            parse_init(bad)
    with pytest.raises(ValueError, match="init"):
        TrainConfig(init="xavier")


def test_init_recurrent_on_a_model_with_the_task_length():
    cfg = TrainConfig(task="recall", gap=12, hidden_size=16, embed_size=4, init="chrono")
    model = make_job(cfg).model
    assert init_recurrent(model, "chrono+orthogonal", 21) == 1
    b_f = rows(model.rnn, "bias_ih", "_l0", "forget")
    assert b_f.max() <= math.log(20) + 1e-6 and b_f.std() > 0
    for block in model.rnn.weight_hh_l0.detach().split(16):
        assert_orthogonal(block)
    irnn = make_job(TrainConfig(task="adding", length=8, cell="rnn", hidden_size=8)).model
    before = {k: v.detach().clone() for k, v in irnn.named_parameters()}
    assert init_recurrent(irnn, "chrono", 20) == 0  # no gate to set: left as it was
    assert all(torch.equal(v, before[k]) for k, v in irnn.named_parameters())
    init_recurrent(irnn, "identity", 0)
    assert torch.equal(irnn.rnn.weight_hh_l0.detach(), torch.eye(8))
    assert torch.all(irnn.rnn.bias_ih_l0 == 0) and torch.all(irnn.rnn.bias_hh_l0 == 0)


def test_train_applies_chrono_with_t_max_the_sequence_length(tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="recall",
        gap=4,
        hidden_size=64,
        embed_size=4,
        init="chrono",
        steps=1,
        eval_every=1,
        checkpoint_every=1,
        batch_size=2,
        eval_batches=1,
        lr=1e-9,  # one step that barely moves the biases
        out=str(out),
    )
    train(cfg, progress=False)
    loaded = load_checkpoint(out / "checkpoint", restore_rng=False)
    assert loaded.config["train"]["init"] == "chrono"
    w = safetensors.torch.load_file(out / "checkpoint" / "model.safetensors")
    forget = w["rnn.bias_ih_l0"][64:128]
    assert forget.min() >= -1e-6 and forget.max() <= math.log(13 - 1) + 1e-6  # length 6 + 4 + 3
    assert forget.std() > 0.1  # drawn, not the constant --forget-bias


def test_cli_init_is_kept_on_resume_and_cannot_change(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--task", "adding", "--length", "8", "--hidden-size", "8", "--batch-size"]
    base += ["4", "--eval-every", "2", "--checkpoint-every", "2", "--out", str(out)]
    assert cli([*base, "--steps", "2", "--init", "chrono+orthogonal", "--t-max", "6"]) == 0
    assert cli(["train", "--resume", "--out", str(out), "--steps", "4"]) == 0
    stored = load_checkpoint(out / "checkpoint", restore_rng=False).config["train"]
    assert (stored["init"], stored["t_max"], stored["steps"]) == ("chrono+orthogonal", 6, 4)
    capsys.readouterr()
    assert cli(["train", "--resume", "--out", str(out), "--steps", "6", "--init", "default"]) != 0
    assert "--init" in capsys.readouterr().err


def test_a_fresh_recall_run_takes_chrono_and_the_flags_over_it():
    assert TASK_DEFAULTS["recall"]["init"] == "chrono"
    assert task_config(task="recall", gap=100).init == "chrono"
    assert task_config(task="recall", init="orthogonal").init == "orthogonal"
    assert task_config(task="adding") == TrainConfig(task="adding")  # no defaults of its own
    parser = build_parser()
    assert train_config(parser.parse_args(["train", "--task", "recall"])).init == "chrono"
    assert train_config(parser.parse_args(["train", "--task", "copy"])).init == "default"


def test_a_resumed_recall_run_keeps_its_own_init_not_the_tasks_default(tmp_path):
    out = tmp_path / "run"
    base = ["train", "--task", "recall", "--gap", "2", "--hidden-size", "4", "--embed-size", "2"]
    base += ["--batch-size", "2", "--eval-every", "2", "--checkpoint-every", "2"]
    assert cli([*base, "--init", "default", "--steps", "2", "--out", str(out)]) == 0
    assert cli(["train", "--resume", "--out", str(out), "--steps", "4"]) == 0
    stored = load_checkpoint(out / "checkpoint", restore_rng=False).config["train"]
    assert (stored["init"], stored["steps"]) == ("default", 4)
