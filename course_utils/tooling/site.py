"""The course website (``make site``): Sphinx and myst-nb over the committed, executed notebooks.

Nothing is executed again: the pages show the outputs stored in the notebooks. The sources are
staged in ``build/site-src/`` from files that already exist, so each text has one copy:

- the landing page is README's introduction, lesson table, "Quick start" and "Run modes";
- one page per lesson ``notebooks/NN_*.ipynb``, in lesson order, each with the theme's Colab
  launch button (the same target as the notebook's badge, from `colab`) and a download button;
- the glossary is ``notebooks/GLOSSARY.md``;
- the instructors' page is README's "For instructors" section.

Learners' versions in ``notebooks/exercises/`` are offered for download, never rendered.
Math is converted to MathML at build time, so the pages load no script from outside the site.
This module is also the Sphinx extension that does that (see `setup`).

    python -m course_utils site [--out site]
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes

from . import colab
from .files import write_text
from .runner import lesson_notebooks

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
STAGING = ROOT / "build" / "site-src"
# Sphinx's output; myst-nb writes the figures beside it, in build/jupyter_execute/.
HTML = ROOT / "build" / "site-html"
DOCTREES = ROOT / "build" / "site-doctrees"
GLOSSARY = "GLOSSARY.md"
INSTRUCTORS_HEADING = "For instructors"
LANDING_SECTIONS = ("Quick start", "Run modes")
# Build warnings that are accepted rather than errors (README, "For contributors", says why).
ACCEPTED_WARNINGS = ["mystnb.unknown_mime_type"]
# The site's icon (browsers ask for one on every page), drawn here rather than committed.
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
           '<rect width="32" height="32" rx="6" fill="#0072b2"/>'
           '<path d="M7 22h4V10H7zm7 0h4V14h-4zm7 0h4V6h-4z" fill="#ffffff"/></svg>\n')
# MathML Core leaves table cells centred: align the columns of converted ``aligned`` blocks.
CSS = ('math mtd[columnalign="left"] { text-align: left; }\n'
       'math mtd[columnalign="right"] { text-align: right; }\n')
_CDN_STYLESHEET = re.compile(r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/'
                             r'font-awesome/[^"]+">')
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_LESSON_LINK = re.compile(r"^notebooks/([0-9][0-9]_[^/]+\.ipynb)$")
_ANCHOR = re.compile(r"\]\(#([^)\s]+)\)")


def exercise_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The learners' versions ``exercises/NN_*.ipynb`` (possibly none), in lesson order."""
    return sorted((folder / "exercises").glob("[0-9][0-9]_*.ipynb"))


def readme_parts(readme: str) -> tuple[str, str, dict[str, str]]:
    """Split README text into its title, its introduction and its ``## `` sections (heading -> body)."""
    chunks = re.split(r"^## (.+)$", readme, flags=re.MULTILINE)
    head, rest = chunks[0], chunks[1:]
    title_line, _, intro = head.partition("\n")
    if not title_line.startswith("# "):
        raise ValueError("README.md should start with a '# Title' line")
    sections = {heading.strip(): body.strip() for heading, body in zip(rest[::2], rest[1::2])}
    return title_line[2:].strip(), intro.strip(), sections


def section(sections: dict[str, str], prefix: str) -> tuple[str, str]:
    """The (heading, body) of the README section whose heading starts with `prefix`."""
    for heading, body in sections.items():
        if heading.startswith(prefix):
            return heading, body
    raise ValueError(f"README.md has no '## {prefix}...' section; found {list(sections)}")


def site_links(markdown: str) -> str:
    """Rewrite README's relative links for the site: a lesson becomes its page, the glossary its
    page, any other file of the repository its page on GitHub; absolute links and anchors stay."""

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(1)
        if re.match(r"^([a-z]+:|#)", target):
            return match.group(0)
        lesson = _LESSON_LINK.match(target)
        if lesson:
            return f"]({lesson.group(1)})"
        if target == f"notebooks/{GLOSSARY}":
            return f"]({GLOSSARY})"
        return f"](https://github.com/{colab.REPO}/blob/{colab.BRANCH}/{target})"

    return _LINK.sub(rewrite, markdown)


