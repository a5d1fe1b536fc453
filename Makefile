# New machine: `make demo` or `make test` sets everything up from nothing but Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed
SAPIENS := sapiens==1.0.5
# AbNatiV's wheel carries real VH/VL test sets (CC BY-NC-SA 4.0): read at run time, never committed
CACHE ?= $(HOME)/.cache/mdmi

.PHONY: demo test install antibody-data clean-venv

$(STAMP): pyproject.toml Makefile
	@echo "setting up $(VENV) (once, about 2 minutes): $(TORCH) (CPU), mdmi with its extras, Sapiens"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# the pinned CPU build first, so that 'torch>=2.3' is already satisfied
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev,hf,plot,antibody]'
	# Sapiens without its dependencies (they pull fairseq and torch<2.5); its weights are all we use
	$(PY) -m pip install --quiet --no-deps $(SAPIENS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mdmi generate-puzzles --n 300 --givens 34 --seed 1234 --out demo_puzzles.txt
	$(VENV)/bin/mdmi eval sudoku --puzzles demo_puzzles.txt --batch-size 50 --json demo_result.json
	# the same puzzles, decoded in parallel with the MI budget (the shipped estimator, no extra pass)
	$(VENV)/bin/mdmi eval sudoku --puzzles demo_puzzles.txt --batch-size 50 --selector mi_budget:gamma=0.05 --json demo_result_mi_budget.json
	# a real pretrained antibody LM: the exact MI map of trastuzumab's masked CDR3 under Sapiens VH
	$(VENV)/bin/mdmi mi --model sapiens:vh --fasta data/trastuzumab_vh.fasta --mask cdr3 --plot demo_antibody_mi.png --out demo_antibody_mi.json
	@$(PY) -c 'import json; a = json.load(open("demo_result.json")); b = json.load(open("demo_result_mi_budget.json")); print("\nSudoku, 300 puzzles: sequential %.1f%% solved at %.1f passes per puzzle; MI budget (gamma 0.05) %.1f%% at %.2f passes, %.1fx fewer" % (100 * a["solve_rate"], a["mean_nfe"], 100 * b["solve_rate"], b["mean_nfe"], a["mean_nfe"] / b["mean_nfe"]))'

antibody-data: $(STAMP)
	$(PY) -m pip download --quiet --no-deps abnativ==2.0.9 -d $(CACHE)
	@echo "abnativ wheel in $(CACHE); mdmi reads its VH/VL CSVs from there (set MDMI_CACHE to move it)"

test: $(STAMP)
	$(PY) -m pytest tests

clean-venv:
	rm -rf $(VENV)

# The documentation site, into site/: the docs extra, a check that benchmarks/results/README.md
# matches the result files (python benchmarks/index.py rewrites it), then mkdocs build, which runs
# docs/gen/pages.py to write the CLI reference and the results pages into the build.
.PHONY: docs
docs: $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	$(PY) benchmarks/index.py --check
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict
