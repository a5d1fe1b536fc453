"""Tiny models and contexts shared by the tests (no hub, no training)."""

import torch

from mdmi.interface import ModelOutput
from mdmi.models.transformer import MaskedTransformer, MDMConfig


def tiny_model(V=3, L=5, seed=0, scale=12.0):
    """A random bidirectional transformer; larger weights -> strongly coupled, far from uniform."""
    torch.manual_seed(seed)
    m = MaskedTransformer(MDMConfig(vocab_size=V, seq_len=L, d_model=16, n_layers=2, n_heads=2)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale)
    return m


def contexts(m, L, B=3, seed=0):
    """(B, L) random contexts, about 60% masked, the first row fully masked."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, m.vocab_size, (B, L), generator=g)
    x[torch.rand(B, L, generator=g) < 0.6] = m.mask_id
    x[0, :] = m.mask_id
    return x


class RowwiseModel:
    """Runs ``model`` on one sequence at a time, without its padding: a row's output is
    bit-for-bit the same whatever else is in the batch (what a batch-invariance test needs).
    ``fixed_first``: position 0 is a special token the decoder must never fill."""

    def __init__(self, model, fixed_first=False):
        self.model, self.mask_id, self.vocab_size = model, model.mask_id, model.vocab_size
        self.fixed_first = fixed_first
        self.calls = 0

    def fixed(self, x):
        f = torch.zeros_like(x, dtype=torch.bool)
        if self.fixed_first:
            f[:, 0] = True
        return f

    @property
    def supports_attentions(self):
        return getattr(self.model, "supports_attentions", False)

    def __call__(self, x, attention_mask=None, output_attentions=False):
        self.calls += 1
        B, L = x.shape
        keep = torch.ones_like(x, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        logits = torch.zeros(B, L, self.vocab_size)
        hidden = maps = None
        for b in range(B):
            out = self.model(x[b][keep[b]][None], **({"output_attentions": True} if output_attentions else {}))
            logits[b, keep[b]] = out.logits[0]
            if out.hidden is not None:
                if hidden is None:
                    hidden = torch.zeros(B, L, out.hidden.shape[-1])
                hidden[b, keep[b]] = out.hidden[0]
            if output_attentions:  # padded queries and keys get no attention
                if maps is None:
                    maps = torch.zeros(B, out.attentions.shape[1], L, L)
                k = keep[b].nonzero().squeeze(1)
                maps[b, :, k[:, None], k[None]] = out.attentions[0]
        return ModelOutput(logits=logits, hidden=hidden, attentions=maps)


class RowwiseHead:
    """A stand-in MI head: (B, L, D) hidden -> (B, L, L) nonnegative symmetric scores on
    masked pairs, computed row by row."""

    def __call__(self, hidden, masked):
        out = []
        for h, m in zip(hidden, masked):
            s = (h @ h.T).abs() / h.shape[-1]
            pair = m[:, None] & m[None, :] & ~torch.eye(len(m), dtype=torch.bool)
            out.append(s * pair)
        return torch.stack(out).double()


def free_port() -> str:
    """A TCP port free right now, for torchrun's --master_port: a fixed one clashes when two
    test runs (two clones, CI beside a local run) reach the same test together."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])
