"""Training and evaluating the neural MI estimator on label shards (DESIGN.md section 3).

Hidden states come from the frozen model (one pass per context, computed once). The loss
is taken on masked pairs only: MSE between predicted and target y = log1p(MI / scale)
(see mdmi.estimator for why), plus a binary cross-entropy for the TV influence head with
the soft target D in [0, 1]. The held-out split is by context; early stopping keeps the
weights with the lowest held-out loss. Under torchrun the model is wrapped in
DistributedDataParallel (gloo on CPU) and each rank takes its own slice of every batch.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import check_types
from .estimator import Estimator, EstimatorConfig
from .mi import masked_pairs, symmetric_mi


@dataclass
class EstimatorTrainConfig:
    epochs: int = 30  # passes over the training contexts (early stopping may end sooner)
    batch_size: int = 64  # contexts per step (split across ranks)
    lr: float = 3e-3  # AdamW learning rate, cosine-decayed over all epochs
    weight_decay: float = 0.01
    tv_weight: float = 1.0  # weight of the influence head's loss
    heldout_frac: float = 0.1  # fraction of contexts held out (by context)
    patience: int = 5  # epochs without held-out improvement before stopping
    seed: int = 0

    def __post_init__(self):
        check_types(self)
        if not 0 < self.heldout_frac < 1:
            raise ValueError(f"heldout_frac must lie in (0, 1), got {self.heldout_frac}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {self.epochs}, {self.batch_size}")


@dataclass
class TrainEstimatorResult:
    """What :func:`train_estimator` returns."""

    history: list[dict]  # per epoch: epoch, train_loss, heldout_loss, heldout_mse_y, elapsed_s
    best_heldout_loss: float  # of the weights written (inf when no epoch gave a finite loss: nothing written)
    train_contexts: int
    heldout_contexts: int
    seconds: float  # wall time of the training loop

    def as_dict(self) -> dict:
        return asdict(self)


def split_contexts(n: int, frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices), a seeded permutation of the contexts."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, int(round(n * frac)))
    return perm[k:], perm[:k]


@torch.no_grad()
def hidden_states(model, tokens: torch.Tensor, batch_size: int = 256, progress: bool = False,
                  features: bool = False):
    """(N, L, D) final hidden states of the frozen model, one pass per context; with
    ``features`` also the (N, L, 4) :func:`mdmi.estimator.prob_features` of the same passes
    (else None): returns (hidden, feats)."""
    from tqdm import tqdm

    from .estimator import prob_features
    from .interface import allowed_tokens, masked_log_probs

    out, feats = [], []
    allow = allowed_tokens(model)
    for s in tqdm(range(0, len(tokens), batch_size), desc="hidden states", disable=not progress):
        o = model(tokens[s: s + batch_size])
        if o.hidden is None:
            raise ValueError("the model returns no hidden states; the estimator needs them")
        out.append(o.hidden.float())
        if features:
            feats.append(prob_features(masked_log_probs(o.logits, allow)))
    return torch.cat(out), (torch.cat(feats) if features else None)


def targets(labels: dict, scale: float) -> dict:
    """Symmetric MI, y = log1p(MI/scale), TV influence and the labelled-pair masks.

    With ``labels["probed"]`` (label sets made with ``--probe``) a pair is labelled when
    either end was probed, and its MI is the known direction (the mean of both when both
    were); the TV target, directed, is labelled on probed rows only."""
    d = labels["mi_directed"].double()
    masked = labels["masked"].bool()
    probed = labels["probed"].bool() if "probed" in labels else masked
    pair = masked_pairs(masked)
    mi = symmetric_mi(d, probed)
    known = pair & (probed[:, :, None] | probed[:, None, :])
    return {"mi": mi.float(), "y": torch.log1p(mi / scale).float(), "tv": labels["tv_influence"].float().clamp(0, 1),
            "pair": known, "tv_pair": pair & probed[:, :, None], "masked": masked}


class _Raw(torch.nn.Module):
    """DDP wraps forward(); this exposes Estimator.raw as forward."""

    def __init__(self, est):
        super().__init__()
        self.est = est

    def forward(self, hidden, masked, feats=None):
        return self.est.raw(hidden, masked, feats)


def train_estimator(model, labels: dict, ecfg: EstimatorConfig, tcfg: EstimatorTrainConfig, out: str | Path,
                    rank: int = 0, world: int = 1, progress: bool = True,
                    extra: dict | None = None) -> "TrainEstimatorResult":
    """Train an Estimator on ``labels`` (see mdmi.labels.load_labels); at the end rank 0 writes
    the best held-out weights to ``out``, their config.json holding the training config, the
    held-out contexts, the per-epoch history and the keys of ``extra`` (provenance). Returns
    the per-epoch losses and a summary."""
    from tqdm import tqdm

    torch.manual_seed(tcfg.seed)
    N = len(labels["tokens"])
    tr, ho = split_contexts(N, tcfg.heldout_frac, tcfg.seed)
    t = targets(labels, ecfg.scale)
    hidden, feats = hidden_states(model, labels["tokens"], progress=progress and rank == 0,
                                  features=ecfg.prob_features)
    if hidden.shape[-1] != ecfg.d_hidden:
        raise ValueError(f"EstimatorConfig.d_hidden={ecfg.d_hidden} but the model's hidden width is {hidden.shape[-1]}")
    est = Estimator(ecfg)
    net = _Raw(est)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net)
    opt = torch.optim.AdamW(est.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    steps_per_epoch = max(1, -(-len(tr) // tcfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tcfg.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(tcfg.seed)

    def heldout_loss():
        with torch.no_grad():
            tot = totm = 0.0
            for s in range(0, len(ho), 256):
                idx = ho[s: s + 256]
                loss, mse = _loss(est, hidden, feats, t, idx, tcfg.tv_weight)
                tot += loss.item() * len(idx)
                totm += mse.item() * len(idx)
            return tot / len(ho), totm / len(ho)

    history, best, bad, best_state, t0 = [], float("inf"), 0, None, time.time()
    for epoch in range(tcfg.epochs):
        perm = tr[torch.randperm(len(tr), generator=g)]
        bar = tqdm(range(steps_per_epoch), desc=f"estimator epoch {epoch + 1}", disable=not progress or rank != 0,
                   leave=False)
        run = 0.0
        for s in bar:
            batch = perm[s * tcfg.batch_size: (s + 1) * tcfg.batch_size]
            idx = batch[rank::world] if len(batch) >= world else batch
            y, tv_logit = net(hidden[idx], t["masked"][idx], None if feats is None else feats[idx])
            loss, _ = _pair_losses(y, tv_logit, t, idx, tcfg.tv_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += loss.item()
        h_loss, h_mse = heldout_loss()
        history.append({"epoch": epoch + 1, "train_loss": run / steps_per_epoch, "heldout_loss": h_loss,
                        "heldout_mse_y": h_mse, "elapsed_s": time.time() - t0})
        if rank == 0 and progress:
            print(json.dumps(history[-1]))
        if h_loss < best - 1e-6:
            best, bad = h_loss, 0
            best_state = {k: v.detach().clone() for k, v in est.state_dict().items()}
        else:
            bad += 1
            if bad >= tcfg.patience:
                break
    if rank == 0 and best_state is not None:  # the best weights, with the full history, in one save
        est.load_state_dict(best_state)
        est.save(out, extra={"train": asdict(tcfg), "heldout": ho.tolist(), "history": history, **(extra or {})})
    return TrainEstimatorResult(history=history, best_heldout_loss=best, train_contexts=len(tr),
                                heldout_contexts=len(ho), seconds=time.time() - t0)


def _pair_losses(y, tv_logit, t, idx, tv_weight):
    pair, tv_pair = t["pair"][idx], t["tv_pair"][idx]
    mse = (((y - t["y"][idx]) ** 2) * pair).sum() / pair.sum().clamp_min(1)
    bce = ((F.binary_cross_entropy_with_logits(tv_logit, t["tv"][idx], reduction="none") * tv_pair).sum()
           / tv_pair.sum().clamp_min(1))
    return mse + tv_weight * bce, mse


def _loss(est, hidden, feats, t, idx, tv_weight):
    y, tv_logit = est.raw(hidden[idx], t["masked"][idx], None if feats is None else feats[idx])
    return _pair_losses(y, tv_logit, t, idx, tv_weight)


EPS = (1e-3, 1e-2, 5e-2, 1e-1)  # the MI decisions the decoder takes (nats)
RATIO_BINS = (0.0, 0.25, 0.5, 0.75, 1.01)


@torch.no_grad()
def evaluate_estimator(est: Estimator, model, labels: dict, idx: torch.Tensor | None = None,
                       same_unit: torch.Tensor | None = None, eps=EPS, progress: bool = False) -> dict:
    """Held-out figures over masked pairs (i < j): Spearman, Pearson, MAE (nats), and
    precision/recall/F1 of the decision MI > eps, overall and by mask ratio. With
    ``same_unit`` (L, L) bool, the AUC of telling those pairs from the rest by predicted
    and by exact MI."""
    from .stats import cluster_bootstrap_ci, pearson, precision_recall_f1, spearman

    if idx is None:
        idx = torch.arange(len(labels["tokens"]))
    sub = {k: v[idx] for k, v in labels.items()}
    t = targets(sub, est.config.scale)
    hidden, feats = hidden_states(model, sub["tokens"], features=est.config.prob_features, progress=progress)
    pred = torch.cat([est.predict(hidden[s: s + 256], t["masked"][s: s + 256], "mi",
                                  feats=None if feats is None else feats[s: s + 256]) for s in range(0, len(idx), 256)])
    L = pred.shape[1]
    upper = torch.ones(L, L, dtype=torch.bool).triu(1)
    pair = t["pair"] & upper  # (N, L, L)
    ratio = t["masked"].float().mean(1)  # (N,)

    def figures(sel):
        p, y = pred[sel].double(), t["mi"][sel].double()
        if len(p) < 2:
            return {"pairs": len(p)}
        out = {"pairs": len(p), "spearman": spearman(p, y), "pearson": pearson(p, y),
               "mae_nats": float((p - y).abs().mean()), "mean_mi_nats": float(y.mean())}
        for e in eps:
            out[f"eps={e:g}"] = precision_recall_f1(p > e, y > e)
        return out

    res = {"contexts": len(idx), "overall": figures(pair), "by_mask_ratio": {}}
    # contexts resampled whole: the spread of the Spearman that another held-out draw would give
    groups = [(pred[c][pair[c]].double(), t["mi"][c][pair[c]].double()) for c in range(len(idx)) if pair[c].any()]
    res["overall"]["spearman_ci95"] = list(cluster_bootstrap_ci(groups, spearman))
    for lo, hi in zip(RATIO_BINS, RATIO_BINS[1:]):
        in_bin = (ratio >= lo) & (ratio < hi)
        res["by_mask_ratio"][f"{lo:.2f}-{min(hi, 1):.2f}"] = figures(pair & in_bin[:, None, None])
    if same_unit is not None:
        res.update(structure_aucs(pred, t["mi"], pair, same_unit, sub.get("entropy")))
    return res


ENTROPY_FLOORS = (0.01, 0.1, 0.5)  # nats; see structure_aucs


def structure_aucs(pred, exact, pair, same_unit, entropy=None, floors=ENTROPY_FLOORS) -> dict:
    """AUC of telling same-unit pairs (``same_unit`` (L, L) bool) from the rest among the
    ``pair`` (N, L, L) entries, by predicted and by exact MI, pooled over contexts.

    A cell the model already knows (entropy ~ 0) has MI ~ 0 with every cell, its own row,
    column and box included, so its same-unit pairs are negatives by any faithful MI and cap
    the AUC well below 1. With ``entropy`` (N, L) of the model's base pass, the AUC is also
    reported on pairs whose two cells both have entropy > each floor
    (``structure_auc_uncertain``)."""
    from .stats import auc

    pos = same_unit[None].expand_as(pair)
    res = {"structure_auc_predicted": auc(pred[pair], pos[pair]), "structure_auc_exact": auc(exact[pair], pos[pair])}
    if entropy is not None:
        res["structure_auc_uncertain"] = {}
        for floor in floors:
            unsure = entropy > floor
            sel = pair & unsure[:, :, None] & unsure[:, None, :]
            res["structure_auc_uncertain"][f"{floor:g}"] = {
                "pairs": int(sel.sum()), "predicted": auc(pred[sel], pos[sel]), "exact": auc(exact[sel], pos[sel])}
    return res
