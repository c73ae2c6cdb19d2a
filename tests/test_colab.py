"""Colab: the learner versions the badges open, the Colab-like check's parts, Python 3.10-3.12,
and the device-moving code paths that a GPU runtime takes, simulated on the CPU.

The Colab-like run itself is `make colab-check` (course_utils.tooling.colab_check).
"""

import ast
import filecmp
import tomllib
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import text, train
from course_utils.tooling import cli, colab, colab_check, runner
from course_utils.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SUPPORTED = ("3.10", "3.11", "3.12")


# --------------------------------------------------------------------------- learner versions


def test_learner_versions_are_what_assign_writes(tmp_path):
    """notebooks/exercises/ holds exactly what `assign` writes from the lessons: regenerate
    them with `make exercises` after editing a lesson."""
    assert cli.main(["assign", "--out", str(tmp_path)]) == 0
    committed = runner.NOTEBOOKS / colab.EXERCISES_FOLDER
    written = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert written == sorted(p.name for p in runner.lesson_notebooks())
    assert sorted(p.name for p in committed.glob("*.ipynb")) == written, "run `make exercises`"
    stale = [name for name in written if not filecmp.cmp(tmp_path / name, committed / name, shallow=False)]
    assert not stale, f"run `make exercises`: {stale} differ from what assign writes"


def test_each_exercises_badge_opens_a_committed_learner_version():
    for lesson in runner.lesson_notebooks():
        prefix = f"https://colab.research.google.com/github/{colab.REPO}/blob/{colab.BRANCH}/"
        urls = [part.split(")", 1)[0] for part in colab.badge_markdown(lesson.name).split("](")[1:]
                if part.startswith(prefix)]
        assert len(urls) == 2
        for url in urls:
            assert (ROOT / url[len(prefix):]).is_file(), url


def test_readme_quick_start_names_both_badges():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "Open In Colab" in quick_start and "Open the exercises in Colab" in quick_start
    assert f"notebooks/{colab.EXERCISES_FOLDER}/" in quick_start


# --------------------------------------------------------------------------- what Colab ships


def test_colab_runtime_lists_what_the_course_relies_on_and_no_dev_extra():
    pins = colab_check.runtime_requirements()
    assert {"torch", "numpy", "pandas", "matplotlib", "seaborn", "scikit-learn", "tqdm", "ipykernel",
            "ipython", "requests"} <= set(pins)
    dev = {Requirement(r).name.lower() for r in PYPROJECT["optional-dependencies"]["dev"]} - {"ipykernel"}
    assert not dev & set(pins), "the Colab-like environment must not hold the dev extras"


def test_the_package_accepts_every_version_colab_ships():
    """Otherwise the set-up cell would upgrade a package Colab ships (IPython, say), which Colab
    warns can crash its runtime; colab-check asserts the same on a real install."""
    pins = colab_check.runtime_requirements()
    for requirement in map(Requirement, PYPROJECT["dependencies"]):
        name = requirement.name.lower()
        if name in pins:
            assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_the_setup_cell_installs_only_extras_the_package_declares():
    requirement = Requirement(colab.install_url())
    assert requirement.name == PYPROJECT["name"]
    assert requirement.extras and requirement.extras <= set(PYPROJECT["optional-dependencies"]) - {"dev"}
    added = {Requirement(r).name for extra in requirement.extras for r in PYPROJECT["optional-dependencies"][extra]}
    assert "pytorch-crf" in added, "lesson 05 compares its CRF with pytorch-crf"


def test_runtime_requirements_reject_an_unpinned_line(tmp_path):
    path = tmp_path / "runtime.txt"
    path.write_text("# comment\nnumpy==2.0.2\npandas>=2\n")
    with pytest.raises(ValueError, match=r"line 3: expected 'name==version'"):
        colab_check.runtime_requirements(path)
    path.write_text("NumPy==2.0.2  # Colab's\njupyter_client==7.4.9\n")
    assert colab_check.runtime_requirements(path) == {"numpy": "2.0.2", "jupyter-client": "7.4.9"}


def test_colab_notebook_changes_only_the_github_address(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell(colab.setup_cell_source()),
                nbformat.v4.new_code_cell("x = 1")]
    source, output = tmp_path / "01_x.ipynb", tmp_path / "out" / "01_x.ipynb"
    nbformat.write(nb, source)
    colab_check.colab_notebook(source, output, tmp_path, "abc123")
    cells = nbformat.read(output, as_version=4).cells
    expected = colab.setup_cell_source().replace(colab_check.GITHUB_URL, f"git+file://{tmp_path.resolve()}@abc123")
    assert cells[1].source == expected != colab.setup_cell_source()
    assert [c.source for c in cells[::2]] == ["# Title", "x = 1"]


def test_colab_notebook_needs_one_setup_cell_that_installs_from_github(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="expected one set-up cell"):
        colab_check.colab_notebook(path, tmp_path / "out.ipynb", tmp_path, "abc123")
    with pytest.raises(ValueError, match="does not install from"):
        colab_check.colab_setup_source(colab.SETUP_MARKER + "\npip install course-utils", tmp_path, "abc")


