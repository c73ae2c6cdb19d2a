"""The training loop, evaluation, devices, seeding and checkpoints."""

import matplotlib
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import plots, train

matplotlib.use("Agg")


def _blobs(n=512, seed=0):
    """Two well-separated Gaussian blobs: x (n, 2), y (n,)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None].float() * 4 - 2)
    return x, y


def test_fit_learns_a_separable_problem_and_returns_history():
    train.seed_everything(0)
    x, y = _blobs()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = train.fit(model, loader, F.cross_entropy, opt, epochs=3, val_loader=loader,
                        scheduler=sched, verbose=False)
    assert isinstance(history, pd.DataFrame)
    assert list(history.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                     "lr", "seconds"]
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["lr"].tolist() == pytest.approx([0.1, 0.05, 0.025])
    assert history["val_accuracy"].iloc[-1] > 0.95
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert train.evaluate(model, loader, F.cross_entropy)["accuracy"] == pytest.approx(
        history["val_accuracy"].iloc[-1])


def test_fit_without_class_scores_has_no_accuracy():
    x = torch.randn(64, 3)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    model = nn.Linear(3, 1)
    history = train.fit(model, loader, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.05),
                        epochs=2, verbose=False)
    assert "train_accuracy" not in history and history["train_loss"].iloc[1] < history["train_loss"].iloc[0]


def test_fit_rejects_bad_arguments():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, [], F.cross_entropy, opt, epochs=0)
    with pytest.raises(ValueError, match="scheduler_step"):
        train.fit(model, [], F.cross_entropy, opt, epochs=1, scheduler_step="step")
    with pytest.raises(TypeError, match="pair"):
        train.fit(model, [torch.zeros(4, 2)], F.cross_entropy, opt, epochs=1)


def test_evaluate_of_an_empty_loader():
    with pytest.raises(ValueError, match="no batches"):
        train.evaluate(nn.Linear(2, 2), [], F.cross_entropy)


def test_predict_returns_classes_and_targets():
    x, y = _blobs(100)
    model = nn.Linear(2, 2)
    preds, targets = train.predict(model, DataLoader(TensorDataset(x, y), batch_size=32))
    assert preds.shape == (100,) and torch.equal(targets, y)
    assert torch.equal(preds, model(x).argmax(1))


def test_get_device(monkeypatch):
    assert train.get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert train.get_device() == torch.device("cuda")  # CUDA first when it is there
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert train.get_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="'cuda' is not available"):
        train.get_device("cuda")
    with pytest.raises(ValueError, match="must be one of"):
        train.get_device("tpu")


def test_seed_everything_makes_runs_repeatable():
    train.seed_everything(7)
    a = torch.rand(3)
    train.seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    for bad in (-1, True, 2**32, 1.0):
        with pytest.raises(ValueError, match=r"seed must be an int from 0 to 2\*\*32 - 1"):
            train.seed_everything(bad)


def test_count_parameters():
    assert train.count_parameters(nn.Linear(10, 3)) == 33


def test_checkpoint_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    path = train.save_checkpoint(tmp_path / "ckpt" / "m.pt", model, epoch=3, classes=["a", "b"])
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert train.load_checkpoint(path, other) == {"epoch": 3, "classes": ["a", "b"]}
    x = torch.randn(5, 4)
    assert torch.equal(model(x), other(x))
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]


def test_checkpoint_errors(tmp_path):
    model = nn.Linear(4, 3)
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "missing.pt", model)
    path = train.save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="does not fit this model"):
        train.load_checkpoint(path, nn.Linear(4, 5))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        train.load_checkpoint(tmp_path / "junk.pt", model)


def test_plots_are_titled_and_labelled():
    fig = plots.plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], ["a", "b", "c"], title="CM")
    ax = fig.axes[0]
    assert ax.get_title() == "CM" and ax.get_xlabel() == "predicted class"

    fig = plots.show_images(torch.zeros(5, 1, 8, 8), titles=list("abcde"), ncols=3, title="grid")
    assert fig._suptitle.get_text() == "grid" and len(fig.axes) == 6


def test_plots_reject_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        plots.plot_confusion_matrix([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plots.show_images(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        plots.show_images(torch.zeros(2, 8, 8), titles=["a"])


def test_show_images_signed_uses_symmetric_limits_and_a_colour_bar():
    images = torch.tensor([[[-1.0, 0.5]], [[0.25, 3.0]]])             # (2, 1, 2)
    fig = plots.show_images(images, signed=True, title="signed")
    pictures = [ax.images[0] for ax in fig.axes if ax.images]
    assert all(p.get_clim() == (-3.0, 3.0) for p in pictures)
    assert len(fig.axes) == 8 + 1                                     # one row of 8 panels and the colour bar


def test_course_style_is_opaque_and_colour_blind_safe():
    import matplotlib.pyplot as plt
    plt.rcParams["figure.facecolor"] = "none"
    plots.use_course_style()
    assert plt.rcParams["figure.facecolor"] == "white"
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"][:2] == ["#0072B2", "#E69F00"]


class _TokenScores(nn.Module):
    """(B, T) token ids -> (B, T, C) scores: the token's own id is the best class."""

    def forward(self, x):
        return F.one_hot(x, 3).float() * 5.0


