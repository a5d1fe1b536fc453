# New machine: `make demo` or `make test` sets everything up from nothing but Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test install clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# the pinned CPU build first, so that 'torch>=2.3' is already satisfied
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev,hf,plot]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mdmi generate-puzzles --n 300 --givens 34 --seed 1234 --out demo_puzzles.txt
	$(VENV)/bin/mdmi eval sudoku --puzzles demo_puzzles.txt --json demo_result.json
	# the same puzzles, decoded in parallel with the MI budget (the shipped estimator, no extra pass)
	$(VENV)/bin/mdmi eval sudoku --puzzles demo_puzzles.txt --selector mi_budget --param gamma=0.05 --json demo_result_mi_budget.json

test: $(STAMP)
	$(PY) -m pytest tests

clean-venv:
	rm -rf $(VENV)