def test_the_kernel_is_found_from_another_working_folder(tmp_path, monkeypatch):
    """make colab-check names its folder relatively; papermill runs each notebook elsewhere."""
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.chdir(tmp_path)
    jupyter_dir = Path("out") / "jupyter"
    colab_check.register_kernel(tmp_path / "venv", jupyter_dir, Path("out") / "ipython", tmp_path)
    (tmp_path / "content").mkdir()
    with colab_check._kernel_environment(jupyter_dir):
        monkeypatch.chdir(tmp_path / "content")
        spec = KernelSpecManager().get_kernel_spec(colab_check.KERNEL)
    assert spec.argv[0] == str(tmp_path / "venv" / "bin" / "python")


@pytest.fixture
def fake_runtime(monkeypatch):
    """check_runtime's view of an environment, as dicts the test changes."""
    state = {"inventory": {"torch": ["2.13.0+cpu", "/env"], "ipython": ["7.34.0", "/env"],
                           "course-utils": ["0.1.0", "/env"]},
             "torch": ["2.13.0+cpu", "/env/torch/__init__.py"],
             "origin": {"url": "file:///repo", "vcs_info": {"vcs": "git", "commit_id": "abc"}}}
    monkeypatch.setattr(colab_check, "inventory", lambda env_dir: state["inventory"])
    monkeypatch.setattr(colab_check, "_run", lambda command, **kwargs: __import__("json").dumps(state["torch"]))
    monkeypatch.setattr(colab_check, "_direct_url", lambda env_dir: state["origin"])
    baseline = {"torch": ["2.13.0+cpu", "/env"], "ipython": ["7.34.0", "/env"]}
    pins = {"torch": "2.13.0", "ipython": "7.34.0"}
    return state, lambda: colab_check.check_runtime(Path("/env"), baseline, ["2.13.0+cpu", "/env/torch/__init__.py"],
                                                    pins, "abc")


def test_check_runtime_passes_an_untouched_runtime(fake_runtime):
    _, check = fake_runtime
    check()


@pytest.mark.parametrize("change, message", [
    (lambda s: s["inventory"].update(ipython=["9.0.0", "/env"]), "changed what Colab ships: ipython 7.34.0 -> 9.0.0"),
    (lambda s: s.update(torch=["2.13.0+cpu", "/elsewhere/torch/__init__.py"]), "torch changed"),
    (lambda s: s["inventory"].pop("course-utils"), "did not install course-utils"),
    (lambda s: s["origin"]["vcs_info"].update(commit_id="def"), "not installed from this checkout"),
])
def test_check_runtime_names_what_went_wrong(fake_runtime, change, message):
    state, check = fake_runtime
    change(state)
    with pytest.raises(AssertionError, match=message):
        check()


# --------------------------------------------------------------------------- Colab's Python


def test_pyproject_supports_python_3_10_to_3_12():
    supported = SpecifierSet(PYPROJECT["requires-python"])
    assert all(supported.contains(version) for version in SUPPORTED)
    assert not supported.contains("3.9")
    classifiers = {c.rsplit(" :: ", 1)[1] for c in PYPROJECT["classifiers"]
                   if c.startswith("Programming Language :: Python :: 3.")}
    assert classifiers == set(SUPPORTED)


def test_feature_version_rejects_newer_syntax():
    """What the next test relies on: 3.11's except* is not 3.10 syntax."""
    newer = "try:\n    pass\nexcept* ValueError:\n    pass\n"
    ast.parse(newer, feature_version=(3, 11))
    with pytest.raises(SyntaxError):
        ast.parse(newer, feature_version=(3, 10))


@pytest.mark.parametrize("module", sorted((ROOT / "course_utils").rglob("*.py")), ids=lambda p: p.name)
def test_every_module_is_python_3_10_syntax(module):
    ast.parse(module.read_text(encoding="utf-8"), filename=str(module), feature_version=(3, 10))