def test_ignored_targets_count_in_neither_accuracy_nor_loss():
    x = torch.tensor([[0, 1, 2, 2], [1, 1, 0, 0]])              # (B=2, T=4)
    y = torch.tensor([[0, 1, 2, -100], [1, 0, -100, -100]])    # padding is -100; 5 real tokens, 1 wrong
    loader = DataLoader(TensorDataset(x, y), batch_size=2)
    scores = lambda out, t: F.cross_entropy(out.transpose(1, 2), t)  # noqa: E731 (B, C, T) for tokens
    result = train.evaluate(_TokenScores(), loader, scores)
    assert result["accuracy"] == pytest.approx(4 / 5), "4 of the 5 real tokens are right; padding must not count"
    wrong = F.cross_entropy(torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([1]))
    right = F.cross_entropy(torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([0]))
    assert result["loss"] == pytest.approx(float(wrong + 4 * right) / 5)


def test_per_token_loss_is_averaged_over_tokens_not_batches():
    """Two batches of different token counts: the mean is over all 4 tokens."""
    x = [torch.tensor([[0, 0, 0]]), torch.tensor([[1]])]
    y = [torch.tensor([[1, 1, 1]]), torch.tensor([[1]])]     # 3 wrong tokens, then 1 right one
    scores = lambda out, t: F.cross_entropy(out.transpose(1, 2), t)  # noqa: E731
    result = train.evaluate(_TokenScores(), list(zip(x, y)), scores)
    wrong = float(F.cross_entropy(torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([1])))
    right = float(F.cross_entropy(torch.tensor([[0.0, 5.0, 0.0]]), torch.tensor([1])))
    assert result["loss"] == pytest.approx((3 * wrong + right) / 4)
    assert result["accuracy"] == pytest.approx(1 / 4)


def test_fit_stops_at_the_target_accuracy():
    train.seed_everything(0)
    x, y = _blobs()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    history = train.fit(model, loader, F.cross_entropy, opt, epochs=30, val_loader=loader,
                        stop_at_accuracy=0.99, verbose=False)
    assert history.val_accuracy.iloc[-1] >= 0.99 and len(history) < 30
    assert (history.val_accuracy.iloc[:-1] < 0.99).all()
    with pytest.raises(ValueError, match="needs a val_loader"):
        train.fit(model, loader, F.cross_entropy, opt, epochs=1, stop_at_accuracy=0.9)


@pytest.mark.parametrize("meta, problem", [
    ({"acc": __import__("numpy").float32(0.5)}, "float32.*float"),
    ({"where": __import__("pathlib").Path("x")}, "Path.*str"),
    ({"nested": {"a": [1, {"b": __import__("numpy").int64(3)}]}}, r"nested\['a'\]\[1\]\['b'\]"),
    ({"table": {1: "one"}}, "keys must be strings"),
])
def test_save_checkpoint_rejects_metadata_it_could_not_load(tmp_path, meta, problem):
    with pytest.raises(TypeError, match=problem):
        train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2), **meta)
    assert not list(tmp_path.iterdir()), "nothing may be written"


def test_checkpoint_metadata_round_trips(tmp_path):
    meta = {"epoch": 3, "acc": 0.9, "name": "cnn", "ok": True, "none": None, "sizes": [1, 2], "d": {"a": (1, 2.5)}}
    path = train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2), **meta)
    loaded = train.load_checkpoint(path, nn.Linear(2, 2))
    assert loaded == {**meta, "d": {"a": (1, 2.5)}}


