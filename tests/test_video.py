"""Tests for course_utils.video (lesson 04: moving-garment clips and video classifiers)."""
import base64
import dataclasses
import math
import struct

import pytest
import torch
from matplotlib.animation import FuncAnimation

from course_utils.video import (
    CNNLSTM,
    DIRECTIONS,
    Conv3DClassifier,
    FrameCNN,
    FramePoolClassifier,
    MovingClips,
    animate_clip,
    combined_label,
    make_moving_clips,
    reverse_clips,
    show_clip_strip,
)

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
# (row, column) displacement per frame for 1 px/frame; rows grow downwards.
MOTION = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}


def random_images(n: int = 12, h: int = 28, w: int = 28, seed: int = 0) -> torch.Tensor:
    """Random uint8 'garments' with no all-black image (so every clip has mass)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, h, w), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return random_images()


@pytest.fixture(scope="module")
def data(images: torch.Tensor) -> MovingClips:
    # Labels = image index, so `garment` tells which image each clip shows.
    return make_moving_clips(images, torch.arange(len(images)), 400, frames=16, size=48, seed=3)


def centre_of_mass(frames: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., 2) intensity-weighted (row, column)."""
    f = frames.double()
    rows = torch.arange(f.shape[-2], dtype=torch.float64)
    cols = torch.arange(f.shape[-1], dtype=torch.float64)
    mass = f.sum(dim=(-2, -1))
    r = (f.sum(-1) * rows).sum(-1) / mass
    c = (f.sum(-2) * cols).sum(-1) / mass
    return torch.stack([r, c], dim=-1)


def test_same_seed_gives_identical_clips(images):
    labels = torch.arange(len(images))
    a = make_moving_clips(images, labels, 50, seed=7)
    b = make_moving_clips(images, labels, 50, seed=7)
    for field in ("clips", "direction", "garment", "positions"):
        assert torch.equal(getattr(a, field), getattr(b, field))


def test_different_seeds_give_different_clips(images):
    labels = torch.arange(len(images))
    a = make_moving_clips(images, labels, 50, seed=0)
    b = make_moving_clips(images, labels, 50, seed=1)
    assert not torch.equal(a.clips, b.clips)
    assert not torch.equal(a.positions, b.positions)


def test_shapes_dtypes_and_range(data):
    n = len(data)
    assert data.clips.shape == (n, 16, 1, 48, 48) and data.clips.dtype == torch.uint8
    assert data.direction.shape == (n,) and data.direction.dtype == torch.int64
    assert data.garment.shape == (n,) and data.garment.dtype == torch.int64
    assert data.positions.shape == (n, 16, 2) and data.positions.dtype == torch.int64
    clip, label = data[5]
    assert clip.shape == (16, 1, 48, 48) and clip.dtype == torch.float32
    assert 0.0 <= clip.min() and clip.max() <= 1.0 and clip.max() > 0.5
    assert label == data.direction[5]


def test_directions_are_balanced(images):
    labels = torch.arange(len(images))
    for n in (400, 401, 7):
        counts = torch.bincount(make_moving_clips(images, labels, n).direction, minlength=4)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n


def test_every_image_is_used(data, images):
    assert set(data.garment.tolist()) == set(range(len(images)))


def test_task_switches_the_label(data):
    assert torch.equal(dataclasses.replace(data, task="garment").labels, data.garment)
    combined = dataclasses.replace(data, task="combined")
    assert torch.equal(combined.labels, data.garment * 4 + data.direction)
    assert combined[3][1] == combined.labels[3]
    assert combined.clips is data.clips  # no copy