def _toctree(caption: str, documents: list[str]) -> str:
    return "\n".join(["```{toctree}", ":hidden:", f":caption: {caption}", "", *documents, "```"])


def landing_page(readme: str, lessons: list[Path], exercises: list[Path]) -> str:
    """index.md: README's title, introduction and set-up sections, the downloads, the navigation."""
    title, intro, sections = readme_parts(readme)
    parts = [f"# {title}", site_links(intro)]
    for prefix in LANDING_SECTIONS:
        heading, body = section(sections, prefix)
        parts += [f"## {heading}", site_links(body)]
    parts += ["## Downloads",
              "On this site, each lesson page has at its top right a launch button (the rocket) that "
              "opens the notebook in Colab, and a download button for the executed notebook."]
    if exercises:
        parts.append("The learners' versions, with the solutions taken out:\n")
        parts.append("\n".join(f"- {{download}}`{p.name} <exercises/{p.name}>`" for p in exercises))
    parts += [_toctree("Lessons", [p.stem for p in lessons]),
              _toctree("Reference", [Path(GLOSSARY).stem, "instructors"])]
    return "\n\n".join(parts) + "\n"


def instructors_page(readme: str) -> str:
    """instructors.md: README's "For instructors" section, as a page of its own."""
    heading, body = section(readme_parts(readme)[2], INSTRUCTORS_HEADING)
    return f"# {heading}\n\n{site_links(body)}\n"


def myst_anchors(markdown: str) -> str:
    """In-page links in MyST's form: JupyterLab's anchors keep a heading's case
    (``#Time-each-part-took``), MyST's heading anchors are lower case (``#time-each-part-took``)."""
    return _ANCHOR.sub(lambda match: f"](#{match.group(1).lower()})", markdown)


