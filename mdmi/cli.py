"""The ``mdmi`` command line. Each sub-command is a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

DEFAULT_SUDOKU = Path(__file__).resolve().parent.parent / "checkpoints" / "sudoku"
HF_OPTIONS: dict = {}  # --device / --dtype / --trust-remote-code, for hf: models


def load(path):
    """mdmi.load, passing the Hugging Face options to hf: models."""
    from . import load as _load

    return _load(path, **HF_OPTIONS) if str(path).startswith("hf:") else _load(path)


def _add_dataclass_args(p: argparse.ArgumentParser, cls, skip=()):
    """One ``--flag`` per dataclass field, defaulting to the dataclass default."""
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default
        kind = type(default)
        if kind is bool:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"),
                           default=default)
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default)


def _pick(args, cls, **override):
    vals = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    vals.update(override)
    return cls(**vals)


def _file_digest(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _model_ref(path) -> str:
    """How a model is recorded in specs: hub ids as given, our checkpoints by the hash of
    their weights (so a resumed job on another machine or path still matches)."""
    if str(path).startswith("hf:"):
        return str(path)
    weights = Path(path) / "model.safetensors"
    return f"sha256:{_file_digest(weights)}" if weights.is_file() else str(Path(path).resolve())


def _default_model(path):
    if path:
        return path
    if not (DEFAULT_SUDOKU / "model.safetensors").is_file():
        raise SystemExit(f"no --model given and no shipped model at {DEFAULT_SUDOKU}")
    return str(DEFAULT_SUDOKU)


# ---------------------------------------------------------------- train


def cmd_train_sudoku(args):
    import torch

    from .tasks import sudoku
    from .train import TrainConfig, train
    from .transformer import MaskedTransformer, MDMConfig

    mcfg = _pick(args, MDMConfig, vocab_size=sudoku.VOCAB_SIZE, seq_len=81, grid=9)
    tcfg = _pick(args, TrainConfig)
    t0 = time.time()
    pool = sudoku.grids(args.base_grids, tcfg.seed, split="train")  # (N, 81)
    print(f"{len(pool)} base grids in {time.time() - t0:.1f}s; model {mcfg}", file=sys.stderr)

    def sample(B, g):
        idx = torch.randint(len(pool), (B,), generator=g)
        return sudoku.augment(pool[idx], g)

    torch.manual_seed(tcfg.seed)
    model = MaskedTransformer(mcfg)
    extra = {"task": "sudoku", "base_grids": args.base_grids, "command": " ".join(sys.argv)}
    train(model, sample, tcfg, args.out, resume=args.resume, extra=extra)
    print(f"saved {args.out}", file=sys.stderr)


# ---------------------------------------------------------------- sudoku: solve / eval / generate


def _parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _selector(args, model=None):
    from .bench import NEEDS_ESTIMATOR, build

    params = {}
    for item in args.param or []:
        if "=" not in item:
            raise ValueError(f"--param must look like key=value, got {item!r}")
        k, v = item.split("=", 1)
        params[k.replace("-", "_")] = _parse_value(v)
    estimator = None
    if args.selector in NEEDS_ESTIMATOR:
        from .estimator import Estimator

        est_dir = _default_estimator(getattr(args, "estimator", None), _default_model(args.model))
        estimator = Estimator.load(est_dir) if est_dir else None
    return build(args.selector, params, model, estimator)


def _add_decode_args(p):
    p.add_argument("--model", help="model directory (default: the shipped checkpoints/sudoku)")
    p.add_argument("--selector", default="sequential", help="selector name (see mdmi.SELECTORS)")
    p.add_argument("--estimator", help="MI head for mi_budget / dependency_bound (default: <model>/estimator)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="selector parameter, repeatable (e.g. --param order=entropy)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0, help="seed for temperature sampling")


def cmd_solve(args):
    import torch

    from .tasks import sudoku

    model = load(_default_model(args.model))
    p = sudoku.Puzzle("".join(map(str, sudoku.parse(args.puzzle))))
    res = sudoku.evaluate(model, [p], _selector(args, model), temperature=args.temperature,
                          generator=torch.Generator().manual_seed(args.seed))
    out = res["outputs"][0]
    print(sudoku.pretty(out))
    print(f"valid: {res['solved'][0]}   NFE: {res['mean_nfe']:.0f}   blanks: {p.puzzle.count('0')}")


def cmd_eval_sudoku(args):
    import torch

    from .tasks import sudoku

    model = load(_default_model(args.model))
    puzzles = sudoku.read_puzzles(args.puzzles)
    if args.limit:
        puzzles = puzzles[: args.limit]
    res = sudoku.evaluate(model, puzzles, _selector(args, model), batch_size=args.batch_size,
                          temperature=args.temperature, generator=torch.Generator().manual_seed(args.seed),
                          progress=True)
    lo, hi = res["solve_rate_ci95"]
    print(f"puzzles: {res['n']} (mean blanks {res['mean_blanks']:.1f})  selector: {args.selector} {args.param or ''}")
    print(f"solve rate: {100 * res['solve_rate']:.1f}%  (95% CI {100 * lo:.1f}-{100 * hi:.1f})")
    print(f"cell accuracy: {100 * res['cell_accuracy']:.2f}%   mean NFE: {res['mean_nfe']:.2f}")
    print(f"time: {res['seconds']:.1f}s  ({res['puzzles_per_s']:.1f} puzzles/s)")
    if args.json:
        row = {k: v for k, v in res.items() if k not in ("outputs", "solved")}
        row.update(selector=args.selector, params=args.param or [], puzzles=str(args.puzzles),
                   model=_default_model(args.model))
        Path(args.json).write_text(json.dumps(row, indent=2) + "\n")


def cmd_generate_puzzles(args):
    from .tasks import sudoku

    puzzles = sudoku.generate(args.n, args.givens, args.seed, split=args.split, progress=True)
    sudoku.write_puzzles(args.out, puzzles)
    g = sum(81 - p.puzzle.count("0") for p in puzzles) / len(puzzles)
    print(f"wrote {len(puzzles)} puzzles (mean givens {g:.1f}) to {args.out}")


# ---------------------------------------------------------------- labels


def cmd_label(args):
    from .labels import LabelConfig, dist_env, write_labels, write_manifest
    from .tasks import clean_sampler

    rank, world = dist_env()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    model = load(_default_model(args.model))
    cfg = _pick(args, LabelConfig)
    spec = {"model": _model_ref(_default_model(args.model)), "task": args.task,
            "fasta": f"sha256:{_file_digest(args.fasta)}" if args.fasta else None}
    t0 = time.time()
    sampler = clean_sampler(args.task, cfg.seed, model=model, fasta=args.fasta)
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


def cmd_train_hmm(args):
    from dataclasses import asdict

    import torch

    from .tasks.hmm import HMM, HMMConfig
    from .train import TrainConfig, train
    from .transformer import MaskedTransformer, MDMConfig

    hcfg = HMMConfig(**{f.name: getattr(args, "hmm_seed" if f.name == "seed" else f.name) for f in fields(HMMConfig)})
    hmm = HMM(hcfg)
    mcfg = _pick(args, MDMConfig, vocab_size=hcfg.n_symbols, seq_len=hcfg.length, grid=0)
    tcfg = _pick(args, TrainConfig)
    torch.manual_seed(tcfg.seed)
    model = MaskedTransformer(mcfg)
    extra = {"task": "hmm", "hmm": asdict(hcfg), "command": " ".join(sys.argv)}
    train(model, hmm.sample, tcfg, args.out, resume=args.resume, extra=extra)
    print(f"saved {args.out}", file=sys.stderr)


# ---------------------------------------------------------------- likelihood


def read_sequences(path, model) -> "torch.Tensor":
    """One sequence per line: a Sudoku grid (81 characters) for Sudoku models, else token
    ids separated by spaces. Errors name the line."""
    import torch

    from .tasks import sudoku

    task = getattr(model, "meta", {}).get("task")
    text = Path(path).read_text()
    if text.lstrip().startswith(">"):
        if not hasattr(model, "encode"):
            raise ValueError(f"{path} is FASTA, but this model has no tokenizer (use a Hugging Face model)")
        from .tasks.protein import read_fasta

        limit = model.max_length - 2 if getattr(model, "max_length", None) else None
        return model.encode([s for _, s in read_fasta(path, max_length=limit)])
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if task == "sudoku":
                grid = line.split()[-1]  # 'puzzle solution' lines: score the solution
                if "0" in grid or "." in grid:
                    raise ValueError("a grid to score must be complete (no blanks)")
                rows.append(sudoku.encode(grid, model.mask_id))
            else:
                ids = [int(t) for t in line.replace(",", " ").split()]
                bad = [t for t in ids if not 0 <= t < model.vocab_size or t == model.mask_id]
                if bad:
                    raise ValueError(f"unknown token ids {sorted(set(bad))[:5]} (vocab_size={model.vocab_size})")
                rows.append(torch.tensor(ids))
        except ValueError as e:
            raise ValueError(f"{path}:{n}: {e}") from None
    if not rows:
        raise ValueError(f"{path}: no sequences found")
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise ValueError(f"{path}: sequences must share one length, got lengths {sorted(lengths)}")
    return torch.stack(rows)


def cmd_nll(args):
    import torch
    from tqdm import tqdm

    from .likelihood import nll

    model = load(args.model)
    x = read_sequences(args.input, model)
    g = torch.Generator().manual_seed(args.seed)
    rows = []
    for s in tqdm(range(0, len(x), args.chunk), desc="nll", unit="chunk"):
        r = nll(model, x[s: s + args.chunk], samples=args.samples, method=args.method, generator=g)
        rows += list(zip(r.nll.tolist(), r.per_token.tolist(), r.stderr.tolist()))
    print(f"{'seq':>5s} {'nll (nats)':>12s} {'nats/token':>11s} {'stderr':>8s}")
    for i, (a, b, c) in enumerate(rows):
        print(f"{i:5d} {a:12.3f} {b:11.4f} {c:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps([{"nll": a, "nats_per_token": b, "stderr": c} for a, b, c in rows]) + "\n")


# ---------------------------------------------------------------- the neural estimator


def cmd_train_estimator(args):
    from .estimator import EstimatorConfig
    from .labels import dist_env, load_labels
    from .train_estimator import EstimatorTrainConfig, train_estimator

    rank, world = dist_env()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    model_dir = _default_model(args.model)
    model = load(model_dir)
    labels = load_labels(args.labels)
    ecfg = _pick(args, EstimatorConfig, d_hidden=int(model(labels["tokens"][:1]).hidden.shape[-1]))
    tcfg = _pick(args, EstimatorTrainConfig)
    extra = {"model": _model_ref(model_dir), "labels": str(Path(args.labels).resolve()),
             "command": " ".join(sys.argv)}
    summary = train_estimator(model, labels, ecfg, tcfg, args.out, rank=rank, world=world, extra=extra)
    if rank == 0:
        print(f"best held-out loss {summary['best_heldout_loss']:.4f} after {len(summary['history'])} epochs, "
              f"{summary['train_contexts']} train / {summary['heldout_contexts']} held-out contexts, "
              f"{summary['seconds']:.0f}s; saved {args.out}")
    if world > 1:
        dist.destroy_process_group()


def cmd_eval_estimator(args):
    import torch

    from .estimator import Estimator
    from .labels import load_labels
    from .tasks import sudoku
    from .train_estimator import evaluate_estimator

    model = load(_default_model(args.model))
    est = Estimator.load(args.estimator)
    labels = load_labels(args.labels)
    idx = None
    if not args.all and Path(est.meta.get("labels", "")) == Path(args.labels).resolve():
        idx = torch.tensor(est.meta["heldout"])  # the estimator's own held-out contexts
    same = sudoku.same_unit() if labels["tokens"].shape[1] == 81 and args.task == "sudoku" else None
    res = evaluate_estimator(est, model, labels, idx, same_unit=same)
    o = res["overall"]
    print(f"contexts {res['contexts']} ({'held-out split' if idx is not None else 'all'}), pairs {o['pairs']}")
    print(f"Spearman {o['spearman']:.4f}  Pearson {o['pearson']:.4f}  MAE {o['mae_nats']:.2e} nats")
    for k, v in o.items():
        if k.startswith("eps="):
            print(f"  MI > {k[4:]:6s} precision {v['precision']:.3f} recall {v['recall']:.3f} F1 {v['f1']:.3f}")
    for b, v in res["by_mask_ratio"].items():
        if "spearman" in v:
            print(f"  mask ratio {b}: pairs {v['pairs']:8d} Spearman {v['spearman']:.4f} MAE {v['mae_nats']:.2e}")
    if same is not None:
        print(f"structure AUC (same row/col/box vs other): predicted {res['structure_auc_predicted']:.4f}, "
              f"exact labels {res['structure_auc_exact']:.4f}")
        for floor, a in res.get("structure_auc_uncertain", {}).items():
            print(f"  both cells' entropy > {floor} nats ({a['pairs']} pairs): predicted {a['predicted']:.4f}, "
                  f"exact labels {a['exact']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


def _default_estimator(path, model_dir):
    """--estimator, else ``<model>/estimator`` when it exists, else None."""
    if path:
        return path
    cand = Path(model_dir) / "estimator"
    return str(cand) if (cand / "config.json").is_file() else None


def cmd_mi(args):
    import torch

    from .estimator import Estimator
    from .mi import exact_mi
    from .tasks import sudoku

    model_dir = _default_model(args.model)
    model = load(model_dir)
    grid = 0
    if args.fasta:
        x = _masked_protein(model, args.fasta, args.mask_frac, args.seed)
    elif args.puzzle:
        x, grid = sudoku.encode(args.puzzle, model.mask_id)[None], 9
    else:
        raise ValueError("give a Sudoku puzzle or --fasta FILE")
    res = exact_mi(model, x, progress=True)
    est_dir = _default_estimator(args.estimator, model_dir)
    pred = None
    if est_dir:
        from .interface import allowed_tokens, masked_log_probs

        with torch.no_grad():
            out = model(x)
            pred = Estimator.load(est_dir).predict(out.hidden, res.masked, "mi",
                                                   log_probs=masked_log_probs(out.logits, allowed_tokens(model)))[0].double()
    masked = res.masked[0].nonzero().squeeze(1)
    if len(masked) < 2:
        raise ValueError("the puzzle needs at least two blanks for pairwise MI")
    cell = args.cell if args.cell is not None else int(masked[0])
    m = res.mi[0]
    L = m.shape[0]
    pair = res.masked[0][:, None] & res.masked[0][None, :] & ~torch.eye(L, dtype=torch.bool)
    print(f"masked positions {len(masked)}; exact MI cost {int(res.passes[0])} model passes")
    if grid:
        same = sudoku.same_unit()
        print(f"mean exact MI: same row/col/box {m[pair & same].mean():.4f} nats, other pairs {m[pair & ~same].mean():.4f}")
    else:
        top = (m * pair).flatten().topk(min(5, int(pair.sum()))).indices
        print("strongest pairs: " + ", ".join(f"({int(t) // L},{int(t) % L}) {m.flatten()[t]:.3f}" for t in top))
    if pred is not None:
        from .stats import spearman

        print(f"estimator ({est_dir}): Spearman vs exact over masked pairs {spearman(pred[pair], m[pair]):.3f}")
    if args.plot:
        from .plots import mi_maps

        mi_maps(m.float(), None if pred is None else pred.float(), args.plot, cell=cell, grid=grid,
                title=(args.puzzle or args.fasta)[:40])
        print(f"wrote {args.plot}")


def _masked_protein(model, fasta, frac, seed):
    """The first FASTA record, encoded, with a seeded random ``frac`` of residues masked."""
    import torch

    from .interface import scorable
    from .tasks.protein import read_fasta

    limit = model.max_length - 2 if getattr(model, "max_length", None) else None
    x = model.encode([read_fasta(fasta, max_length=limit)[0][1]])
    g = torch.Generator().manual_seed(seed)
    hide = (torch.rand(x.shape, generator=g) < frac) & scorable(model, x)
    return torch.where(hide, torch.full_like(x, model.mask_id), x)


def cmd_generate_protein(args):
    import torch

    from .decode import decode
    from .tasks.protein import write_fasta

    model = load(args.model)
    if not hasattr(model, "encode"):
        raise ValueError("generate protein needs a Hugging Face masked LM (--model hf:<id or dir>)")
    x = model.encode(["A" * args.length] * args.n)
    x = torch.where(model.fixed(x), x, torch.full_like(x, model.mask_id))
    g = torch.Generator().manual_seed(args.seed)
    res = decode(model, x, _selector(args, model), generator=g, temperature=args.temperature)
    seqs = model.decode_tokens(res.tokens)
    write_fasta(args.out, [(f"sample{i} nfe={int(n)}", s) for i, (s, n) in enumerate(zip(seqs, res.nfe))])
    print(f"wrote {len(seqs)} sequences of length {args.length} to {args.out}; mean NFE {res.nfe.double().mean():.1f}")


def cmd_bench_sudoku(args):
    from . import bench
    from .estimator import Estimator
    from .tasks import sudoku

    model_dir = _default_model(args.model)
    model = load(model_dir)
    puzzles = sudoku.read_puzzles(args.puzzles)[: args.limit or None]
    est_dir = _default_estimator(args.estimator, model_dir)
    estimator = Estimator.load(est_dir) if est_dir else None
    names = args.selectors.split(",") if args.selectors else bench.selector_names(bench.SWEEPS, estimator is not None)
    rows = bench.run_sudoku(model, puzzles, names, estimator, batch_size=args.batch_size, sweep=args.sweep)
    _report_sudoku(rows, args.json, args.plot)


def _report_sudoku(rows, json_path, plot_path):
    """Table, equal-NFE comparison, sequential match; JSON/CSV/plot when json_path is given."""
    from . import bench

    bench.print_table(rows)
    have = {r["selector"] for r in rows}
    cmp = None
    if {"sequential", "mi_budget", "entropy_bound"} <= have:
        cmp = bench.equal_nfe(rows)
        bench.print_equal_nfe(cmp)
        s = bench.sequential_row(rows)
        ok = bench.sequential_match(rows)
        print(f"mi_budget within 1 point of sequential ({100 * s['solve_rate']:.1f}%) at <= 1/4 of its NFE "
              f"({s['mean_nfe'] / 4:.2f}): " + (", ".join(f"{r['params']} {100 * r['solve_rate']:.1f}% at "
                                                         f"{r['mean_nfe']:.2f}" for r in ok) or "none"))
    if json_path:
        bench.write(rows, json_path, plot_path)
        if cmp is not None:
            side = Path(json_path).with_name(Path(json_path).stem + "_equal_nfe.json")
            side.write_text(json.dumps(cmp, indent=2) + "\n")
        print(f"wrote {json_path} (+ .csv{', _equal_nfe.json' if cmp is not None else ''})"
              f"{' and ' + plot_path if plot_path else ''}")


def cmd_bench_merge(args):
    """Rows of several bench sudoku runs on the same puzzles, reported as one."""
    from . import bench

    rows, seen = [], set()
    for f in args.inputs:
        for r in json.loads(Path(f).read_text()):
            key = (r["selector"], json.dumps(r["params"], sort_keys=True))
            if key in seen:
                raise ValueError(f"{f}: {r['selector']} {r['params']} appears in more than one input")
            seen.add(key)
            rows.append(r)
    ns = {r["n"] for r in rows}
    if len(ns) > 1:
        raise ValueError(f"inputs were run on different puzzle counts {sorted(ns)}; merge runs on the same puzzles")
    first = {name: k for k, name in reversed(list(enumerate(r["selector"] for r in rows)))}
    rows.sort(key=lambda r: first[r["selector"]])  # stable: each selector's rows together, in input order
    _report_sudoku(bench.add_reduction(rows), args.json, args.plot)


def cmd_bench_hmm(args):
    from . import bench
    from .estimator import Estimator
    from .tasks.hmm import HMM, HMMConfig

    model = load(args.model)
    if getattr(model, "meta", {}).get("task") != "hmm":
        raise ValueError(f"{args.model} was not trained on an HMM (train one with 'mdmi train hmm')")
    hmm = HMM(HMMConfig(**model.meta["hmm"]))
    est_dir = _default_estimator(args.estimator, args.model)
    estimator = Estimator.load(est_dir) if est_dir else None
    names = args.selectors.split(",") if args.selectors else bench.selector_names(bench.HMM_SWEEPS, estimator is not None)
    rows = bench.run_hmm(model, hmm, names, n=args.n, estimator=estimator, seed=args.seed, sweep=args.sweep)
    bench.print_hmm_table(rows)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    from .estimator import EstimatorConfig
    from .labels import LabelConfig
    from .tasks.hmm import HMMConfig
    from .train_estimator import EstimatorTrainConfig
    from .train import TrainConfig
    from .transformer import MDMConfig

    p = argparse.ArgumentParser(prog="mdmi", description=__doc__)
    p.add_argument("--device", default="cpu", help="hf: models only: where the model runs (cpu, cuda)")
    p.add_argument("--dtype", help="hf: models only: e.g. bfloat16")
    p.add_argument("--trust-remote-code", action="store_true", help="hf: models only; off unless given")
    sub = p.add_subparsers(dest="cmd", required=True)

    tr = sub.add_parser("train", help="train our transformer MDM on a task")
    tsub = tr.add_subparsers(dest="task", required=True)
    ts = tsub.add_parser("sudoku", help="train on augmented random Sudoku grids")
    ts.add_argument("--out", required=True, help="checkpoint directory")
    ts.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    ts.add_argument("--base-grids", type=int, default=20000, help="distinct base grids before augmentation")
    _add_dataclass_args(ts, MDMConfig, skip=("vocab_size", "seq_len", "grid"))
    _add_dataclass_args(ts, TrainConfig)
    ts.set_defaults(func=cmd_train_sudoku)

    th = tsub.add_parser("hmm", help="train on samples of a fixed seeded HMM")
    th.add_argument("--out", required=True, help="checkpoint directory")
    th.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    for f in fields(HMMConfig):
        name = "hmm-seed" if f.name == "seed" else f.name.replace("_", "-")
        th.add_argument(f"--{name}", type=type(f.default), default=f.default, help=f"HMM {f.name}")
    _add_dataclass_args(th, MDMConfig, skip=("vocab_size", "seq_len", "grid"))
    _add_dataclass_args(th, TrainConfig)
    th.set_defaults(func=cmd_train_hmm)

    nl = sub.add_parser("nll", help="estimate -log p(x) per sequence (I-MDCE time-free by default)")
    nl.add_argument("--model", required=True)
    nl.add_argument("--input", required=True, help="one sequence per line (token ids, or Sudoku grids)")
    nl.add_argument("--samples", type=int, default=128, help="model passes per sequence")
    nl.add_argument("--method", default="time_free", choices=["time_free", "time_integral"])
    nl.add_argument("--seed", type=int, default=0)
    nl.add_argument("--chunk", type=int, default=16, help="sequences per progress step")
    nl.add_argument("--json", help="write the per-sequence figures here")
    nl.set_defaults(func=cmd_nll)

    te = sub.add_parser("train-estimator", help="train the neural MI head on label shards (torchrun-aware)")
    te.add_argument("--model", help="the frozen model (default: the shipped checkpoints/sudoku)")
    te.add_argument("--labels", required=True, help="label directory written by 'mdmi label'")
    te.add_argument("--out", required=True)
    _add_dataclass_args(te, EstimatorConfig, skip=("d_hidden",))
    _add_dataclass_args(te, EstimatorTrainConfig)
    te.set_defaults(func=cmd_train_estimator)

    ee = sub.add_parser("eval-estimator", help="Spearman, MAE, P/R/F1 and structure AUC on held-out labels")
    ee.add_argument("--model", help="the frozen model (default: the shipped checkpoints/sudoku)")
    ee.add_argument("--estimator", required=True)
    ee.add_argument("--labels", required=True)
    ee.add_argument("--task", default="sudoku")
    ee.add_argument("--all", action="store_true", help="score every context, not only the held-out split")
    ee.add_argument("--json")
    ee.set_defaults(func=cmd_eval_estimator)

    mi = sub.add_parser("mi", help="exact (and predicted) MI of a Sudoku puzzle or a protein, with a picture")
    mi.add_argument("puzzle", nargs="?", help="a Sudoku puzzle (or use --fasta)")
    mi.add_argument("--fasta", help="protein: the first record, with --mask-frac of residues masked")
    mi.add_argument("--mask-frac", type=float, default=0.3)
    mi.add_argument("--seed", type=int, default=0)
    mi.add_argument("--model")
    mi.add_argument("--estimator", help="default: <model>/estimator when present")
    mi.add_argument("--cell", type=int, help="cell (0..80) for the board heat map; default: first blank")
    mi.add_argument("--plot", help="write the picture here (PNG)")
    mi.set_defaults(func=cmd_mi)

    be = sub.add_parser("bench", help="decoding benchmark: every selector over its knob")
    bsub = be.add_subparsers(dest="task", required=True)
    bs = bsub.add_parser("sudoku")
    bs.add_argument("--puzzles", required=True)
    bs.add_argument("--model")
    bs.add_argument("--estimator", help="default: <model>/estimator when present")
    bs.add_argument("--selectors", help="comma-separated subset (default: all that can run but the oracles); "
                    "name:knob=v1/v2 runs those knob values, +knob=v fixes another, e.g. mi_budget:gamma=0.1/1+eta=0")
    bs.add_argument("--sweep", action="store_true", help="sweep each selector's knob (else its first setting)")
    bs.add_argument("--limit", type=int, default=0)
    bs.add_argument("--batch-size", type=int, default=256)
    bs.add_argument("--json")
    bs.add_argument("--plot", help="Pareto plot path (PNG), written with --json")
    bs.set_defaults(func=cmd_bench_sudoku)

    gn = sub.add_parser("generate", help="sample sequences with any selector")
    gsub = gn.add_subparsers(dest="task", required=True)
    gpr = gsub.add_parser("protein", help="protein sequences from a Hugging Face masked LM, written as FASTA")
    gpr.add_argument("--length", type=int, required=True)
    gpr.add_argument("--n", type=int, default=4)
    gpr.add_argument("--out", required=True)
    _add_decode_args(gpr)
    gpr.set_defaults(func=cmd_generate_protein, temperature=1.0)

    bm = bsub.add_parser("merge", help="report several 'bench sudoku' JSON files on the same puzzles as one")
    bm.add_argument("inputs", nargs="+")
    bm.add_argument("--json")
    bm.add_argument("--plot")
    bm.set_defaults(func=cmd_bench_merge)

    bh = bsub.add_parser("hmm", help="unconditional samples scored by the exact HMM")
    bh.add_argument("--model", default=str(DEFAULT_SUDOKU.parent / "hmm"))
    bh.add_argument("--estimator")
    bh.add_argument("--selectors", help="as for bench sudoku")
    bh.add_argument("--sweep", action="store_true")
    bh.add_argument("--n", type=int, default=1000, help="samples per setting")
    bh.add_argument("--seed", type=int, default=0)
    bh.add_argument("--json")
    bh.set_defaults(func=cmd_bench_hmm)

    so = sub.add_parser("solve", help="solve one Sudoku puzzle and print the grid and NFE")
    so.add_argument("puzzle", help="81 characters, 1-9 givens, 0 or . blanks")
    _add_decode_args(so)
    so.set_defaults(func=cmd_solve)

    ev = sub.add_parser("eval", help="evaluate a model on a task")
    esub = ev.add_subparsers(dest="task", required=True)
    es = esub.add_parser("sudoku", help="solve rate, NFE and cell accuracy on a puzzle file")
    es.add_argument("--puzzles", required=True, help="file: one puzzle, or 'puzzle solution', per line")
    es.add_argument("--json", help="write the metrics here")
    es.add_argument("--batch-size", type=int, default=256)
    es.add_argument("--limit", type=int, default=0, help="use only the first N puzzles (0 = all)")
    _add_decode_args(es)
    es.set_defaults(func=cmd_eval_sudoku)

    gp = sub.add_parser("generate-puzzles", help="unique-solution Sudoku puzzles with their solutions")
    gp.add_argument("--n", type=int, default=1000)
    gp.add_argument("--givens", type=int, default=34, help="clues to keep; 0 = minimal puzzles (~24-26)")
    gp.add_argument("--seed", type=int, default=0)
    gp.add_argument("--split", default="test", help="random stream; 'train' grids are used for training")
    gp.add_argument("--out", required=True)
    gp.set_defaults(func=cmd_generate_puzzles)

    lb = sub.add_parser("label", help="contexts + exact MI labels, in shards (torchrun-aware)")
    lb.add_argument("--model", help="model directory (default: the shipped checkpoints/sudoku)")
    lb.add_argument("--task", default="sudoku", choices=["sudoku", "protein", "hmm"], help="where clean data comes from")
    lb.add_argument("--fasta", help="sequences for --task protein")
    lb.add_argument("--out", required=True, help="label directory (a rerun resumes it)")
    _add_dataclass_args(lb, LabelConfig)
    lb.set_defaults(func=cmd_label)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    HF_OPTIONS.clear()
    HF_OPTIONS.update(device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"mdmi {args.cmd}: error: {e}")


if __name__ == "__main__":
    main()
