"""Tasks: where clean data comes from. ``clean_sampler(task, ...)`` feeds label jobs."""

from __future__ import annotations

from typing import Callable

import torch


def clean_sampler(task: str, seed: int = 0, pool_size: int = 2000) -> Callable[[int, torch.Generator], torch.Tensor]:
    """A function ``(n, generator) -> LongTensor (n, L)`` of clean sequences of ``task``.

    sudoku: augmented grids from the ``label`` split (disjoint from train and test grids).
    """
    if task == "sudoku":
        from . import sudoku

        pool = sudoku.grids(pool_size, seed, split="label")

        def sample(n, g):
            return sudoku.augment(pool[torch.randint(len(pool), (n,), generator=g)], g)

        return sample
    raise ValueError(f"unknown task {task!r}; choose from ['sudoku']")
