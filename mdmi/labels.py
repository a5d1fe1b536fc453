"""Label sets for the neural MI estimator: contexts + their exact MI (DESIGN.md sections 2-3).

Contexts come from two sources, mixed: random mask ratios over clean data, and states
visited while decoding (sequential and top-k parallel), since those are the states the
estimator meets at decoding time. Work is cut into shards of ``shard_size`` contexts;
shard k is made from its own seed (seed, k), so its content does not depend on how many
processes run or on restarts. Each shard is written atomically (temp file + rename) and a
rerun skips finished shards. Under ``torchrun`` each rank takes shards k = rank mod world.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from .config import check_types
from .decode import decode, replay
from .interface import free_positions, scorable
from .mi import DEFAULT_DELTA, PROBE_BATCH, exact_mi
from .selectors import make_selector

MANIFEST = "manifest.json"
REGION_KINDS = ("cdr3", "cdrs", "all")  # codes 0, 1, 2 of region_masks
SPEC = "spec.json"


@dataclass
class LabelConfig:
    contexts: int = 20000  # total contexts over all shards
    shard_size: int = 256  # contexts per shard file: restart granularity
    decode_frac: float = 0.5  # fraction of contexts taken from decoding trajectories
    min_masked: int = 2  # contexts need at least one masked pair
    delta: float = DEFAULT_DELTA  # exact_mi truncation (see mdmi.mi.truncation_bound)
    batch_size: int = PROBE_BATCH  # probe sequences per model call (speed only: not part of the spec)
    seed: int = 0  # shard k uses seed (seed, k)
    store_hidden: bool = False  # hidden states are cheap to recompute; store only if asked
    probe: int = 0  # probe at most this many random masked positions per context (0: all); see exact_mi(probe=)
    kinds: str = "cdr3,cdrs,all"  # antibody contexts: which of cdr3 / cdrs / all (random ratio, de novo) to draw
    block_length: int = 0  # decoding contexts met by semi-autoregressive blocks of this length (0: whole sequence)

    def __post_init__(self):
        check_types(self)
        if self.contexts < 1 or self.shard_size < 1:
            raise ValueError(f"contexts and shard_size must be positive, got {self.contexts}, {self.shard_size}")
        if not 0 <= self.decode_frac <= 1:
            raise ValueError(f"decode_frac must lie in [0, 1], got {self.decode_frac}")
        if not 0 <= self.delta <= 0.5:
            raise ValueError(f"delta must lie in [0, 0.5], got {self.delta}")
        if self.probe < 0:
            raise ValueError(f"probe must be >= 0 (0 probes every masked position), got {self.probe}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        bad = set(self.region_kinds) - set(REGION_KINDS)
        if bad or not self.region_kinds:
            raise ValueError(f"kinds must be a comma list of {','.join(REGION_KINDS)}, got {self.kinds!r}")
        if self.block_length < 0:
            raise ValueError(f"block_length must be >= 0 (0: no blocks), got {self.block_length}")
        if self.min_masked < 2:
            raise ValueError(f"min_masked must be >= 2 (a context needs a masked pair), got {self.min_masked}")

    @property
    def region_kinds(self) -> list[str]:
        return [k.strip() for k in self.kinds.split(",") if k.strip()]

    def draw_kinds(self, n: int, g: torch.Generator) -> torch.Tensor:
        """Region kind codes (n,) for :func:`region_masks`, uniform over ``kinds`` (the
        default's draws are those of the label sets made before this knob existed)."""
        codes = torch.tensor([REGION_KINDS.index(k) for k in self.region_kinds])
        return codes[torch.randint(len(codes), (n,), generator=g)]

    @property
    def n_shards(self) -> int:
        return -(-self.contexts // self.shard_size)


def random_mask_contexts(clean: torch.Tensor, mask_id: int, min_masked: int, g: torch.Generator,
                         maskable: torch.Tensor | None = None) -> torch.Tensor:
    """Mask each row of ``clean`` (n, L) at its own ratio r ~ U(0, 1) of its ``maskable``
    positions (default: all), at least ``min_masked`` of them."""
    n, L = clean.shape
    if maskable is None:
        maskable = torch.ones(n, L, dtype=torch.bool)
    avail = maskable.sum(1)  # (n,)
    r = torch.rand(n, 1, generator=g)
    scores = torch.rand(n, L, generator=g).masked_fill(~maskable, 2.0)  # unmaskable sort last
    k = torch.minimum((r[:, 0] * avail).round().long().clamp_min(min_masked), avail)  # per row
    order = scores.argsort(1)
    masked = torch.zeros(n, L, dtype=torch.bool).scatter(1, order, torch.arange(L)[None] < k[:, None])
    return torch.where(masked, torch.full_like(clean, mask_id), clean)


def decoding_contexts(model, clean: torch.Tensor, min_masked: int, g: torch.Generator,
                      start: torch.Tensor | None = None, block_length: int = 0) -> torch.Tensor:
    """States visited while decoding: start from ``start`` (default: a random mask of ratio
    in [0.5, 1]), decode with a randomly chosen selector (sequential or top-k, k in
    2/4/8; in blocks of ``block_length`` when > 0, as a diffusion LLM is decoded), and keep
    one uniformly chosen intermediate state per row that still has >= ``min_masked`` masks."""
    n, L = clean.shape
    if start is None:
        maskable = scorable(model, clean)
        start = random_mask_contexts(clean, model.mask_id, min_masked, g, maskable)
        extra = (torch.rand(n, L, generator=g) < 0.5) & maskable  # push the start towards ratio in [0.5, 1]
        start = torch.where(extra, torch.full_like(start, model.mask_id), start)
    choices = [("sequential", {}), ("topk", {"k": 2}), ("topk", {"k": 4}), ("topk", {"k": 8})]
    pick = torch.randint(len(choices), (n,), generator=g)
    out = start.clone()
    for c, (name, params) in enumerate(choices):
        rows = (pick == c).nonzero().squeeze(1)
        if len(rows) == 0:
            continue
        res = decode(model, start[rows], make_selector(name, **params), trace=True, block_length=block_length or None)
        history = [[] for _ in rows]  # states before each step, per row
        for r, state, _ in replay(start[rows], res):
            history[r].append(state)
        for r, row in enumerate(rows.tolist()):
            ok = [s for s in history[r] if int(free_positions(model, s[None]).sum()) >= min_masked]
            if ok:
                out[row] = ok[int(torch.randint(len(ok), (1,), generator=g))]
    return out


def make_shard(model, sample_clean: Callable, cfg: LabelConfig, k: int, allowed=None) -> dict:
    """Contexts (:func:`shard_contexts`) and labels of shard ``k`` as a dict of tensors (for
    safetensors)."""
    clean, x, source = shard_contexts(model, sample_clean, cfg, k)
    probe = None
    if cfg.probe:  # its own seed: the contexts stay those of probe = 0
        probe = probe_subset(free_positions(model, x), cfg.probe,
                             torch.Generator().manual_seed(2**40 + cfg.seed * 1_000_003 + k))
    res = exact_mi(model, x, allowed=allowed, delta=cfg.delta, batch_size=cfg.batch_size, probe=probe)
    out = {
        "tokens": x, "masked": res.masked.to(torch.uint8), "clean": clean,
        "mi_directed": res.mi_directed.float(), "tv_influence": res.tv_influence.float(),
        "entropy": res.entropy.float(), "passes": res.passes,
        "source": source,  # 0 = decoding state, 1 = random mask ratio, 2 = CDR3 masked, 3 = all CDRs masked
        "kl_consistency_mean": _pair_mean(res.kl_consistency, res.masked).float(),
        "asymmetry_max": res.asymmetry.amax((1, 2)).float(),
    }
    if probe is not None:
        out["probed"] = res.probed.to(torch.uint8)
    if cfg.store_hidden:
        with torch.no_grad():
            out["hidden"] = model(x).hidden.float()
    return out


def probe_subset(masked: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """Bool like ``masked`` (B, L): per row, ``n`` of its masked positions drawn uniformly
    without replacement (all of them when it has fewer)."""
    scores = torch.rand(masked.shape, generator=g).masked_fill(~masked, 2.0)
    rank = scores.argsort(1).argsort(1)
    return masked & (rank < n)


def shard_contexts(model, sample_clean: Callable, cfg: LabelConfig, k: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(clean, contexts, source) of shard ``k``, all from the shard's own seed.

    ``sample_clean(n, g)`` returns clean sequences (n, L), or ``(tokens, regions)`` where
    ``regions`` (n, L) codes each token's region (-1 not maskable, 0 framework, 1..3 the
    CDRs; :func:`mdmi.tasks.antibody.antibody_sampler`). With regions, the masked
    contexts are a third each CDR3 masked, all CDRs masked and a random ratio, and
    decoding starts from CDR3 masked, all CDRs masked or everything masked (de novo);
    ``cfg.kinds`` narrows these (e.g. ``cdr3`` alone: a cheap label set for CDR3 infilling)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + k)
    n = min(cfg.shard_size, cfg.contexts - k * cfg.shard_size)
    n_dec = int(round(n * cfg.decode_frac))
    drawn = sample_clean(n, g)
    clean, regions = drawn if isinstance(drawn, tuple) else (drawn, None)
    maskable = scorable(model, clean[n_dec:])
    if regions is not None:  # region -1: never masked (special tokens, a prompt)
        maskable &= regions[n_dec:] >= 0
    x = random_mask_contexts(clean[n_dec:], model.mask_id, cfg.min_masked, g, maskable)
    source = torch.ones(n - n_dec, dtype=torch.long)  # 1 = random mask ratio
    if regions is not None:
        kind = cfg.draw_kinds(n - n_dec, g)  # 0 CDR3, 1 all CDRs, 2 random ratio
        hide = region_masks(regions[n_dec:], kind, cfg.min_masked)
        use = kind < 2
        x = torch.where(use[:, None] & hide, model.mask_id, torch.where(use[:, None], clean[n_dec:], x))
        source = torch.where(use, kind + 2, source)  # 2 = CDR3 masked, 3 = all CDRs masked
    if n_dec:
        start = None
        if regions is not None:
            hide = region_masks(regions[:n_dec], cfg.draw_kinds(n_dec, g), cfg.min_masked)
            start = torch.where(hide, model.mask_id, clean[:n_dec])
        x = torch.cat([decoding_contexts(model, clean[:n_dec], cfg.min_masked, g, start, cfg.block_length), x])
        source = torch.cat([torch.zeros(n_dec, dtype=torch.long), source])
    return clean, x, source


def region_masks(regions: torch.Tensor, kind: torch.Tensor, min_masked: int) -> torch.Tensor:
    """Bool (n, L): per row, the tokens of region kind 0 (CDR3), 1 (all CDRs) or 2 (every
    residue); a row whose pick hides fewer than ``min_masked`` tokens (a record without
    that CDR span) hides every residue instead."""
    picks = torch.stack([regions == 3, regions >= 1, regions >= 0])  # (3, n, L)
    hide = picks[kind, torch.arange(len(kind))]
    short = hide.sum(1) < min_masked
    return torch.where(short[:, None], regions >= 0, hide)


def _pair_mean(t: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    m = masked.sum(1).double()
    return t.sum((1, 2)) / (m * (m - 1)).clamp_min(1)


def shard_path(out: Path, k: int) -> Path:
    return out / f"shard-{k:05d}.safetensors"


def write_labels(model, sample_clean: Callable, cfg: LabelConfig, out: str | Path, spec: dict,
                 rank: int = 0, world: int = 1, allowed=None, progress: bool = True) -> list[int]:
    """Write this rank's unfinished shards to ``out``; returns the shard ids written now.

    ``spec`` (model path, task, config) is saved as ``spec.json``; a rerun into the same
    directory with a different spec is refused rather than mixing label sets.
    """
    from safetensors.torch import save_file
    from tqdm import tqdm

    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / SPEC).is_file():
        raise ValueError(f"{out} holds files but no {SPEC}: not a label directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    # batch_size changes speed, not the labels: a rerun may use another one
    spec = {**spec, "label_config": {k: v for k, v in asdict(cfg).items() if k != "batch_size"}}
    spec_file = out / SPEC
    if spec_file.is_file():
        old = json.loads(spec_file.read_text())
        old_cfg = old.get("label_config", {})
        old_cfg.pop("batch_size", None)  # written by earlier versions
        for f in fields(LabelConfig):  # knobs added since a set was made: it used their defaults
            if f.name != "batch_size":
                old_cfg.setdefault(f.name, f.default)
        if old != spec:
            raise ValueError(f"{out} holds labels made with other arguments ({spec_file}); use a new --out")
    elif rank == 0:
        tmp = spec_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec, indent=2) + "\n")
        tmp.replace(spec_file)
    mine = [k for k in range(cfg.n_shards) if k % world == rank and not shard_path(out, k).is_file()]
    done = []
    for k in tqdm(mine, desc=f"label shards (rank {rank})", unit="shard", disable=not progress or rank != 0):
        t0 = time.time()
        tensors = make_shard(model, sample_clean, cfg, k, allowed)
        tmp = out / f".shard-{k:05d}.{os.getpid()}.tmp"
        # no timings inside a shard: the same arguments give byte-identical files
        save_file({k2: v.contiguous() for k2, v in tensors.items()}, str(tmp), metadata={"shard": str(k)})
        tmp.replace(shard_path(out, k))
        _log_seconds(out, k, time.time() - t0)
        done.append(k)
    return done


def _log_seconds(out: Path, k: int, seconds: float) -> None:
    """Shard timings go to ``timings.jsonl`` (appended), never into the shards."""
    with (out / "timings.jsonl").open("a") as f:
        f.write(json.dumps({"shard": k, "seconds": round(seconds, 2)}) + "\n")


def write_manifest(out: str | Path, cfg: LabelConfig) -> dict:
    """Summarise the finished shards in ``manifest.json`` (atomic); returns it."""
    from safetensors import safe_open

    out = Path(out)
    shards, total, seconds, passes = [], 0, 0.0, 0
    timing = {}
    if (out / "timings.jsonl").is_file():
        for line in (out / "timings.jsonl").read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                timing[int(r["shard"])] = float(r["seconds"])  # the last run of a shard counts
    for k in range(cfg.n_shards):
        p = shard_path(out, k)
        if not p.is_file():
            continue
        with safe_open(str(p), "pt") as f:
            n = f.get_slice("tokens").get_shape()[0]
            seconds += timing.get(k, float((f.metadata() or {}).get("seconds", 0)))  # metadata: older shards
            passes += int(f.get_tensor("passes").sum())
        shards.append({"file": p.name, "contexts": n})
        total += n
    manifest = {"shards": shards, "contexts": total, "complete": len(shards) == cfg.n_shards,
                "shard_seconds": seconds, "model_passes": passes}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / MANIFEST)
    return manifest


def label_status(path: str | Path) -> tuple[int, int]:
    """(finished shards, shards the label set's spec asks for) of a label directory."""
    path = Path(path)
    spec_file = path / SPEC
    if not spec_file.is_file():
        raise FileNotFoundError(f"{path} is not a label directory (no {SPEC})")
    c = json.loads(spec_file.read_text()).get("label_config", {})
    want = -(-int(c["contexts"]) // int(c["shard_size"]))
    return sum(shard_path(path, k).is_file() for k in range(want)), want


def load_labels(path: str | Path, allow_partial: bool = True) -> dict[str, torch.Tensor]:
    """All finished shards of a label directory, concatenated along contexts. With
    ``allow_partial=False`` a set whose shards are not all written (a job still running
    or killed) raises ValueError saying how to finish it."""
    from safetensors.torch import load_file

    path = Path(path)
    if not allow_partial:
        have, want = label_status(path)
        if have < want:
            raise ValueError(f"{path} holds {have} of its {want} label shards (a job still running, or killed): "
                             f"rerun the same 'mdmi label' command to finish it, or pass --allow-partial")
    files = sorted(path.glob("shard-*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no label shards in {path}")
    parts = [load_file(str(f)) for f in files]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def dist_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when absent."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
