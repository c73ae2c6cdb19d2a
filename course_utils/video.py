"""Moving-garment video clips and the video classifiers of lesson 04.

A clip shows one Fashion-MNIST garment sliding across a blank canvas at a
constant speed. The class we want to predict is the direction of motion, and
the data are built so that frame ORDER is the only clue:

* a clip played backwards is a valid clip of the opposite direction
  (left <-> right, up <-> down) and is exactly as likely to be generated, so
  the *set* of frames can never tell left from right or up from down;
* a single frame picked at a random time has the same position distribution
  for all four directions, so no single frame tells the direction either.

Models: ``FrameCNN`` turns one frame into a feature vector. ``FramePoolClassifier``
averages those features over time (blind to order by construction),
``CNNLSTM`` (LRCN, Donahue et al. 2015, "Long-term Recurrent Convolutional
Networks for Visual Recognition and Description") reads them in order with an
LSTM, and ``Conv3DClassifier`` convolves over space and time at once.

Introduced in lesson 04.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
from matplotlib.animation import FuncAnimation
from torch import nn
from torch.utils.data import Dataset

DIRECTIONS = ("left", "right", "up", "down")
TASKS = ("direction", "garment", "combined")

# (row, column) velocity sign of each direction; rows grow downwards.
_VELOCITY = torch.tensor([[0, -1], [0, 1], [-1, 0], [1, 0]])


def combined_label(garment: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Merge garment class and direction into one label: ``garment * 4 + direction``.

    garment, direction: (N,) int64. Returns (N,) int64 in [0, 4 * num_garments);
    with the 10 Fashion-MNIST classes that is 40 classes.

    Introduced in lesson 04.
    """
    if garment.shape != direction.shape:
        raise ValueError(
            f"garment and direction must have the same shape, got "
            f"{tuple(garment.shape)} and {tuple(direction.shape)}"
        )
    return garment * len(DIRECTIONS) + direction


