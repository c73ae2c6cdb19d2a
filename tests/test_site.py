"""The course website (``make site``), opened in a real browser: Debian's headless Chromium.

For each lesson page: no JavaScript errors, every image loaded, every internal link resolves,
title and first heading are the lesson's, and the Colab and download buttons point where they
should. A screenshot of each page (its top, its first figure, and that figure in the dark theme)
goes to a folder that is kept, and printed, when the test fails; set ``SITE_SCREENSHOTS=DIR`` to
keep them always. Outside CI the test skips when the browser or the built site is missing; in CI
(``CI`` set) it fails instead.
"""

from __future__ import annotations

import functools
import html.parser
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from course_utils.tooling import colab, site
from course_utils.tooling.runner import lesson_notebooks

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LESSONS = lesson_notebooks(folder=ROOT / "notebooks")


def _missing(reason: str) -> None:
    """Skip, except in CI, where the site must be built and tested."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the site must be tested here)")
    pytest.skip(reason)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


@pytest.fixture(scope="module")
def base_url():
    """``site/`` served on 127.0.0.1 by http.server, in a thread."""
    if not (SITE / "index.html").exists():
        _missing(f"no built site at {SITE} (run `make site`)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Debian's chromedriver; nothing is downloaded."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _missing(f"no {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def screenshots():
    """The folder of screenshots: kept (and printed) if a test failed, or if SITE_SCREENSHOTS names it."""
    chosen = os.environ.get("SITE_SCREENSHOTS")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="site-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    state = {"failed": 0}
    yield folder, state
    if state["failed"] or chosen:
        print(f"\nsite screenshots: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


class _Ids(html.parser.HTMLParser):
    """The ids (and anchor names) of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


@functools.lru_cache(maxsize=None)
def _lesson_title(notebook: Path) -> str:
    """The lesson's title: the first level-1 heading of its first markdown cell."""
    nb = nbformat.read(notebook, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "markdown")
    return next(line[2:].strip() for line in first.source.splitlines() if line.startswith("# "))


def _fetch(url: str) -> tuple[int, frozenset[str]]:
    """HTTP status of a same-site URL, and the ids of the page if it is HTML."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body, status, kind = response.read(), response.status, response.headers.get_content_type()
    except urllib.error.HTTPError as err:
        return err.code, frozenset()
    if kind != "text/html":
        return status, frozenset()
    parser = _Ids()
    parser.feed(body.decode("utf-8", errors="replace"))
    return status, frozenset(parser.ids)


def _broken_links(hrefs: list[str], base_url: str) -> list[str]:
    """The same-site links that do not answer 200, or whose #anchor is not on the page."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base_url):
            continue
        url, _, fragment = href.partition("#")
        status, ids = _fetch(url)
        if status != 200:
            broken.append(f"{href} (HTTP {status})")
        elif fragment and urllib.parse.unquote(fragment) not in ids:
            broken.append(f"{href} (no element with id {urllib.parse.unquote(fragment)!r})")
    return broken


def _figures(notebook: Path) -> int:
    """How many image outputs the executed notebook holds."""
    nb = nbformat.read(notebook, as_version=4)
    return sum(any(k.startswith("image/") for k in out.get("data", {}))
               for cell in nb.cells for out in cell.get("outputs", []))


_JS_IMAGES = ("return Array.from(document.images).map(i => "
              "[i.currentSrc || i.src, i.complete && i.naturalWidth > 0])")
_JS_LINKS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"


def _open(driver, url: str, screenshot: Path) -> tuple[list[str], list[str]]:
    """Open a page, save its screenshot; return its problems (JavaScript errors, images not
    loaded) and its links."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    driver.save_screenshot(str(screenshot))
    problems = [f"JavaScript error: {e['message']}" for e in driver.get_log("browser")
                if e["level"] == "SEVERE"]
    images = driver.execute_script(_JS_IMAGES)
    problems += [f"image not loaded: {src}" for src, loaded in images if not loaded]
    return problems, driver.execute_script(_JS_LINKS)


def _check_page(driver, base_url: str, notebook: Path, folder: Path) -> list[str]:
    """Open one lesson page; return what is wrong with it, and save its screenshots."""
    stem = notebook.stem
    problems, hrefs = _open(driver, f"{base_url}{stem}.html", folder / f"{stem}_top.png")
    figures = driver.find_elements("css selector", "article img")
    if len(figures) < _figures(notebook):
        problems.append(f"{len(figures)} images on the page, {_figures(notebook)} figures in the notebook")
    if figures:
        driver.execute_script("arguments[0].scrollIntoView()", figures[0])
        driver.save_screenshot(str(folder / f"{stem}_figure.png"))
        driver.execute_script("document.documentElement.dataset.theme = 'dark'")
        driver.save_screenshot(str(folder / f"{stem}_figure_dark.png"))
    problems += [f"broken link: {b}" for b in _broken_links(hrefs, base_url)]

    title = _lesson_title(notebook)
    if driver.title.split(" \u2014 ")[0] != title:
        problems.append(f"<title> is {driver.title!r}, expected the lesson's {title!r}")
    h1 = driver.find_element("css selector", "article h1").text.rstrip("#").strip()
    if h1 != title:
        problems.append(f"first <h1> is {h1!r}, expected {title!r}")

    badge_target = colab.colab_url(f"notebooks/{notebook.name}")  # the lesson badge's target
    if badge_target not in hrefs:
        problems.append(f"no Colab launch link to {badge_target}")
    exercises_target = colab.colab_url(f"notebooks/{colab.EXERCISES_FOLDER}/{notebook.name}")
    links = {a.get_attribute("href"): a.text for a in driver.find_elements("css selector", "article a")}
    if links.get(exercises_target, "").strip() != "Open the exercises in Colab":
        problems.append(f"the exercises' badge is not the text link 'Open the exercises in Colab' to {exercises_target}")
    if driver.find_elements("css selector", "article img[src*='colab-badge']"):
        problems.append("a Colab badge image (from outside the site) is still on the page")
    if f"{base_url}_sources/{notebook.name}" not in hrefs:
        problems.append(f"no download link to _sources/{notebook.name}")
    return problems


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem[:2] for p in LESSONS])
def test_lesson_page_in_chromium(notebook, base_url, browser, screenshots):
    folder, state = screenshots
    state["failed"] += 1  # until the page has passed
    problems = _check_page(browser, base_url, notebook, folder)
    assert not problems, f"{notebook.stem}.html (screenshots in {folder}):\n" + "\n".join(problems)
    state["failed"] -= 1


def test_readme_links_the_site_address():
    """The README's link to the website is the address derived from colab.REPO."""
    readme = (ROOT / "README.md").read_text()
    assert re.findall(r"https://[\w.-]+\.github\.io/[\w./-]*", readme) == [colab.site_url()]


