"""What runs the course, apart from what it teaches.

Learners never need to open this sub-package; the lessons import nothing from it.

- `cli`        ``python -m course_utils ...``: data, metrics, run, stale, bench, sync-headers, ner, assign, grade.
- `runner`     executes the lesson notebooks with papermill (``make run``) and stamps each run.
- `results`    reads what an executed notebook recorded, and which code it ran with (``stale``).
- `bench`      the benchmarks behind ``bench lstm|crf``.
- `colab`      the Colab badge and set-up cell of every notebook.
- `grading`    student versions and grading, for instructors (``assign``, ``grade``).

Only `runner`, `colab`'s ``sync_headers`` and `grading` need the notebook
libraries of the dev extras (papermill, nbformat, nbclient); they import them
where they are used, so the CLI's ``data`` commands work with the base install.
"""
