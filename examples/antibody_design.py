"""Antibody CDR3 design with a real pretrained antibody LM: sequential vs the MI budget.

Sapiens VH (from its pip wheel) with the MI head shipped for it: trastuzumab's CDR3 is
masked (``data/trastuzumab_vh.fasta``, spans in the header) and refilled greedily, once
one residue per pass and once with the MI budget, which reads the pairwise MI of the
masked residues from the head on the same pass (no extra pass). Printed: the passes
(NFE), the designed CDR3 and its pseudo-log-likelihood under the same model (nats per
residue, higher is better). One sequence: a demonstration, not a benchmark (see
``mdmi bench antibody``).

    python examples/antibody_design.py    # a few seconds; needs Sapiens:
    pip install '.[antibody]' && pip install --no-deps sapiens==1.0.5
"""

import argparse
from pathlib import Path

import mdmi
from mdmi.likelihood import pseudo_log_likelihood
from mdmi.tasks.antibody import masked_batch, read_antibody_fasta

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fasta", default=str(ROOT / "data" / "trastuzumab_vh.fasta"), help="VH records with cdr3=A-B")
    ap.add_argument("--gamma", type=float, default=0.1, help="MI budget in nats (eta=0: dependence alone)")
    args = ap.parse_args()
    try:
        model = mdmi.load("sapiens:vh")  # its weights, read from the wheel without importing it
    except ImportError as e:  # one line saying what to install
        print(f"skipped: {e}")
        return
    head = mdmi.load_estimator("sapiens:vh")  # the MI head shipped for it
    record = read_antibody_fasta(args.fasta)[0]
    a, b = record.spans["cdr3"]
    x, _ = masked_batch(model, [record], "cdr3")  # (1, L) with start/end tokens
    hidden = x == model.mask_id
    print(f"{record.name}: CDR3 {record.sequence[a:b]} ({b - a} residues masked)")
    for name, sel in [("sequential", mdmi.make_selector("sequential")),
                      ("mi_budget", mdmi.make_selector("mi_budget", estimator=head, gamma=args.gamma, eta=0.0))]:
        res = mdmi.decode(model, x, sel)
        pll = pseudo_log_likelihood(model, res.tokens, positions=hidden)[hidden].mean()
        cdr3 = "".join(model.decode_tokens(res.tokens)[0][a:b])
        print(f"{name:10s} NFE {int(res.nfe[0]):2d}  CDR3 {cdr3}  PLL {pll:.3f} nats/residue")


if __name__ == "__main__":
    main()
