"""Convolution arithmetic and lesson 01's CNN: a convolution by hand, output sizes,
receptive fields, and the Fashion-MNIST classifier (`conv_block`, `make_cnn`).

Introduced in lesson 01; lesson 03 uses `receptive_field` for 1D and dilated CNNs,
and lesson 06 trains `make_cnn` on several processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int = 1, padding: int = 0) -> torch.Tensor:
    """A 2D convolution written as "cut out patches, then one matrix multiply".

    Args:
        x: (B, C_in, H, W) images.
        weight: (C_out, C_in, k, k) filters.
        bias: (C_out,) or None.

    Returns:
        (B, C_out, H_out, W_out) with H_out = (H + 2*padding - k) // stride + 1,
        the same numbers as ``nn.Conv2d`` (which, like this function, computes a
        cross-correlation: the filter is not flipped).
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"x must be (B, C, H, W) and weight (C_out, C_in, k, k), "
                         f"got {tuple(x.shape)} and {tuple(weight.shape)}")
    c_out, c_in, kh, kw = weight.shape
    if x.shape[1] != c_in:
        raise ValueError(f"x has {x.shape[1]} channels but the filters expect {c_in}")
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")
    h_out = conv_output_size(x.shape[2], kh, stride, padding)
    w_out = conv_output_size(x.shape[3], kw, stride, padding)
    # patches: (B, C_in*k*k, L), one column per output position (L = H_out * W_out)
    patches = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    # (C_out, C_in*k*k) @ (B, C_in*k*k, L) -> (B, C_out, L)
    out = weight.reshape(c_out, -1) @ patches
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(x.shape[0], c_out, h_out, w_out)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis:
    floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1."""
    given = {"size": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in given.values()):
        raise TypeError(f"expected ints, got {', '.join(f'{k}={v!r}' for k, v in given.items())}")
    if min(kernel, stride, dilation) < 1 or padding < 0:
        raise ValueError(f"kernel, stride and dilation must be >= 1 and padding >= 0, "
                         f"got kernel={kernel}, stride={stride}, dilation={dilation}, padding={padding}")
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"an input of size {size} is too small for kernel {kernel} "
                         f"(dilation {dilation}, padding {padding})")
    return out


def receptive_field(layers: Sequence[tuple[int, int] | tuple[int, int, int]]) -> int:
    """How many input positions (along one axis) one output unit of a stack can see.

    Args:
        layers: (kernel, stride) or (kernel, stride, dilation) per layer, input side first.
            Pooling counts as a layer too: a 2x2 max-pool is (2, 2).

    Each layer widens the field by dilation*(kernel-1) times the product of the
    strides before it: r = 1 + sum_l d_l (k_l - 1) prod_{m<l} s_m.
    """
    field, jump = 1, 1
    for layer in layers:
        if len(layer) not in (2, 3):
            raise ValueError(f"each layer is (kernel, stride) or (kernel, stride, dilation), got {layer!r}")
        kernel, stride, dilation = (*layer, 1)[:3]
        if min(kernel, stride, dilation) < 1:
            raise ValueError(f"kernel, stride and dilation must be >= 1, got {layer!r}")
        field += dilation * (kernel - 1) * jump
        jump *= stride
    return field


def conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    """3x3 convolution ("same" padding) -> batch norm -> ReLU: (B, c_in, H, W) -> (B, c_out, H, W).

    The convolution has no bias: the batch norm that follows subtracts the mean
    and adds its own shift, so a bias would do nothing.
    """
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def make_cnn(dropout: float = 0.3) -> nn.Sequential:
    """Lesson 01's CNN: (B, 1, 28, 28) images -> (B, 10) class scores.

    Three `conv_block`s (24, 48, 48 channels) with 2x2 max-pooling after the
    first two, then a fully connected head; ``dropout`` is applied twice in the head.
    """
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return nn.Sequential(
        *conv_block(1, 24), nn.MaxPool2d(2),     # (B, 24, 14, 14)
        *conv_block(24, 48), nn.MaxPool2d(2),    # (B, 48, 7, 7)
        *conv_block(48, 48),                     # (B, 48, 7, 7)
        nn.Flatten(), nn.Dropout(dropout),       # (B, 2352)
        nn.Linear(48 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128, 10),                      # (B, 10)
    )


def make_gap_cnn() -> nn.Sequential:
    """Lesson 01's CNN with global average pooling instead of the dense head.

    (B, 1, 28, 28) -> the same three `conv_block`s and poolings as `make_cnn` -> (B, 48, 7, 7)
    -> mean over the 7x7 positions (B, 48) -> one linear layer -> (B, 10) class scores.
    Averaging over positions replaces the 2,352-to-128 layer that holds most of `make_cnn`'s
    parameters (Lin, Chen & Yan, 2014, "Network In Network").
    """
    return nn.Sequential(
        *conv_block(1, 24), nn.MaxPool2d(2),     # (B, 24, 14, 14)
        *conv_block(24, 48), nn.MaxPool2d(2),    # (B, 48, 7, 7)
        *conv_block(48, 48),                     # (B, 48, 7, 7)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),   # (B, 48)
        nn.Linear(48, 10),                       # (B, 10)
    )


def multiply_adds(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """Multiply-adds per example of each `nn.Conv2d` and `nn.Linear` in `model` (lesson 01).

    Args:
        model: any module; its Conv2d and Linear layers are counted, other layers (batch norm,
            ReLU, pooling) are cheap by comparison and left out.
        input_shape: one example's shape without the batch axis, e.g. (1, 28, 28).

    Returns:
        {layer name: multiply-adds for one example}, in the order the layers run. A convolution
        costs (C_in / groups) * k_h * k_w multiply-adds per output value, a linear layer
        in_features per output value.
    """
    if len(input_shape) == 0 or any(not isinstance(s, int) or s < 1 for s in input_shape):
        raise ValueError(f"input_shape is one example's shape without the batch axis, "
                         f"e.g. (1, 28, 28), got {tuple(input_shape)!r}")
    counts: dict[str, int] = {}

    def counter(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            per_output = (module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
                          if isinstance(module, nn.Conv2d) else module.in_features)
            counts[name] = counts.get(name, 0) + per_output * output[0].numel()
        return hook

    handles = [m.register_forward_hook(counter(name)) for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts
