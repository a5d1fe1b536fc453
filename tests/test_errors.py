"""Bad input through the command line: a non-zero exit, one line naming the argument or the
file (and line), no traceback, and nothing written or changed on disk."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdmi.cli import main
from mdmi.models.transformer import MaskedTransformer, MDMConfig

UNSOLVABLE = "12345678" + "0" * 9 + "9" + "0" * 63  # no duplicate givens, yet r1c9 needs a 9 that c9 holds


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A tiny Sudoku model, a tiny estimator-free HMM-free world, and a puzzle file."""
    d = tmp_path_factory.mktemp("world")
    torch.manual_seed(0)
    MaskedTransformer(MDMConfig(d_model=32, n_layers=2, n_heads=2, grid=9)).save(d / "m")
    main(["generate-puzzles", "--n", "3", "--givens", "60", "--seed", "2", "--out", str(d / "p.txt")])
    return d


def snapshot(path: Path) -> dict:
    """sha256 of every file under ``path``."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def fails(argv, match, capsys):
    """Run ``mdmi argv``: must exit non-zero with ``match`` in its one-line message."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    code = e.value.code
    msg = code if isinstance(code, str) else capsys.readouterr().err
    assert code != 0 and code is not None
    assert match in msg, msg
    assert "Traceback" not in msg
    line = msg.strip().splitlines()[-1]
    assert line.startswith("mdmi ") and "error" in line
    return msg


def test_malformed_inputs_on_every_command(root, tmp_path, capsys):
    m, p = str(root / "m"), str(root / "p.txt")
    before = snapshot(root)
    bad_puzzles = tmp_path / "bad.txt"
    bad_puzzles.write_text(open(p).read() + UNSOLVABLE + "\n")
    not_bench = tmp_path / "nb.json"
    not_bench.write_text('{"a": 1}\n')
    seqs = tmp_path / "s.txt"
    seqs.write_text("0 1 2\n")
    cases = [
        (["solve", UNSOLVABLE, "--model", m], "no solution"),
        (["eval", "sudoku", "--puzzles", str(bad_puzzles), "--model", m], "bad.txt:4: the puzzle has no solution"),
        (["bench", "sudoku", "--puzzles", str(bad_puzzles), "--model", m], "bad.txt:4"),
        (["solve", "0" * 81, "--model", m, "--selector", "entropy_bound", "--param", "gamma=NaN"], "finite"),
        (["solve", "0" * 81, "--model", m, "--selector", "entropy_bound", "--param", "gamma=inf"], "finite"),
        (["solve", "0" * 81, "--model", m, "--selector", "entropy_bound", "--param", "gamma=abc"], "must be a number"),
        (["solve", "0" * 81, "--model", m, "--selector", "entropy_bound", "--param", "gamma=true"], "must be a number"),
        (["solve", "0" * 81, "--model", m, "--selector", "topk", "--param", "k=2.5"], "integer"),
        (["solve", "0" * 81, "--model", m, "--selector", "topk", "--param", "tau=2"], "takes only k, order"),
        (["solve", "0" * 81, "--model", m, "--selector", "factor", "--param", "f=1", "--param", "f=2"], "twice"),
        (["solve", "0" * 81, "--model", m, "--param", "=3"], "key=value"),
        (["eval", "sudoku", "--puzzles", p, "--model", m, "--limit", "-1"], "--limit"),
        (["eval", "sudoku", "--puzzles", p, "--model", m, "--batch-size", "0"], "--batch-size"),
        (["eval", "sudoku", "--puzzles", str(root), "--model", m], "Is a directory"),
        (["eval", "sudoku", "--puzzles", str(tmp_path / "none.txt"), "--model", m], "No such file"),
        (["bench", "sudoku", "--puzzles", p, "--model", m, "--batch-size", "-3"], "--batch-size"),
        (["bench", "merge", str(not_bench)], "not a 'bench sudoku --json' result"),
        (["bench", "merge", str(seqs)], "is not JSON"),
        (["generate-puzzles", "--n", "0", "--out", str(tmp_path / "x.txt")], "--n must be >= 1"),
        (["mi", UNSOLVABLE.replace("9", "0"), "--model", m, "--cell", "0"], "--cell 0"),
        (["mi", "0" * 81, "--model", m, "--cell", "81"], "--cell 81"),
        (["nll", "--model", m, "--input", str(seqs)], "exactly 81 tokens"),
        (["nll", "--model", m, "--input", str(seqs), "--chunk", "0"], "--chunk"),
        (["nll", "--model", m, "--input", str(seqs), "--samples", "1"], "--samples"),
        (["nll", "--model", "hf:/no/such/dir", "--input", str(seqs)], "no such directory"),
        (["label", "--model", m, "--out", str(tmp_path / "l"), "--delta", "-1"], "delta"),
        (["label", "--model", m, "--out", str(tmp_path / "l"), "--batch-size", "0"], "batch_size"),
        (["label", "--model", m, "--out", str(tmp_path / "l"), "--min-masked", "1"], "min_masked"),
        (["label", "--model", m, "--out", str(root)], "not a label directory"),
        (["train-estimator", "--model", m, "--labels", str(tmp_path / "nolabels"), "--out", str(tmp_path / "e")],
         "not a label directory"),
        (["data", "antibodies", "--n", "0", "--out", str(tmp_path / "a.fasta")], "--n must be >= 1"),
    ]
    for argv, match in cases:
        fails(argv, match, capsys)
    assert not (tmp_path / "l").exists() and not (tmp_path / "e").exists() and not (tmp_path / "x.txt").exists()
    assert snapshot(root) == before


