"""Why the text dLLM does not learn: does a small model learn to copy the prompt's letters under each loss?

On ``perm`` problems alone, a small transformer is trained for a few hundred steps under:

- ``elbo``: the masked-diffusion loss ``mdmi.train.diffusion_loss`` (1/t-weighted, every
  answer position, EOS padding included), as ``mdmi train text`` uses it;
- ``plain``: the unweighted mean cross-entropy over the masked answer positions;
- ``eos_light``: as ``plain``, with the EOS padding after the first EOS weighted 0.1;
- ``letters``: as ``plain``, over the masked letters only (no EOS position at all);
- ``curriculum``: ``letters`` for the first ``--switch`` steps, then ``plain`` (does the
  copying survive once the EOS positions come in?);
- ``curriculum_elbo``: what ``mdmi train text --content-first`` does: the 1/t-weighted loss
  on the letters (``textbed.content_weight``) for ``--switch`` steps, then ``elbo``;
- ``curriculum_flat``: the same through ``diffusion_loss(kind="flat")`` (no 1/t weight),
  what ``mdmi train text`` does by default.

Every 100 steps it reads the model's marginal at the first answer position of 64 fixed
problems with the whole answer masked. It prints the probability mass on the letters the
prompt holds: chance is about 0.28 (7.5 of 26 letters), and copying pushes it towards 1.

    python benchmarks/text_copy_probe.py --steps 600 --switch 600 --after 400
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from mdmi.models.transformer import MaskedTransformer, MDMConfig
from mdmi.tasks import textbed
from mdmi.train import diffusion_loss
from mdmi.cli.common import script_provenance

OUT = Path(__file__).parent / "results" / "text"
LOSSES = ("elbo", "plain", "eos_light", "letters", "curriculum", "curriculum_elbo", "curriculum_flat")


def loss_of(kind: str, model, x0, maskable, g):
    if kind == "elbo":
        return diffusion_loss(model, x0, g, 1e-3, maskable)
    if kind in ("elbo_content", "flat_content"):
        return diffusion_loss(model, x0, g, 1e-3, maskable, textbed.content_weight(x0), kind.split("_")[0])
    if kind == "flat":
        return diffusion_loss(model, x0, g, 1e-3, maskable, kind="flat")
    B, L = x0.shape
    t = torch.rand(B, 1, generator=g)
    mask = (torch.rand(B, L, generator=g) < t) & maskable
    eos = x0 == textbed.TOKENIZER.eos_id
    first = eos & ~torch.cat([torch.zeros(B, 1, dtype=torch.bool), eos[:, :-1]], 1)
    w = {"plain": torch.ones(B, L), "eos_light": torch.where(eos & ~first, 0.1, 1.0),
         "letters": (~eos).float()}[kind] * mask
    xt = torch.where(mask, model.mask_id, x0)
    ce = F.cross_entropy(model(xt).logits.reshape(B * L, -1), x0.reshape(-1), reduction="none").view(B, L)
    return (ce * w).sum() / w.sum().clamp_min(1)


def prompt_mass(model, x: torch.Tensor) -> float:
    """Mean probability, at the first answer position with the answer all masked, of the letters in the prompt."""
    q = x.clone()
    q[:, textbed.PROMPT_WIDTH:] = model.mask_id
    with torch.no_grad():
        p = model(q).logits.softmax(-1)[:, textbed.PROMPT_WIDTH]  # (B, V)
    inside = torch.zeros_like(p, dtype=torch.bool)
    for b in range(len(x)):
        inside[b, x[b, :textbed.PROMPT_WIDTH - 1]] = True  # the letters, not the ':'
    inside[:, textbed.TOKENIZER.pad_id] = False
    return float((p * inside).sum(-1).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--switch", type=int, default=600, help="curriculum: letters-only steps before the full loss")
    ap.add_argument("--after", type=int, default=400, help="curriculum: steps of the full loss after the switch")
    ap.add_argument("--losses", default=",".join(LOSSES))
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    torch.set_num_threads(1)
    prov = script_provenance()
    rows = []
    for kind in a.losses.split(","):
        torch.manual_seed(0)
        model = MaskedTransformer(MDMConfig(vocab_size=textbed.TOKENIZER.vocab_size, seq_len=textbed.SEQ_LEN,
                                            d_model=a.d_model, n_layers=a.n_layers, n_heads=2))
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        rng, g = random.Random(0), torch.Generator().manual_seed(0)
        probe, _ = textbed.encode_problems([textbed.sample_problem("perm", random.Random(1)) for _ in range(64)])
        curve = []
        total = a.switch + a.after if kind.startswith("curriculum") else a.steps
        for step in range(total + 1):
            if step % 100 == 0:
                curve.append([step, prompt_mass(model, probe)])
                print(f"{kind:10s} step {step:5d}: mass on the prompt's letters {curve[-1][1]:.3f}", flush=True)
            x0, maskable = textbed.encode_problems([textbed.sample_problem("perm", rng) for _ in range(64)])
            now = {"curriculum": ("letters", "plain"), "curriculum_elbo": ("elbo_content", "elbo"),
                   "curriculum_flat": ("flat_content", "flat")}.get(kind)
            now = kind if now is None else now[step >= a.switch]
            loss = loss_of(now, model, x0, maskable, g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        rows.append({"loss": kind, "steps": total, "d_model": a.d_model, "n_layers": a.n_layers,
                     "mass_on_prompt_letters": curve, "final": curve[-1][1], "provenance": prov})
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "copy_probe.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
