"""Bring your own model: exact MI, an MI head, MI-guided parallel decoding, end to end.

mdmi needs three things of a model: ``mask_id``, ``vocab_size`` and ``__call__(x (B, L))
-> mdmi.ModelOutput(logits (B, L, V), hidden (B, L, D))``; one call is one model pass. The
toy model here, a two-layer torch transformer, learns sequences whose positions come in
coupled pairs (``x[2k+1] = x[2k] + 1 mod 4``: a pair shares log 4 = 1.39 nats, other
positions nothing). Then: the exact MI it believes, labels, a trained MI head, and 256
samples drawn sequentially, with top-k and with the MI budget on the head's MI (no extra
pass): NFE and how many samples keep every pair coupled.

    python examples/own_model.py    # about 10 s on one CPU thread; --steps 300 --contexts 128 is quicker
"""

import argparse
import tempfile

import torch

import mdmi
from mdmi.estimator import EstimatorConfig
from mdmi.labels import LabelConfig, load_labels, write_labels
from mdmi.mi import exact_mi
from mdmi.train import diffusion_loss
from mdmi.train_estimator import EstimatorTrainConfig, train_estimator

V, L = 4, 8  # tokens 0..3, mask id 4; four coupled pairs


class PairModel(torch.nn.Module):
    def __init__(self, d: int = 32):
        super().__init__()
        self.mask_id, self.vocab_size = V, V
        self.emb, self.pos = torch.nn.Embedding(V + 1, d), torch.nn.Parameter(torch.randn(L, d))
        layer = torch.nn.TransformerEncoderLayer(d, 2, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.body = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.out = torch.nn.Linear(d, V)

    def forward(self, x):  # (B, L) -> logits (B, L, V), hidden (B, L, d)
        h = self.body(self.emb(x) + self.pos)
        return mdmi.ModelOutput(logits=self.out(h), hidden=h)


def sample(n: int, g: torch.Generator) -> torch.Tensor:
    """(n, L) clean sequences: position 2k uniform, 2k+1 its successor mod V."""
    a = torch.randint(V, (n, L // 2), generator=g)
    return torch.stack([a, (a + 1) % V], -1).reshape(n, L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps of the toy model")
    ap.add_argument("--contexts", type=int, default=256, help="labelled contexts for the MI head")
    args = ap.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = PairModel()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(args.steps):  # the masked-diffusion loss (nats per token; 0.693 at best here)
        loss = diffusion_loss(model, sample(128, g), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    r = exact_mi(model, torch.full((1, L), model.mask_id))  # all masked: 1 + 8 x 4 passes
    print(f"loss {loss.item():.3f}; exact MI: pair (0,1) {r.mi[0, 0, 1]:.3f} nats, (0,2) {r.mi[0, 0, 2]:.3f} nats")
    with tempfile.TemporaryDirectory() as tmp:  # what 'mdmi label' and 'mdmi train-estimator' do
        write_labels(model, sample, LabelConfig(contexts=args.contexts, shard_size=128), f"{tmp}/labels",
                     spec={"model": "PairModel"}, progress=False)
        train_estimator(model, load_labels(f"{tmp}/labels"), EstimatorConfig(d_hidden=32, width=32, rank=16),
                        EstimatorTrainConfig(epochs=40, patience=10), f"{tmp}/head", progress=False)
        head = mdmi.load_estimator(f"{tmp}/head")
    x = torch.full((256, L), model.mask_id)
    for name, sel in [("sequential", mdmi.make_selector("sequential")), ("topk k=4", mdmi.make_selector("topk", k=4)),
                      ("mi_budget", mdmi.make_selector("mi_budget", estimator=head, gamma=0.1, eta=0.0))]:
        res = mdmi.decode(model, x, sel, temperature=1.0, generator=torch.Generator().manual_seed(1))
        ok = (res.tokens[:, 1::2] == (res.tokens[:, 0::2] + 1) % V).all(1).float().mean()
        print(f"{name:10s} mean NFE {res.nfe.float().mean():.2f}  samples with every pair coupled {100 * ok:.1f}%")


if __name__ == "__main__":
    main()
