import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mdmi.labels import LabelConfig, load_labels, shard_path, write_labels, write_manifest
from mdmi.mi import exact_mi
from mdmi.tasks import clean_sampler
from tiny import free_port

CFG = dict(contexts=10, shard_size=4, batch_size=64, seed=3)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from mdmi.models.transformer import MaskedTransformer, MDMConfig

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    MaskedTransformer(MDMConfig(d_model=32, n_layers=2, n_heads=2, grid=9)).save(d)
    return d


def _write(model_dir, out, **kw):
    import mdmi

    cfg = LabelConfig(**{**CFG, **kw})
    model = mdmi.load(model_dir)
    done = write_labels(model, clean_sampler("sudoku", cfg.seed), cfg, out, {"model": str(model_dir)}, progress=False)
    return cfg, done, model


def test_shards_resume_and_refuse_other_arguments(tiny_dir, tmp_path):
    cfg, done, model = _write(tiny_dir, tmp_path)
    assert done == [0, 1, 2] and write_manifest(tmp_path, cfg)["contexts"] == 10
    labels = load_labels(tmp_path)
    assert labels["tokens"].shape == (10, 81) and labels["mi_directed"].shape == (10, 81, 81)
    assert set(labels["source"].tolist()) == {0, 1}  # both decoding states and random masks
    assert (labels["masked"].sum(1) >= 2).all()
    # the stored labels are exact_mi of the stored contexts
    res = exact_mi(model, labels["tokens"][:3], delta=cfg.delta)
    assert torch.allclose(res.mi_directed.float(), labels["mi_directed"][:3], atol=1e-6)
    # a killed job: shard 1 missing, a stale temp file left behind; the rerun makes only shard 1
    before = {k: shard_path(tmp_path, k).stat().st_mtime_ns for k in (0, 2)}
    kept = load_file(str(shard_path(tmp_path, 1)))
    shard_path(tmp_path, 1).unlink()
    (tmp_path / ".shard-00001.999.tmp").write_text("partial")
    _, done, _ = _write(tiny_dir, tmp_path)
    assert done == [1]
    assert {k: shard_path(tmp_path, k).stat().st_mtime_ns for k in (0, 2)} == before
    again = load_file(str(shard_path(tmp_path, 1)))
    assert all(torch.equal(kept[k], again[k]) for k in kept)  # same seed, same shard
    with pytest.raises(ValueError, match="other arguments"):
        _write(tiny_dir, tmp_path, delta=0.01)
    # the probe batch size is speed only: a rerun with another one resumes (nothing left to do)
    assert _write(tiny_dir, tmp_path, batch_size=5)[1] == []


def test_torchrun_two_ranks_match_one_process(tiny_dir, tmp_path):
    one = tmp_path / "one"
    _write(tiny_dir, one)
    two = tmp_path / "two"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", free_port(), "-m", "mdmi.cli", "label",
           "--model", str(tiny_dir), "--out", str(two)] + [f"--{k.replace('_', '-')}={v}" for k, v in CFG.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "10 contexts in 3 shards" in r.stdout
    for k in range(3):
        a, b = load_file(str(shard_path(one, k))), load_file(str(shard_path(two, k)))
        assert all(torch.equal(a[n], b[n]) for n in a)


def test_probe_knob_labels_a_subset_of_the_same_contexts(tiny_dir, tmp_path):
    """--probe 2: the same contexts as a full label set, at most 2 probed positions per
    context, their rows equal to the full labels, fewer passes; targets() keeps the pairs
    with a probed end and their known direction."""
    from mdmi.train_estimator import targets

    _write(tiny_dir, tmp_path / "full")
    _write(tiny_dir, tmp_path / "p2", probe=2)
    full, part = load_labels(tmp_path / "full"), load_labels(tmp_path / "p2")
    assert "probed" not in full and torch.equal(full["tokens"], part["tokens"])
    probed = part["probed"].bool()
    assert (probed.sum(1) == 2).all() and not (probed & ~part["masked"].bool()).any()
    row = probed[:, :, None]
    assert torch.allclose(part["mi_directed"], full["mi_directed"] * row, atol=1e-6)
    assert (part["passes"] < full["passes"]).all()
    t_full, t_part = targets(full, 0.01), targets(part, 0.01)
    assert torch.equal(t_part["pair"], t_full["pair"] & (row | probed[:, None, :]))
    assert torch.equal(t_part["tv_pair"], t_full["pair"] & row)
    d = full["mi_directed"]
    one = t_part["pair"] & row & ~probed[:, None, :]  # only j probed: mi is I[j->i]
    assert torch.allclose(t_part["mi"][one], d[one], atol=1e-6)
    with pytest.raises(ValueError, match="probe must be >= 0"):
        LabelConfig(probe=-1)


def test_rerun_resumes_a_set_made_before_newer_knobs(tiny_dir, tmp_path):
    import json

    _write(tiny_dir, tmp_path, contexts=4)
    spec = json.loads((tmp_path / "spec.json").read_text())
    for k in ("probe", "kinds"):  # what an older version wrote
        del spec["label_config"][k]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert _write(tiny_dir, tmp_path, contexts=4)[1] == []
    with pytest.raises(ValueError, match="other arguments"):
        _write(tiny_dir, tmp_path, contexts=4, probe=3)


def test_decoding_contexts_in_blocks_are_the_states_block_decoding_meets():
    from tiny import tiny_model

    from mdmi.labels import LabelConfig, decoding_contexts

    m = tiny_model(V=3, L=12, seed=1, scale=3.0)
    clean = torch.randint(0, 3, (32, 12), generator=torch.Generator().manual_seed(0))
    start = torch.full_like(clean, m.mask_id)
    x = decoding_contexts(m, clean, 2, torch.Generator().manual_seed(1), start, block_length=4)
    for row in x:
        masked = (row == m.mask_id).nonzero().squeeze(1)
        first_block_end = (int(masked[0]) // 4 + 1) * 4
        assert (row[first_block_end:] == m.mask_id).all()  # later blocks untouched
        assert (row[: int(masked[0]) // 4 * 4] != m.mask_id).all()  # earlier blocks finished
    with pytest.raises(ValueError, match="block_length"):
        LabelConfig(block_length=-1)
