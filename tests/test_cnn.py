"""Convolution arithmetic against PyTorch's own layers."""

import pytest
import torch
from torch import nn

from course_utils.cnn import conv2d_unfold, conv_output_size, receptive_field


@pytest.mark.parametrize("stride,padding,k", [(1, 0, 3), (1, 1, 3), (2, 2, 5), (3, 1, 2)])
def test_conv2d_unfold_equals_nn_conv2d(stride, padding, k):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, k, stride=stride, padding=padding)
    x = torch.randn(2, 3, 11, 9)
    ours = conv2d_unfold(x, conv.weight, conv.bias, stride=stride, padding=padding)
    assert ours.shape == conv(x).shape
    torch.testing.assert_close(ours, conv(x), atol=1e-5, rtol=1e-5)


def test_conv2d_unfold_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        conv2d_unfold(torch.zeros(3, 8, 8), torch.zeros(1, 3, 3, 3))
    with pytest.raises(ValueError, match="2 channels but the filters expect 3"):
        conv2d_unfold(torch.zeros(1, 2, 8, 8), torch.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        conv2d_unfold(torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 3, 3), torch.zeros(3))


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", [(28, 3, 1, 1, 1), (28, 2, 2, 0, 1), (50, 3, 1, 0, 4), (7, 7, 1, 0, 1)])
def test_conv_output_size_matches_pytorch(size, kernel, stride, padding, dilation):
    conv = nn.Conv1d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    assert conv_output_size(size, kernel, stride, padding, dilation) == conv(torch.zeros(1, 1, size)).shape[-1]


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="too small"):
        conv_output_size(2, 5)
    with pytest.raises(ValueError, match="must be >= 1"):
        conv_output_size(10, 3, stride=0)
    with pytest.raises(TypeError, match=r"expected ints, got size=nan, kernel=3"):
        conv_output_size(float("nan"), 3)  # would return nan
    with pytest.raises(TypeError, match=r"stride=1.5"):
        conv_output_size(28, 3, stride=1.5)


def _measured_field(model: nn.Module, length: int = 200) -> int:
    """Count the inputs that influence the middle output, via the gradient."""
    x = torch.randn(1, 1, length, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[-1] // 2].backward()
    return int((x.grad[0, 0] != 0).sum())


def test_receptive_field_matches_gradient_support():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.MaxPool1d(2), nn.Conv1d(4, 4, 5, dilation=2),
                          nn.Conv1d(4, 1, 3, stride=2))
    assert receptive_field([(3, 1), (2, 2), (5, 1, 2), (3, 2)]) == _measured_field(model)
    assert receptive_field([(3, 1)] * 4) == 9
    assert receptive_field([(2, 1, 2 ** i) for i in range(6)]) == 64


def test_receptive_field_errors():
    with pytest.raises(ValueError, match="kernel, stride"):
        receptive_field([(3,)])
    with pytest.raises(ValueError, match=">= 1"):
        receptive_field([(0, 1)])


def test_gap_cnn_shapes_and_fewer_parameters():
    from course_utils.cnn import make_cnn, make_gap_cnn
    from course_utils.train import count_parameters
    gap = make_gap_cnn()
    assert gap(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    convolutions = sum(count_parameters(m) for m in gap if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)))
    # everything but the convolutions is one 48 -> 10 linear layer
    assert count_parameters(gap) == convolutions + 48 * 10 + 10
    assert count_parameters(gap) < count_parameters(make_cnn()) / 5


def test_multiply_adds_counts_conv_and_linear():
    from course_utils.cnn import multiply_adds
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, groups=2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    counts = multiply_adds(model, (2, 10, 10))
    assert counts == {"0": 4 * 10 * 10 * 2 * 9, "2": 4 * 4 * 4 * 2 * 9, "4": 5 * 64}
    assert model.training  # the count does not leave the model in eval mode


def test_multiply_adds_rejects_a_batch_shape():
    from course_utils.cnn import multiply_adds
    with pytest.raises(ValueError, match="without the batch axis"):
        multiply_adds(nn.Linear(3, 2), (0, 3))
