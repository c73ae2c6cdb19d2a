"""Tests for course_utils.distributed, course_utils.ddp_cnn and `ner train` under torchrun.

The multi-process tests launch real process groups (gloo, on the CPU) with torchrun,
on tiny data: a few hundred Fashion-MNIST images and a 27-sentence corpus.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import TensorDataset

from course_utils import distributed
from course_utils.cnn import make_cnn
from course_utils.exercises import run_check
from course_utils.ner import Tagger
from course_utils.tooling.tagger_files import SAVED_FILES
from course_utils.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# 192 images in batches of 32: 6 steps per epoch, so 10 steps cross into a second epoch (a new shuffle).
TINY = ["--steps", "10", "--batch-size", "32", "--train-size", "192", "--threads", "1", "--log-every", "5"]


def launch(args: list[str], tmp_path: Path, processes: int | None = None, restarts: int = 0,
           timeout: int = 120) -> str:
    """Run ``python -m ARGS`` (under torchrun with ``processes`` and ``--max-restarts=restarts``);
    return stdout + stderr, checking the status."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COURSE_PROGRESS": "0"}
    for name in distributed.ENV_VARS:
        env.pop(name, None)
    prefix = [sys.executable]
    if processes is not None:
        prefix += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   f"--max-restarts={restarts}"]
    # A session of its own, so that a timeout stops torchrun's workers too, not torchrun alone.
    process = subprocess.Popen([*prefix, "-m", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    output = stdout + stderr
    assert process.returncode == 0, output[-3000:]
    return output


def parameters(folder: Path) -> dict[str, torch.Tensor]:
    """The trainable parameters saved in folder/model.pt (not BatchNorm's running statistics)."""
    model = make_cnn()
    load_checkpoint(folder / "model.pt", model)
    return {name: p.detach() for name, p in model.named_parameters()}


def largest_difference(a: dict, b: dict) -> float:
    return max((a[name] - b[name]).abs().max().item() for name in a)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    """10 steps of lesson 01's CNN on 2 processes, global batch 32, uninterrupted (1 2/3 epochs)."""
    out = tmp_path_factory.mktemp("two")
    launch(["course_utils.ddp_cnn", *TINY, "--out", str(out)], out, processes=2)
    return out


def test_make_cnn_shapes():
    model = make_cnn()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model) == 3
    assert [m.p for m in make_cnn(0.0) if isinstance(m, torch.nn.Dropout)] == [0.0, 0.0]
    with pytest.raises(ValueError, match="dropout"):
        make_cnn(1.0)


def test_without_torchrun_there_is_one_process(monkeypatch):
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    context = distributed.setup()
    assert (context.rank, context.world_size, context.distributed, context.is_main) == (0, 1, False, True)
    assert not dist.is_initialized()
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="some of torchrun's variables"):
        distributed.setup()


@pytest.mark.parametrize("gpus, processes, backend", [(0, 1, "gloo"), (1, 1, "nccl"), (1, 2, "gloo"), (2, 2, "nccl"),
                                                      (4, 2, "nccl")])
def test_nccl_only_where_every_process_on_the_machine_gets_a_gpu(monkeypatch, gpus, processes, backend):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert distributed.pick_backend(processes) == backend
    with pytest.raises(ValueError, match="at least one process"):
        distributed.pick_backend(0)


def test_nccl_refuses_a_second_process_on_one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "29511"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="one GPU per process"):
        distributed.setup(backend="nccl")
    assert not dist.is_initialized()


