"""``mdmi bench sudoku|merge|hmm|antibody|text``: parse the flags, run :mod:`mdmi.bench`, print."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import (ESTIMATOR_DEFAULT, MODEL_HELP, SHIPPED, add_block_args, add_selector_arg, add_sweep_args,
                     check_positive,
                     default_estimator, default_model, load, load_estimator, provenance, require_protein, resolve_model,
                     selector_list)


def cmd_bench_sudoku(args):
    from .. import bench
    from ..tasks import sudoku

    check_positive(args, "batch_size")
    puzzles = sudoku.read_puzzles(args.puzzles)[: args.limit or None]
    sudoku.reference_solutions(puzzles)  # an unsolvable puzzle is refused before any decoding
    model_dir = default_model(args.model)
    model = load(model_dir, args)
    est_dir = default_estimator(args.estimator, model_dir)
    estimator = load_estimator(est_dir, model_dir, args) if est_dir else None
    names = selector_list(args) or bench.selector_names(bench.SWEEPS, estimator is not None)
    rows = bench.run_sudoku(model, puzzles, names, estimator, batch_size=args.batch_size, sweep=args.sweep)
    for r in rows:
        r.provenance = provenance(args)
    _report_sudoku(rows, args.json, args.plot, model=model_dir, task=f"Sudoku {Path(args.puzzles).name}")


def _report_sudoku(rows, json_path, plot_path, model: str, task: str):
    """Table, equal-NFE comparison, sequential match; JSON/CSV/plot when json_path is given."""
    from .. import bench

    bench.print_sudoku_table(rows)
    cmp = bench.sudoku_comparison(rows)
    if cmp is not None:
        bench.print_comparison(cmp)
        bench.print_sequential_match(rows)
    if json_path:
        written = bench.sudoku.write(rows, json_path, plot_path, cmp, model=model, task=task)
        print("wrote " + ", ".join(map(str, written)))


def cmd_bench_merge(args):
    """Rows of several bench sudoku runs on the same puzzles, reported as one."""
    from .. import bench

    rows = bench.sudoku.merge(args.inputs)
    _report_sudoku(rows, args.json, args.plot, model=bench.model_of(rows), task="Sudoku, merged runs")


def cmd_bench_hmm(args):
    from .. import bench
    from ..tasks.hmm import HMM, HMMConfig

    resolved = resolve_model(args.model, args)
    model = resolved.model
    if resolved.task != "hmm":
        raise ValueError(f"{args.model} was not trained on an HMM (train one with 'mdmi train hmm')")
    hmm = HMM(HMMConfig(**model.meta["hmm"]))
    est_dir = default_estimator(args.estimator, args.model)
    estimator = load_estimator(est_dir, args.model, args) if est_dir else None
    names = selector_list(args) or bench.selector_names(bench.HMM_SWEEPS, estimator is not None)
    rows = bench.run_hmm(model, hmm, names, n=args.n, estimator=estimator, seed=args.seed, sweep=args.sweep)
    bench.print_hmm_table(rows)
    for r in rows:
        r.provenance = provenance(args)
    if args.json:
        bench.write_rows(rows, args.json)


def cmd_bench_antibody(args):
    from .. import bench
    from ..tasks.antibody import read_antibody_fasta

    check_positive(args, "batch_size", "samples", "pll_samples")
    model = require_protein(load(args.model, args), "bench antibody")
    records = read_antibody_fasta(args.fasta, max_length=model.max_residues)[: args.limit or None]
    est_dir = default_estimator(args.estimator, args.model)  # the shipped head of a pretrained name
    estimator = load_estimator(est_dir, args.model, args) if est_dir else None
    names = selector_list(args) or bench.selector_names(bench.ANTIBODY_SWEEPS, estimator is not None)
    picked = {} if args.sweep else bench.picked_settings(estimator, args.task, args.temperature)
    if picked:
        print(f"settings picked on the valid split for {args.task} (recorded in {est_dir}); --sweep runs every "
              f"setting", file=sys.stderr)
    partial = Path(args.json).with_name(Path(args.json).stem + "_partial.json") if args.json else None

    def save_partial(rows):  # a killed run keeps every finished setting
        bench.write_rows(rows, partial)

    rows = bench.run_antibody(model, records, args.task, names, estimator, temperature=args.temperature,
                              samples=args.samples, seed=args.seed, batch_size=args.batch_size, sweep=args.sweep,
                              pll_samples=args.pll_samples, reference=args.reference, model_name=args.model,
                              on_row=save_partial if partial else None, block_length=args.block_length,
                              picked=picked)
    bench.print_antibody_table(rows)
    for r in rows:
        r.provenance = provenance(args)
    if args.json:  # the rows first: nothing after this may lose them
        bench.write_rows(rows, args.json)
        partial.unlink(missing_ok=True)
    cmps = bench.antibody_comparisons(rows)
    for c in cmps:
        bench.print_comparison(c)
    if args.json:
        mode = "greedy" if args.temperature == 0 else f"sampled at T={args.temperature:g}, {args.samples} samples"
        written = bench.antibody.write_analysis(rows, args.json, cmps, args.plot, model=args.model,
                                                task=f"{args.task}, {mode}")
        print("wrote " + ", ".join(map(str, [args.json, *written])))


def cmd_bench_text(args):
    from .. import bench
    from ..plots import pareto_plot
    from ..tasks import textbed

    check_positive(args, "batch_size", "samples")
    if args.samples > 1 and args.temperature == 0:
        raise ValueError("--samples > 1 needs --temperature > 0 (greedy answers are all the same)")
    pairs = textbed.read_problems(args.problems)
    if args.task != "all":
        pairs = [pr for pr in pairs if textbed.task_of(pr[0]) == args.task]
    pairs = pairs[: args.limit or None]
    if not pairs:
        raise ValueError(f"{args.problems} holds no {args.task} problems")
    model = load(args.model, args)
    est_dir = default_estimator(args.estimator, args.model)
    estimator = load_estimator(est_dir, args.model, args) if est_dir else None
    names = selector_list(args) or bench.selector_names(bench.TEXT_SWEEPS, estimator is not None)
    if args.prefix_cache and not selector_list(args):  # the prefix cache computes no whole-sequence attention
        names = [n for n in names if n != "dawn"]
    partial = Path(args.json).with_name(Path(args.json).stem + "_partial.json") if args.json else None
    rows = bench.run_text(model, pairs, names, estimator, block_length=args.block_length,
                          temperature=args.temperature, samples=args.samples, seed=args.seed,
                          batch_size=args.batch_size, sweep=args.sweep, prefix_cache=args.prefix_cache,
                          on_row=(lambda rs: bench.write_rows(rs, partial)) if partial else None)
    bench.print_text_table(rows)
    for r in rows:
        r.provenance = provenance(args)
    if args.json:
        bench.write_rows(rows, args.json)
        partial.unlink(missing_ok=True)
        print(f"wrote {args.json}")
    if args.plot:
        mode = "greedy" if args.temperature == 0 else f"T={args.temperature:g}, {args.samples} samples"
        blocks = f"blocks of {args.block_length}" if args.block_length else "one block"
        pareto_plot(bench.curve_rows(rows), args.plot, metric="validity", ylabel=bench.METRICS["validity"].label,
                    scale=100.0, xlabel=bench.NFE_LABEL["text"],
                    title=f"{Path(args.problems).name} · {mode} · {blocks} · n = {len(pairs)} prompts")
        print(f"wrote {args.plot}")


def add_parsers(sub) -> None:
    be = sub.add_parser("bench", help="decoding benchmark: every selector over its knob")
    bsub = be.add_subparsers(dest="task", required=True)
    bs = bsub.add_parser("sudoku", help="solve rate vs mean NFE of every selector over its knob on a puzzle file")
    bs.add_argument("--puzzles", required=True, help="puzzle file (one puzzle, or 'puzzle solution', per line)")
    bs.add_argument("--model", help=MODEL_HELP)
    bs.add_argument("--estimator", help=f"MI head of the MI-guided selectors (default: {ESTIMATOR_DEFAULT})")
    add_sweep_args(bs, "puzzles", 256)
    bs.add_argument("--json", help="write the rows here (+ .csv and _equal_nfe.json)")
    bs.add_argument("--plot", help="Pareto plot path (PNG), written with --json")
    bs.set_defaults(func=cmd_bench_sudoku)

    bm = bsub.add_parser("merge", help="report several 'bench sudoku' JSON files on the same puzzles as one")
    bm.add_argument("inputs", nargs="+", help="JSON files written by 'bench sudoku --json'")
    bm.add_argument("--json", help="write the merged rows here")
    bm.add_argument("--plot", help="Pareto plot path (PNG), written with --json")
    bm.set_defaults(func=cmd_bench_merge)

    ba = bsub.add_parser("antibody", help="fill CDR3 / all CDRs / whole domains of real antibodies with every "
                         "selector: NFE, recovery, PLL and (sampling) JSD to sequential")
    ba.add_argument("--model", required=True, help=", ".join(n for n, s in SHIPPED.items() if s.task == "antibody")
                    + " or hf:<id or dir>")
    ba.add_argument("--fasta", required=True, help="sequences with cdrN=A-B spans ('mdmi data antibodies')")
    ba.add_argument("--task", "--mask", dest="task", choices=["cdr3", "cdrs", "after_fr1", "denovo"], default="cdr3",
                    help="what is masked and filled (after_fr1: everything after the first framework region)")
    ba.add_argument("--block-length", type=int, help="decode in semi-autoregressive blocks of this many positions")
    add_sweep_args(ba, "sequences", 64)
    ba.add_argument("--estimator", help="MI head for the MI-guided selectors, trained for this model (default: the "
                                        "model's shipped head, e.g. mdmi/checkpoints/sapiens_vh/estimator)")
    ba.add_argument("--temperature", type=float, default=0.0, help="0 = greedy; 1 = sample (needs --samples >= 2)")
    ba.add_argument("--samples", type=int, default=1, help="samples per sequence when sampling (JSD)")
    ba.add_argument("--seed", type=int, default=0, help="seed of the random masks and samples")
    ba.add_argument("--pll-samples", type=int, default=4, help="samples per sequence whose PLL is scored (one "
                    "pass per filled residue each)")
    ba.add_argument("--reference", help="cache file (.pt) of the sequential row: written on the first run, reused "
                    "by later runs on the same model, sequences, task, seed and samples")
    ba.add_argument("--json", help="write the rows here (+ _equal_nfe.json); while running, the finished rows "
                    "are kept in <name>_partial.json")
    ba.add_argument("--plot", help="Pareto plot (PLL vs NFE) path, written with --json")
    ba.set_defaults(func=cmd_bench_antibody)

    bt = bsub.add_parser("text", help="validity vs mean NFE of every selector on a text-testbed problem file "
                         "(greedy or sampled, whole or in blocks)",
                         epilog="example: mdmi bench text --model DIR --problems valid.tsv --block-length 8 --sweep "
                                "--json valid_b8.json --plot valid_b8.png")
    bt.add_argument("--model", required=True, help="a text dLLM checkpoint ('mdmi train text')")
    bt.add_argument("--problems", required=True, help="prompt<TAB>reference file ('mdmi generate-text')")
    bt.add_argument("--task", choices=["add", "split", "perm", "all"], default="all", help="only this task's problems")
    bt.add_argument("--estimator", help="MI head of the MI-guided selectors (default: <model dir>/estimator)")
    add_sweep_args(bt, "prompts", 256)
    add_block_args(bt)
    bt.add_argument("--temperature", type=float, default=0.0, help="0 = greedy; 1 = sample (with --samples >= 2)")
    bt.add_argument("--samples", type=int, default=1, help="answers per prompt when sampling (diversity, JSD)")
    bt.add_argument("--seed", type=int, default=0, help="seed of the samples")
    bt.add_argument("--json", help="write the rows here (while running, finished rows go to <name>_partial.json)")
    bt.add_argument("--plot", help="Pareto plot (validity vs NFE) path")
    bt.set_defaults(func=cmd_bench_text)

    bh = bsub.add_parser("hmm", help="unconditional samples scored by the exact HMM")
    bh.add_argument("--model", default="hmm", help="a model trained with 'mdmi train hmm' (hmm: the shipped one)")
    bh.add_argument("--estimator", help=f"MI head of the MI-guided selectors (default: {ESTIMATOR_DEFAULT})")
    bh.add_argument("--selectors", help="as for bench sudoku")
    add_selector_arg(bh)
    bh.add_argument("--sweep", action="store_true", help="sweep each selector's knob (else its first setting)")
    bh.add_argument("--n", type=int, default=1000, help="samples per setting")
    bh.add_argument("--seed", type=int, default=0, help="seed of the samples")
    bh.add_argument("--json", help="write the rows here")
    bh.set_defaults(func=cmd_bench_hmm)
