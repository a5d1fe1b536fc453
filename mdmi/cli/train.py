"""Train our transformer MDM: ``mdmi train sudoku``, ``mdmi train hmm``, ``mdmi train text``."""

from __future__ import annotations

import sys
import time
from dataclasses import fields

from ..files import claim_dir
from .common import add_dataclass_args, pick


def _init_from(args, model, extra: dict) -> None:
    """``--init SPEC``: start from another checkpoint's weights (same architecture), with a
    fresh optimizer and schedule; ``extra["init"]`` records which weights (by digest)."""
    if getattr(args, "init", None) is None:
        return
    if args.resume:
        raise ValueError("--init starts a new run from other weights; --resume continues the one in --out: pick one")
    from ..resolve import reference, resolve

    src = resolve(args.init).model
    if getattr(src, "config", None) != model.config:
        raise ValueError(f"--init {args.init}: its config {getattr(src, 'config', None)} is not the model's "
                         f"{model.config}; pass the same --d-model/--n-layers/--n-heads/... as it was trained with")
    model.load_state_dict(src.state_dict())
    extra["init"] = {"spec": str(args.init), "ref": reference(args.init)}


def cmd_train_sudoku(args):
    import torch

    from ..tasks import sudoku
    from ..train import TrainConfig, train
    from ..models.transformer import MaskedTransformer, MDMConfig

    claim_dir(args.out, args.resume, args.overwrite, "checkpoint")  # before any work
    mcfg = pick(args, MDMConfig, vocab_size=sudoku.VOCAB_SIZE, seq_len=81, grid=9)
    tcfg = pick(args, TrainConfig)
    t0 = time.time()
    pool = sudoku.grids(args.base_grids, tcfg.seed, split="train")  # (N, 81)
    print(f"{len(pool)} base grids in {time.time() - t0:.1f}s; model {mcfg}", file=sys.stderr)

    def sample(B, g):
        idx = torch.randint(len(pool), (B,), generator=g)
        return sudoku.augment(pool[idx], g)

    torch.manual_seed(tcfg.seed)
    model = MaskedTransformer(mcfg)
    extra = {"task": "sudoku", "base_grids": args.base_grids, "command": " ".join(args.argv)}
    _init_from(args, model, extra)
    train(model, sample, tcfg, args.out, resume=args.resume, extra=extra, overwrite=args.overwrite)
    print(f"saved {args.out}", file=sys.stderr)



def cmd_train_hmm(args):
    from dataclasses import asdict

    import torch

    from ..tasks.hmm import HMM, HMMConfig
    from ..train import TrainConfig, train
    from ..models.transformer import MaskedTransformer, MDMConfig

    claim_dir(args.out, args.resume, args.overwrite, "checkpoint")  # before any work
    hcfg = HMMConfig(**{f.name: getattr(args, "hmm_seed" if f.name == "seed" else f.name) for f in fields(HMMConfig)})
    hmm = HMM(hcfg)
    mcfg = pick(args, MDMConfig, vocab_size=hcfg.n_symbols, seq_len=hcfg.length, grid=0)
    tcfg = pick(args, TrainConfig)
    torch.manual_seed(tcfg.seed)
    model = MaskedTransformer(mcfg)
    extra = {"task": "hmm", "hmm": asdict(hcfg), "command": " ".join(args.argv)}
    _init_from(args, model, extra)
    train(model, hmm.sample, tcfg, args.out, resume=args.resume, extra=extra, overwrite=args.overwrite)
    print(f"saved {args.out}", file=sys.stderr)


def cmd_train_text(args):
    import torch

    from ..models.transformer import MaskedTransformer, MDMConfig
    from ..tasks import textbed
    from ..train import TrainConfig, train

    claim_dir(args.out, args.resume, args.overwrite, "checkpoint")  # before any work
    mcfg = pick(args, MDMConfig, vocab_size=textbed.TOKENIZER.vocab_size, seq_len=textbed.SEQ_LEN, grid=0)
    tcfg = pick(args, TrainConfig)
    torch.manual_seed(tcfg.seed)
    model = MaskedTransformer(mcfg)
    n = sum(p.numel() for p in model.parameters())
    print(f"text dLLM: {n:,} parameters; tasks {', '.join(textbed.TASKS)}; model {mcfg}", file=sys.stderr)
    extra = {"task": "text", "tokenizer": {**textbed.TOKENIZER.to_dict(), "prompt_width": textbed.PROMPT_WIDTH,
                                            "gen_length": textbed.GEN_LENGTH},
             "command": " ".join(args.argv)}
    if args.content_first is None:
        args.content_first = min(2000, tcfg.steps // 5)
    if args.content_first < 0:
        raise ValueError(f"--content-first must be >= 0, got {args.content_first}")
    extra["content_first"] = args.content_first
    _init_from(args, model, extra)

    def weight(step, x0):  # the curriculum: content tokens only, then the whole loss
        return textbed.content_weight(x0) if step < args.content_first else None

    train(model, textbed.train_sampler(tcfg.seed), tcfg, args.out, resume=args.resume, extra=extra,
          overwrite=args.overwrite, weight=weight)
    print(f"saved {args.out}", file=sys.stderr)


def _add_init(p) -> None:
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="fine-tune: start from this checkpoint's weights (a directory or a shipped name; same "
                        "architecture), with a fresh optimizer and learning-rate schedule")


def add_parsers(sub) -> None:
    from ..models.transformer import MDMConfig
    from ..tasks.hmm import HMMConfig
    from ..train import TrainConfig

    tr = sub.add_parser("train", help="train our transformer MDM on a task")
    tsub = tr.add_subparsers(dest="task", required=True)
    ts = tsub.add_parser("sudoku", help="train on augmented random Sudoku grids")
    ts.add_argument("--out", required=True, help="checkpoint directory")
    ts.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    _add_init(ts)
    ts.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its checkpoint")
    ts.add_argument("--base-grids", type=int, default=20000, help="distinct base grids before augmentation")
    add_dataclass_args(ts, MDMConfig, skip=("vocab_size", "seq_len", "grid"))
    add_dataclass_args(ts, TrainConfig)
    ts.set_defaults(func=cmd_train_sudoku)

    th = tsub.add_parser("hmm", help="train on samples of a fixed seeded HMM")
    th.add_argument("--out", required=True, help="checkpoint directory")
    th.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    _add_init(th)
    th.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its checkpoint")
    for f in fields(HMMConfig):
        name = "hmm-seed" if f.name == "seed" else f.name.replace("_", "-")
        th.add_argument(f"--{name}", type=type(f.default), default=f.default, help=f"HMM {f.name}")
    add_dataclass_args(th, MDMConfig, skip=("vocab_size", "seq_len", "grid"))
    add_dataclass_args(th, TrainConfig)
    th.set_defaults(func=cmd_train_hmm)

    tt = tsub.add_parser("text", help="a prompted text dLLM on the add / split / perm tasks (prompt never masked)")
    tt.add_argument("--out", required=True, help="checkpoint directory")
    tt.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    _add_init(tt)
    tt.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its checkpoint")
    tt.add_argument("--content-first", type=int, default=None,
                    help="first steps with the EOS positions out of the loss, so the model learns to copy the "
                         "prompt before it learns lengths (default: a fifth of --steps, at most 2000; 0: the "
                         "whole ELBO from the start)")
    add_dataclass_args(tt, MDMConfig, skip=("vocab_size", "seq_len", "grid"))
    add_dataclass_args(tt, TrainConfig)
    tt.set_defaults(func=cmd_train_text, loss="flat")  # the ELBO's 1/t weight stops a small model copying
