"""The course's one timer."""

import pytest
import torch

from course_utils.timing import median_time


def test_median_time_warms_up_then_times_many_calls():
    calls = []
    seconds = median_time(lambda: calls.append(1), warmup=3, min_run_time=0.01)
    assert seconds > 0 and len(calls) > 3


def test_median_time_orders_more_work_above_less():
    x = torch.randn(256, 256)
    small = median_time(lambda: x[:16, :16] @ x[:16, :16], threads=1, min_run_time=0.05)
    large = median_time(lambda: x @ x @ x, threads=1, min_run_time=0.05)
    assert large > small


def test_median_time_restores_the_thread_count():
    before = torch.get_num_threads()
    median_time(lambda: None, threads=1, min_run_time=0.01)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("kwargs, problem", [
    ({"threads": 0}, "threads must be a positive int"),
    ({"warmup": -1}, "warmup must be"),
    ({"min_run_time": 0}, "min_run_time must be positive"),
])
def test_median_time_rejects_bad_arguments(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        median_time(lambda: None, **kwargs)
    with pytest.raises(TypeError, match="function of no arguments"):
        median_time(3)


def test_onednn_switches_the_fused_lstm_kernel_for_the_block_only():
    """With oneDNN on, nn.LSTM's backward node is oneDNN's fused one; inside onednn(False) it is not,
    without a warning; and the setting comes back after the block, even after an error."""
    import warnings

    from course_utils.timing import onednn

    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)

    def fused() -> bool:
        return "Mkldnn" in type(lstm(x)[0].grad_fn).__name__ or "Mkldnn" in str(lstm(x)[0].grad_fn.next_functions)

    before = torch.backends.mkldnn.enabled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with onednn(False):
            assert not torch.backends.mkldnn.enabled and not fused()
    assert torch.backends.mkldnn.enabled == before
    if before and torch.backends.mkldnn.is_available():
        assert fused()
    with pytest.raises(RuntimeError):
        with onednn(False):
            raise RuntimeError("inside")
    assert torch.backends.mkldnn.enabled == before
    with pytest.raises(TypeError, match="True or False"):
        with onednn("off"):
            pass


def test_unfused_lstm_switches_only_the_lstm_off_and_only_for_the_block():
    """Inside unfused_lstm, an nn.LSTM's graph has no fused oneDNN node while the convolution keeps
    its kernel and the global switch is back on between forward passes; after the block, the LSTM is fused again."""
    from course_utils.timing import unfused_lstm

    model = torch.nn.ModuleDict({"conv": torch.nn.Conv1d(3, 4, 3), "lstm": torch.nn.LSTM(4, 5, batch_first=True)})
    x = torch.randn(2, 3, 9)

    def nodes() -> set[str]:
        names: set[str] = set()
        out, _ = model["lstm"](model["conv"](x).transpose(1, 2))
        visited, stack = set(), [out.grad_fn]
        while stack:
            fn = stack.pop()
            if fn is not None and id(fn) not in visited:
                visited.add(id(fn))
                stack.extend(f for f, _ in fn.next_functions)
                names.add(type(fn).__name__)
        return names

    before = torch.backends.mkldnn.enabled
    with unfused_lstm(model):
        inside = nodes()
        assert torch.backends.mkldnn.enabled == before
    assert not any("Mkldnn" in n for n in inside) and "ConvolutionBackward0" in inside
    if before and torch.backends.mkldnn.is_available():
        assert any("Mkldnn" in n for n in nodes())
    assert not model["lstm"]._forward_pre_hooks and not model["lstm"]._forward_hooks