def test_combined_label_is_a_bijection():
    garment, direction = torch.meshgrid(torch.arange(10), torch.arange(4), indexing="ij")
    label = combined_label(garment.flatten(), direction.flatten())
    assert sorted(label.tolist()) == list(range(40))
    assert torch.equal(label // 4, garment.flatten())
    assert torch.equal(label % 4, direction.flatten())


def test_no_cropping_each_frame_is_the_whole_image(data, images):
    h, w = images.shape[1:]
    free = 48 - h
    assert data.positions.min() >= 0 and data.positions.max() <= free
    for i in range(0, len(data), 37):
        image = images[data.garment[i]]
        for t in range(16):
            r, c = data.positions[i, t].tolist()
            frame = data.clips[i, t, 0]
            assert torch.equal(frame[r : r + h, c : c + w], image)
            assert frame.sum() == image.sum()  # nothing else on the canvas


def test_garment_moves_in_the_stated_direction(data):
    com = centre_of_mass(data.clips[:, :, 0])  # (N, T, 2)
    velocity = com[:, 1:] - com[:, :-1]  # (N, T-1, 2)
    for i in range(len(data)):
        expected = torch.tensor(MOTION[DIRECTIONS[data.direction[i]]], dtype=torch.float64)
        assert torch.allclose(velocity[i], expected.expand_as(velocity[i]), atol=1e-9)


def test_step_sets_the_speed(images):
    d = make_moving_clips(images, torch.arange(len(images)), 40, frames=5, step=3)
    moves = (d.positions[:, 1:] - d.positions[:, :-1]).abs().sum(-1)
    assert torch.equal(moves, torch.full_like(moves, 3))


def test_reverse_clips_plays_backwards_with_opposite_label(data):
    rev, rev_dir = reverse_clips(data.clips, data.direction)
    for i in range(0, len(data), 11):
        assert DIRECTIONS[rev_dir[i]] == OPPOSITE[DIRECTIONS[data.direction[i]]]
        for t in range(16):
            assert torch.equal(rev[i, t], data.clips[i, 15 - t])
    # Same frames, and the reversed clip moves the opposite way.
    com = centre_of_mass(rev[:, :, 0])
    velocity = com[:, 1:] - com[:, :-1]
    for i in range(0, len(data), 11):
        expected = torch.tensor(MOTION[DIRECTIONS[rev_dir[i]]], dtype=torch.float64)
        assert torch.allclose(velocity[i], expected.expand_as(velocity[i]), atol=1e-9)


def test_reversing_twice_is_identity(data):
    clips, direction = reverse_clips(*reverse_clips(data.clips, data.direction))
    assert torch.equal(clips, data.clips) and torch.equal(direction, data.direction)


def test_position_distribution_is_symmetric(images):
    """Start of a clip and end of the opposite clip cover the same positions;
    a frame at a random time has the same position range for all directions."""
    d = make_moving_clips(images, torch.arange(len(images)), 4000, seed=5)
    pos = d.positions
    by = {name: pos[d.direction == k] for k, name in enumerate(DIRECTIONS)}
    for a, b in (("left", "right"), ("up", "down")):
        for axis in (0, 1):
            assert set(by[a][:, 0, axis].tolist()) == set(by[b][:, -1, axis].tolist())
    ranges = {n: (p.amin(dim=(0, 1)).tolist(), p.amax(dim=(0, 1)).tolist()) for n, p in by.items()}
    assert all(r == ([0, 0], [20, 20]) for r in ranges.values()), ranges
    # The first frame alone cannot tell apart opposite directions along the
    # still axis: left/right share their row values.
    assert set(by["left"][:, 0, 0].tolist()) == set(by["right"][:, 0, 0].tolist())


@pytest.mark.parametrize("frames", [1, 3, 16])
@pytest.mark.parametrize("model_cls", [FramePoolClassifier, CNNLSTM, Conv3DClassifier])
def test_model_output_shapes(model_cls, frames):
    torch.manual_seed(0)
    clips = torch.rand(2, frames, 1, 48, 48)
    assert model_cls()(clips).shape == (2, 4)
    assert model_cls(num_classes=40)(clips).shape == (2, 40)


def test_frame_cnn_shape():
    assert FrameCNN(feature_dim=32)(torch.rand(5, 1, 48, 48)).shape == (5, 32)
    assert FrameCNN(image_size=28)(torch.rand(2, 1, 28, 28)).shape == (2, 64)


def test_frame_pool_is_order_blind_and_cnn_lstm_is_not():
    torch.manual_seed(0)
    clips = torch.rand(3, 8, 1, 48, 48)
    shuffled = clips[:, torch.randperm(8)]
    pool, lstm, conv3d = FramePoolClassifier(), CNNLSTM(), Conv3DClassifier()
    with torch.no_grad():
        assert torch.allclose(pool(clips), pool(shuffled), atol=1e-6)
        assert not torch.allclose(lstm(clips), lstm(shuffled), atol=1e-4)
        assert not torch.allclose(conv3d(clips), conv3d(shuffled), atol=1e-4)


def test_generator_rejects_bad_input(images):
    labels = torch.arange(len(images))
    with pytest.raises(TypeError, match="uint8"):
        make_moving_clips(images.float(), labels, 4)
    with pytest.raises(TypeError, match=r"\(N, H, W\)"):
        make_moving_clips(images[0], labels, 4)
    with pytest.raises(TypeError, match="int64"):
        make_moving_clips(images, labels.int(), 4)
    with pytest.raises(ValueError, match="as many labels"):
        make_moving_clips(images, labels[:-1], 4)
    with pytest.raises(ValueError, match="smaller than"):
        make_moving_clips(images, labels, 4, size=20)
    with pytest.raises(ValueError, match="can move at most 20 px"):
        make_moving_clips(images, labels, 4, frames=22, size=48)
    with pytest.raises(ValueError, match=">= 1"):
        make_moving_clips(images, labels, 0)
    with pytest.raises(ValueError, match="task"):
        dataclasses.replace(make_moving_clips(images, labels, 4), task="colour")


def test_other_functions_reject_bad_input(data):
    with pytest.raises(ValueError, match="direction"):
        reverse_clips(data.clips, data.direction[:-1])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        reverse_clips(data.clips[:2], torch.tensor([0, 4]))
    with pytest.raises(TypeError, match="int64"):
        reverse_clips(data.clips[:2], torch.tensor([0, 1], dtype=torch.int32))
    with pytest.raises(ValueError, match="same shape"):
        combined_label(torch.arange(3), torch.arange(4))
    for model in (FramePoolClassifier(), CNNLSTM(), Conv3DClassifier()):
        with pytest.raises(ValueError, match=r"\(B, T"):
            model(torch.rand(2, 1, 48, 48))  # one clip's frames, missing batch
    with pytest.raises(ValueError, match="expected frames"):
        CNNLSTM()(torch.rand(2, 4, 1, 32, 32))  # wrong frame size
    with pytest.raises(ValueError, match="clip"):
        animate_clip(torch.rand(48, 48))
    with pytest.raises(ValueError, match="clip"):
        show_clip_strip(torch.rand(2, 3, 3, 48, 48))


def test_animate_clip(data):
    anim = animate_clip(data[0][0], title="right")
    assert isinstance(anim, FuncAnimation)
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 16  # one picture per frame


def test_show_clip_strip(data):
    ax = show_clip_strip(data.clips[0], title="a clip")
    assert ax.get_title() == "a clip"
    assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    strip = ax.get_images()[0].get_array()
    assert strip.shape == (48, 16 * 49 - 1)
    assert (strip[:, 48] == 127.5).all()  # separator between frames 1 and 2


def _first_png_size(html: str) -> tuple[int, int]:
    """(width, height) in pixels of the first PNG embedded in a to_jshtml page."""
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    end = min(html.index(q, start) for q in ("'", '"') if q in html[start:])
    png = base64.b64decode(html[start:end])
    return struct.unpack(">II", png[16:24])  # the IHDR chunk


def test_animate_clip_size_follows_height_dpi_and_aspect():
    wide = torch.rand(3, 48, 96)
    w1, h1 = _first_png_size(animate_clip(wide, height=2.0, dpi=50).to_jshtml())
    w2, h2 = _first_png_size(animate_clip(wide, height=2.0, dpi=100).to_jshtml())
    assert (w2, h2) == (2 * w1, 2 * h1)
    assert w1 == 2 * 2.0 * 50  # width = height * W / H inches
    with pytest.raises(ValueError, match="positive"):
        animate_clip(wide, dpi=0)


def test_labels_are_computed_once_per_task(monkeypatch):
    import dataclasses

    from course_utils import video

    n = 6
    data = video.MovingClips(torch.zeros(n, 2, 1, 4, 4, dtype=torch.uint8), torch.arange(n) % 4,
                             torch.arange(n) % 10, torch.zeros(n, 2, 2, dtype=torch.long), task="combined")
    calls = []
    monkeypatch.setattr(video, "combined_label", lambda g, d: calls.append(1) or g * 4 + d)
    combined = dataclasses.replace(data, task="combined")
    labels = [combined[i][1] for i in range(n)]
    assert len(calls) == 1, "one computation for the dataset, not one per item"
    assert [int(x) for x in labels] == (data.garment * 4 + data.direction).tolist()
    assert dataclasses.replace(data, task="direction")[3][1] == 3


def _changes(columns: torch.Tensor) -> list[torch.Tensor]:
    """Frames at which each clip's column changes: one (K,) tensor per row of columns (N, T)."""
    moves = columns[:, 1:] - columns[:, :-1]
    return [(m != 0).nonzero().flatten() + 1 for m in moves]


def test_two_move_clips_move_out_and_back_to_each_side_far_apart(images):
    from course_utils.video import make_two_move_clips
    d = make_two_move_clips(images, torch.arange(len(images)), 200, frames=32, size=36, shift=2, gap=8, margin=8)
    assert d.clips.shape == (200, 32, 1, 36, 36) and d.clips.dtype == torch.uint8
    assert torch.bincount(d.direction).tolist() == [100, 100]
    columns = d.positions[..., 1]                                           # (N, T)
    moves = columns[:, 1:] - columns[:, :-1]                                # moves[:, k] happens at frame k+1
    assert (moves.abs() <= 1).all()
    for i, changes in enumerate(_changes(columns)):
        assert len(changes) == 8                                            # 2 moves x (2 out + 2 back)
        first, second = changes[:4], changes[4:]
        assert torch.equal(first, torch.arange(first[0], first[0] + 4))    # one pixel per frame, no pause
        assert torch.equal(second, torch.arange(second[0], second[0] + 4))
        assert second[0] - first[-1] >= 8 and first[0] >= 8 and second[-1] <= 32 - 8
        side = -1 if d.direction[i] == 0 else 1                             # label 0 = left move first
        assert moves[i, first - 1].tolist() == [side, side, -side, -side]  # out and back
        assert moves[i, second - 1].tolist() == [-side, -side, side, side]  # the other side
    assert (d.positions[..., 0] == d.positions[:, :1, 0]).all()           # the row never changes
    r, c = d.positions[3, 12]
    assert torch.equal(d.clips[3, 12, 0, r:r + 28, c:c + 28], images[d.garment[3]])


def test_two_move_clips_show_the_same_frames_in_both_classes(images):
    """Order-free statistics cannot tell the classes apart: every clip holds the same columns
    (relative to its rest column) the same number of times, and starts and ends at rest."""
    from course_utils.video import make_two_move_clips
    d = make_two_move_clips(images, torch.arange(len(images)), 300, gap=3, seed=5)
    columns = d.positions[..., 1]
    rest = columns[:, :1]
    assert torch.equal(columns[:, -1:], rest)
    relative = (columns - rest).sort(dim=1).values                         # the multiset of columns
    assert (relative == relative[0]).all()
    assert torch.bincount(relative[0] + 2).tolist() == [1, 2, 32 - 6, 2, 1]  # 2 px each way, rest otherwise
    # the rest column has the same range in both classes
    for k in (0, 1):
        assert set(rest[d.direction == k].flatten().tolist()) == set(range(2, 36 - 28 - 2 + 1))


def test_two_move_clip_played_backwards_is_a_clip_of_the_other_class(images):
    from course_utils.video import make_two_move_clips, two_move_timings
    d = make_two_move_clips(images, torch.arange(len(images)), 100, frames=32, shift=2, gap=4, margin=8, seed=2)
    allowed = {tuple(p) for p in two_move_timings(32, 2, 4, 8).tolist()}
    backwards = d.positions.flip(1)[..., 1]
    for i, changes in enumerate(_changes(backwards)):
        assert (int(changes[0]), int(changes[4])) in allowed              # an allowed timing
        first_move = int(backwards[i, changes[0]] - backwards[i, changes[0] - 1])
        assert first_move == (1 if d.direction[i] == 0 else -1)            # the other side first
    clips, direction = reverse_clips(d.clips, d.direction)
    pool = FramePoolClassifier(num_classes=2, image_size=36).eval()
    with torch.no_grad():
        assert torch.allclose(pool(d.clips[:8].float()), pool(clips[:8].float()), atol=1e-5)
    assert torch.equal(direction, d.direction ^ 1)


def test_two_move_timings_are_symmetric_under_reversal():
    from course_utils.video import two_move_timings
    for frames, shift, gap, margin in [(32, 2, 8, 8), (32, 2, 1, 8), (36, 3, 4, 5), (30, 1, 3, 2)]:
        pairs = two_move_timings(frames, shift, gap, margin)
        last = 2 * shift - 1
        assert len(pairs) > 0
        assert ((pairs[:, 1] - pairs[:, 0] - last >= gap) & (pairs[:, 0] >= margin)
                & (pairs[:, 1] + last <= frames - margin)).all()
        as_set = {tuple(p) for p in pairs.tolist()}
        assert {(frames - (s2 + last), frames - (s1 + last)) for s1, s2 in as_set} == as_set
    assert two_move_timings(32, 2, 10, 8).tolist() == [[8, 21]]           # the widest gap that fits
    for hold in (0, 3):
        pairs = {tuple(p) for p in two_move_timings(46, 3, 5, 8, hold).tolist()}
        last = 2 * 3 + hold - 1
        assert {(46 - (s2 + last), 46 - (s1 + last)) for s1, s2 in pairs} == pairs


def test_two_move_clips_hold_the_garment_out_for_hold_frames(images):
    from course_utils.video import make_two_move_clips
    d = make_two_move_clips(images, torch.arange(len(images)), 50, frames=46, shift=3, hold=6, gap=8, seed=4)
    columns = d.positions[..., 1]
    relative = (columns - columns[:, :1]).sort(dim=1).values
    assert (relative == relative[0]).all()                                 # same frames in both classes
    assert torch.bincount(relative[0] + 3).tolist() == [7, 2, 2, 46 - 22, 2, 2, 7]  # 6 + 1 frames at 3 px
    for i, changes in enumerate(_changes(columns)):
        assert len(changes) == 12
        assert changes[3] - changes[2] == 7                                # out, 6 frames still, back
        side = -1 if d.direction[i] == 0 else 1
        assert int(columns[i, changes[0]] - columns[i, 0]) == side


def test_two_move_clips_reject_too_short_clips(images):
    from course_utils.video import make_two_move_clips, two_move_timings
    with pytest.raises(ValueError, match="need at least 34 frames"):
        make_two_move_clips(images, torch.arange(len(images)), 4, frames=32, shift=3, gap=8, margin=8)
    with pytest.raises(ValueError, match="canvas of at least 32"):
        make_two_move_clips(images, torch.arange(len(images)), 4, size=30)
    with pytest.raises(ValueError, match=">= 1 and hold >= 0"):
        two_move_timings(32, 2, 0, 8)
    with pytest.raises(ValueError, match=">= 1 and hold >= 0"):
        two_move_timings(32, 2, 1, 8, hold=-1)
    with pytest.raises(ValueError, match=">= 1"):
        make_two_move_clips(images, torch.arange(len(images)), 0)


def test_pixel_lstm_reads_raw_frames():
    from course_utils.video import PixelLSTM
    model = PixelLSTM(num_classes=3, image_size=12, hidden_size=5)
    assert model(torch.rand(2, 4, 1, 12, 12)).shape == (2, 3)
    lstm_weights = 4 * 5 * (12 * 12 + 5) + 2 * 4 * 5
    assert sum(p.numel() for p in model.parameters()) == lstm_weights + 5 * 3 + 3
    clips = torch.rand(1, 6, 1, 12, 12)
    with torch.no_grad():
        assert not torch.allclose(model(clips), model(clips.flip(1)), atol=1e-6)  # order matters
    with pytest.raises(ValueError, match=r"expected clips \(B, T, 1, 12, 12\)"):
        model(torch.rand(2, 4, 1, 10, 10))


def test_chance_loss_rule():
    from course_utils.verdicts import ChanceLossRule
    rule = ChanceLossRule(margin=0.05)
    assert not rule.trained([0.6935, 0.6933, 0.6931], 2)                   # stuck at ln 2
    assert rule.trained([0.69, 0.60], 2)
    assert not rule.trained([1.40, 1.35], 4)                               # ln 4 = 1.386: within the margin
    assert rule.trained([1.0], 4)
    assert "0.05 below ln 4 = 1.386" in rule.text(4)
    with pytest.raises(ValueError, match="at least one epoch"):
        rule.trained([], 2)


def test_seed_rule_compares_beyond_the_spread():
    from course_utils.verdicts import SeedRule, compare_sentence
    rule = SeedRule(floor=0.01)
    assert rule.compare([0.99, 1.0, 0.98], [0.80, 0.82, 0.81]) == "higher"
    assert rule.compare([0.80, 0.82, 0.81], [0.99, 1.0, 0.98]) == "lower"
    assert rule.compare([0.99, 0.60, 0.95], [0.90, 0.85, 0.80]) == "within spread"  # one bad seed
    assert rule.compare([0.5, 0.5, 0.5], [0.505, 0.505, 0.505]) == "within spread"  # below the floor
    # the standard error shrinks with the seeds: 0.06 > 2 sqrt(2 * 0.00286 / 8) = 0.053, but < 0.141 with 2 seeds
    assert rule.compare([0.85, 0.95] * 4, [0.79, 0.89] * 4) == "higher"
    assert rule.compare([0.85, 0.95], [0.79, 0.89]) == "within spread"
    with pytest.raises(ValueError, match="same seeds"):
        rule.compare([0.5, 0.6], [0.5])
    assert "higher than B's (0.810), beyond the spread over 3 seeds" in compare_sentence(
        "A", [0.99, 1.0, 0.98], "B", [0.80, 0.82, 0.81])
    assert "lower than" in compare_sentence("A", [0.80, 0.82, 0.81], "B", [0.99, 1.0, 0.98])
    assert "cannot rank them" in compare_sentence("A", [0.99, 0.60, 0.95], "B", [0.90, 0.85, 0.80])


def test_learned_in_seeds_names_every_group():
    from course_utils.verdicts import SeedRule, learned_in_seeds
    sentence = learned_in_seeds({"a": [0.95, 0.99], "b": [0.95, 0.5], "c": [0.3, 0.25]}, SeedRule(learned=0.9))
    assert sentence == "reached 0.9 in every seed: a; reached 0.9 in some seeds only: b; reached 0.9 in no seed: c."
    assert learned_in_seeds({"a": [0.95, 0.99]}) == "reached 0.9 in every seed: a."


def test_axis_reading_and_sentence():
    from course_utils.verdicts import axis_reading, axis_sentence
    direction = torch.tensor([0, 1, 2, 3] * 50)
    found = torch.where(direction < 2, 0, 2)                               # right axis, never the side
    reading = axis_reading(found, direction)
    assert reading["axis right"] == 1.0 and reading["horizontal when predicted horizontal"] == 1.0
    assert "partly learned the axis" in axis_sentence("frame pooling", reading)
    constant = torch.full_like(direction, 2)                               # always "up", as a stuck model
    reading = axis_reading(constant, direction)
    assert reading["axis right"] == 0.5 and math.isnan(reading["horizontal when predicted horizontal"])
    sentence = axis_sentence("frame pooling", reading)
    assert "did not learn the axis" in sentence and "0.50 of its vertical answers are vertical clips" in sentence
    with pytest.raises(ValueError, match="same shape"):
        axis_reading(constant[:3], direction)


def test_gap_sweep_sentence_covers_every_case():
    from course_utils.verdicts import gap_sweep_sentence
    gaps = [1, 4, 8, 10]
    sentence = gap_sweep_sentence(gaps, {"CNN-LSTM": [1.0, 1.0, 0.99, 0.98], "3D CNN": [0.97, 0.7, 0.5, 0.5]},
                                  {"CNN-LSTM": [True] * 4, "3D CNN": [True, True, False, False]}, window=9)
    assert "CNN-LSTM learned the order (accuracy >= 0.9) at every gap tried, up to gap 10." in sentence
    assert "3D CNN learned the order (accuracy >= 0.9) at gap 1 and not at gaps 4, 8 and 10" in sentence
    assert "at gaps 8 and 10 its training loss never left chance: it failed to train there" in sentence
    assert "did learn at gap 1, but clips at a larger gap differ in more than the spacing" in sentence
    assert "found nothing" not in sentence and "From gap 8 on" in sentence
    none = gap_sweep_sentence([1, 8], {"3D CNN": [0.5, 0.5]}, {"3D CNN": [False, False]}, window=9)
    assert "learned the order (accuracy >= 0.9) at no gap tried" in none and "did learn" not in none
    # a bar per model: the 3D CNN's windows cannot reach 0.9 at gap 1, so it is judged by its own bar
    bars = gap_sweep_sentence([1, 8], {"CNN-LSTM": [0.999, 1.0], "3D CNN": [0.875, 0.497]},
                              {"CNN-LSTM": [True, True], "3D CNN": [True, False]}, window=9,
                              learned={"CNN-LSTM": 0.9, "3D CNN": 0.825})
    assert ("3D CNN learned the order (accuracy >= 0.825, a lower bar because its field caps what it can reach, as "
            "the prediction below says) at gap 1 and not at gap 8; at gap 8 its training") in bars
    assert "CNN-LSTM learned the order (accuracy >= 0.9) at every gap tried" in bars
    assert "the closest any lies to its bar is the 3D CNN's 0.875 at gap 1, 0.050 above its bar of 0.825" in bars
    assert "the 3D CNN's 0.970 at gap 1, 0.070 above its bar of 0.9" in sentence
    below = gap_sweep_sentence([1, 8], {"m": [0.89, 0.5]}, {"m": [True, False]}, window=9)
    assert "the m's 0.890 at gap 1, 0.010 below its bar of 0.9" in below
    with pytest.raises(ValueError, match="one 'learned' bar per model"):
        gap_sweep_sentence([1, 8], {"a": [1.0, 1.0]}, {"a": [True, True]}, window=9, learned={"b": 0.9})
    assert "From gap" not in gap_sweep_sentence([1, 4], {"m": [1.0, 1.0]}, {"m": [True, True]}, window=9)
    with pytest.raises(ValueError, match="one accuracy"):
        gap_sweep_sentence([1, 4], {"m": [1.0]}, {"m": [True, True]}, window=9)


def test_sweep_prediction():
    from course_utils.verdicts import SweepPrediction
    rule = SweepPrediction(learned=0.9, at_most=0.65, slack=0.05)
    gaps = [1, 4, 8, 10]
    assert rule.holds(gaps, [1.0, 1.0, 0.99, 0.95], [0.95, 0.7, 0.5, 0.52], window=9, ceiling=1.0)
    assert not rule.holds(gaps, [1.0, 1.0, 0.8, 0.95], [0.95, 0.7, 0.5, 0.52], window=9, ceiling=1.0)   # CNN-LSTM fails
    assert not rule.holds(gaps, [1.0] * 4, [0.6, 0.5, 0.5, 0.5], window=9, ceiling=1.0)                # 3D CNN never learns
    assert not rule.holds(gaps, [1.0] * 4, [0.95, 0.9, 0.8, 0.5], window=9, ceiling=1.0)               # sees past its window
    # a ceiling below 0.9 lowers what the 3D CNN must reach at the smallest gap to the ceiling minus the slack
    assert rule.target(0.835) == pytest.approx(0.785)
    assert rule.holds(gaps, [1.0] * 4, [0.80, 0.7, 0.5, 0.5], window=9, ceiling=0.835)
    assert not rule.holds(gaps, [1.0] * 4, [0.78, 0.7, 0.5, 0.5], window=9, ceiling=0.835)
    assert "at most 0.65 (chance 0.5) from gap 8 on" in rule.text(9, 1.0)
    assert "reaches 0.785 at the smallest gap" in rule.text(9, 0.835) and "expect 0.835" in rule.text(9, 0.835)
    assert "with 9-frame windows can expect" in rule.text(9, 0.835)
    assert "with 9-frame windows every 4 frames can expect 0.875" in rule.text(9, 0.875, stride=4)
    with pytest.raises(ValueError, match="a gap below 8"):
        rule.holds([8, 10], [1.0, 1.0], [0.5, 0.5], window=9, ceiling=1.0)


def test_sweep_prediction_near_arms_leave_out_what_a_failure_to_train_gives():
    from course_utils.verdicts import SweepPrediction
    rule = SweepPrediction(learned=0.9, at_most=0.65, slack=0.05)
    # the far arm (0.5 from gap 8 on) is met by any model that stayed at chance: only the near arms count here
    assert rule.near_holds([1.0, 1.0], [0.865, 0.5], ceiling=0.875)
    assert not rule.near_holds([1.0, 1.0], [0.5, 0.5], ceiling=0.875)  # a 3D CNN that failed to train everywhere
    assert not rule.near_holds([1.0, 0.7], [0.865, 0.5], ceiling=0.875)  # the CNN-LSTM fails at one gap
    assert rule.holds([1, 8], [1.0, 1.0], [0.865, 0.5], window=9, ceiling=0.875)


def test_window_ceiling_counts_clips_no_window_can_read():
    from course_utils.video import move_spacings, two_move_timings, window_ceiling
    timings = two_move_timings(frames=50, shift=3, gap=1, margin=8, hold=6)
    spacings = move_spacings(timings, shift=3, hold=6)
    assert int(spacings.min()) == 1
    far = (spacings >= 8).float().mean().item()            # no 9-frame window shows both moves
    assert window_ceiling(timings, 3, 6, window=9) == pytest.approx(1 - far / 2)
    assert window_ceiling(timings, 3, 6, window=100) == pytest.approx(1.0)
    assert window_ceiling(timings, 3, 6, window=2) == pytest.approx(0.5)   # spacing >= 1: never both
    with pytest.raises(ValueError):
        window_ceiling(timings, 3, 6, window=1)


def test_failed_to_train_and_control_sentences():
    from course_utils.verdicts import failed_to_train_sentence, order_free_control_sentence
    assert failed_to_train_sentence({"a": [True, True], "b": [True, True]}, [0, 1]).startswith("Every model trained")
    sentence = failed_to_train_sentence({"a": [False, False], "b": [True, False], "c": [True, True]}, [0, 1])
    assert sentence == "Failed to train (the training loss never left chance): a in seeds 0, 1; b in seed 1."
    with pytest.raises(ValueError):
        failed_to_train_sentence({"a": [True]}, [0, 1])
    assert "could be a failure to train" in order_free_control_sentence(0.5, trained=False)
    assert "the direct check above" in order_free_control_sentence(0.5, trained=False)
    assert "look at these numbers" in order_free_control_sentence(0.62, trained=True)


def test_two_move_timings_with_a_step_keep_both_moves_on_one_phase_of_the_stride():
    from course_utils.video import two_move_timings
    frames, shift, hold, margin, last = 50, 3, 6, 8, 2 * 3 + 6 - 1
    for gap in (1, 8):
        plain = two_move_timings(frames, shift, gap, margin, hold)
        stepped = two_move_timings(frames, shift, gap, margin, hold, step=4)
        assert ((stepped[:, 1] - stepped[:, 0]) % 4 == 0).all()
        assert {tuple(p) for p in stepped.tolist()} <= {tuple(p) for p in plain.tolist()}
        as_set = {tuple(p) for p in stepped.tolist()}
        assert {(frames - (s2 + last), frames - (s1 + last)) for s1, s2 in as_set} == as_set  # still symmetric

    def best_from_phase(timings: torch.Tensor) -> float:
        """Accuracy of the best guess of the class from the phase (mod 4) at which the left move starts:
        class 0 = left first (phase s1 % 4), class 1 = left second (phase s2 % 4), timings uniform."""
        phases = torch.stack([timings[:, 0] % 4, timings[:, 1] % 4])      # (class, K)
        counts = torch.stack([torch.bincount(p, minlength=4) for p in phases]).float()
        return (counts.max(dim=0).values.sum() / counts.sum()).item()

    # without the step, the phase alone beats chance at gap 8 (a leak); with it, it cannot
    assert best_from_phase(two_move_timings(frames, shift, 8, margin, hold)) > 0.6
    assert best_from_phase(two_move_timings(frames, shift, 8, margin, hold, step=4)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="step must be >= 1"):
        two_move_timings(frames, shift, 8, margin, hold, step=0)


def test_window_ceiling_with_a_stride_counts_only_the_windows_on_the_grid():
    from course_utils.video import two_move_timings, window_ceiling
    timings = two_move_timings(frames=50, shift=3, gap=1, margin=8, hold=6, step=4)
    for stride in (1, 2, 4):
        visible = 0
        for s1, s2 in timings.tolist():
            needed = range(s1 + 2 * 3 + 6 - 2, s2 + 1)                    # frame before the last change ... s2
            centres = range(0, 50, stride)
            visible += any(c - 4 <= needed[0] and needed[-1] <= c + 4 for c in centres)
        share = visible / len(timings)
        assert window_ceiling(timings, 3, 6, window=9, stride=stride) == pytest.approx(share + (1 - share) / 2)
    assert window_ceiling(timings, 3, 6, 9, stride=4) < window_ceiling(timings, 3, 6, 9)
    with pytest.raises(ValueError, match="stride >= 1"):
        window_ceiling(timings, 3, 6, 9, stride=0)


def test_conv3d_windows_are_9_frames_centred_on_a_4_frame_grid():
    """What window_ceiling(stride=4) assumes: output step j of the 3D CNN's convolutions reads frames 4j-4 ... 4j+4."""
    model = Conv3DClassifier(num_classes=2, pool="max")
    clips = torch.rand(1, 1, 24, 12, 12, requires_grad=True)                 # (B, C, T, H, W), as features() wants
    out = model.features[:-2](clips)                                          # (1, 32, 6, 3, 3) before pooling
    assert out.shape[2] == 6
    for j in range(6):
        (grad,) = torch.autograd.grad(out[0, :, j].sum(), clips, retain_graph=True)
        frames = grad.abs().sum(dim=(0, 1, 3, 4)).nonzero().flatten().tolist()
        assert frames == [t for t in range(4 * j - 4, 4 * j + 5) if 0 <= t < 24]
    assert model(torch.rand(2, 16, 1, 36, 36)).shape == (2, 2)
    with pytest.raises(ValueError, match="pool must be one of"):
        Conv3DClassifier(pool="median")


def test_gap_sweep_sentence_reads_chance_at_a_chance_ceiling_as_predicted():
    from course_utils.verdicts import gap_sweep_sentence
    text = gap_sweep_sentence([1, 8], {"CNN-LSTM": [0.999, 1.0], "3D CNN": [0.865, 0.5]},
                              {"CNN-LSTM": [True, True], "3D CNN": [True, False]}, window=9,
                              learned={"CNN-LSTM": 0.9, "3D CNN": 0.825}, ceilings={"3D CNN": [0.875, 0.5]})
    assert "at gap 8 its loss stayed at chance, which is all its field allows there" in text
    # predicted, but a model that failed to train gives the same loss: the sentence says it cannot tell
    assert "failed to train there" not in text and "cannot tell the two apart" in text
    # below a ceiling above chance, a loss at chance is still a failure to train
    failed = gap_sweep_sentence([1, 8], {"3D CNN": [0.5, 0.5]}, {"3D CNN": [False, False]}, window=9,
                                ceilings={"3D CNN": [0.875, 0.5]})
    assert "at gap 1 its training loss never left chance: it failed to train there" in failed
    with pytest.raises(ValueError, match="one ceiling per gap"):
        gap_sweep_sentence([1, 8], {"3D CNN": [0.5, 0.5]}, {"3D CNN": [False, False]}, window=9,
                           ceilings={"3D CNN": [0.5]})
