"""``mdmi generate protein`` and ``mdmi generate text``: sample sequences or answer prompts with any selector."""

from __future__ import annotations

from .common import add_block_args, add_decode_args, check_positive, load, require_model, require_protein, selector_from_args


def cmd_generate_protein(args):
    import torch

    from ..decode import decode
    from ..tasks.protein import write_fasta

    from tqdm import tqdm

    check_positive(args, "length", "n", "batch_size")
    model = require_protein(load(args.model, args), "generate protein")
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


def read_prompts(args) -> list[str]:
    """--prompt (repeatable) and --prompts FILE (one prompt per line; ``prompt<TAB>reference``
    lines keep the prompt)."""
    from pathlib import Path

    prompts = list(args.prompt or [])
    if args.prompts:
        lines = Path(args.prompts).read_text().splitlines()
        prompts += [ln.split("\t")[0] for ln in lines if ln.strip()]
    if not prompts:
        raise ValueError("give --prompt TEXT (repeatable) or --prompts FILE")
    return prompts


def cmd_generate_text(args):
    import json

    import torch

    from ..tasks.text import generate

    check_positive(args, "gen_length", "batch_size")
    prompts = read_prompts(args)
    model = load(args.model, args)
    selector = selector_from_args(args, model)
    outs = generate(model, prompts, selector, gen_length=args.gen_length, block_length=args.block_length,
                    steps_per_block=args.steps_per_block, temperature=args.temperature,
                    generator=torch.Generator().manual_seed(args.seed), batch_size=args.batch_size, progress=True,
                    prefix_cache=args.prefix_cache)
    for g in outs:
        print(f"{g.prompt}{g.text}\t[NFE {g.nfe}, {g.tokens_per_pass:.2f} tokens/pass]")
    nfe = sum(g.nfe for g in outs) / len(outs)
    tpp = sum(g.tokens_per_pass for g in outs) / len(outs)
    print(f"{len(outs)} prompts; mean NFE {nfe:.2f}; mean tokens per forward pass {tpp:.2f} "
          f"(gen_length {args.gen_length}, block_length {args.block_length or args.gen_length})")
    if args.json:
        from .common import provenance

        rows = [{"prompt": g.prompt, "text": g.text, "nfe": g.nfe, "eos_filled": g.eos_filled,
                 "tokens_per_pass": g.tokens_per_pass} for g in outs]
        with open(args.json, "w") as f:
            json.dump({"selector": args.selector, "params": args.param or [], "gen_length": args.gen_length,
                       "block_length": args.block_length, "steps_per_block": args.steps_per_block,
                       "temperature": args.temperature, "seed": args.seed, "mean_nfe": nfe,
                       "mean_tokens_per_pass": tpp, "rows": rows, "provenance": provenance(args)}, f, indent=2)
            f.write("\n")


def add_parsers(sub) -> None:
    gn = sub.add_parser("generate", help="sample sequences with any selector")
    gsub = gn.add_subparsers(dest="task", required=True)
    gpr = gsub.add_parser("protein", help="protein sequences from a Hugging Face masked LM, written as FASTA")
    gpr.add_argument("--length", type=int, required=True, help="residues per sequence")
    gpr.add_argument("--n", type=int, default=4, help="sequences to generate")
    gpr.add_argument("--out", required=True, help="FASTA file to write")
    gpr.add_argument("--batch-size", type=int, default=32, help="sequences decoded together")
    add_decode_args(gpr)
    require_model(gpr, "protein masked LM: antiberty, sapiens:vh, sapiens:vl or hf:<id or dir>")
    gpr.set_defaults(func=cmd_generate_protein, temperature=1.0)

    gtx = gsub.add_parser("text", help="answer prompts with a diffusion LLM: prompt, blocks, EOS, padded batches",
                          epilog="example: mdmi generate text --model DIR --prompt '12+30=' --gen-length 32 "
                                 "--block-length 8 --selector threshold --param tau=0.9")
    gtx.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    gtx.add_argument("--prompts", help="file of prompts, one per line (prompt<TAB>reference lines allowed)")
    gtx.add_argument("--gen-length", type=int, default=32, help="generated positions per prompt (EOS-padded)")
    add_block_args(gtx)
    gtx.add_argument("--steps-per-block", type=int, help="cap on passes per block (default: no cap)")
    gtx.add_argument("--batch-size", type=int, default=64, help="prompts decoded together (left-padded)")
    gtx.add_argument("--json", help="write the answers and their NFE here")
    add_decode_args(gtx)
    require_model(gtx, "a text dLLM: an mdmi text checkpoint or hf:<id or dir>")
    gtx.set_defaults(func=cmd_generate_text)
