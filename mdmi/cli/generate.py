"""``mdmi generate protein``: sample sequences with any selector."""

from __future__ import annotations

from .common import add_decode_args, load, selector_from_args


def cmd_generate_protein(args):
    import torch

    from ..decode import decode
    from ..tasks.protein import write_fasta

    model = load(args.model)
    if not hasattr(model, "encode"):
        raise ValueError("generate protein needs a Hugging Face masked LM (--model hf:<id or dir>)")
    x = model.encode(["A" * args.length] * args.n)
    x = torch.where(model.fixed(x), x, torch.full_like(x, model.mask_id))
    g = torch.Generator().manual_seed(args.seed)
    res = decode(model, x, selector_from_args(args, model), generator=g, temperature=args.temperature)
    seqs = model.decode_tokens(res.tokens)
    write_fasta(args.out, [(f"sample{i} nfe={int(n)}", s) for i, (s, n) in enumerate(zip(seqs, res.nfe))])
    print(f"wrote {len(seqs)} sequences of length {args.length} to {args.out}; mean NFE {res.nfe.double().mean():.1f}")



def add_parsers(sub) -> None:
    gn = sub.add_parser("generate", help="sample sequences with any selector")
    gsub = gn.add_subparsers(dest="task", required=True)
    gpr = gsub.add_parser("protein", help="protein sequences from a Hugging Face masked LM, written as FASTA")
    gpr.add_argument("--length", type=int, required=True, help="residues per sequence")
    gpr.add_argument("--n", type=int, default=4, help="sequences to generate")
    gpr.add_argument("--out", required=True, help="FASTA file to write")
    add_decode_args(gpr)
    gpr.set_defaults(func=cmd_generate_protein, temperature=1.0)
