# make run            execute every lesson in cpu mode, write them back to notebooks/, print results
# make run MODE=smoke NB=01    narrow the run (smoke runs go to runs/smoke/)
# make test           stale check, unit tests, nbval over the committed lessons (their learner versions: make colab-check)
# make lab            JupyterLab on notebooks/
# make student        student versions of the notebooks, in student/
# make exercises      rewrite the learner versions the Colab badges open, in notebooks/exercises/
# make colab-check    run every lesson and its learner version as in Colab, in a Colab-like venv
#                     (VERSIONS=exercises: the learner versions only, as CI does)
#                     (installs the committed HEAD: commit first)
# make site           the course website, in site/ (from the committed notebooks, nothing re-run)
# make mutation       % of deliberate bugs (mutants) the tests kill in crf.py, lstm.py and the sandbox's
#                     file guard, each with its own tests (not in CI: tens of minutes; SAMPLE=3 tests 1 in 3)
PYTHON_BIN ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MODE ?= cpu
NB ?=
TORCH_VERSION ?= 2.13.0
# PyTorch's CPU-only wheels; set TORCH_INDEX= (empty) to use pip's own configuration.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup data run test lab student exercises colab-check site mutation
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

data: setup
	$(PY) -m course_utils data fetch all

run: data
	$(PY) -m course_utils run --mode $(MODE) --nb "$(NB)"

test: data
	$(PY) -m course_utils stale
	COURSE_MODE=smoke COURSE_PROGRESS=0 $(PY) -m pytest --durations=25 --nbval-lax tests notebooks --ignore=notebooks/exercises

lab: setup
	$(PY) -m jupyter lab notebooks/

student: setup
	$(PY) -m course_utils assign --out student

exercises: setup
	$(PY) -m course_utils assign --out notebooks/exercises

colab-check: data
	$(PY) -m course_utils colab-check --out runs/colab-check --torch-index "$(TORCH_INDEX)" $(if $(VERSIONS),--versions $(VERSIONS))
	COURSE_COLAB_RUNS=runs/colab-check COURSE_PROGRESS=0 $(PY) -m pytest tests/test_notebooks.py -k colab_run

site: setup
	$(PY) -m course_utils site --out site

mutation: setup
	nice -n 10 $(PY) -m course_utils mutation $(if $(SAMPLE),--sample $(SAMPLE))