@pytest.mark.parametrize("page", ["index", "GLOSSARY", "instructors"])
def test_other_pages_in_chromium(page, base_url, browser, screenshots):
    """The landing page, the glossary and the instructors' page: no errors, no broken link;
    the landing page offers each learner's version of a lesson for download."""
    folder, state = screenshots
    state["failed"] += 1
    problems, hrefs = _open(browser, f"{base_url}{page}.html", folder / f"{page}.png")
    problems += [f"broken link: {b}" for b in _broken_links(hrefs, base_url)]
    if page == "index":
        downloads = {h.rsplit("/", 1)[-1] for h in hrefs if "/_downloads/" in h}
        problems += [f"no download link for exercises/{p.name}"
                     for p in site.exercise_notebooks(ROOT / "notebooks") if p.name not in downloads]
        problems += [f"no link to lesson page {p.stem}.html" for p in LESSONS
                     if f"{base_url}{p.stem}.html" not in hrefs]
    assert not problems, f"{page}.html (screenshots in {folder}):\n" + "\n".join(problems)
    state["failed"] -= 1


def test_site_url_comes_from_repo(monkeypatch):
    monkeypatch.setattr(colab, "REPO", "Some-Owner/some-course")
    assert colab.site_url() == "https://some-owner.github.io/some-course/"


def test_readme_links_become_site_links():
    text = ("[a](notebooks/01_cnn.ipynb) [b](notebooks/GLOSSARY.md) [c](datasets/README.md) "
            "[d](https://example.org/x) [e](#quick-start)")
    assert site.site_links(text) == (
        "[a](01_cnn.ipynb) [b](GLOSSARY.md) "
        f"[c](https://github.com/{colab.REPO}/blob/{colab.BRANCH}/datasets/README.md) "
        "[d](https://example.org/x) [e](#quick-start)")


def test_in_page_links_take_myst_anchors(tmp_path):
    assert site.myst_anchors("see [Time each part took](#Time-each-part-took) and [x](01_a.ipynb)") == (
        "see [Time each part took](#time-each-part-took) and [x](01_a.ipynb)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A\n\n[t](#Time-Each)"),
                                         nbformat.v4.new_code_cell("x = '[t](#Keep-Me)'")])
    path = tmp_path / "01_a.ipynb"
    nbformat.write(nb, path)
    cells = nbformat.reads(site.lesson_for_site(path), as_version=4).cells
    assert cells[0].source == "# A\n\n[t](#time-each)" and cells[1].source == "x = '[t](#Keep-Me)'"


def _notebook(path: Path, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\n\ntext")])
    nbformat.write(nb, path)


def test_staging_renders_lessons_and_offers_exercises_for_download(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "README.md").write_text(readme)
    for name in ("01_first.ipynb", "02_second.ipynb"):
        _notebook(tmp_path / "notebooks" / name, f"Lesson {name[:2]}")
    _notebook(tmp_path / "notebooks" / "exercises" / "01_first.ipynb", "Lesson 01")
    _notebook(tmp_path / "notebooks" / "scratch.ipynb", "not a lesson")
    (tmp_path / "notebooks" / site.GLOSSARY).write_text("# Glossary\n")
    staging = tmp_path / "staged"
    (staging / "old.md").parent.mkdir(parents=True)
    (staging / "old.md").write_text("left over")

    lessons = site.stage_sources(tmp_path, staging)

    assert [p.name for p in lessons] == ["01_first.ipynb", "02_second.ipynb"]
    assert not (staging / "old.md").exists() and not (staging / "scratch.ipynb").exists()
    index = (staging / "index.md").read_text()
    assert "01_first\n02_second\n```" in index, "the lessons are in the navigation, in order"
    assert "{download}`01_first.ipynb <exercises/01_first.ipynb>`" in index
    assert "exercises/**" in site.sphinx_config("t")["exclude_patterns"]
    assert _lesson_title(staging / "02_second.ipynb") == "Lesson 02"
    assert (staging / "instructors.md").read_text().startswith("# For instructors")


def test_math_becomes_mathml_with_aligned_columns():
    mathml = site._mathml(r"\begin{aligned} a &= b && \text{note}\\ c &= d \end{aligned}", "block")
    assert mathml.count("<mtr>") == 2 and '<mtd columnalign="right"><mi>a</mi></mtd>' in mathml
    with pytest.raises(ValueError, match="cannot convert"):
        site._mathml("a & b", "inline")
