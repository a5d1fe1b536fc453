"""``mdmi generate protein``: sample sequences with any selector."""

from __future__ import annotations

from .common import add_decode_args, check_positive, load, selector_from_args


def cmd_generate_protein(args):
    import torch

    from ..decode import decode
    from ..tasks.protein import write_fasta

    from tqdm import tqdm

    check_positive(args, "length", "n", "batch_size")
    model = load(args.model)
    if not hasattr(model, "encode"):
        raise ValueError("generate protein needs a protein masked LM (--model antiberty, sapiens:vh|vl or hf:<id>)")
    selector = selector_from_args(args, model)
    g = torch.Generator().manual_seed(args.seed)
    seqs, nfe = [], []
    for s in tqdm(range(0, args.n, args.batch_size), desc="generate", unit="batch"):
        x = model.encode(["A" * args.length] * min(args.batch_size, args.n - s))
        x = torch.where(model.fixed(x), x, torch.full_like(x, model.mask_id))
        res = decode(model, x, selector, generator=g, temperature=args.temperature)
        seqs += model.decode_tokens(res.tokens)
        nfe += res.nfe.tolist()
    write_fasta(args.out, [(f"sample{i} nfe={n}", s) for i, (s, n) in enumerate(zip(seqs, nfe))])
    print(f"wrote {len(seqs)} sequences of length {args.length} to {args.out}; mean NFE {sum(nfe) / len(nfe):.1f}")



def add_parsers(sub) -> None:
    gn = sub.add_parser("generate", help="sample sequences with any selector")
    gsub = gn.add_subparsers(dest="task", required=True)
    gpr = gsub.add_parser("protein", help="protein sequences from a Hugging Face masked LM, written as FASTA")
    gpr.add_argument("--length", type=int, required=True, help="residues per sequence")
    gpr.add_argument("--n", type=int, default=4, help="sequences to generate")
    gpr.add_argument("--out", required=True, help="FASTA file to write")
    gpr.add_argument("--batch-size", type=int, default=32, help="sequences decoded together")
    add_decode_args(gpr)
    for a in gpr._actions:
        if a.dest == "model":  # no shipped protein model to default to
            a.required, a.help = True, "protein masked LM: antiberty, sapiens:vh, sapiens:vl or hf:<id or dir>"
    gpr.set_defaults(func=cmd_generate_protein, temperature=1.0)