def test_a_checkpoint_with_any_flipped_byte_is_refused(tmp_path):
    """Probe K01: one flipped byte in the middle of a checkpoint loaded silently."""
    path = train.save_checkpoint(tmp_path / "m.pt", nn.Linear(3, 2), epoch=3)
    data = path.read_bytes()
    for offset in sorted({0, 25, 70, len(data) // 2, len(data) - 1, *range(100, len(data), 97)}):
        flipped = bytearray(data)
        flipped[offset] ^= 0x40
        (tmp_path / "flip.pt").write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="corrupted|not a readable checkpoint"):
            train.load_checkpoint(tmp_path / "flip.pt", nn.Linear(3, 2))
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.pt is corrupted"):
        train.load_checkpoint(tmp_path / "cut.pt", nn.Linear(3, 2))


def test_a_plain_torch_file_is_not_a_checkpoint(tmp_path):
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="not a readable checkpoint: expected the line"):
        train.load_checkpoint(tmp_path / "bare.pt", nn.Linear(3, 2))


def test_saving_under_a_file_or_onto_a_folder_says_so(tmp_path):
    """Probe K12: saving to good.pt/x.pt raised a bare FileExistsError."""
    good = train.save_checkpoint(tmp_path / "good.pt", nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"good\.pt is a file, not a folder"):
        train.save_checkpoint(good / "x.pt", nn.Linear(2, 2))
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(ValueError, match="it is a folder"):
        train.save_checkpoint(tmp_path / "dir.pt", nn.Linear(2, 2))


def test_a_full_disk_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    path = train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2), epoch=1)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match=r"could not write .*m\.pt \(No space left on device\); the previous"):
        train.save_checkpoint(path, nn.Linear(2, 2), epoch=2)
    monkeypatch.undo()
    assert train.load_checkpoint(path, nn.Linear(2, 2)) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


@pytest.mark.parametrize("saved", [{"state_dict": [1, 2]}, {"state_dict": {"weight": 5}, "meta": {}},
                                   {"state_dict": {}, "meta": [1]}, [1, 2]])
def test_a_hostile_checkpoint_is_a_clear_error(tmp_path, saved):
    """Re-probe NK05: a checkpoint holding a list where a dict belongs gave a TypeError traceback."""
    train.save_verified(saved, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=r"x\.pt"):
        train.load_checkpoint(tmp_path / "x.pt", nn.Linear(2, 2))


def test_hashes_that_look_alike_are_shown_as_they_are(tmp_path):
    """Re-probe NK03: a header with a trailing space printed two identical-looking hashes."""
    path = train.save_checkpoint(tmp_path / "x.pt", nn.Linear(2, 2))
    header, _, payload = path.read_bytes().partition(b"\n")
    path.write_bytes(header + b" \n" + payload)
    with pytest.raises(ValueError, match=r"the file records '[0-9a-f]{64} '"):
        train.load_checkpoint(path, nn.Linear(2, 2))


def test_deeply_nested_metadata_is_refused_before_saving(tmp_path):
    """Re-probe NK06: metadata nested 3,000 deep gave a RecursionError traceback."""
    nested = []
    for _ in range(3000):
        nested = [nested]
    with pytest.raises(TypeError, match=r"checkpoint metadata x is nested more than 100 levels deep"):
        train.save_checkpoint(tmp_path / "x.pt", nn.Linear(2, 2), x=nested)
    assert not (tmp_path / "x.pt").exists()


def test_every_epoch_trains_in_training_mode_after_evaluating():
    """fit evaluates on val_loader (eval mode) after each epoch; the next epoch must switch back to train mode,
    or dropout and batch norm silently train as at test time from epoch 2 on."""
    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.modes = nn.Linear(2, 2), []

        def forward(self, x):
            self.modes.append((torch.is_grad_enabled(), self.training))
            return self.linear(x)

    x, y = _blobs(64)
    model = Recorder()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    train.fit(model, loader, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
              val_loader=loader, verbose=False)
    training_calls = [mode for grad, mode in model.modes if grad]
    assert len(training_calls) == 3 * 4 and all(training_calls)
    assert any(not mode for grad, mode in model.modes if not grad)  # evaluation did run in eval mode
