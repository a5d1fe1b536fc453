"""The package outside its source tree: shipped models found from any directory, one
resolver for every model spec, one-line errors for missing optional dependencies, and a
built wheel that carries its checkpoints."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mdmi
from mdmi.cli import main
from mdmi.extras import EXTRAS
from mdmi.interface import ProteinModel
from mdmi.resolve import SHIPPED, head_dir, reference, resolve

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(mdmi.__file__).resolve().parent
PUZZLE = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
TRASTUZUMAB_VH = REPO / "data" / "trastuzumab_vh.fasta"  # spans in the header: no numbering needed


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def extras_of(name: str) -> list[str]:
    """The modules shipped model ``name`` needs."""
    return [EXTRAS[e].module for e in SHIPPED[name].extras]


# ------------------------------------------------------------------ from any directory

def test_solve_eval_and_mi_find_the_shipped_model_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["solve", PUZZLE])
    assert "valid: True" in capsys.readouterr().out
    (tmp_path / "p.txt").write_text(PUZZLE + "\n")
    main(["eval", "sudoku", "--puzzles", "p.txt", "--selector", "mi_budget"])  # the shipped head, too
    assert "solve rate: 100.0%" in capsys.readouterr().out
    main(["mi", PUZZLE])
    out = capsys.readouterr().out
    assert "exact MI cost" in out and f"estimator ({PACKAGE / 'checkpoints' / 'sudoku' / 'estimator'})" in out


@pytest.mark.skipif(not installed("transformers", "sapiens"), reason="needs transformers and sapiens")
def test_bench_antibody_uses_the_shipped_head_without_estimator(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(TRASTUZUMAB_VH),
          "--selectors", "sequential,mi_budget", "--pll-samples", "1"])
    assert "mi_budget" in capsys.readouterr().out


# ------------------------------------------------------------------ the resolver

@pytest.mark.parametrize("name", list(SHIPPED))
def test_resolver_on_each_shipped_name(name):
    if not installed(*extras_of(name)):
        pytest.skip(f"{name} needs {extras_of(name)}")
    r = resolve(name)
    assert r.spec == name and r.task == SHIPPED[name].task and r.ref == reference(name)
    assert r.head == head_dir(name) and r.head.is_relative_to(PACKAGE / "checkpoints")
    # the shipped head was trained for exactly this model (weights hash, or name and version)
    assert mdmi.load_estimator(name).meta["model"] == r.ref
    if SHIPPED[name].pretrained:
        assert r.ref.startswith(f"{name} (") and isinstance(r.model, ProteinModel)
        assert r.model.max_residues == r.model.max_length - 2  # a start and an end token
    else:
        assert r.ref.startswith("sha256:") and not isinstance(r.model, ProteinModel)
        same = resolve(str(PACKAGE / "checkpoints" / SHIPPED[name].directory))  # the same model as a directory
        assert (same.ref, same.task, same.head) == (r.ref, r.task, r.head)


def test_resolver_refuses_ambiguous_names_and_hf_options_on_checkpoints(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="dtype apply to Hugging Face models"):
        resolve("sudoku", dtype="bfloat16")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hmm").mkdir()
    with pytest.raises(ValueError, match=r"write \./hmm for the directory"):
        resolve("hmm")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve("./hmm")


# ------------------------------------------------------------------ missing optional dependencies

def test_a_missing_extra_is_one_line_from_the_cli_before_any_work(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)  # find_spec then reports it missing
    with pytest.raises(SystemExit) as e:
        main(["mi", "--model", "sapiens:vh", "--fasta", str(TRASTUZUMAB_VH), "--mask", "cdr3"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert err == "mdmi: error: mdmi mi --model sapiens:vh needs transformers: pip install 'mdmi[hf]'\n"
    with pytest.raises(SystemExit) as e:
        main(["--device", "cpu", "bench", "antibody", "--model", "hf:org/name", "--fasta", str(TRASTUZUMAB_VH)])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("mdmi: error: mdmi bench antibody --model hf:org/name needs transformers")

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit) as e:
        main(["mi", PUZZLE, "--plot", str(tmp_path / "mi.png")])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and "exact MI cost" not in out  # refused before the MI computation
    assert err == "mdmi: error: mdmi mi --plot needs matplotlib: pip install 'mdmi[plot]'\n"


def test_a_missing_extra_is_an_import_error_at_load(monkeypatch):
    monkeypatch.setitem(sys.modules, "sapiens", None)
    with pytest.raises(ImportError, match=r"^model 'sapiens:vh' needs sapiens: pip install --no-deps sapiens==1\.0\.5$"):
        mdmi.load("sapiens:vh")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"^model 'hf:org/name' needs transformers: pip install 'mdmi\[hf\]'$"):
        mdmi.load("hf:org/name")
    with pytest.raises(ImportError, match=r"needs transformers: pip install 'mdmi\[hf\]'; sapiens: pip install"):
        mdmi.load("sapiens:vl")
    assert mdmi.load("sudoku").vocab_size == 9  # a model that needs no extra still loads


# ------------------------------------------------------------------ the built wheel

@pytest.mark.skipif(not installed("hatchling"), reason="building the wheel offline needs hatchling (the dev extra)")
def test_the_installed_wheel_runs_outside_the_repository(tmp_path):
    def run(*cmd, cwd=tmp_path, env=None):
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
        return r.stdout

    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(REPO))
    (wheel,) = (tmp_path / "dist").glob("mdmi-*.whl")
    site = tmp_path / "site"
    run(*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run(sys.executable, "-c", "import mdmi, mdmi.resources as r; print(mdmi.__file__); "
                "print(r.checkpoint_dir('sudoku'))", cwd=work, env=env).split()
    assert all(Path(p).is_relative_to(site) for p in where)  # the installed copy, not the source tree
    mdmi_cli = [sys.executable, str(site / "bin" / "mdmi")]  # the console script pip wrote
    assert "valid: True" in run(*mdmi_cli, "solve", PUZZLE, cwd=work, env=env)
    if not installed("transformers", "sapiens"):
        pytest.skip("mdmi mi --model sapiens:vh needs transformers and sapiens")
    out = run(*mdmi_cli, "mi", "--model", "sapiens:vh", "--fasta", str(TRASTUZUMAB_VH), "--mask", "cdr3",
              cwd=work, env=env)
    assert f"MI head ({site / 'mdmi' / 'checkpoints' / 'sapiens_vh' / 'estimator'})" in out and "Spearman" in out
