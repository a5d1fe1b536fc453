import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdmi.cli import main
from mdmi.estimator import Estimator, EstimatorConfig
from mdmi.labels import LabelConfig, load_labels, write_labels
from mdmi.tasks import clean_sampler
from mdmi.train_estimator import EstimatorTrainConfig, evaluate_estimator, split_contexts, train_estimator
from mdmi.models.transformer import MaskedTransformer, MDMConfig
from tiny import free_port


def test_mi_path_follows_weight_changes():
    """predict's MI path keeps one fused projection built from the weights: every change to
    them (an optimiser step, load_state_dict, a dtype move) must show in its outputs."""
    torch.manual_seed(0)
    est = Estimator(EstimatorConfig(d_hidden=16, width=8, rank=4))
    h, masked = torch.randn(2, 6, 16), torch.rand(2, 6) < 0.7
    with torch.no_grad():
        first = est.predict(h, masked, "mi")
    opt = torch.optim.SGD(est.parameters(), lr=0.05)
    est(h, masked).y.mean().backward()
    opt.step()
    with torch.no_grad():
        stepped = est.predict(h, masked, "mi")
    assert not torch.allclose(first, stepped) and torch.allclose(stepped, est(h, masked).mi, atol=1e-6)
    other = Estimator(EstimatorConfig(d_hidden=16, width=8, rank=4))
    est.load_state_dict(other.state_dict())
    assert torch.allclose(est.predict(h, masked, "mi"), other.predict(h, masked, "mi"))
    d = est.double().predict(h.double(), masked, "mi")
    assert d.dtype == torch.float64 and torch.allclose(d.float(), other.predict(h, masked, "mi"), atol=1e-6)
    # hidden states with large norms on observed positions never leak inf or nan into the zeros
    big = h.clone()
    big[~masked] = 1e4
    out = other.predict(big, masked, "mi")
    assert torch.isfinite(out).all() and (out[~masked] == 0).all()


def test_outputs_shape_symmetry_sign_zeros():
    est = Estimator(EstimatorConfig(d_hidden=16, width=8, rank=4))
    h = torch.randn(3, 7, 16)
    masked = torch.rand(3, 7) < 0.6
    masked[:, :2] = True
    out = est(h, masked)
    mi, tv = out.mi, out.tv
    assert mi.shape == tv.shape == (3, 7, 7)
    assert torch.allclose(mi, mi.transpose(1, 2)) and (mi >= 0).all() and ((tv >= 0) & (tv <= 1)).all()
    assert (mi.diagonal(dim1=1, dim2=2) == 0).all()
    obs = ~masked
    assert (mi[obs[:, :, None].expand_as(mi)] == 0).all() and (mi[obs[:, None, :].expand_as(mi)] == 0).all()
    assert (mi[:, 0, 1] > 0).all()
    # predict computes one output alone, equal to the full forward's
    assert torch.allclose(est.predict(h, masked, "mi"), mi) and torch.allclose(est.predict(h, masked, "tv"), tv)
    assert torch.equal(est.mi(h, masked), est.predict(h, masked, "mi"))
    p = est.predict(h, masked, "mi")  # the one-product form: exactly 0 off the masked pairs, too
    pair = masked[:, :, None] & masked[:, None, :] & ~torch.eye(7, dtype=torch.bool)
    assert (p[~pair] == 0).all() and (p[pair] > 0).all()
    with pytest.raises(ValueError, match="kind"):
        est.predict(h, masked, "y")
    # a head reached only through its forward: the pairwise source reads the one output it needs
    from types import SimpleNamespace

    from mdmi.selectors.pairwise import EstimatorPairwise

    state = SimpleNamespace(hidden=h, masked=masked)
    assert torch.equal(EstimatorPairwise(lambda h, m: est(h, m), "tv")(state)[0], tv.double())


