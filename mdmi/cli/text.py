"""``mdmi generate-text`` (problem files of the text testbed) and ``mdmi eval text``."""

from __future__ import annotations

import json
from pathlib import Path

from .common import add_block_args, add_decode_args, check_positive, load, provenance, require_model, selector_from_args


def cmd_generate_text(args):
    from ..tasks import textbed

    check_positive(args, "n")
    tasks = textbed.TASKS if args.task == "all" else (args.task,)
    pairs = [pr for t in tasks for pr in textbed.problems(t, args.n, args.seed, args.split)]
    textbed.write_problems(args.out, pairs)
    print(f"wrote {len(pairs)} problems ({', '.join(tasks)}; {args.split} split, seed {args.seed}) to {args.out}")


def cmd_eval_text(args):
    from ..selectors import make_selector
    from ..tasks import textbed

    check_positive(args, "samples", "batch_size")
    pairs = textbed.read_problems(args.problems)
    if args.task != "all":
        pairs = [pr for pr in pairs if textbed.task_of(pr[0]) == args.task]
        if not pairs:
            raise ValueError(f"{args.problems} holds no {args.task} problems")
    model = load(args.model, args)
    selector = selector_from_args(args, model)
    kw = dict(block_length=args.block_length, temperature=args.temperature, samples=args.samples, seed=args.seed,
              batch_size=args.batch_size, progress=True, prefix_cache=args.prefix_cache)
    ref = None
    if args.samples > 1 and args.selector != "sequential":  # JSD to sequential's answers, same seed
        ref = textbed.evaluate(model, pairs, make_selector("sequential"), **kw)["answers"]
    res = textbed.evaluate(model, pairs, selector, reference=ref, **kw)
    lo, hi = res["validity_ci95"]
    print(f"{len(pairs)} problems x {args.samples}: validity {100 * res['validity']:.1f}% (95% CI {100 * lo:.1f}-"
          f"{100 * hi:.1f}); mean NFE {res['mean_nfe']:.2f}; tokens per pass {res['mean_tokens_per_pass']:.2f}")
    if "distinct_valid" in res:
        line = f"distinct valid answers per prompt: {100 * res['distinct_valid']:.1f}% of samples"
        if "jsd_to_reference" in res:
            line += f"; JSD to sequential's answers {res['jsd_to_reference']:.3f} nats"
        print(line)
    if args.json:
        row = {"selector": args.selector, "params": args.param or [], "task": args.task, "model": str(args.model),
               "problems": str(args.problems), "block_length": args.block_length, **res, "provenance": provenance(args)}
        Path(args.json).write_text(json.dumps(row, indent=2) + "\n")


def add_parsers(sub) -> None:
    from ..tasks.textbed import SPLITS, TASKS

    g = sub.add_parser("generate-text", help="problem files of the text testbed (prompt<TAB>reference per line)",
                       epilog="example: mdmi generate-text --task all --n 100 --split valid --out valid.tsv")
    g.add_argument("--task", choices=TASKS + ("all",), default="all", help="which task (all: the three)")
    g.add_argument("--n", type=int, default=100, help="problems per task")
    g.add_argument("--seed", type=int, default=0, help="seed of the problem stream")
    g.add_argument("--split", choices=SPLITS, default="test", help="disjoint splits (by the prompt's hash)")
    g.add_argument("--out", required=True, help="file to write")
    g.set_defaults(func=cmd_generate_text)


def add_eval_parser(esub) -> None:
    from ..tasks.textbed import TASKS

    et = esub.add_parser("text", help="validity of a text dLLM's answers (95% interval), NFE; sampled: diversity, JSD",
                         epilog="example: mdmi eval text --model DIR --problems test.tsv --block-length 8 "
                                "--selector threshold:tau=0.9")
    et.add_argument("--problems", required=True, help="prompt<TAB>reference file ('mdmi generate-text')")
    et.add_argument("--task", choices=TASKS + ("all",), default="all", help="score only this task's problems")
    add_block_args(et)
    et.add_argument("--samples", type=int, default=1, help="answers per prompt (with --temperature > 0)")
    et.add_argument("--batch-size", type=int, default=256, help="prompts decoded together")
    et.add_argument("--json", help="write the metrics and answers here")
    add_decode_args(et)
    require_model(et, "a text dLLM checkpoint ('mdmi train text')")
    et.set_defaults(func=cmd_eval_text)
