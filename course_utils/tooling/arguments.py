"""The one argparse ``type`` for positive numbers, shared by the course's subcommands."""

from __future__ import annotations

import argparse
import math
from typing import Callable


def positive(kind: type, what: str = "") -> Callable[[str], int | float]:
    """An argparse ``type`` that accepts a positive, finite ``kind`` (int or float).

    what: how the message names the value ("seconds": "a positive number of seconds");
    by default its type ("a positive int", "a positive, finite float").
    """
    expected = f"a positive number of {what}" if what else f"a positive{', finite' * (kind is float)} {kind.__name__}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > 0 and math.isfinite(value)):  # inf diverges at the first step
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse
