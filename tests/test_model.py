import json

import pytest
import torch

import mdmi
from mdmi.train import TrainConfig, diffusion_loss, train
from mdmi.models.transformer import MaskedTransformer, MDMConfig


def test_interface_shapes(tiny_sudoku_model):
    x = torch.full((3, 81), tiny_sudoku_model.mask_id)
    out = tiny_sudoku_model(x)
    assert isinstance(out, mdmi.ModelOutput)
    assert out.logits.shape == (3, 81, 9) and out.hidden.shape == (3, 81, 32)
    with pytest.raises(ValueError, match="token ids"):
        tiny_sudoku_model(torch.full((1, 81), 11))


def test_save_load_round_trip(tiny_sudoku_model, tmp_path):
    tiny_sudoku_model.save(tmp_path / "m")
    loaded = mdmi.load(tmp_path / "m")
    x = torch.randint(0, 10, (4, 81))
    with torch.no_grad():
        assert torch.equal(tiny_sudoku_model(x).logits, loaded(x).logits)
    assert loaded.config == tiny_sudoku_model.config


def test_load_errors(tiny_sudoku_model, tmp_path):
    with pytest.raises(FileNotFoundError):
        mdmi.load(tmp_path / "nothing")
    tiny_sudoku_model.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["config"]["d_model"] = 64
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match its config"):
        mdmi.load(tmp_path / "m")
    cfg["kind"] = "something"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown model kind"):
        mdmi.load(tmp_path / "m")


def test_config_validation():
    with pytest.raises(ValueError, match="n_heads"):
        MDMConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="grid"):
        MDMConfig(seq_len=80, grid=9)


def _copy_task(B, g):
    """Sequences x = (a, b, a, b, ...) of period 2: each token is determined by a visible twin."""
    ab = torch.randint(0, 4, (B, 2), generator=g)
    return ab.repeat(1, 4)


def test_training_lowers_loss_and_resumes(tmp_path):
    torch.manual_seed(0)
    cfg = MDMConfig(vocab_size=4, seq_len=8, d_model=32, n_layers=2, n_heads=2)
    model = MaskedTransformer(cfg)
    ev = torch.Generator().manual_seed(123)
    x_eval = _copy_task(256, ev)

    def eval_loss():
        with torch.no_grad():
            return diffusion_loss(model, x_eval, torch.Generator().manual_seed(5)).item()

    before = eval_loss()
    tcfg = TrainConfig(steps=150, batch_size=64, lr=3e-3, warmup=10, ckpt_every=50, log_every=25, seed=0)
    rows = train(model, _copy_task, tcfg, tmp_path / "run", progress=False)
    after = eval_loss()
    assert after < 0.7 * before
    assert len(rows) == 6 and (tmp_path / "run" / "train_log.jsonl").read_text().count("\n") == 6

    # a run killed after step 100 (checkpoint at 100) and resumed ends where the uninterrupted run did
    calls = {"n": 0}

    def dies_at_101(B, g):
        calls["n"] += 1
        if calls["n"] > 100:
            raise KeyboardInterrupt
        return _copy_task(B, g)

    torch.manual_seed(0)
    m2 = MaskedTransformer(cfg)
    with pytest.raises(KeyboardInterrupt):
        train(m2, dies_at_101, tcfg, tmp_path / "r2", progress=False)
    m3 = MaskedTransformer(cfg)
    train(m3, _copy_task, tcfg, tmp_path / "r2", resume=True, progress=False)
    x = torch.randint(0, 5, (4, 8))
    with torch.no_grad():
        assert torch.allclose(m3(x).logits, model(x).logits, atol=1e-5)
    log = [json.loads(r) for r in (tmp_path / "r2" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [25, 50, 75, 100, 125, 150]
