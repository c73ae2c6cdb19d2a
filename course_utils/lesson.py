"""What every lesson notebook shares: run modes and recorded metrics.

Introduced in lesson 01.

Run modes (the notebook's ``MODE`` parameter, default ``$COURSE_MODE`` or ``"cpu"``):

- ``smoke``: tiny subsets, one short epoch: every code path runs in under a minute;
- ``cpu``: real results on a laptop or free Colab in about ten minutes;
- ``full``: paper-like settings for a GPU.

A lesson keeps each mode's settings in one table and calls `settings_for`.
`record` stores a named number in the notebook's outputs, so that
``python -m course_utils metrics NOTEBOOK.ipynb`` (and the tests) can read it back.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import time
from collections.abc import Callable
from typing import Any

from IPython import get_ipython
from IPython.display import display

MODES = ("smoke", "cpu", "full")
METRIC_MIME = "application/vnd.course-utils.metric+json"


def default_mode() -> str:
    """The mode a notebook runs in unless told otherwise: ``$COURSE_MODE``, else "cpu"."""
    return os.environ.get("COURSE_MODE", "cpu")


def settings_for(mode: str, table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Pick this mode's settings from a lesson's table, and record the mode.

    Args:
        mode: one of MODES.
        table: {mode: {setting: value}}, one entry per mode in MODES, all with the same keys.
    """
    if mode not in MODES:
        raise ValueError(f"MODE must be one of {MODES}, got {mode!r}")
    missing = [m for m in MODES if m not in table]
    if missing:
        raise ValueError(f"the settings table has no entry for mode(s) {missing}")
    keys = {m: set(s) for m, s in table.items()}
    if len({frozenset(k) for k in keys.values()}) != 1:
        raise ValueError(f"every mode must set the same keys, got {keys}")
    record("mode", mode)
    return dict(table[mode])


def record(name: str, value: Any) -> None:
    """Show `name = value` and store it in the notebook's outputs.

    `value` is a number (Python, NumPy or a one-element tensor), a bool or a string.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"a metric name is an identifier such as 'test_accuracy', got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or isinstance(value, str):
        stored = value
    elif isinstance(value, numbers.Integral):
        stored = int(value)
    elif isinstance(value, numbers.Real):
        stored = float(value)
        if not math.isfinite(stored):
            raise ValueError(f"metric {name!r} is {stored}; only finite numbers can be recorded")
    else:
        raise TypeError(f"metric {name!r} must be a number, bool or string, got {type(value).__name__}")
    shown = f"{stored:.4g}" if isinstance(stored, float) else str(stored)
    if get_ipython() is None:  # plain Python: nothing to store the metric in
        print(f"{name} = {shown}")
    else:
        display({METRIC_MIME: {"name": name, "value": stored}, "text/plain": f"{name} = {shown}"}, raw=True)


class SectionClock:
    """Wall-clock minutes spent in each section of a lesson. Introduced in lesson 01.

    Call ``start("2. A convolution by hand")`` in the first code cell of each
    section; a section lasts until the next one starts (the last one: until
    ``minutes()`` is read). ``markdown()`` renders the times as a table, so that
    a lesson can tell a learner what each part of this run took.

    Args:
        clock: returns the time in seconds (``time.perf_counter`` by default;
            tests pass a fake one).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._starts: dict[str, float] = {}

    def start(self, section: str) -> None:
        """Begin timing `section` (a new, non-empty name); the previous section ends here."""
        if not isinstance(section, str) or not section.strip():
            raise ValueError(f"expected a section name (a non-empty string), got {section!r}")
        if section in self._starts:
            raise ValueError(f"section {section!r} was started already; give each section its own name")
        self._starts[section] = self._clock()

    def minutes(self) -> dict[str, float]:
        """{section: minutes from its start to the next section's start (the last: to now)}."""
        if not self._starts:
            raise ValueError("no section was started: call start(name) at the top of each section")
        names, now = list(self._starts), self._clock()
        ends = [self._starts[name] for name in names[1:]] + [now]
        return {name: (end - self._starts[name]) / 60 for name, end in zip(names, ends)}

    def markdown(self) -> str:
        """The times as a markdown table, with their total and what it leaves out (the README's minutes
        time the whole run, so they can be a little more)."""
        times = self.minutes()
        rows = [f"| {name} | {value:.1f} |" for name, value in times.items()]
        total = sum(times.values())
        return "\n".join(["| Section | Minutes in this run |", "|---|---:|", *rows,
                          f"| **Total of the sections** | **{total:.1f}** |", "",
                          "The README's minutes time the whole run, the kernel's start and this last cell included, "
                          "so they can be a little more."])
