"""What runs the course, apart from what it teaches.

Learners never need to open this sub-package, and no lesson imports it.

- `cli`            ``python -m course_utils ...``: one parser with a subcommand each for data, metrics,
                   run, stale, bench, sync-headers, ner, assign, grade, gradebook, site, colab-check, mutation.
- `arguments`      the one argparse type for positive numbers, shared by the subcommands.
- `ner_cli`, `grading_cli` register the ``ner`` and the ``assign``, ``grade`` and gradebook subcommands.
- `notebooks`      the markers of a lesson's exercise cells and check calls, shared by grading and formats.
- `gradebook`      one row per student with totals per lesson, a feedback file per student, copy flags.
- `datasets`       the data hub behind course_utils.data: registry, cache, mirrors, downloads that talk.
- `files`          the one atomic writer of the package.
- `tagger_files`   how a saved tagger lies on disk: files, sha256 manifest, checked reads.
- `runner`         executes the lesson notebooks with papermill (``make run``) and stamps each run.
- `results`        reads what an executed notebook recorded, and which code it ran with (``stale``).
- `mutation`       ``make mutation``: the share of mutants the tests kill, per module.
- `colab`          the Colab badges and set-up cell of every notebook (``REPO`` is written here once).
- `colab_check`    ``make colab-check``: every lesson and its learner version in a Colab-like venv
                   (the packages Colab ships are listed in ``colab_runtime.txt``).
- `grading`        student versions (``assign``) and grading (``grade``), for instructors.
- `sandbox`        runs a student's extracted functions in an isolated process and judges the answers;
  `sandbox_runner` is the script that process runs.
- `formats`        ``assign --format nbgrader|otter``: the course's exercises for those tools.
- `site`           ``make site``: the course website (Sphinx + myst-nb) from the executed notebooks.

Only `runner`, `colab`'s ``sync_headers``, `colab_check`, `grading`, `formats` and
`site` need the libraries of the dev extras (papermill, nbformat, nbclient,
Sphinx); they import them where they are used, so the CLI's ``data`` commands
work with the base install.
"""
