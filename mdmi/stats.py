"""Small statistics helpers shared by evaluations and benchmarks."""

from __future__ import annotations

import math


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial rate (95% by default); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def average_ranks(x):
    """Ranks 1..n of a 1-d tensor, ties sharing their average rank (float64)."""
    import torch

    x = x.double()
    order = x.argsort()
    xs = x[order]
    _, inverse, counts = torch.unique_consecutive(xs, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    avg = ends - (counts.double() - 1) / 2  # average of the 1-based ranks in each tie group
    ranks = torch.empty_like(x)
    ranks[order] = avg[inverse]
    return ranks


def pearson(a, b) -> float:

    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    den = (a.norm() * b.norm()).item()
    return float((a * b).sum().item() / den) if den > 0 else float("nan")


def spearman(a, b) -> float:
    """Spearman rank correlation with average ranks for ties."""
    return pearson(average_ranks(a), average_ranks(b))


def auc(scores, positive) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half): P(score+ > score-)."""
    r = average_ranks(scores)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((r[positive.bool()].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall_f1(pred, true) -> dict:
    tp = int((pred & true).sum())
    fp = int((pred & ~true).sum())
    fn = int((~pred & true).sum())
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return {"precision": p, "recall": r, "f1": f1, "positives": tp + fn}


def cluster_bootstrap_ci(groups, stat, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``stat(a, b)`` when whole groups (e.g. the pairs of one
    context) are resampled with replacement: ``groups`` is a list of (a, b) 1-d tensor pairs,
    ``stat`` is computed on their concatenation. Pairs within a context are not independent,
    so resampling pairs would understate the spread."""
    import torch

    if not groups:
        return float("nan"), float("nan")
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(n_boot):
        pick = torch.randint(len(groups), (len(groups),), generator=g).tolist()
        vals.append(stat(torch.cat([groups[i][0] for i in pick]), torch.cat([groups[i][1] for i in pick])))
    v = torch.tensor(vals, dtype=torch.float64)
    v = v[~v.isnan()]
    if len(v) == 0:
        return float("nan"), float("nan")
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = v.quantile(q).tolist()
    return lo, hi
