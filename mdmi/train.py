"""Training a masked diffusion model with the masked-diffusion (MDLM) loss.

Each step: clean sequences x0 (B, L) -> mask ratio t ~ U(0, 1) per sequence (stratified
across the batch to cut variance) -> each position masked with probability t -> loss
``sum_{masked i} -log p_i(x0_i | x_t) / (t * L)`` (the MDLM continuous-time ELBO weight
1/t, per token), averaged over the batch. AdamW, linear warm-up then cosine decay,
periodic checkpoints that ``resume`` continues bit for bit, a JSONL log of the loss.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .config import check_types
from .models.transformer import MaskedTransformer

LOSSES = ("elbo", "flat")
STATE_NAME = "train_state.json"
OPTIM_NAME = "optimizer.safetensors"
LOG_NAME = "train_log.jsonl"


@dataclass
class TrainConfig:
    steps: int = 20000  # optimizer steps: quality vs. CPU time
    batch_size: int = 128  # sequences per step: gradient noise vs. time per step
    lr: float = 1e-3  # peak learning rate after warm-up
    min_lr_ratio: float = 0.05  # cosine decays to lr * min_lr_ratio
    warmup: int = 500  # linear warm-up steps: stability early on
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # clip the global gradient norm (0 = off)
    t_min: float = 1e-3  # smallest mask ratio; bounds the 1/t weight
    loss: str = "elbo"  # elbo: the 1/t-weighted MDLM bound; flat: mean cross-entropy per masked token
    seed: int = 0  # seeds data, masks and init
    ckpt_every: int = 500  # steps between checkpoints (resume point)
    log_every: int = 50  # steps between JSONL log lines

    def __post_init__(self):
        check_types(self)
        for name in ("steps", "batch_size", "ckpt_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.t_min < 1:
            raise ValueError(f"t_min must lie in (0, 1), got {self.t_min}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})


def diffusion_loss(model, x0: torch.Tensor, g: torch.Generator, t_min: float = 1e-3,
                   maskable: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                   kind: str = "elbo") -> torch.Tensor:
    """Masked-diffusion ELBO estimate (nats per token) for clean x0: (B, L). ``maskable``
    (B, L): the only positions a mask may hide (a prompt is never masked, as in
    conditional dLLM training); the loss is then per maskable token. ``weight`` (B, L),
    optional: a per-position weight on the loss (a curriculum); the positions it zeroes are
    still masked, so the model sees the same inputs, but teach nothing, and the loss is per
    weighted maskable token. Without it (or all ones) this is the ELBO. ``kind="flat"``: the
    mean cross-entropy over the masked (weighted) tokens of the batch, without the 1/t
    weight: a biased surrogate with far less variance (the few-mask draws no longer
    dominate), under which a small prompted model learns to copy where the ELBO does not
    (``benchmarks/text_copy_probe.py``)."""
    if kind not in LOSSES:
        raise ValueError(f"kind must be one of {LOSSES}, got {kind!r}")
    B, L = x0.shape
    # 1. stratified t: one uniform offset, B evenly spaced strata
    t = (torch.rand(1, generator=g) + torch.arange(B) / B) % 1.0
    t = t_min + (1 - t_min) * t  # (B,)
    # 2. mask each position independently with probability t
    mask = torch.rand(B, L, generator=g) < t[:, None]  # (B, L)
    if maskable is not None:
        mask &= maskable
    xt = torch.where(mask, torch.full_like(x0, model.mask_id), x0)
    logits = model(xt).logits  # (B, L, V)
    ce = F.cross_entropy(logits.reshape(B * L, -1).float(), x0.reshape(-1), reduction="none").view(B, L)
    # 3. weight 1/t per masked token (MDLM), normalise by L (or by the maskable positions)
    counted = torch.ones(B, L) if maskable is None else maskable.float()  # the tokens the loss is per
    if weight is not None:
        counted = counted * weight
    w = mask * counted
    if kind == "flat":
        return (ce * w).sum() / w.sum().clamp_min(1)
    return ((ce * w).sum(1) / (t * counted.sum(1).clamp_min(1))).mean()


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _save_checkpoint(out: Path, model, opt, step: int, g: torch.Generator, tcfg: TrainConfig, extra: dict):
    from safetensors.torch import save_file

    model.save(out, extra={"train": asdict(tcfg), "step": step, **extra})
    flat = {}
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            flat[f"{pid}.{k}"] = torch.as_tensor(v).contiguous()
    flat["__rng__"] = g.get_state()
    tmp = out / (OPTIM_NAME + ".tmp")
    save_file(flat, str(tmp))
    tmp.replace(out / OPTIM_NAME)
    (out / STATE_NAME).write_text(json.dumps({"step": step}) + "\n")


def _load_checkpoint(out: Path, model, opt, g: torch.Generator) -> int:
    from safetensors.torch import load_file

    src = MaskedTransformer.load(out)
    if src.config != model.config:
        raise ValueError(f"cannot resume: {out} holds config {src.config}, asked for {model.config}")
    model.load_state_dict(src.state_dict())
    flat = load_file(str(out / OPTIM_NAME))
    g.set_state(flat.pop("__rng__"))
    sd = opt.state_dict()
    state: dict = {}
    for key, v in flat.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    sd["state"] = state
    opt.load_state_dict(sd)
    return json.loads((out / STATE_NAME).read_text())["step"]


def train(
    model: MaskedTransformer,
    sample: Callable[[int, torch.Generator], torch.Tensor],
    tcfg: TrainConfig,
    out: str | Path,
    resume: bool = False,
    extra: dict | None = None,
    progress: bool = True,
    overwrite: bool = False,
    weight: Callable[[int, torch.Tensor], torch.Tensor | None] | None = None,
) -> list[dict]:
    """Train ``model`` on clean batches ``sample(batch_size, generator) -> (B, L)``, or
    ``-> (x0, maskable)`` for conditional training (see :func:`diffusion_loss`).
    ``weight(step, x0) -> (B, L) or None``: a per-position loss weight by step (a curriculum;
    None is the plain ELBO); it is a pure function of the step, so resuming continues it.

    Writes checkpoints to ``out`` every ``ckpt_every`` steps and at the end (model,
    optimizer and RNG state, so ``resume=True`` continues exactly), appends to
    ``out/train_log.jsonl``. ``extra`` (e.g. the task name) is saved in config.json.
    A directory that already holds files is refused unless ``resume`` or ``overwrite``
    (see :func:`mdmi.files.claim_dir`). Returns the log rows of this call.
    """
    from tqdm import tqdm

    from .files import claim_dir

    out = claim_dir(out, resume=resume, overwrite=overwrite, what="checkpoint")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg.seed)
    g = torch.Generator().manual_seed(tcfg.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=tcfg.lr, betas=(0.9, 0.98),
    )
    start = 0
    log_path = out / LOG_NAME
    if resume and (out / STATE_NAME).is_file():
        start = _load_checkpoint(out, model, opt, g)
        if log_path.exists():  # drop rows logged after the checkpoint we resume from
            keep = [r for r in log_path.read_text().splitlines() if json.loads(r)["step"] <= start]
            log_path.write_text("".join(r + "\n" for r in keep))
    elif not resume and log_path.exists():
        log_path.unlink()
    extra = extra or {}
    model.train()
    rows, t0, seen, acc, n_acc = [], time.time(), 0, 0.0, 0
    bar = tqdm(range(start, tcfg.steps), initial=start, total=tcfg.steps, desc="train", disable=not progress)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tcfg)
        batch = sample(tcfg.batch_size, g)
        x0, maskable = batch if isinstance(batch, tuple) else (batch, None)
        loss = diffusion_loss(model, x0, g, tcfg.t_min, maskable, None if weight is None else weight(step, x0),
                              tcfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tcfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        seen += x0.shape[0]
        acc += loss.item()
        n_acc += 1
        if (step + 1) % tcfg.log_every == 0 or step + 1 == tcfg.steps:
            row = {"step": step + 1, "loss": acc / n_acc, "lr": lr_at(step, tcfg),
                   "seq_per_s": seen / (time.time() - t0), "elapsed_s": time.time() - t0}
            rows.append(row)
            with log_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            bar.set_postfix(loss=f"{row['loss']:.4f}", seq_s=f"{row['seq_per_s']:.0f}")
            acc, n_acc = 0.0, 0
        if (step + 1) % tcfg.ckpt_every == 0 or step + 1 == tcfg.steps:
            _save_checkpoint(out, model, opt, step + 1, g, tcfg, extra)
    model.eval()
    return rows
