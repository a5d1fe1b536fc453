import json

import pytest
import torch

from mdmi.cli import main
from mdmi.models.transformer import MaskedTransformer, MDMConfig


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    MaskedTransformer(MDMConfig(d_model=32, n_layers=2, n_heads=2, grid=9)).save(tmp_path / "m")
    return tmp_path / "m"


def test_generate_eval_solve(model_dir, tmp_path, capsys):
    pz = tmp_path / "p.txt"
    main(["generate-puzzles", "--n", "5", "--givens", "60", "--seed", "2", "--out", str(pz)])
    assert len(pz.read_text().splitlines()) == 5
    out = tmp_path / "r.json"
    main(["eval", "sudoku", "--puzzles", str(pz), "--model", str(model_dir), "--json", str(out),
          "--selector", "topk", "--param", "k=3"])
    r = json.loads(out.read_text())
    assert {"solve_rate", "mean_nfe", "cell_accuracy", "n"} <= set(r) and r["n"] == 5
    assert r["mean_nfe"] == 7  # 21 blanks, 3 per pass
    main(["solve", pz.read_text().split()[0], "--model", str(model_dir)])
    assert "NFE: 21" in capsys.readouterr().out


def test_clear_errors(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit, match="81 cells"):
        main(["solve", "123", "--model", str(model_dir)])
    with pytest.raises(SystemExit) as e:
        main(["solve", "0" * 81, "--model", str(model_dir), "--selector", "bogus"])
    assert e.value.code == 2 and "unknown selector 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no config.json"):
        main(["solve", "0" * 81, "--model", str(tmp_path)])
    with pytest.raises(SystemExit, match="key=value"):
        main(["solve", "0" * 81, "--model", str(model_dir), "--param", "k"])


def test_nll_cli_and_bad_tokens(tmp_path, capsys):
    torch.manual_seed(0)
    MaskedTransformer(MDMConfig(vocab_size=4, seq_len=6, d_model=16, n_layers=1, n_heads=2)).save(tmp_path / "m")
    f = tmp_path / "seqs.txt"
    f.write_text("0 1 2 3 0 1\n3 3 2 2 1 1\n")
    main(["nll", "--model", str(tmp_path / "m"), "--input", str(f), "--samples", "8", "--json", str(tmp_path / "o.json")])
    rows = json.loads((tmp_path / "o.json").read_text())["sequences"]
    assert len(rows) == 2 and all(r["nll"] > 0 for r in rows)
    f.write_text("0 1 2 3 0 9\n")
    with pytest.raises(SystemExit, match=r"seqs.txt:1: unknown token ids \[9\]"):
        main(["nll", "--model", str(tmp_path / "m"), "--input", str(f)])


def test_bench_hmm_rows():
    from mdmi.bench import cooccurrence_tv, run_hmm
    from mdmi.tasks.hmm import HMM, HMMConfig, HMMOracle

    hmm = HMM(HMMConfig(n_states=3, n_symbols=3, length=6, seed=1))
    joint = hmm.pairwise_log_joint(torch.full((1, 6), hmm.mask_id))[0]
    big = hmm.sample(20000, torch.Generator().manual_seed(0))
    assert cooccurrence_tv(big, joint) < 0.02
    rows = run_hmm(HMMOracle(hmm), hmm, ["sequential", "topk"], n=200, progress=False)
    assert rows[0].selector.startswith("hmm_samples") and len(rows) == 2 + 4  # topk: 4 HMM knob values
    assert rows[1].mean_nfe == 6