def lesson_for_site(notebook: Path) -> str:
    """The notebook's JSON with the in-page links of its markdown cells in MyST's form."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = myst_anchors("".join(cell["source"]))
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _copy(source: Path, target: Path) -> None:
    """Copy with its time stamp (so Sphinx rereads only what changed), skipping identical files."""
    if not target.exists() or target.stat().st_mtime != source.stat().st_mtime:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _write(target: Path, text: str) -> None:
    """Write `text` (UTF-8) unless the file holds it already, so that Sphinx rereads only what changed."""
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        write_text(target, text)


def stage_sources(root: Path = ROOT, staging: Path = STAGING) -> list[Path]:
    """Lay out the site's sources in `staging`; return the lessons in order.

    Files of an earlier staging that are no longer sources are removed.
    """
    notebooks = root / "notebooks"
    lessons = lesson_notebooks(folder=notebooks)
    if not lessons:
        raise FileNotFoundError(f"no lesson notebooks {notebooks}/NN_*.ipynb to build a site from")
    exercises = exercise_notebooks(notebooks)
    readme = (root / "README.md").read_text()
    wanted = {staging / "exercises" / p.name: p for p in exercises}
    wanted[staging / GLOSSARY] = notebooks / GLOSSARY
    (staging / "_static").mkdir(parents=True, exist_ok=True)
    generated = {staging / "index.md": landing_page(readme, lessons, exercises),
                 staging / "_static" / "favicon.svg": FAVICON,
                 staging / "_static" / "course.css": CSS,
                 staging / "instructors.md": instructors_page(readme)}
    generated |= {staging / p.name: lesson_for_site(p) for p in lessons}
    for path in staging.rglob("*"):
        if path.is_file() and path not in wanted and path not in generated:
            path.unlink()
    for target, source in wanted.items():
        _copy(source, target)
    for target, text in generated.items():
        _write(target, text)
    return lessons


def sphinx_config(title: str) -> dict[str, Any]:
    """The Sphinx configuration (there is no conf.py: this is all of it)."""
    owner, name = colab.REPO.split("/")
    return {
        "project": title,
        "html_title": title,
        "author": f"{owner} contributors",
        "extensions": ["myst_nb", "course_utils.tooling.site"],
        "exclude_patterns": ["exercises/**"],
        "nb_execution_mode": "off",
        "nb_merge_streams": True,
        "myst_enable_extensions": ["dollarmath", "deflist"],
        "myst_heading_anchors": 3,
        "html_math_renderer": "mathml",
        "html_theme": "sphinx_book_theme",
        "html_baseurl": colab.site_url(),
        "html_favicon": "_static/favicon.svg",
        "html_static_path": ["_static"],
        "html_css_files": ["course.css"],
        "html_context": {"default_mode": "auto"},
        "html_theme_options": {
            "repository_url": f"https://github.com/{colab.REPO}",
            "repository_branch": colab.BRANCH,
            "path_to_docs": "notebooks",
            "use_repository_button": True,
            "use_download_button": True,
            "launch_buttons": {"colab_url": "https://colab.research.google.com"},
            "show_toc_level": 2,
            "navigation_with_keys": False,
        },
        "suppress_warnings": ACCEPTED_WARNINGS,
    }


def build(root: Path = ROOT, out: Path | None = None) -> Path:
    """Build the site into `out` (default ``site/``), warnings being errors; return `out`.

    Sphinx builds in ``build/`` (myst-nb puts its files beside the output folder), and the
    finished site is then copied to `out`.
    """
    from sphinx.application import Sphinx

    out = out or root / "site"
    staging, html, doctrees = (root / p.relative_to(ROOT) for p in (STAGING, HTML, DOCTREES))
    stage_sources(root, staging)
    title = readme_parts((root / "README.md").read_text())[0]
    app = Sphinx(staging, None, html, doctrees, "html", confoverrides=sphinx_config(title),
                 warningiserror=True)
    app.build()
    if app.statuscode:
        raise SystemExit(f"site build failed (status {app.statuscode}); see the warnings above")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(html, out)
    return out


# The Sphinx extension: math as MathML, and Colab badges as text links on the pages.

def _aligned_as_array(latex: str) -> str:
    """latex2mathml has no ``aligned``: write it as the ``array`` it is (columns right, left, ...)."""

    def array(match: re.Match[str]) -> str:
        body = match.group(1)
        columns = max(row.count("&") for row in body.split(r"\\")) + 1
        return r"\begin{array}{" + ("rl" * columns)[:columns] + "}" + body + r"\end{array}"

    return re.sub(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", array, latex, flags=re.DOTALL)


def _mathml(latex: str, display: str) -> str:
    """LaTeX as MathML; a construct the converter leaves as raw text is an error."""
    from latex2mathml.converter import convert

    mathml = convert(_aligned_as_array(latex.strip()), display=display)
    if "<mi>&</mi>" in mathml or "<mi>\\</mi>" in mathml:
        raise ValueError(f"cannot convert this math to MathML: {latex.strip()[:80]!r}")
    return mathml


def _visit_math(translator: Any, node: nodes.math) -> None:
    translator.body.append(_mathml(node.astext(), "inline"))
    raise nodes.SkipNode


def _visit_math_block(translator: Any, node: nodes.math_block) -> None:
    translator.body.append(f'<div class="math notranslate">{_mathml(node.astext(), "block")}</div>')
    raise nodes.SkipNode


def _colab_badges_as_text(app: Any, doctree: nodes.document) -> None:
    """Replace each "Open In Colab" badge image by its text ("Open In Colab", "Open the exercises in
    Colab"), kept as the link: the badge is an image from outside the site, and its caption after it
    ("the lesson, with its outputs") still needs the link it describes."""
    for image in list(doctree.findall(nodes.image)):
        if "colab-badge.svg" in image.get("uri", ""):
            image.replace_self(nodes.Text(image.get("alt") or "Open in Colab"))


def _drop_cdn_stylesheets(app: Any, doctree: nodes.document, docname: str) -> None:
    """Remove the Font Awesome 4 stylesheet that matplotlib's animation player links from a CDN:
    the theme bundles Font Awesome, which draws the player's buttons."""
    for raw in list(doctree.findall(nodes.raw)):
        text = raw.astext()
        if _CDN_STYLESHEET.search(text):
            raw.replace_self(nodes.raw("", _CDN_STYLESHEET.sub("", text), format=raw.get("format", "html")))


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: register the MathML renderer, the badge and stylesheet removals."""
    app.add_html_math_renderer("mathml", (_visit_math, None), (_visit_math_block, None))
    app.connect("doctree-read", _colab_badges_as_text)
    app.connect("doctree-resolved", _drop_cdn_stylesheets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
