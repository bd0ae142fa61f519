"""Checkpoints: exact resume, atomic replacement (simulated crashes and real SIGKILLs), broken files
with one-line messages, and loading without pickle."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import signal
import time

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

import lstmlab.train.checkpoint._files as ckpt_files
from lstmlab.train.checkpoint import is_checkpoint, load_checkpoint, read_config, save_checkpoint


class Net(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.lstm = nn.LSTM(3, hidden, num_layers=2, dropout=0.3, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.head(self.drop(self.lstm(x)[0][:, -1]))


def make_run(hidden: int = 8):
    model = Net(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.9**s)
    return model, opt, sched


def train(model, opt, sched, steps: int) -> None:
    model.train()
    for _ in range(steps):  # every global RNG feeds the run, so each must be restored
        x = torch.randn(4, random.randint(3, 6), 3)  # torch and python
        y = torch.from_numpy(np.random.rand(4, 2).astype(np.float32))  # numpy
        loss = (model(x) - y).square().mean()  # dropout: torch again
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def uninterrupted(path) -> dict:
    """10 steps, saving after 5 as a training loop would (so saving must not disturb the run)."""
    seed_all(0)
    model, opt, sched = make_run()
    train(model, opt, sched, 5)
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, config={"hidden": 8}, step=5)
    train(model, opt, sched, 5)
    return model.state_dict()


def resumed(path, leave_out: str | None = None) -> dict:
    """Fresh objects and RNGs, as in a new process; load the step-5 checkpoint; 5 more steps."""
    seed_all(123)
    model, opt, sched = make_run(**read_config(path))
    ckpt = load_checkpoint(
        path,
        model=model,
        optimizer=None if leave_out == "optimizer" else opt,
        scheduler=None if leave_out == "scheduler" else sched,
    )
    assert ckpt.step == 5
    {
        "torch_rng": lambda: torch.rand(1),
        "python_rng": random.random,
        "numpy_rng": np.random.rand,
    }.get(leave_out, lambda: None)()
    train(model, opt, sched, 5)
    return model.state_dict()


def test_resume_is_bitwise_exact(tmp_path):
    full = uninterrupted(tmp_path / "ckpt")
    again = resumed(tmp_path / "ckpt")
    for name, w in full.items():
        assert torch.equal(w, again[name]), name


@pytest.mark.parametrize(
    "leave_out", ["torch_rng", "python_rng", "numpy_rng", "optimizer", "scheduler"]
)
def test_resume_needs_every_part(tmp_path, leave_out):
    """The exact-resume test is sensitive: leaving out any one restored part changes the run."""
    full = uninterrupted(tmp_path / "ckpt")
    again = resumed(tmp_path / "ckpt", leave_out)
    assert not all(torch.equal(w, again[n]) for n, w in full.items())


def test_layout_and_round_trip(tmp_path):
    model, opt, sched = make_run()
    train(model, opt, sched, 2)
    vocab = {"<pad>": 0, "a": 1}
    out = save_checkpoint(
        tmp_path / "runs" / "ckpt",
        model=model,
        optimizer=opt,
        config={"h": 8},
        vocab=vocab,
        step=7,
        epoch=2,
        extra={"loss": 0.5, "nan": float("nan")},
    )
    assert sorted(os.listdir(out)) == [
        "checkpoint.json",
        "model.safetensors",
        "optimizer.safetensors",
    ]
    meta = json.loads((out / "checkpoint.json").read_text())
    assert (meta["format"], meta["version"], meta["step"], meta["epoch"]) == (
        "lstmlab-checkpoint",
        1,
        7,
        2,
    )
    tensors = safetensors.torch.load_file(out / "optimizer.safetensors")
    assert {"state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"} <= set(tensors)
    fresh_model, fresh_opt, _ = make_run()
    ckpt = load_checkpoint(out, model=fresh_model, optimizer=fresh_opt)
    assert (ckpt.config, ckpt.vocab, ckpt.step, ckpt.epoch) == ({"h": 8}, vocab, 7, 2)
    assert ckpt.extra["loss"] == 0.5 and np.isnan(ckpt.extra["nan"])
    assert fresh_opt.param_groups[0]["betas"] == (0.9, 0.999)  # a tuple again, not a list
    for name, w in model.state_dict().items():
        assert torch.equal(w, ckpt.weights[name]) and torch.equal(w, fresh_model.state_dict()[name])


def test_unsaveable_values(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="vocab has a non-string key 0"):
        save_checkpoint(tmp_path / "c", model=model, config={}, vocab={0: "a"})
    with pytest.raises(TypeError, match="config is not JSON-serialisable"):
        save_checkpoint(tmp_path / "c", model=model, config={"f": object()})
    assert not (tmp_path / "c").exists()


# --- atomic replacement ---


def save_marked(path, value: float, step: int, **kwargs):
    model = nn.Linear(4, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return save_checkpoint(path, model=model, optimizer=opt, config={}, step=step, **kwargs)


def assert_intact(path, step: int) -> None:
    ckpt = load_checkpoint(path, model=nn.Linear(4, 4), restore_rng=False)
    assert ckpt.step == step
    assert all(bool((w == step).all()) for w in ckpt.weights.values())


@pytest.mark.parametrize(
    "crash_at",
    ["model.safetensors", "optimizer.safetensors", "checkpoint.json", "rename 1", "rename 2"],
)
def test_crash_mid_save_keeps_previous(tmp_path, monkeypatch, crash_at):
    path = tmp_path / "ckpt"
    save_marked(path, 1.0, step=1)
    write, rename, renames = ckpt_files._write, os.rename, []

    def crashing_write(file, data):
        if file.name == crash_at:
            file.write_bytes(data[: len(data) // 2])  # half written, as when the power goes
            raise OSError("simulated crash")
        write(file, data)

    def crashing_rename(src, dst):
        renames.append(src)
        if f"rename {len(renames)}" == crash_at:
            raise OSError("simulated crash")
        rename(src, dst)

    monkeypatch.setattr(ckpt_files, "_write", crashing_write)
    monkeypatch.setattr(os, "rename", crashing_rename)
    with pytest.raises(OSError, match="simulated crash"):
        save_marked(path, 2.0, step=2)
    monkeypatch.undo()
    assert_intact(path, 1)
    assert os.listdir(tmp_path) == ["ckpt"]
    save_marked(path, 3.0, step=3)
    assert_intact(path, 3)


def test_killed_between_renames_loads_previous(tmp_path):
    """The state a SIGKILL leaves between ``ckpt -> ckpt.old`` and ``ckpt.tmp-* -> ckpt``."""
    path = tmp_path / "ckpt"
    save_marked(path, 1.0, step=1)
    os.rename(path, tmp_path / "ckpt.old")
    (tmp_path / "ckpt.tmp-x1y2").mkdir()
    (tmp_path / "ckpt.tmp-x1y2" / "model.safetensors").write_bytes(b"\0" * 10)
    assert read_config(path) == {}
    assert_intact(path, 1)
    save_marked(path, 2.0, step=2)
    assert os.listdir(tmp_path) == ["ckpt"]
    assert_intact(path, 2)


def test_killed_before_removing_old(tmp_path):
    path = tmp_path / "ckpt"
    save_marked(tmp_path / "ckpt.old", 1.0, step=1)
    save_marked(path, 2.0, step=2)
    assert_intact(path, 2)
    save_marked(path, 3.0, step=3)
    assert os.listdir(tmp_path) == ["ckpt"]


def test_refuses_to_replace_what_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    (tmp_path / "data").mkdir()
    for path in (tmp_path / "notes.txt", tmp_path / "data"):
        with pytest.raises(FileExistsError, match="not an lstmlab checkpoint"):
            save_marked(path, 1.0, step=1)
    assert (tmp_path / "notes.txt").read_text() == "precious"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_sigkill_at_random_moments(tmp_path):
    """A child saving in a loop is killed -9 at a random moment, 20 times over the same path;
    every time the checkpoint at the path loads, complete and consistent."""
    path, rng = tmp_path / "ckpt", random.Random(0)
    # small enough that no op in the forked child enters torch's thread pool, which fork breaks
    model = nn.Linear(16, 16)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 16)).sum().backward()
    opt.step()
    for _ in range(20):
        start = read_step(path)
        pid = os.fork()
        if pid == 0:  # the child: save forever, never return to pytest
            try:
                for step in range(start + 1, 10**9):
                    with torch.no_grad():
                        for p in model.parameters():
                            p.fill_(step)
                    save_checkpoint(path, model=model, optimizer=opt, config={}, step=step)
            finally:
                os._exit(1)
        deadline = time.monotonic() + 30
        while read_step(path) <= start:  # at least one save done: the child is mid-loop
            assert time.monotonic() < deadline, "the saving child stalled"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.01))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        ckpt = load_checkpoint(
            path,
            model=nn.Linear(16, 16),
            optimizer=torch.optim.Adam(nn.Linear(16, 16).parameters()),
            restore_rng=False,
        )
        assert ckpt.step > start
        assert all(bool((w == ckpt.step).all()) for w in ckpt.weights.values())
    save_checkpoint(path, model=model, config={})
    assert os.listdir(tmp_path) == ["ckpt"]


def read_step(path) -> int:
    try:
        return json.loads((path / "checkpoint.json").read_text())["step"]
    except (FileNotFoundError, ValueError):  # not saved yet, or renamed away this instant
        return 0


# --- broken, foreign and mismatched files: one line naming the file ---


def one_line_error(exc_type, path, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        load_checkpoint(path, restore_rng=False, **kwargs)
    message = str(info.value)
    assert "\n" not in message and info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    return message


@pytest.fixture
def saved(tmp_path):
    model, opt, sched = make_run()
    train(model, opt, sched, 1)
    return save_checkpoint(
        tmp_path / "ckpt", model=model, optimizer=opt, scheduler=sched, config={"hidden": 8}
    )


def test_a_run_folder_stands_for_its_checkpoint(tmp_path):
    """``RUN`` reads ``RUN/checkpoint`` (as the trainer lays runs out), for every reader."""
    model, opt, sched = make_run()
    train(model, opt, sched, 2)
    save_checkpoint(
        tmp_path / "run" / "checkpoint", model=model, optimizer=opt, config={"h": 8}, step=3
    )
    fresh, _, _ = make_run()
    assert load_checkpoint(tmp_path / "run", model=fresh).step == 3
    for name, w in model.state_dict().items():
        assert torch.equal(w, fresh.state_dict()[name])
    assert read_config(tmp_path / "run") == {"h": 8}
    (tmp_path / "empty").mkdir()  # a folder with neither: the usual error
    assert str(tmp_path / "empty" / "checkpoint.json") in one_line_error(
        FileNotFoundError, tmp_path / "empty"
    )


def test_is_checkpoint(tmp_path):
    """True only for a directory whose checkpoint.json carries the format marker."""
    model, opt, sched = make_run()
    save_checkpoint(tmp_path / "run" / "checkpoint", model=model, config={}, step=1)
    assert is_checkpoint(tmp_path / "run" / "checkpoint")
    assert not is_checkpoint(tmp_path / "run")  # holds one, is not one
    assert not is_checkpoint(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "checkpoint.json").write_text('{"format": "someone-else"}')
    assert not is_checkpoint(tmp_path / "other")
    (tmp_path / "other" / "checkpoint.json").write_bytes(b"\x80garbage")
    assert not is_checkpoint(tmp_path / "other")


def test_missing(tmp_path, saved):
    assert str(tmp_path / "nope" / "checkpoint.json") in one_line_error(
        FileNotFoundError, tmp_path / "nope"
    )
    (saved / "model.safetensors").unlink()
    assert str(saved / "model.safetensors") in one_line_error(FileNotFoundError, saved)


def truncate(file):
    file.write_bytes(file.read_bytes()[:-7])


def flip_a_bit(file):
    data = bytearray(file.read_bytes())
    data[-5] ^= 1
    file.write_bytes(bytes(data))


def torch_pickle(file):
    torch.save({"w": torch.ones(2)}, file)


def foreign_json(file):
    file.write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))


def future_version(file):
    meta = json.loads(file.read_text())
    file.write_text(json.dumps({**meta, "version": 99}))


def drop_key(file):
    meta = json.loads(file.read_text())
    del meta["rng"]
    file.write_text(json.dumps(meta))


def garbage_with_matching_hash(file):
    """Corrupt the tensors and forge the hash: the safetensors parser must still catch it."""
    file.write_bytes(b"\xff" * 64)
    meta_file = file.parent / "checkpoint.json"
    meta = json.loads(meta_file.read_text())
    meta["files"][file.name] = {"bytes": 64, "sha256": hashlib.sha256(b"\xff" * 64).hexdigest()}
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "name, damage, words",
    [
        ("checkpoint.json", truncate, "not valid JSON"),
        ("checkpoint.json", torch_pickle, "torch.save file"),
        ("checkpoint.json", foreign_json, "not an lstmlab checkpoint"),
        ("checkpoint.json", future_version, "format version 99 is newer"),
        ("checkpoint.json", drop_key, "missing rng"),
        ("model.safetensors", truncate, "truncated"),
        ("model.safetensors", flip_a_bit, "corrupt"),
        ("model.safetensors", torch_pickle, "truncated or altered"),
        ("model.safetensors", garbage_with_matching_hash, "not a valid safetensors file"),
        ("optimizer.safetensors", flip_a_bit, "corrupt"),
    ],
)
def test_broken_files(saved, name, damage, words):
    damage(saved / name)
    model, opt, sched = make_run()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    message = one_line_error(ValueError, saved, model=model, optimizer=opt, scheduler=sched)
    assert message.startswith(str(saved / name)) and words in message, message
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_pointed_at_a_file(tmp_path):
    torch_pickle(tmp_path / "model.pt")
    message = one_line_error(ValueError, tmp_path / "model.pt")
    assert str(tmp_path / "model.pt") in message and "torch.save file" in message
    (tmp_path / "config.json").write_text("{}")
    assert "not an lstmlab checkpoint" in one_line_error(ValueError, tmp_path / "config.json")


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: make_run(hidden=16), "lstm.weight_ih_l0 has shape (32, 3) in the file, (64, 3)"),
        (lambda: (nn.Sequential(nn.Linear(3, 2)), None, None), "missing 0.weight; missing 0.bias"),
        (lambda: (Net(), torch.optim.SGD(Net().parameters(), lr=1), None), "is for Adam, not SGD"),
        (lambda: (Net(), torch.optim.Adam(Net().head.parameters()), None), "does not fit"),
    ],
)
def test_mismatch(saved, build, words):
    model, opt, sched = build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    message = one_line_error(ValueError, saved, model=model, optimizer=opt, scheduler=sched)
    assert str(saved) in message and words in message, message
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_no_optimizer_saved(tmp_path):
    save_checkpoint(tmp_path / "c", model=Net(), config={})
    _, opt, _ = make_run()
    assert "holds no optimizer state" in one_line_error(ValueError, tmp_path / "c", optimizer=opt)


def test_load_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load_checkpoint unpickled")

    for module, name in [
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (torch, "load"),
        (torch.serialization, "load"),
        (np, "load"),
    ]:
        monkeypatch.setattr(module, name, forbidden)
    model, opt, sched = make_run()
    assert load_checkpoint(saved, model=model, optimizer=opt, scheduler=sched).step == 0
    torch_pickle(saved / "checkpoint.json")
    with pytest.raises(ValueError, match="torch.save file"):
        load_checkpoint(saved)


def test_extra_tensors_round_trip(tmp_path):
    model = torch.nn.Linear(2, 3)
    carried = {"state.0": torch.randn(2, 4, 5), "state.1": torch.randn(2, 4, 5)}
    save_checkpoint(tmp_path / "ck", model=model, config={}, tensors=carried)
    got = load_checkpoint(tmp_path / "ck", model=model).tensors
    assert set(got) == set(carried)
    assert all(torch.equal(got[k], carried[k]) for k in carried)
    save_checkpoint(tmp_path / "ck2", model=model, config={})
    assert load_checkpoint(tmp_path / "ck2", model=model).tensors == {}
