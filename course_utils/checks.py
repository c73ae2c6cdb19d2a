"""The one argument check that many public functions share: a positive int."""

from __future__ import annotations


def check_positive_int(name: str, value: object) -> None:
    """Raise ValueError unless `value` is an int >= 1 (a bool is not an int here)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
