"""A Hugging Face masked LM through mdmi: load it by name, map its MI, decode in parallel.

A tiny randomly initialised ESM (2 layers of 32, its vocabulary written by hand) is saved to
a temporary directory and loaded with ``mdmi.load("hf:<dir>")``, as a real checkpoint such
as ``hf:facebook/esm2_t6_8M_UR50D`` would be. No network. The script prints the strongest
exact pairwise MI among the masked residues of a short protein, then refills them with
sequential decoding, the confidence threshold and the MI budget on exact MI, charging
dependence alone (eta 0). There is no trained head for this model: ``pairwise="exact"``
costs extra passes, counted apart from NFE. The weights are random, so the numbers show
the machinery, not biology.

    python examples/huggingface_mlm.py    # a few seconds; needs pip install 'mdmi[hf]'
"""

import tempfile

import torch

import mdmi
from mdmi.mi import exact_mi

ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]
PROTEIN = "MKTAYIAKQRQISFVKSHFSRQ"


def tiny_esm(path: str) -> None:
    """Write a random 2-layer ESM and its tokenizer to ``path``."""
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    torch.manual_seed(0)
    with open(f"{path}/vocab.txt", "w") as f:
        f.write("\n".join(ESM_VOCAB) + "\n")
    cfg = EsmConfig(vocab_size=len(ESM_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64, position_embedding_type="rotary",
                    pad_token_id=1, mask_token_id=len(ESM_VOCAB) - 1, token_dropout=False, initializer_range=0.2)
    EsmForMaskedLM(cfg).save_pretrained(path)
    EsmTokenizer(f"{path}/vocab.txt").save_pretrained(path)


def main():
    try:
        import transformers  # noqa: F401
    except ImportError:
        print("skipped: this example needs transformers (pip install 'mdmi[hf]')")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tiny_esm(tmp)
        model = mdmi.load(f"hf:{tmp}")  # ESM: masked positions may take the 20 amino acids
    x = model.encode([PROTEIN])  # (1, L) with <cls> and <eos>
    hide = torch.zeros_like(x, dtype=torch.bool)
    hide[0, 4:16] = True  # residues 3..14
    x = torch.where(hide, model.mask_id, x)
    print(f"{PROTEIN} -> {model.decode_tokens(x)[0]}  ({int(hide.sum())} masked)")

    r = exact_mi(model, x)
    mi = torch.triu(r.mi[0], 1)
    top = mi.flatten().topk(3)
    pairs = ", ".join(f"({i // mi.shape[1] - 1},{i % mi.shape[1] - 1}) {v:.4f}" for v, i in zip(top.values, top.indices))
    print(f"exact MI: {int(r.passes[0])} passes; total {mi.sum():.3f} nats; strongest residue pairs {pairs}")

    for spec, sel in [("sequential", mdmi.make_selector("sequential")),
                      ("threshold tau=0.5", mdmi.make_selector("threshold", tau=0.5)),
                      ("mi_budget (exact MI)", mdmi.make_selector("mi_budget", pairwise="exact", model=model,
                                                                   gamma=0.05, eta=0.0))]:
        res = mdmi.decode(model, x, sel)
        print(f"{spec:21s} NFE {int(res.nfe[0]):2d} (+{int(res.extra_passes[0])} exact-MI passes)  "
              f"{model.decode_tokens(res.tokens)[0]}")


if __name__ == "__main__":
    main()
