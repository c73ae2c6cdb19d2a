# make run            execute every lesson in cpu mode, write them back to notebooks/, print results
# make run MODE=smoke NB=01    narrow the run (smoke runs go to runs/smoke/)
# make test           unit tests, a smoke run of every notebook, nbval over the committed notebooks
# make lab            JupyterLab on notebooks/
# make student        student versions of the notebooks, in student/
# make site           the course website, in site/ (from the committed notebooks, nothing re-run)
PYTHON_BIN ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MODE ?= cpu
NB ?=
TORCH_VERSION ?= 2.13.0
# PyTorch's CPU-only wheels; set TORCH_INDEX= (empty) to use pip's own configuration.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup data run test lab student site
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
	COURSE_MODE=smoke COURSE_PROGRESS=0 $(PY) -m pytest --nbval-lax tests notebooks

lab: setup
	$(PY) -m jupyter lab notebooks/

student: setup
	$(PY) -m course_utils assign --out student

site: setup
	$(PY) -m course_utils.tooling.site --out site
