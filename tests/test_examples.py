"""Every script in examples/ runs at a tiny size and prints what its docstring promises."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {"own_model.py", "huggingface_mlm.py", "antibody_design.py",
                                                       "sudoku.py"}


def test_own_model():
    out = run("own_model.py", "--steps", "300", "--contexts", "128")
    mi = re.search(r"pair \(0,1\) ([\d.]+) nats, \(0,2\) ([\d.]+) nats", out)
    assert mi and float(mi[1]) > 0.5 > float(mi[2])  # the coupled pair carries MI, the other none
    assert re.search(r"^sequential +mean NFE 8\.00", out, re.M)
    assert re.search(r"^mi_budget +mean NFE [\d.]+ +samples with every pair coupled", out, re.M)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")
def test_huggingface_mlm():
    out = run("huggingface_mlm.py")
    assert re.search(r"^exact MI: \d+ passes", out, re.M)
    assert re.search(r"^mi_budget \(exact MI\) +NFE +\d+ \(\+\d+ exact-MI passes\)", out, re.M)


def test_antibody_design():
    out = run("antibody_design.py")
    if out.startswith("skipped:"):  # Sapiens not installed: one line, exit code 0
        assert len(out.splitlines()) == 1
        return
    assert re.search(r"^sequential NFE 12 +CDR3 [A-Z]{12} +PLL -?[\d.]+ nats/residue", out, re.M)
    assert re.search(r"^mi_budget +NFE +\d+ +CDR3 [A-Z]{12} +PLL", out, re.M)


def test_sudoku():
    out = run("sudoku.py", "--n", "3")
    assert re.search(r"^sequential +solved \d/3 .* mean NFE 47\.00", out, re.M)
    assert re.search(r"^mi_budget gamma=0\.05 +solved \d/3 .* mean NFE [\d.]+", out, re.M)