def test_argparse_level_errors(root, capsys):
    for argv, match in [(["solve", "0" * 81, "--selector", "bogus"], "unknown selector"),
                        (["generate", "protein", "--length", "10", "--out", "x.fa"], "--model"),
                        (["eval", "sudoku", "--puzzles", "p", "--temperature", "x"], "invalid float"),
                        (["train", "sudoku", "--out", "o", "--lr", "nan"], "finite"),
                        (["train", "sudoku", "--out", "o", "--steps", "1.5"], "integer")]:
        fails(argv, match, capsys)


def test_train_onto_an_existing_checkpoint_changes_nothing(root, tmp_path, capsys):
    ck = tmp_path / "ck"
    main(["train", "sudoku", "--out", str(ck), "--steps", "2", "--batch-size", "4", "--d-model", "16",
          "--n-layers", "1", "--n-heads", "2", "--base-grids", "20", "--ckpt-every", "2", "--log-every", "1"])
    before = snapshot(ck)
    assert "model.safetensors" in before
    fails(["train", "sudoku", "--out", str(ck), "--steps", "3", "--base-grids", "20"], "--overwrite", capsys)
    fails(["train", "hmm", "--out", str(ck), "--steps", "3"], "already holds files", capsys)
    assert snapshot(ck) == before
    # --resume continues it; --overwrite replaces it
    main(["train", "sudoku", "--out", str(ck), "--steps", "3", "--batch-size", "4", "--d-model", "16",
          "--n-layers", "1", "--n-heads", "2", "--base-grids", "20", "--ckpt-every", "3", "--resume"])
    assert json.loads((ck / "config.json").read_text())["step"] == 3
    # --init fine-tunes from its weights (recorded by digest); another architecture or --resume is refused
    small = ["--batch-size", "4", "--base-grids", "20", "--ckpt-every", "1"]
    before = snapshot(ck)
    fails(["train", "sudoku", "--out", str(tmp_path / "f0"), "--steps", "1", "--init", str(ck), "--d-model", "32",
           "--n-layers", "1", "--n-heads", "2", *small], "pass the same --d-model", capsys)
    fails(["train", "sudoku", "--out", str(ck), "--steps", "4", "--init", str(ck), "--d-model", "16",
           "--n-layers", "1", "--n-heads", "2", "--resume", *small], "pick one", capsys)
    assert snapshot(ck) == before and not (tmp_path / "f0").exists()
    main(["train", "sudoku", "--out", str(tmp_path / "f"), "--steps", "1", "--warmup", "1", "--lr", "1e-12",
          "--init", str(ck), "--d-model", "16", "--n-layers", "1", "--n-heads", "2", *small])
    meta = json.loads((tmp_path / "f" / "config.json").read_text())
    from mdmi.resolve import reference

    assert meta["init"] == {"spec": str(ck), "ref": reference(ck)}
    a, b = MaskedTransformer.load(ck).state_dict(), MaskedTransformer.load(tmp_path / "f").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # its weights, not a fresh init


