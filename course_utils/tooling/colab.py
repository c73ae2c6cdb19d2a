"""The two cells that open every lesson: the Colab badges and the set-up cell.

Each lesson has two badges: "Open In Colab" opens the lesson itself, as committed with its
outputs and solutions (``notebooks/NN_name.ipynb``); "Open the exercises in Colab" opens the
learner's version, with the exercises blank (``notebooks/exercises/NN_name.ipynb``, written by
``python -m course_utils assign --out notebooks/exercises``, or ``make exercises``).

`REPO` is the one place the GitHub owner/repo is written; after changing it, run ``python -m course_utils sync-headers`` to
rewrite the badges and set-up cell of every notebook.
"""

from __future__ import annotations

from pathlib import Path

from .files import atomic_file

REPO = "dl-course/cnn-lstm-course"
BRANCH = "main"
SETUP_MARKER = "# Set-up for Google Colab"
BADGE = "[![Open In Colab]"
EXERCISES_FOLDER = "exercises"  # under notebooks/: the learner versions the second badge opens
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The set-up cell keeps the data cache here when the learner asks for Google Drive.
DRIVE_DATA_HOME = f"/content/drive/MyDrive/{REPO.rsplit('/', 1)[-1]}-data"


def colab_url(path: str) -> str:
    """The Colab address that opens ``path`` (relative to the repository root) from GitHub."""
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{path}"


def install_url() -> str:
    """What the set-up cell asks pip for: the course package from GitHub, with its Colab extra."""
    return f"course-utils[colab] @ git+https://github.com/{REPO}@{BRANCH}"


def badge_markdown(notebook: str) -> str:
    """The badges of lesson ``notebooks/<notebook>``, as one markdown line: "Open In Colab"
    (the lesson, with its outputs) and "Open the exercises in Colab" (the learner's version).

    Both show Colab's own badge, so a few words after each say which is which.
    """
    lesson = colab_url(f"notebooks/{notebook}")
    exercises = colab_url(f"notebooks/{EXERCISES_FOLDER}/{notebook}")
    return (f"{BADGE}({BADGE_IMAGE})]({lesson}) the lesson, with its outputs \u00b7 "
            f"[![Open the exercises in Colab]({BADGE_IMAGE})]({exercises}) the exercises, blank")


def site_url() -> str:
    """The course website on GitHub Pages, ``https://OWNER.github.io/NAME/``, from `REPO`."""
    owner, name = REPO.split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def setup_cell_source() -> str:
    """The set-up cell: in Colab only, optionally mount Google Drive for the data cache, then
    pip-install this package from GitHub.

    Colab already has PyTorch; the package asks only for ``torch>=2.1``, so pip keeps it.
    The "colab" extra adds pytorch-crf, which lesson 05 compares its CRF with.
    """
    return (
        f"{SETUP_MARKER}: install the course package (PyTorch is already there).\n"
        "# On your own machine `make lab` has installed everything, and this cell does nothing.\n"
        "# Colab downloads the datasets again in every new runtime. To keep them on your Google Drive\n"
        "# instead (Colab asks for access), set KEEP_DATA_ON_DRIVE = True: the cell then mounts the\n"
        f"# Drive and points COURSE_DATA_HOME at {DRIVE_DATA_HOME}.\n"
        "KEEP_DATA_ON_DRIVE = False\n"
        "\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import os\n"
        "    import subprocess\n"
        "\n"
        "    if KEEP_DATA_ON_DRIVE:\n"
        "        from google.colab import drive\n"
        "\n"
        '        drive.mount("/content/drive")\n'
        f'        os.environ["COURSE_DATA_HOME"] = "{DRIVE_DATA_HOME}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",\n'
        f'                    "{install_url()}"], check=True)'
    )


def sync_headers(notebook: Path) -> bool:
    """Rewrite the badge line and set-up cell of one notebook; return True if it changed.

    The badge line is any markdown line starting with `BADGE` ("[![Open In Colab]");
    the set-up cell is the code cell starting with SETUP_MARKER.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    changed = False
    for cell in nb.cells:
        source = cell.source
        if cell.cell_type == "markdown" and BADGE in source:
            lines = [badge_markdown(notebook.name) if line.startswith(BADGE) else line
                     for line in source.split("\n")]
            new = "\n".join(lines)
        elif cell.cell_type == "code" and source.startswith(SETUP_MARKER):
            new = setup_cell_source()
        else:
            continue
        if new != source:
            cell.source, changed = new, True
    if changed:
        with atomic_file(notebook) as tmp:
            nbformat.write(nb, tmp)
    return changed