# --------------------------------------------------------------------------- Colab's GPU


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend a GPU is there: torch.cuda.is_available() is True, and `.to("cuda")` on a tensor
    or a module is recorded and leaves it where it is. Returns the list of recorded moves."""
    moves = []
    tensor_to, module_to = torch.Tensor.to, nn.Module.to

    def is_cuda(args, kwargs):
        device = kwargs.get("device", args[0] if args else None)
        return isinstance(device, (str, torch.device)) and torch.device(device).type == "cuda"

    def fake_tensor_to(self, *args, **kwargs):
        if is_cuda(args, kwargs):
            moves.append(("tensor", tuple(self.shape)))
            return self
        return tensor_to(self, *args, **kwargs)

    def fake_module_to(self, *args, **kwargs):
        if is_cuda(args, kwargs):
            moves.append(("module", type(self).__name__))
            return self
        return module_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.Tensor, "to", fake_tensor_to)
    monkeypatch.setattr(nn.Module, "to", fake_module_to)
    return moves


def _classifier_data(n: int = 12, batch_size: int = 4) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, generator=generator), torch.randint(2, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def test_get_device_picks_cuda_when_colab_has_a_gpu(fake_cuda):
    assert train.get_device() == torch.device("cuda")
    assert train.get_device("cuda") == torch.device("cuda")
    assert train.get_device("cpu") == torch.device("cpu")


def test_model_device_is_the_one_asked_for_else_the_models():
    model = nn.Linear(3, 2)
    assert train.model_device(model) == torch.device("cpu")
    assert train.model_device(model, "meta") == torch.device("meta")
    assert train.model_device(model.to("meta")) == torch.device("meta")
    assert train.model_device(nn.ReLU()) == torch.device("cpu")


def test_fit_evaluate_predict_move_the_model_and_every_batch(fake_cuda):
    """On a GPU the lessons pass device=get_device(); lesson 01 also evaluates a reloaded model
    that is still on the CPU, so evaluate and predict move the model too."""
    loader = _classifier_data()
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    device = train.get_device()
    train.fit(model, loader, nn.functional.cross_entropy, optimizer, epochs=2, val_loader=loader,
              device=device, verbose=False)
    batches = len(loader)
    assert ("module", "Linear") in fake_cuda
    assert fake_cuda.count(("tensor", (4, 3))) == 2 * 2 * batches  # inputs: train and validation, 2 epochs
    assert fake_cuda.count(("tensor", (4,))) == 2 * 2 * batches    # targets
    for run in (lambda: train.evaluate(model, loader, nn.functional.cross_entropy, device),
                lambda: train.predict(model, loader, device)):
        fake_cuda.clear()
        run()
        assert fake_cuda.count(("module", "Linear")) == 1
        assert fake_cuda.count(("tensor", (4, 3))) == batches


def test_without_a_device_the_model_stays_where_it_is(fake_cuda):
    loader = _classifier_data()
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train.fit(model, loader, nn.functional.cross_entropy, optimizer, epochs=1, verbose=False)
    train.evaluate(model, loader, nn.functional.cross_entropy)
    predictions, targets = train.predict(model, loader)
    assert fake_cuda == []
    assert predictions.device.type == targets.device.type == "cpu"


def test_char_lstm_runs_where_it_is_asked_to(fake_cuda):
    vocab = Vocab.from_text("abcdefgh")
    ids = vocab.encode_text("abcdefgh" * 8)
    model = text.CharLSTM(len(vocab), embed_size=4, hidden_size=8, num_layers=1)
    text.evaluate_char_lstm(model, ids, batch_size=2, seq_len=8, device="cuda")
    assert ("module", "CharLSTM") in fake_cuda and ("tensor", (2, 8)) in fake_cuda
    fake_cuda.clear()
    generated = text.sample(model, vocab, "ab", length=5, device="cuda")
    assert len(generated) == 7
    assert fake_cuda.count(("tensor", (1, 1))) == 5, "each drawn character goes back to the model's device"


def test_plots_of_lesson_02_accept_tensors_that_need_grad():
    """They take the values off the autograd graph (and off the GPU) before NumPy sees them."""
    values = torch.rand(6, 3, requires_grad=True)
    features = text.text_features("abc\nde")
    assert len(text.best_cells(values, features)) == len(features.select_dtypes("number").columns)
    text.plot_activations(values, "abc\nde")
    text.plot_gradient_norms({"model": torch.rand(5, requires_grad=True) + 0.1})
    plt.close("all")


@pytest.mark.parametrize("versions", ["lesson", "", "exercises,solutions"])
def test_an_unknown_version_is_an_error_before_anything_is_built(tmp_path, versions, capsys):
    assert cli.main(["colab-check", "--out", str(tmp_path / "out"), "--versions", versions]) == 1
    assert "error: versions: expected some of exercises, lessons" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_failed_cell_report_shows_what_the_cell_printed_before_it_raised(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print('fine')", outputs=[nbformat.v4.new_output("stream", text="fine\n")]),
        nbformat.v4.new_code_cell("run(['torchrun', 'x.py'])", outputs=[
            nbformat.v4.new_output("stream", text="".join(f"line {i}\n" for i in range(100)) + "EADDRINUSE\n"),
            nbformat.v4.new_output("error", ename="RuntimeError", evalue="status 1", traceback=[])])])
    path = tmp_path / "executed.ipynb"
    nbformat.write(notebook, path)
    report = colab_check.failed_cell_report(path, lines=5)
    assert "run(['torchrun', 'x.py'])" in report and "print('fine')" not in report
    assert report.splitlines()[-7:-1] == ["--- the last 5 lines it printed:", "line 96", "line 97", "line 98",
                                          "line 99", "EADDRINUSE"]
    nbformat.write(nbformat.v4.new_notebook(cells=notebook.cells[:1]), path)
    assert "no cell with an error output" in colab_check.failed_cell_report(path)
