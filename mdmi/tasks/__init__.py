"""Tasks: where clean data comes from. ``clean_sampler(task, ...)`` feeds label jobs."""

from __future__ import annotations

from typing import Callable

import torch

TASKS = ("sudoku", "protein", "hmm", "antibody", "text")


def clean_sampler(task: str, seed: int = 0, pool_size: int = 2000, model=None,
                  fasta: str | None = None, chain: str | None = None) -> Callable[[int, torch.Generator], torch.Tensor]:
    """A function ``(n, generator) -> LongTensor (n, L)`` of clean sequences of ``task``.

    sudoku: augmented grids from the ``label`` split (disjoint from train and test grids).
    protein: records of ``fasta`` drawn with replacement, encoded by ``model`` (a
    Hugging Face adapter) with its special tokens and padded to the longest record.
    hmm: fresh samples of the HMM a model was trained on (``model.meta["hmm"]``).
    antibody: records of ``fasta`` (CDR spans in the headers) or, without it, the training
    split of AbNatiV's ``chain`` sequences; draws are ``(tokens, regions)`` pairs, so label
    jobs can mask whole CDRs (see :func:`mdmi.labels.make_shard`).
    text: the prompted testbed's training problems (:mod:`mdmi.tasks.textbed`) as
    ``(tokens, regions)``, regions -1 on the prompt: contexts mask answers only (use
    ``kinds="all"``).
    """
    if task == "text":
        from .textbed import label_sampler

        return label_sampler()
    if task == "antibody":
        if model is None:
            raise ValueError("task 'antibody' needs model= (an HF adapter such as mdmi.load('sapiens:vh'))")
        from .antibody import antibody_sampler, load_antibodies, read_antibody_fasta

        limit = _protein(model, task).max_residues
        if fasta is not None:
            records = read_antibody_fasta(fasta, max_length=limit)
        else:
            records = [r for r in load_antibodies(chain or "vh", "train")  # the split seed stays 0: test stays test
                       if limit is None or len(r.sequence) <= limit]
        return antibody_sampler(model, records)
    if task == "hmm":
        hmm = (getattr(model, "meta", None) or {}).get("hmm")
        if hmm is None:
            raise ValueError("task 'hmm' needs model= trained with 'mdmi train hmm' (its config names the HMM)")
        from .hmm import HMM, HMMConfig

        return HMM(HMMConfig(**hmm)).sample
    if task == "protein":
        if fasta is None or model is None:
            raise ValueError("task 'protein' needs fasta= (a FASTA file) and model= (an HF adapter)")
        from .protein import read_fasta

        seqs = [s for _, s in read_fasta(fasta, max_length=_protein(model, task).max_residues)]
        pool = model.encode(seqs)

        def sample_protein(n, g):
            return pool[torch.randint(len(pool), (n,), generator=g)]

        return sample_protein
    if task == "sudoku":
        from . import sudoku

        pool = sudoku.grids(pool_size, seed, split="label")

        def sample(n, g):
            return sudoku.augment(pool[torch.randint(len(pool), (n,), generator=g)], g)

        return sample
    raise ValueError(f"unknown task {task!r}; choose from {TASKS}")


def _protein(model, task: str):
    """``model`` when it reads residue strings, else ValueError naming ``task``."""
    from ..interface import ProteinModel

    if not isinstance(model, ProteinModel):
        raise ValueError(f"task {task!r} needs model= a protein masked LM (mdmi.interface.ProteinModel), "
                         f"got {type(model).__name__}")
    return model
