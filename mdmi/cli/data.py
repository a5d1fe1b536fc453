"""``mdmi data antibodies``: real VH/VL sequences with CDR spans, written as FASTA."""

from __future__ import annotations

import argparse


def cmd_data_antibodies(args):
    from ..tasks.antibody import load_antibodies, write_antibody_fasta

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    records = load_antibodies(args.chain, args.split, n=args.n, seed=args.seed)
    write_antibody_fasta(args.out, records)
    mean_cdr3 = sum(b - a for a, b in (r.spans["cdr3"] for r in records)) / len(records)
    print(f"wrote {len(records)} {args.chain} sequences ({args.split} split, seed {args.seed}; "
          f"mean length {sum(len(r.sequence) for r in records) / len(records):.1f}, mean CDR3 {mean_cdr3:.1f}) "
          f"to {args.out}; AbNatiV data, CC BY-NC-SA 4.0: do not commit it")


def add_parsers(sub) -> None:
    da = sub.add_parser("data", help="write task data to files")
    dsub = da.add_subparsers(dest="task", required=True)
    ab = dsub.add_parser("antibodies", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                         help="real human VH/VL (AbNatiV 2.0.9 test sets) as FASTA with cdrN=START-END spans",
                         description="Real human antibody variable domains from the abnativ==2.0.9 wheel "
                                     "(read at run time; 'make antibody-data' fetches it), CDRs by AHo numbering.")
    ab.add_argument("--chain", choices=["vh", "vl"], default="vh", help="heavy or light chains")
    ab.add_argument("--split", choices=["train", "valid", "test"], default="test", help="80/10/10 split by --seed")
    ab.add_argument("--n", type=int, default=1000, help="records to write (the first n of the split)")
    ab.add_argument("--seed", type=int, default=0, help="seed of the split permutation")
    ab.add_argument("--out", required=True, help="FASTA file to write")
    ab.set_defaults(func=cmd_data_antibodies)