def test_edited_or_broken_checkpoints_are_refused(root, tmp_path, capsys):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(root / "m", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"]["n_heads"] = 4  # no weight shape shows this; the fingerprint does
    (d / "config.json").write_text(json.dumps(cfg))
    fails(["solve", "0" * 81, "--model", str(d)], "no longer describes the weights", capsys)
    shutil.copy(root / "m" / "config.json", d / "config.json")
    (d / "model.safetensors").write_bytes((root / "m" / "model.safetensors").read_bytes()[:100])
    fails(["solve", "0" * 81, "--model", str(d)], "not a readable safetensors file", capsys)
    (d / "model.safetensors").write_bytes(b"")
    fails(["solve", "0" * 81, "--model", str(d)], "not a readable safetensors file", capsys)
    (d / "config.json").write_text("{")
    fails(["solve", "0" * 81, "--model", str(d)], "not valid JSON", capsys)


def test_estimator_for_another_model_is_a_clear_error(root):
    from mdmi.estimator import Estimator, EstimatorConfig

    est = Estimator(EstimatorConfig(d_hidden=48))
    est.meta = {"model": "sha256:abc"}
    x = torch.zeros(1, 81, 32)
    with pytest.raises(ValueError, match="reads 48 hidden features and the model gives 32 hidden features"):
        est.predict(x, torch.ones(1, 81, dtype=torch.bool))


def test_train_estimator_refuses_a_partial_label_set(root, tmp_path, capsys):
    labels = tmp_path / "labels"
    main(["label", "--model", str(root / "m"), "--out", str(labels), "--contexts", "4", "--shard-size", "2",
          "--decode-frac", "0"])
    (labels / "shard-00001.safetensors").unlink()  # as if the job had been killed
    fails(["train-estimator", "--model", str(root / "m"), "--labels", str(labels), "--out", str(tmp_path / "e")],
          "holds 1 of its 2 label shards", capsys)
    assert not (tmp_path / "e").exists()
    main(["train-estimator", "--model", str(root / "m"), "--labels", str(labels), "--out", str(tmp_path / "e"),
          "--allow-partial", "--epochs", "1", "--width", "8"])
    meta = json.loads((tmp_path / "e" / "config.json").read_text())
    assert meta["labels_partial"] is True and meta["label_shards"] == "1/2"
    assert meta["label_spec"] == json.loads((labels / "spec.json").read_text())  # what made them travels along


def test_label_shards_are_byte_identical_across_runs(root, tmp_path):
    for name in ("a", "b"):
        main(["label", "--model", str(root / "m"), "--out", str(tmp_path / name), "--contexts", "3",
              "--shard-size", "2", "--decode-frac", "0.5", "--seed", "5"])
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    shards = [k for k in a if k.startswith("shard-")]
    assert len(shards) == 2 and all(a[k] == b[k] for k in shards)


def test_no_traceback_in_a_real_process(root, tmp_path):
    r = subprocess.run([sys.executable, "-m", "mdmi.cli", "solve", UNSOLVABLE, "--model", str(root / "m")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["mdmi solve: error: the puzzle has no solution (its givens admit no "
                                             "valid grid)"]


def test_help_shows_defaults_and_meanings():
    from mdmi.cli import build_parser, walk

    for p in walk(build_parser()):
        assert p.description, p.prog
        for a in p._actions:
            if a.dest not in ("cmd", "task"):
                assert a.help, f"{p.prog} {a.option_strings or a.dest} has no help"
    for p in walk(build_parser()):
        if p.prog == "mdmi eval sudoku":
            assert "(default: 256)" in p.format_help()  # --batch-size


def test_estimator_and_labels_of_another_model_are_refused(root, tmp_path, capsys):
    labels = tmp_path / "labels"
    main(["label", "--model", str(root / "m"), "--out", str(labels), "--contexts", "2", "--shard-size", "2",
          "--decode-frac", "0"])
    main(["train-estimator", "--model", str(root / "m"), "--labels", str(labels), "--out", str(tmp_path / "e"),
          "--epochs", "1", "--width", "8"])
    torch.manual_seed(5)  # same shapes, other weights
    MaskedTransformer(MDMConfig(d_model=32, n_layers=2, n_heads=2, grid=9)).save(tmp_path / "other")
    other = str(tmp_path / "other")
    fails(["train-estimator", "--model", other, "--labels", str(labels), "--out", str(tmp_path / "e2")],
          "(labels) belong(s) to model sha256:", capsys)
    fails(["eval-estimator", "--model", other, "--estimator", str(tmp_path / "e"), "--labels", str(labels)],
          "(estimator) belong(s) to model", capsys)
    fails(["solve", "0" * 81, "--model", other, "--selector", "mi_budget", "--estimator", str(tmp_path / "e")],
          "(estimator) belong(s) to model", capsys)
    assert not (tmp_path / "e2").exists()
