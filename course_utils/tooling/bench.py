"""The benchmarks behind ``python -m course_utils bench NAME``: each prints time ratios.

Each benchmark lives with the code it times (lessons 02 and 05 run theirs in a
cell; ``grading`` times the grader on copies of a lesson-01 student version) and times with the one timer of course_utils.timing; this table only
names them for the command line.
"""

from __future__ import annotations

import importlib

import pandas as pd

BENCHMARKS = {"lstm": "course_utils.lstm", "crf": "course_utils.crf", "grading": "course_utils.tooling.grading"}


def run(name: str) -> pd.DataFrame:
    """The table of benchmark `name` (a key of BENCHMARKS)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}")
    return importlib.import_module(BENCHMARKS[name]).benchmark()