def test_save_load_round_trip(tmp_path):
    est = Estimator(EstimatorConfig(d_hidden=16, width=8, rank=4))
    est.save(tmp_path / "e")
    back = Estimator.load(tmp_path / "e")
    h, m = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    assert torch.equal(est(h, m).mi, back(h, m).mi)
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    cfg["config"]["rank"] = 3
    (tmp_path / "e" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match"):
        Estimator.load(tmp_path / "e")


def test_prob_features_path():
    from mdmi.estimator import prob_features

    lp = torch.log_softmax(torch.randn(2, 6, 5) * 3, -1)
    lp[0, 0] = torch.tensor([0.0] + [float("-inf")] * 4)  # a certain position: H = 0, max p = 1
    f = prob_features(lp)
    assert f.shape == (2, 6, 4) and torch.isfinite(f).all()
    assert f[0, 0, 0] == 0 and f[0, 0, 2] == 1 and f[0, 0, 1] == pytest.approx(math.log(1e-8))
    est = Estimator(EstimatorConfig(d_hidden=16, width=8, rank=4, prob_features=True))
    h, m = torch.randn(2, 6, 16), torch.rand(2, 6) < 0.7
    out = est(h, m, lp)
    assert torch.allclose(out.mi, out.mi.transpose(1, 2)) and (out.mi >= 0).all()
    assert torch.allclose(est.predict(h, m, "mi", log_probs=lp), out.mi)
    assert torch.allclose(est.predict(h, m, "mi", feats=f), out.mi)
    with pytest.raises(ValueError, match="pass log_probs"):
        est(h, m)


@pytest.fixture(scope="module")
def tiny_labels(tmp_path_factory):
    root = tmp_path_factory.mktemp("est")
    torch.manual_seed(0)
    model = MaskedTransformer(MDMConfig(d_model=32, n_layers=2, n_heads=2, grid=9)).eval()
    with torch.no_grad():  # a less uniform random model, so the labels vary
        model.head.weight.mul_(40)
    model.save(root / "model")
    cfg = LabelConfig(contexts=48, shard_size=16, batch_size=256, seed=1, delta=1e-3)
    write_labels(model, clean_sampler("sudoku", 1), cfg, root / "labels", {"m": "tiny"}, progress=False)
    return root, model


def test_tiny_training_lowers_heldout_loss(tiny_labels, tmp_path):
    root, model = tiny_labels
    labels = load_labels(root / "labels")
    ecfg = EstimatorConfig(d_hidden=32, width=16, rank=8)
    s = train_estimator(model, labels, ecfg, EstimatorTrainConfig(epochs=15, batch_size=8, heldout_frac=0.25,
                                                                  patience=15), tmp_path / "e", progress=False)
    h = [r["heldout_loss"] for r in s.history]
    assert min(h) < 0.7 * h[0]
    est = Estimator.load(tmp_path / "e")
    _, ho = split_contexts(48, 0.25, 0)
    # one save: the best weights beside the whole history, the training config and the held-out split
    assert est.meta["history"] == s.history and s.best_heldout_loss == pytest.approx(min(h), abs=1e-6)
    assert est.meta["train"]["epochs"] == 15 and est.meta["heldout"] == ho.tolist() and s.heldout_contexts == len(ho)
    res = evaluate_estimator(est, model, labels, ho)
    assert res["overall"]["pairs"] > 0 and -1 <= res["overall"]["spearman"] <= 1
    assert "eps=0.01" in res["overall"]
    lo, hi = res["overall"]["spearman_ci95"]
    assert -1 <= lo <= res["overall"]["spearman"] + 1e-9 and res["overall"]["spearman"] - 1e-9 <= hi <= 1
    # the same with the probability features, through a decoder step
    ecfg = EstimatorConfig(d_hidden=32, width=16, rank=8, prob_features=True)
    s = train_estimator(model, labels, ecfg, EstimatorTrainConfig(epochs=15, batch_size=8, heldout_frac=0.25,
                                                                  patience=15), tmp_path / "f", progress=False)
    h = [r["heldout_loss"] for r in s.history]
    assert min(h) < 0.7 * h[0]
    est = Estimator.load(tmp_path / "f")
    assert est.config.prob_features and evaluate_estimator(est, model, labels, ho)["overall"]["pairs"] > 0
    from mdmi import decode, make_selector

    x = labels["tokens"][:3]
    res = decode(model, x, make_selector("mi_budget", estimator=est, gamma=0.5))
    assert not (res.tokens == model.mask_id).any()


def test_ddp_two_ranks(tiny_labels, tmp_path):
    root, _ = tiny_labels
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", free_port(), "-m", "mdmi.cli", "train-estimator",
           "--model", str(root / "model"), "--labels", str(root / "labels"), "--out", str(tmp_path / "e"),
           "--epochs", "3", "--batch-size", "8", "--width", "16", "--rank", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "best held-out loss" in r.stdout
    est = Estimator.load(tmp_path / "e")
    assert len(est.meta["history"]) >= 1
    main(["eval-estimator", "--model", str(root / "model"), "--estimator", str(tmp_path / "e"),
          "--labels", str(root / "labels"), "--json", str(tmp_path / "r.json")])
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["contexts"] == 5 and "structure_auc_predicted" in r  # the held-out split (10% of 48)
    assert set(r["structure_auc_uncertain"]) == {"0.01", "0.1", "0.5"}


def test_structure_aucs_entropy_floor():
    """Same-unit pairs score high unless one cell is already known (entropy 0, MI 0): the
    pooled AUC is below 1, the AUC among uncertain cells is exactly 1."""
    from mdmi.train_estimator import structure_aucs

    L = 4
    same = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.bool)
    ent = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # cell 3 is known
    mi = torch.where(same, 1.0, 0.1)[None].clone()
    mi[0, 3, :] = mi[0, :, 3] = 0.0  # a known cell has MI 0 with everything, its unit included
    pair = ~torch.eye(L, dtype=torch.bool)[None]
    r = structure_aucs(mi, mi, pair, same, ent)
    assert r["structure_auc_exact"] == r["structure_auc_predicted"] < 1
    u = r["structure_auc_uncertain"]["0.1"]
    assert u["exact"] == 1.0 and u["pairs"] == 6


def test_cluster_bootstrap_resamples_whole_groups():
    from mdmi.stats import cluster_bootstrap_ci, spearman

    up = torch.arange(5.0)
    # every group perfectly ranked: every resample too, so the interval is the point
    assert cluster_bootstrap_ci([(up, up), (up + 10, up + 10)], spearman) == pytest.approx((1.0, 1.0))
    # two groups, one agreeing and one reversed, far apart in level: a resample is both (rho
    # about 0.82, the levels agree), only the agreeing one (1) or only the reversed one (-1)
    lo, hi = cluster_bootstrap_ci([(up, up), (up + 10, 14 - up)], spearman, n_boot=400)
    assert (lo, hi) == pytest.approx((-1.0, 1.0))
    # seeded: the same interval twice; no group at all: nan
    g = [(torch.randn(6), torch.randn(6)) for _ in range(8)]
    assert cluster_bootstrap_ci(g, spearman, seed=3) == cluster_bootstrap_ci(g, spearman, seed=3)
    assert all(math.isnan(v) for v in cluster_bootstrap_ci([], spearman))