def test_sampler_shares_equal_one_process_batches():
    """The k-th batches of 2 processes together are the k-th batch of 1 process at twice the size."""
    data = TensorDataset(torch.arange(103))
    one = [b[0] for b in distributed.distributed_loader(data, 10, seed=3, rank=0, world_size=1)]
    ranks = [[b[0] for b in distributed.distributed_loader(data, 5, seed=3, rank=r, world_size=2)]
             for r in (0, 1)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 10
    for k, batch in enumerate(one):
        assert torch.equal(batch[0::2], ranks[0][k]) and torch.equal(batch[1::2], ranks[1][k])
    with pytest.raises(ValueError, match="fewer than one batch"):
        distributed.distributed_loader(data, 60, seed=0, rank=0, world_size=2)


def test_ddp_cnn_refuses_bad_arguments_before_joining_a_process_group(tmp_path, monkeypatch, capsys):
    """The arguments are checked before setup(), so a refused run leaves no process group behind."""
    from course_utils import ddp_cnn
    with pytest.raises(SystemExit) as stop:
        ddp_cnn.main(["--out", str(tmp_path), "--steps", "0"])
    assert stop.value.code == 2 and "--steps: expected a positive int, got '0'" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "setup", lambda: pytest.fail("setup() ran before the arguments were checked"))
    assert ddp_cnn.main(["--out", str(tmp_path), "--steps", "1", "--batch-size", "3"]) == 1
    assert "--batch-size 3 must be divisible by processes x accumulate = 2" in capsys.readouterr().out
    (tmp_path / "taken").write_text("")
    assert ddp_cnn.main(["--out", str(tmp_path / "taken" / "run"), "--steps", "1", "--batch-size", "4"]) == 1
    assert f"{tmp_path / 'taken'} is a file, not a folder" in capsys.readouterr().out
    assert not dist.is_initialized()


def test_ddp_cnn_leaves_the_process_group_when_training_fails(tmp_path, monkeypatch, capsys):
    from course_utils import ddp_cnn
    left = []
    monkeypatch.setattr(distributed, "setup", lambda: "context")
    monkeypatch.setattr(distributed, "teardown", lambda: left.append(True))

    def fail(args, context, micro):
        raise FileNotFoundError("no Fashion-MNIST")
    monkeypatch.setattr(ddp_cnn, "_train", fail)
    assert ddp_cnn.main(["--out", str(tmp_path), "--steps", "1"]) == 1
    assert left == [True] and "no Fashion-MNIST" in capsys.readouterr().out


