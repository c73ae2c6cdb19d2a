"""The two cells that open every lesson: an "Open in Colab" badge and the set-up cell.

`REPO` is the one place the GitHub owner/repo is written; after changing it, run ``python -m course_utils sync-headers`` to
rewrite the badge and set-up cell of every notebook.
"""

from __future__ import annotations

from pathlib import Path

REPO = "dl-course/cnn-lstm-course"
BRANCH = "main"
SETUP_MARKER = "# Set-up for Google Colab"


def badge_markdown(notebook: str) -> str:
    """The "Open in Colab" badge for ``notebooks/<notebook>``, as a markdown line."""
    url = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def site_url() -> str:
    """The course website on GitHub Pages, ``https://OWNER.github.io/NAME/``, from `REPO`."""
    owner, name = REPO.split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def setup_cell_source() -> str:
    """The set-up cell: in Colab only, pip-install this package from GitHub.

    Colab already has PyTorch; the package asks only for ``torch>=2.1``, so pip keeps it.
    """
    return (
        f"{SETUP_MARKER}: install the course package (PyTorch is already there).\n"
        "# On your own machine `make lab` has installed everything, and this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",\n'
        f'                    "course-utils @ git+https://github.com/{REPO}@{BRANCH}"], check=True)'
    )


def sync_headers(notebook: Path) -> bool:
    """Rewrite the badge line and set-up cell of one notebook; return True if it changed.

    The badge is any markdown line starting with "[![Open In Colab]";
    the set-up cell is the code cell starting with SETUP_MARKER.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    changed = False
    for cell in nb.cells:
        source = cell.source
        if cell.cell_type == "markdown" and "[![Open In Colab]" in source:
            lines = [badge_markdown(notebook.name) if line.startswith("[![Open In Colab]") else line
                     for line in source.split("\n")]
            new = "\n".join(lines)
        elif cell.cell_type == "code" and source.startswith(SETUP_MARKER):
            new = setup_cell_source()
        else:
            continue
        if new != source:
            cell.source, changed = new, True
    if changed:
        nbformat.write(nb, notebook)
    return changed
