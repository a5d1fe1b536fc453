"""``mdmi label``: contexts + exact MI labels in resumable shards (torchrun-aware)."""

from __future__ import annotations

import dataclasses
import time

from .common import (
    MODEL_HELP,
    add_dataclass_args,
    default_model,
    file_digest,
    pick,
    resolve_model,
)


def cmd_label(args):
    from ..labels import LabelConfig, dist_env, write_labels, write_manifest
    from ..tasks import clean_sampler

    rank, world = dist_env()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    resolved = resolve_model(default_model(args.model), args)
    model = resolved.model
    cfg = pick(args, LabelConfig)
    if args.task == "text":  # a prompt has no CDRs: contexts mask the answer at random, or all of it
        if cfg.kinds not in ("all", LabelConfig.kinds):
            raise ValueError(f"--task text takes --kinds all (no CDRs to mask), got {cfg.kinds!r}")
        cfg = dataclasses.replace(cfg, kinds="all")
    spec = {"model": resolved.ref, "task": args.task,
            "fasta": f"sha256:{file_digest(args.fasta)}" if args.fasta else None}
    t0 = time.time()
    chain = args.chain or resolved.chain or "vh"
    if args.task == "antibody":
        spec["chain"] = None if args.fasta else chain
    sampler = clean_sampler(args.task, cfg.seed, model=model, fasta=args.fasta, chain=chain)
    done = write_labels(model, sampler, cfg, args.out, spec, rank=rank, world=world)
    if world > 1:
        dist.barrier()
    if rank == 0:
        m = write_manifest(args.out, cfg)
        print(f"{m['contexts']} contexts in {len(m['shards'])} shards at {args.out} "
              f"(this run: {len(done)} shards on rank 0, {time.time() - t0:.1f}s; "
              f"complete: {m['complete']}; model passes: {m['model_passes']})")
    if world > 1:
        dist.destroy_process_group()



def add_parsers(sub) -> None:
    from ..labels import LabelConfig
    from ..tasks import TASKS

    lb = sub.add_parser("label", help="contexts + exact MI labels, in shards (torchrun-aware)")
    lb.add_argument("--model", help=MODEL_HELP)
    lb.add_argument("--task", default="sudoku", choices=TASKS, help="where clean data comes from")
    lb.add_argument("--fasta", help="sequences for --task protein; for --task antibody, records with CDR spans in "
                                    "their headers (default: AbNatiV's training split of --chain)")
    lb.add_argument("--chain", choices=["vh", "vl"],
                    help="--task antibody without --fasta: AbNatiV chain (default: vl for sapiens:vl, else vh)")
    lb.add_argument("--out", required=True, help="label directory (a rerun resumes it)")
    add_dataclass_args(lb, LabelConfig)
    lb.set_defaults(func=cmd_label)
