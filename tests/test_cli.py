import json

import pytest
import torch

from mdmi.cli import main
from mdmi.transformer import MaskedTransformer, MDMConfig


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


def test_clear_errors(model_dir, tmp_path):
    with pytest.raises(SystemExit, match="81 cells"):
        main(["solve", "123", "--model", str(model_dir)])
    with pytest.raises(SystemExit, match="unknown selector"):
        main(["solve", "0" * 81, "--model", str(model_dir), "--selector", "bogus"])
    with pytest.raises(SystemExit, match="no config.json"):
        main(["solve", "0" * 81, "--model", str(tmp_path)])
    with pytest.raises(SystemExit, match="key=value"):
        main(["solve", "0" * 81, "--model", str(model_dir), "--param", "k"])
