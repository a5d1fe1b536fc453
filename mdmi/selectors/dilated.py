"""DUS, dilated unmasking scheduling (Luxembourg, Permuter, Pinkas; OpenReview hcODkuS1cF;
code: omerlux/DUS, ``dilated_unmask_levels`` and ``generate_scheduled``).

Rule: a fixed, state-free schedule. The positions masked when decoding begins are listed
in order and cut into blocks of ``block`` (0 = one block). Within a block of n, the first
step fills every position whose rank is a multiple of ``stride = n // base``, the next every
multiple of ``stride // base`` not yet filled, and so on down to stride 1, then whatever is
left. So a block takes about
log_base(n) passes, and the positions filled together are ``stride`` apart: the schedule
assumes that nearby positions depend most. Blocks run one after another.

Differences from the paper's code, stated: there the schedule runs over absolute positions
of a fully masked block; here it runs over the ranks of the positions masked at the start
(identical for a contiguous masked span; for infilling, observed positions are skipped
rather than spending steps on them). The code merges a last level smaller than the one
before into it; that would fill neighbours together (n = 5: ranks 0-4 at once), so here
levels are never merged. Nothing here looks at the model's marginals.
"""

from __future__ import annotations

import torch

from .base import Selector, StepState
from .spec import Knob


def dilated_levels(n: int, base: int) -> list[list[int]]:
    """Ranks 0..n-1 in dilated levels (coarse to fine); every rank in exactly one level."""
    if n <= 0:
        return []
    levels, seen = [], set()
    stride = n // base
    while stride >= 1:
        level = [i for i in range(0, n, stride) if i not in seen]
        if level:
            levels.append(level)
            seen.update(level)
        stride //= base
    rest = [i for i in range(n) if i not in seen]
    if rest:
        levels.append(rest)
    return levels


class Dilated(Selector):
    name = "dilated"
    summary = "a fixed coarse-to-fine schedule: positions stride apart first, about log_base(n) passes"
    source = "DUS, dilated unmasking scheduling (code: omerlux/DUS)"
    knobs = (
        Knob("base", int, 2, "dilation base; larger means fewer passes", lo=2),
        Knob("block", int, 0, "positions per schedule block (0 = one block)", lo=0),
    )

    def __init__(self, base: int = 2, block: int = 0):
        if int(base) != base or base < 2:
            raise ValueError(f"base must be an integer >= 2, got {base}")
        if int(block) != block or block < 0:
            raise ValueError(f"block must be an integer >= 0 (0 = one block), got {block}")
        self.base, self.block = int(base), int(block)

    def schedule(self, start_masked: torch.Tensor) -> list[list[int]]:
        """Positions (L,) -> per step, the positions to fill."""
        pos = start_masked.nonzero().squeeze(1).tolist()
        size = self.block or max(1, len(pos))
        steps = []
        for s in range(0, len(pos), size):
            chunk = pos[s: s + size]
            steps += [[chunk[r] for r in level] for level in dilated_levels(len(chunk), self.base)]
        return steps

    def select(self, state: StepState) -> torch.Tensor:
        plans = state.memory.setdefault("dilated_plan", {})
        sel = torch.zeros_like(state.masked)
        for b, row in enumerate(state.rows.tolist()):
            key = (row, int(state.block[b]))  # one plan per row and decoding block
            if key not in plans:
                plans[key] = self.schedule(state.start_masked[b])
            plan = plans[key]
            # the step of this row's plan: one per pass in this block (every unfinished row takes part in each)
            t = int(state.block_step[b])
            level = plan[t] if t < len(plan) else state.masked[b].nonzero().squeeze(1).tolist()
            sel[b, level] = True
        return sel & state.masked

    def __repr__(self):
        return f"Dilated(base={self.base}, block={self.block})"