@dataclass
class MovingClips(Dataset):
    """A dataset of moving-garment clips (build it with ``make_moving_clips``).

    clips:     (N, T, 1, S, S) uint8 in [0, 255]; stored as bytes to save memory
               (6,000 clips of 16x48x48 take 221 MB instead of 885 MB as float).
    direction: (N,) int64, an index into ``DIRECTIONS``.
    garment:   (N,) int64, the Fashion-MNIST class of the garment.
    positions: (N, T, 2) int64, (row, column) of the garment's top-left corner
               in every frame.
    task:      which label ``__getitem__`` returns: "direction" (4 classes),
               "garment" (10) or "combined" (40, see ``combined_label``).
               ``dataclasses.replace(data, task="combined")`` switches task
               without copying the clips.

    ``data[i]`` returns ``(clip, label)`` with clip (T, 1, S, S) float32 in [0, 1].

    Introduced in lesson 04.
    """

    clips: torch.Tensor
    direction: torch.Tensor
    garment: torch.Tensor
    positions: torch.Tensor
    task: str = "direction"

    labels: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Check the task and compute its (N,) int64 labels once, not on every item."""
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "direction":
            self.labels = self.direction
        elif self.task == "garment":
            self.labels = self.garment
        else:
            self.labels = combined_label(self.garment, self.direction)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.clips[index].float() / 255, self.labels[index]


def _check_images(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 3:
        raise TypeError(
            "images must be a uint8 tensor of shape (N, H, W), got "
            f"{type(images).__name__} {getattr(images, 'dtype', '')} "
            f"{tuple(getattr(images, 'shape', ()))}"
        )
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
        raise TypeError(
            "labels must be an int64 tensor of shape (N,), got "
            f"{type(labels).__name__} {getattr(labels, 'dtype', '')} "
            f"{tuple(getattr(labels, 'shape', ()))}"
        )
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"need as many labels as images (at least one), got {len(images)} "
            f"images and {len(labels)} labels"
        )


def _axis_positions(
    low: torch.Tensor, jitter: torch.Tensor, velocity: torch.Tensor, steps: torch.Tensor
) -> torch.Tensor:
    """Positions along one axis for every clip and frame.

    low, jitter, velocity: (N,); steps: (T,) = 0, step, 2 * step, ...
    Velocity +1 moves from low to low + travel, velocity -1 from low + travel
    to low, and velocity 0 sits still at low + jitter.
    Returns (N, T).
    """
    travel = steps[-1]
    forward = low[:, None] + steps
    backward = low[:, None] + travel - steps
    still = (low + jitter)[:, None].expand_as(forward)
    v = velocity[:, None]
    return torch.where(v > 0, forward, torch.where(v < 0, backward, still))


def _paint(images: torch.Tensor, positions: torch.Tensor, size: int) -> torch.Tensor:
    """Clips of `images` (N, h, w) uint8 pasted on black size x size canvases, image n's
    top-left corner at ``positions[n, t]`` (row, column) in frame t.

    positions: (N, T, 2). Returns (N, T, 1, size, size) uint8.
    """
    num_clips, frames = positions.shape[:2]
    h, w = images.shape[1:]
    clips = torch.zeros(num_clips, frames, size, size, dtype=torch.uint8)
    clip_ids = torch.arange(num_clips)[:, None, None]
    for t in range(frames):
        rows = (positions[:, t, 0, None] + torch.arange(h))[:, :, None]  # (N, h, 1)
        cols = (positions[:, t, 1, None] + torch.arange(w))[:, None, :]  # (N, 1, w)
        clips[clip_ids, t, rows, cols] = images
    return clips.unsqueeze(2)


def make_moving_clips(images: torch.Tensor, labels: torch.Tensor, num_clips: int, *,
                      frames: int = 16, size: int = 48, step: int = 1, seed: int = 0) -> MovingClips:
    """Generate ``num_clips`` clips of a garment moving left, right, up or down.

    images: (N, h, w) uint8, e.g. Fashion-MNIST (h = w = 28).
    labels: (N,) int64, the garment class of each image.
    Each clip picks a random image and moves it ``step`` pixels per frame for
    ``frames`` frames on a black ``size`` x ``size`` canvas, never leaving it.
    The directions are exactly balanced (up to num_clips % 4) and shuffled.

    How positions are drawn (per clip, along the axis of motion): the span
    [low, low + travel], travel = (frames - 1) * step, is uniform over the
    canvas, and the direction decides which end is the start. Reversing a clip
    therefore gives a clip of the opposite direction with the same probability.
    The still coordinate is drawn as ``low + jitter`` with jitter uniform over
    {0, step, ..., travel}, which is exactly the distribution of the moving
    coordinate at a random time, so a lone frame says nothing about the direction.
    (The first frame alone does: a left-moving garment starts on the right.)

    Returns a ``MovingClips`` with clips (num_clips, frames, 1, size, size) uint8.
    Same arguments and seed give identical tensors.

    Introduced in lesson 04.
    """
    _check_images(images, labels)
    if num_clips < 1 or frames < 1 or step < 1:
        raise ValueError(
            f"num_clips, frames and step must be >= 1, got {num_clips}, {frames}, {step}"
        )
    h, w = images.shape[1:]
    if size < max(h, w):
        raise ValueError(f"canvas size {size} is smaller than the {h}x{w} images")
    travel = (frames - 1) * step
    if travel > size - max(h, w):
        raise ValueError(
            f"{frames} frames at {step} px/frame travel {travel} px, but a {h}x{w} image "
            f"on a {size}x{size} canvas can move at most {size - max(h, w)} px; "
            "use fewer frames, a smaller step or a larger canvas"
        )

    g = torch.Generator().manual_seed(seed)
    index = torch.randint(len(images), (num_clips,), generator=g)
    direction = (torch.arange(num_clips) % len(DIRECTIONS))[torch.randperm(num_clips, generator=g)]
    steps = torch.arange(frames) * step
    axes = []
    for free, velocity in zip((size - h, size - w), _VELOCITY[direction].T):
        low = torch.randint(free - travel + 1, (num_clips,), generator=g)
        jitter = torch.randint(frames, (num_clips,), generator=g) * step
        axes.append(_axis_positions(low, jitter, velocity, steps))
    positions = torch.stack(axes, dim=-1)  # (num_clips, frames, 2)

    return MovingClips(
        clips=_paint(images[index], positions, size),
        direction=direction,
        garment=labels[index].clone(),
        positions=positions,
    )


def two_move_timings(frames: int, shift: int, gap: int, margin: int, hold: int = 0, step: int = 1) -> torch.Tensor:
    """Every pair of frames at which the two moves of ``make_two_move_clips`` may begin.

    A move (``shift`` pixels out, one pixel per frame, ``hold`` frames still there, and
    ``shift`` pixels back) changes the garment's position first at a frame s and last at
    s + 2 * shift + hold - 1. A pair (s1, s2) is allowed when

    * every change lies in [margin, frames - margin]: no window of ``margin`` frames at
      either end of the clip shows a change;
    * s2 - (s1 + 2 * shift + hold - 1) >= ``gap``: the last change of the first move and the first
      change of the second are ``gap`` frames apart or more, so no window of ``gap`` + 1
      consecutive frames shows a change from both moves;
    * s2 - s1 is a multiple of ``step``. A model that reads time with a stride (the 3D CNN's
      windows lie on a grid of ``step`` = 4 frames) sees a move differently at each phase of
      that grid. If the two moves could fall on different phases, the phase at which the left
      move appears would differ between the classes and tell them apart without their order;
      with s2 - s1 a multiple of the stride, both moves of a clip fall on the same phase.

    Playing a clip backwards moves a change at frame t to frame ``frames - t``, which maps
    the allowed pairs onto themselves: (s1, s2) -> (frames - e2, frames - e1), e = s + 2 * shift + hold - 1,
    and keeps s2 - s1.

    Returns (K, 2) int64, one allowed (s1, s2) per row, K >= 1.

    Introduced in lesson 04.
    """
    if min(frames, shift, gap, margin, step) < 1 or hold < 0:
        raise ValueError(f"frames, shift, gap, margin and step must be >= 1 and hold >= 0, got {frames}, {shift}, "
                         f"{gap}, {margin}, {step} and {hold}")
    length = 2 * shift + hold - 1  # frames from the first change of a move to its last
    needed = 2 * margin + 2 * length + gap
    if frames < needed:
        raise ValueError(f"two moves of {length + 1} frames each, {gap} frames apart and {margin} frames from the "
                         f"ends, need at least {needed} frames, got {frames}")
    starts = torch.arange(margin, frames - margin - length + 1)
    s1, s2 = (grid.flatten() for grid in torch.meshgrid(starts, starts, indexing="ij"))
    allowed = (s2 - (s1 + length) >= gap) & ((s2 - s1) % step == 0)
    if not allowed.any():
        raise ValueError(f"no pair of starts in {frames} frames is {gap} frames apart with s2 - s1 a multiple of "
                         f"{step}; add frames")
    return torch.stack([s1[allowed], s2[allowed]], dim=1)


def move_spacings(timings: torch.Tensor, shift: int, hold: int = 0) -> torch.Tensor:
    """Frames from the last change of the first move to the first change of the second, one per
    row of ``two_move_timings``: s2 - (s1 + 2 * shift + hold - 1). Returns (K,) int64.

    Introduced in lesson 04.
    """
    return timings[:, 1] - (timings[:, 0] + 2 * shift + hold - 1)


def window_ceiling(timings: torch.Tensor, shift: int, hold: int, window: int, stride: int = 1) -> float:
    """The expected accuracy of a perfect model that decides from windows of ``window`` consecutive
    frames, on clips whose timings are drawn uniformly from ``timings`` (as ``make_two_move_clips``
    draws them). A window shows both moves only if it holds the frame before the first move's last
    change and the frame of the second's first change; on the other clips such a model can only
    guess (0.5), provided nothing else tells the classes apart (``two_move_timings``' ``step``).

    stride: the windows are centred on frames 0, stride, 2 * stride, ..., as those of a stack of
    'same'-padded convolutions whose strides multiply to ``stride`` (the 3D CNN: 4); 1 = every window.

    Introduced in lesson 04.
    """
    if window < 2 or stride < 1 or len(timings) == 0:
        raise ValueError(f"need a window of at least 2 frames, a stride >= 1 and at least one timing, got {window}, "
                         f"{stride} and {len(timings)}")
    first = timings[:, 0] + 2 * shift + hold - 2   # the frame before the first move's last change
    last = timings[:, 1]                           # the second move's first change
    starts = torch.arange(-(window // 2), int(last.max()) + 1, stride)  # window j spans starts[j] ... + window - 1
    holds = (starts[None, :] <= first[:, None]) & (starts[None, :] + window - 1 >= last[:, None])
    visible = holds.any(dim=1).float().mean().item()
    return visible + (1 - visible) / 2


def _out_and_back(start: torch.Tensor, frames: int, shift: int, hold: int) -> torch.Tensor:
    """Pixels away from rest in every frame for moves beginning at ``start`` (N,): 0 before
    the move, then 1, 2, ..., shift, ``hold`` more frames at shift, shift - 1, ..., 1, and 0
    after it. Returns (N, frames)."""
    t = torch.arange(frames)[None, :]
    s = start[:, None]
    return torch.minimum(t - s + 1, s + 2 * shift + hold - 1 - t).clamp(0, shift)


def make_two_move_clips(images: torch.Tensor, labels: torch.Tensor, num_clips: int, *, frames: int = 32,
                        size: int = 36, shift: int = 2, hold: int = 0, gap: int = 8, margin: int = 8,
                        step: int = 1, seed: int = 0) -> MovingClips:
    """Clips in which a garment makes two sideways moves, one to each side, far apart in time.

    images: (N, h, w) uint8; labels: (N,) int64 garment classes.
    The garment rests at one column. Each move takes it ``shift`` pixels to one side, one
    pixel per frame, keeps it there for ``hold`` more frames and brings it back (``shift`` = 2,
    ``hold`` = 0: rest, 1, 2, 1, rest pixels away). One
    move goes left, the other right; the label (``direction``, an index into ``DIRECTIONS``)
    is the side of the FIRST move: 0 = left move first, 1 = right move first. The moves begin
    at a pair of frames drawn uniformly from ``two_move_timings(frames, shift, gap, margin, hold, step)``.

    Only the order tells the classes apart, exactly:

    * every clip shows the same frames whatever its class: at rest except during the two
      moves, and at each column of a move equally often in both classes, so any order-free
      statistic (the set or histogram of frames, the time spent at each column, the first
      and the last frame, both at rest) has the same distribution in both classes;
    * a move reads the same backwards, so a clip played backwards is a clip of the other
      class, and (the allowed timings being symmetric) exactly as likely.

    Returns a ``MovingClips`` with clips (num_clips, frames, 1, size, size) uint8,
    labels balanced (up to num_clips % 2) and shuffled.

    Introduced in lesson 04.
    """
    _check_images(images, labels)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    timings = two_move_timings(frames, shift, gap, margin, hold, step)
    h, w = images.shape[1:]
    if size < max(h, w) + 2 * shift:
        raise ValueError(f"a {h}x{w} image moving {shift} px to each side needs a canvas of at least "
                         f"{max(h, w) + 2 * shift} px, got size {size}")

    g = torch.Generator().manual_seed(seed)
    index = torch.randint(len(images), (num_clips,), generator=g)
    direction = (torch.arange(num_clips) % 2)[torch.randperm(num_clips, generator=g)]
    row = torch.randint(size - h + 1, (num_clips,), generator=g)
    rest = shift + torch.randint(size - w - 2 * shift + 1, (num_clips,), generator=g)
    start = timings[torch.randint(len(timings), (num_clips,), generator=g)]  # (num_clips, 2)
    first_side = torch.where(direction == 0, -1, 1)[:, None]                   # left first: -1
    away = _out_and_back(start[:, 0], frames, shift, hold) - _out_and_back(start[:, 1], frames, shift, hold)
    columns = rest[:, None] + first_side * away                               # (num_clips, frames)
    positions = torch.stack([row[:, None].expand(-1, frames), columns], dim=-1)  # (num_clips, frames, 2)

    return MovingClips(clips=_paint(images[index], positions, size), direction=direction,
                       garment=labels[index].clone(), positions=positions)


def reverse_clips(
    clips: torch.Tensor, direction: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Play clips backwards and swap their direction labels.

    clips: (B, T, ...) any dtype; direction: (B,) int64 indices into ``DIRECTIONS``.
    Returns (clips reversed along T, opposite direction): left <-> right, up <-> down.

    Introduced in lesson 04.
    """
    if clips.dim() < 2 or direction.dim() != 1 or len(clips) != len(direction):
        raise ValueError(
            f"expected clips (B, T, ...) and direction (B,), got {tuple(clips.shape)} "
            f"and {tuple(direction.shape)}"
        )
    if direction.dtype != torch.int64:
        raise TypeError(f"direction must be int64, got {direction.dtype}")
    if len(direction) and (direction.min() < 0 or direction.max() >= len(DIRECTIONS)):
        raise ValueError(f"direction values must be in [0, {len(DIRECTIONS)}), got {direction}")
    # DIRECTIONS pairs opposites as (0, 1) and (2, 3): flipping the last bit swaps them.
    return clips.flip(1), direction ^ 1


def _conv_out(size: int) -> int:
    """Output size of a 3x3 convolution with stride 2 and padding 1."""
    return (size - 1) // 2 + 1


class FrameCNN(nn.Module):
    """A small CNN that turns one frame into a feature vector.

    Three 3x3 stride-2 convolutions shrink a 48x48 frame to 6x6; the feature
    map is flattened (not globally pooled: WHERE the garment is matters for
    motion) and projected to ``feature_dim`` features.

    Input (N, in_channels, image_size, image_size) -> output (N, feature_dim).

    Introduced in lesson 04.
    """

    def __init__(
        self,
        image_size: int = 48,
        feature_dim: int = 64,
        channels: tuple[int, ...] = (8, 16, 32),
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        out_size = image_size
        for c_in, c_out in zip((in_channels, *channels), channels):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.ReLU()]
            out_size = _conv_out(out_size)
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Sequential(
            nn.Flatten(), nn.Linear(channels[-1] * out_size * out_size, feature_dim), nn.ReLU()
        )
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected frames (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        return self.proj(self.conv(x))


def _frame_features(cnn: FrameCNN, clips: torch.Tensor) -> torch.Tensor:
    """Apply ``cnn`` to every frame by folding time into the batch.

    clips: (B, T, C, H, W) -> features (B, T, F).
    """
    if clips.dim() != 5 or clips.shape[1] < 1:
        raise ValueError(f"expected clips (B, T, C, H, W) with T >= 1, got {tuple(clips.shape)}")
    b, t = clips.shape[:2]
    features = cnn(clips.reshape(b * t, *clips.shape[2:]))  # (B*T, F)
    return features.view(b, t, -1)


class FramePoolClassifier(nn.Module):
    """Per-frame CNN features averaged over time, then a linear classifier.

    Averaging makes it blind to frame order by construction: any permutation
    of the frames gives the same logits. On the direction task the frame set
    can at best reveal the axis (horizontal or vertical), never the sign.

    Input (B, T, 1, H, W) with any T >= 1 -> logits (B, num_classes).

    Introduced in lesson 04.
    """

    def __init__(self, num_classes: int = 4, image_size: int = 48, feature_dim: int = 64) -> None:
        super().__init__()
        self.cnn = FrameCNN(image_size, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(_frame_features(self.cnn, clips).mean(dim=1))


class CNNLSTM(nn.Module):
    """LRCN (Donahue et al. 2015): a CNN on every frame, an LSTM over time.

    The same ``FrameCNN`` encodes each frame (B*T folding), an LSTM reads the
    (B, T, feature_dim) sequence in order, and a linear layer classifies its
    last hidden state (B, hidden_size).

    Input (B, T, 1, H, W) with any T >= 1 -> logits (B, num_classes).

    Introduced in lesson 04.
    """

    def __init__(
        self,
        num_classes: int = 4,
        image_size: int = 48,
        feature_dim: int = 64,
        hidden_size: int = 64,
    ) -> None:
        super().__init__()
        self.cnn = FrameCNN(image_size, feature_dim)
        self.lstm = nn.LSTM(feature_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        features = _frame_features(self.cnn, clips)  # (B, T, feature_dim)
        _, (h_n, _) = self.lstm(features)  # h_n: (1, B, hidden_size)
        return self.head(h_n[-1])


class PixelLSTM(nn.Module):
    """An LSTM on the raw frames, with no CNN: the pure-LSTM answer to a video.

    Every frame is flattened to its H * W pixels, and an LSTM reads the (B, T, H * W)
    sequence in order; a linear layer classifies its last hidden state (B, hidden_size).
    Nearly all its parameters sit in the LSTM's input weights, 4 * hidden_size * H * W.

    Input (B, T, 1, image_size, image_size) with any T >= 1 -> logits (B, num_classes).

    Introduced in lesson 04.
    """

    def __init__(self, num_classes: int = 4, image_size: int = 48, hidden_size: int = 64) -> None:
        super().__init__()
        self.image_size = image_size
        self.lstm = nn.LSTM(image_size * image_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        expected = (1, self.image_size, self.image_size)
        if clips.dim() != 5 or clips.shape[1] < 1 or tuple(clips.shape[2:]) != expected:
            raise ValueError(f"expected clips (B, T, {', '.join(map(str, expected))}) with T >= 1, "
                             f"got {tuple(clips.shape)}")
        _, (h_n, _) = self.lstm(clips.flatten(2))  # (B, T, H*W) in; h_n: (1, B, hidden_size)
        return self.head(h_n[-1])


class Conv3DClassifier(nn.Module):
    """A small 3D CNN: convolutions over (time, height, width) at once.

    Three 3x3x3 convolutions (stride 2 in space, and in time after the first)
    detect local motion; global pooling (``pool``: "avg", the mean over every
    time and place, or "max", the strongest response anywhere) then makes the
    model accept any clip length.

    Input (B, T, 1, H, W) with any T >= 1 -> logits (B, num_classes).

    Introduced in lesson 04.
    """

    def __init__(self, num_classes: int = 4, channels: tuple[int, int, int] = (8, 16, 32), pool: str = "avg") -> None:
        super().__init__()
        pools = {"avg": nn.AdaptiveAvgPool3d, "max": nn.AdaptiveMaxPool3d}
        if pool not in pools:
            raise ValueError(f"pool must be one of {sorted(pools)}, got {pool!r}")
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv3d(1, c1, kernel_size=3, stride=(1, 2, 2), padding=1), nn.ReLU(),
            nn.Conv3d(c1, c2, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            nn.Conv3d(c2, c3, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            pools[pool](1), nn.Flatten(),
        )
        self.head = nn.Linear(c3, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dim() != 5 or clips.shape[1] < 1 or clips.shape[2] != 1:
            raise ValueError(
                f"expected clips (B, T, 1, H, W) with T >= 1, got {tuple(clips.shape)}"
            )
        # Conv3d wants (B, C, T, H, W).
        return self.head(self.features(clips.transpose(1, 2)))


def _frames_for_display(clip: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(T, 1, H, W) or (T, H, W) -> ((T, H, W) float on the CPU, vmax for imshow)."""
    if clip.dim() == 4 and clip.shape[1] == 1:
        clip = clip[:, 0]
    if clip.dim() != 3:
        raise ValueError(f"expected a clip (T, 1, H, W) or (T, H, W), got {tuple(clip.shape)}")
    return clip.detach().cpu().float(), 255.0 if clip.dtype == torch.uint8 else 1.0


def animate_clip(
    clip: torch.Tensor, title: str = "", interval: int = 100, height: float = 2.5, dpi: int = 72
) -> FuncAnimation:
    """Animate one clip; show it in a notebook with ``HTML(anim.to_jshtml())``.

    clip: (T, 1, H, W) or (T, H, W), float in [0, 1] or uint8.
    interval: milliseconds between frames.
    height (inches) and dpi set the picture size; the width follows W / H.
    to_jshtml embeds one PNG per frame, so a small picture keeps notebooks small.

    Introduced in lesson 04.
    """
    frames, vmax = _frames_for_display(clip)
    if height <= 0 or dpi <= 0:
        raise ValueError(f"height and dpi must be positive, got {height} and {dpi}")
    h, w = frames.shape[1:]
    fig, ax = plt.subplots(figsize=(height * w / h, height + 0.3), dpi=dpi)
    image = ax.imshow(frames[0].numpy(), cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])

    def draw(t: int) -> list:
        image.set_data(frames[t].numpy())
        ax.set_title(f"{title} (frame {t + 1}/{len(frames)})".strip())
        return [image]

    anim = FuncAnimation(fig, draw, frames=len(frames), interval=interval)
    plt.close(fig)  # keep the notebook from also showing a static copy
    return anim


def show_clip_strip(clip: torch.Tensor, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Draw the frames of one clip side by side, left to right in time.

    clip: (T, 1, H, W) or (T, H, W), float in [0, 1] or uint8.
    Frames are separated by a thin grey line.

    Introduced in lesson 04.
    """
    frames, vmax = _frames_for_display(clip)
    t, h, w = frames.shape
    strip = torch.full((h, t * (w + 1) - 1), vmax / 2)
    for i in range(t):
        strip[:, i * (w + 1) : i * (w + 1) + w] = frames[i]
    if ax is None:
        _, ax = plt.subplots(figsize=(t * 0.9, 1.2))
    ax.imshow(strip.numpy(), cmap="gray", vmin=0, vmax=vmax)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
