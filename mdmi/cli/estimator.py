"""The neural MI head: ``mdmi train-estimator``, ``mdmi eval-estimator``."""

from __future__ import annotations

import json
from pathlib import Path

from ..files import read_json
from .common import (MODEL_HELP, add_dataclass_args, check_same_model, default_model, load, load_estimator, model_ref,
                     pick, provenance)


def cmd_train_estimator(args):
    from ..estimator import EstimatorConfig
    from ..files import claim_dir
    from ..labels import dist_env, label_status, load_labels
    from ..train_estimator import EstimatorTrainConfig, train_estimator

    rank, world = dist_env()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    claim_dir(args.out, overwrite=args.overwrite, what="estimator")
    tcfg = pick(args, EstimatorTrainConfig)
    have, want = label_status(args.labels)
    model_dir = default_model(args.model)
    spec = read_json(Path(args.labels) / "spec.json")
    check_same_model(spec.get("model"), model_dir, f"{args.labels} (labels)")
    labels = load_labels(args.labels, allow_partial=args.allow_partial)
    model = load(model_dir, args)
    ecfg = pick(args, EstimatorConfig, d_hidden=int(model(labels["tokens"][:1]).hidden.shape[-1]))
    extra = {"model": model_ref(model_dir), "labels": str(Path(args.labels).resolve()),
             "label_shards": f"{have}/{want}", "labels_partial": have < want, "command": " ".join(args.argv),
             "label_spec": spec}  # what made the labels (the path above is this machine's; the spec travels)
    summary = train_estimator(model, labels, ecfg, tcfg, args.out, rank=rank, world=world, extra=extra)
    if rank == 0:
        print(f"best held-out loss {summary.best_heldout_loss:.4f} after {len(summary.history)} epochs, "
              f"{summary.train_contexts} train / {summary.heldout_contexts} held-out contexts, "
              f"{summary.seconds:.0f}s; saved {args.out}")
    if world > 1:
        dist.destroy_process_group()


def cmd_eval_estimator(args):
    import torch

    from ..labels import load_labels
    from ..tasks import sudoku
    from ..train_estimator import evaluate_estimator

    est = load_estimator(args.estimator, default_model(args.model), args)
    model = load(default_model(args.model), args)
    labels = load_labels(args.labels)
    idx = None
    if not args.all and Path(est.meta.get("labels", "")) == Path(args.labels).resolve():
        idx = torch.tensor(est.meta["heldout"])  # the estimator's own held-out contexts
    same = sudoku.same_unit() if labels["tokens"].shape[1] == 81 and args.task == "sudoku" else None
    res = evaluate_estimator(est, model, labels, idx, same_unit=same, progress=True)
    o = res["overall"]
    print(f"contexts {res['contexts']} ({'held-out split' if idx is not None else 'all'}), pairs {o['pairs']}")
    lo, hi = o["spearman_ci95"]
    print(f"Spearman {o['spearman']:.4f} (95% CI {lo:.4f}-{hi:.4f}, contexts resampled)  Pearson {o['pearson']:.4f}  "
          f"MAE {o['mae_nats']:.2e} nats")
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
        Path(args.json).write_text(json.dumps({**res, "provenance": provenance(args)}, indent=2) + "\n")



def add_parsers(sub) -> None:
    from ..estimator import EstimatorConfig
    from ..train_estimator import EstimatorTrainConfig

    te = sub.add_parser("train-estimator", help="train the neural MI head on label shards (torchrun-aware)")
    te.add_argument("--model", help="the frozen model: " + MODEL_HELP)
    te.add_argument("--labels", required=True, help="label directory written by 'mdmi label'")
    te.add_argument("--out", required=True, help="directory for the trained head (refused if it holds files)")
    te.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    te.add_argument("--allow-partial", action="store_true",
                    help="train on a label set whose shards are not all written (recorded in the head's config)")
    add_dataclass_args(te, EstimatorConfig, skip=("d_hidden",))
    add_dataclass_args(te, EstimatorTrainConfig)
    te.set_defaults(func=cmd_train_estimator)

    ee = sub.add_parser("eval-estimator", help="Spearman, MAE, P/R/F1 and structure AUC on held-out labels")
    ee.add_argument("--model", help="the frozen model: " + MODEL_HELP)
    ee.add_argument("--estimator", required=True, help="trained head directory")
    ee.add_argument("--labels", required=True, help="label directory written by 'mdmi label'")
    ee.add_argument("--task", default="sudoku", help="sudoku adds the row/col/box structure AUC")
    ee.add_argument("--all", action="store_true", help="score every context, not only the held-out split")
    ee.add_argument("--json", help="write every figure here")
    ee.set_defaults(func=cmd_eval_estimator)