def test_save_on_main_keeps_the_old_file(tmp_path, monkeypatch):
    path = distributed.save_on_main({"step": 1}, tmp_path / "checkpoint.pt")
    assert distributed.load_resume_state(path) == {"step": 1}

    real_write = Path.write_bytes

    def half_then_full(self, data):  # the disk fills up half-way through the temporary file
        real_write(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(OSError, match="disk full"):
        distributed.save_on_main({"step": 2}, path)
    monkeypatch.undo()
    assert distributed.load_resume_state(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert distributed.load_resume_state(tmp_path / "none.pt") is None
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        distributed.load_resume_state(tmp_path / "bad.pt")


def test_two_processes_reach_the_parameters_of_one(two_processes, tmp_path):
    """DDP on 2 processes = 1 process accumulating the same 2 micro-batches, dropout included."""
    launch(["course_utils.ddp_cnn", *TINY, "--accumulate", "2", "--out", str(tmp_path)], tmp_path)
    assert json.loads((tmp_path / "result.json").read_text())["world_size"] == 1
    assert json.loads((two_processes / "result.json").read_text())["world_size"] == 2
    assert largest_difference(parameters(two_processes), parameters(tmp_path)) <= 1e-5
    # One process at the same global batch but without micro-batches normalises BatchNorm over 32
    # images instead of 16: a different computation, and different weights.
    whole = tmp_path / "whole"
    launch(["course_utils.ddp_cnn", *TINY, "--out", str(whole)], tmp_path)
    assert largest_difference(parameters(two_processes), parameters(whole)) > 1e-4


def test_a_killed_worker_is_restarted_and_resumes(two_processes, tmp_path):
    """Killed in the second epoch, resumed from step 8: epoch 2's shuffle, its first 2 batches skipped."""
    output = launch(["course_utils.ddp_cnn", *TINY, "--out", str(tmp_path), "--checkpoint-every", "4",
                     "--crash-at-step", "9"], tmp_path, processes=2, restarts=1)
    assert "6 steps per epoch" in output
    assert "killing myself at step 9" in output
    assert "resuming from the checkpoint of step 8" in output
    assert json.loads((tmp_path / "result.json").read_text())["resumed_from_step"] == 8
    assert largest_difference(parameters(two_processes), parameters(tmp_path)) == 0.0


def test_ner_train_under_torchrun_saves_on_rank_0_only(tmp_path):
    from test_ner import PEOPLE, PLACES, TEMPLATES, fill, write_conll
    import itertools

    sentences = [fill(t, p, l) for t, p, l in itertools.product(TEMPLATES, PEOPLE, PLACES)]
    write_conll(tmp_path / "train.txt", sentences)
    output = launch(["course_utils", "ner", "train", "--train", "train.txt", "--dev", "train.txt",
                     "--epochs", "2", "--batch-size", "8", "--out", "model"], tmp_path, processes=2)
    assert "training on 2 processes (gloo)" in output
    assert output.count("saved the tagger to model") == 1 and output.count("dev entity F1") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "train.txt"]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(SAVED_FILES)
    [pairs] = Tagger.load(tmp_path / "model").tag(["Mary lives in Paris ."])
    assert [token for token, _ in pairs] == ["Mary", "lives", "in", "Paris", "."]


@pytest.mark.parametrize("sentences, batch_size, world", [(33, 32, 2), (27, 13, 2), (64, 32, 2), (7, 3, 3), (5, 8, 2),
                                                        (5, 8, 1), (1, 4, 1), (70, 32, 4), (130, 2, 3)])
def test_an_epoch_counts_the_batches_it_trains(sentences, batch_size, world):
    from course_utils.ner_train import _batches_per_epoch, _length_batches
    for seed in range(3):  # brute force: the batches an epoch cuts, less those too small for every process
        batches = _length_batches([1 + i % 7 for i in range(sentences)], batch_size, torch.Generator().manual_seed(seed))
        assert _batches_per_epoch(sentences, batch_size, world) == sum(len(b) >= world for b in batches)


PROBE = """
import json, sys
from course_utils import distributed
from course_utils.ner_data import read_conll
from course_utils.ner_train import train_tagger

context = distributed.setup()
corpus = read_conll("train.txt")
_, history = train_tagger(corpus, corpus, epochs=2, batch_size=13, seed=0, device="cpu")
if context.is_main:
    print("HISTORY", json.dumps(history[["epoch", "step"]].values.tolist()))
distributed.teardown()
"""


def test_ner_train_under_torchrun_keeps_its_epoch_budget_when_a_batch_is_skipped(tmp_path):
    """27 sentences in batches of 13: 13, 13 and 1; on 2 processes the batch of 1 is skipped, so an epoch is 2 steps."""
    from test_ner import PEOPLE, PLACES, TEMPLATES, fill, write_conll
    import itertools

    write_conll(tmp_path / "train.txt", [fill(t, p, l) for t, p, l in itertools.product(TEMPLATES, PEOPLE, PLACES)])
    (tmp_path / "epoch_probe.py").write_text(PROBE)
    output = launch(["epoch_probe"], tmp_path, processes=2)
    history = json.loads(output.split("HISTORY ", 1)[1].splitlines()[0])
    assert history == [[1.0, 2], [2.0, 4]], output[-2000:]


# --- lesson 06's exercise: the gradient average by hand ----------------------------------------

def _all_reduce_mean(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


def _all_reduce_sum(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)


def _nothing(model):
    pass


def _not_yet(model):
    raise NotImplementedError()


@pytest.mark.parametrize("answer, passed, message", [
    (_all_reduce_mean, True, "passed all 5 test cases"),
    (_all_reduce_sum, False, "divide by dist.get_world_size()"),
    (_nothing, False, "call dist.all_reduce on every p.grad"),
    (_not_yet, False, "not implemented yet"),
])
def test_gradient_average_check(answer, passed, message):
    result = run_check("06.average_gradients", answer)
    assert result.passed is passed and message in result.message
