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
