"""An exact hidden Markov model: ground truth that needs no trust in any model.

DESIGN.md section 6. K hidden states, V symbols (token ids 0..V-1, mask id V), length L.
Everything is computed by forward-backward in log space, batched over sequences, with
masked positions marginalised out:

- ``log_prob(x)``: exact log p(x_O) (log p(x) for a complete x);
- ``conditionals(x)``: exact log p(x_i | x_O) for every position;
- ``pairwise_mi(x)``: exact I(X_i; X_j | x_O) for every masked pair, from the exact
  pairwise joint (a path sum between i and j), not from probing.

``HMMOracle`` wraps an HMM as a model of the public interface: its logits are the exact
log-conditionals, so every estimator can be held against an exact answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..interface import ModelOutput


@dataclass
class HMMConfig:
    n_states: int = 8  # K: more states, longer-range structure
    n_symbols: int = 8  # V: vocabulary size of the observations
    length: int = 32  # L: sequence length
    coupling: float = 0.95  # 0 = states i.i.d. (positions independent) .. 1 = sticky Markov chain
    sharpness: float = 3.0  # scale of the random logits: larger = more peaked emissions/transitions
    stay: float = 0.8  # weight of "stay in the same state" within the sticky chain: longer-range MI
    seed: int = 0  # seeds the parameters

    def __post_init__(self):
        if self.n_states < 1 or self.n_symbols < 2 or self.length < 1:
            raise ValueError(f"need n_states >= 1, n_symbols >= 2, length >= 1; got {self}")
        for name in ("coupling", "stay"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")


class HMM:
    """A seeded random HMM (float64). Parameters: initial ``pi`` (K,), transitions
    ``A`` (K, K) rows sum to 1, emissions ``E`` (K, V) rows sum to 1."""

    def __init__(self, cfg: HMMConfig):
        self.config = cfg
        g = torch.Generator().manual_seed(cfg.seed)
        K, V, s = cfg.n_states, cfg.n_symbols, cfg.sharpness

        def rows(n, m):
            return torch.softmax(s * torch.randn(n, m, generator=g, dtype=torch.float64), -1)

        stationary = rows(1, K)  # with coupling 0 every state is drawn from this, independently
        sticky = cfg.stay * torch.eye(K, dtype=torch.float64) + (1 - cfg.stay) * rows(K, K)
        self.pi = stationary[0]
        self.A = (1 - cfg.coupling) * stationary.expand(K, K) + cfg.coupling * sticky
        self.E = rows(K, V)
        self.mask_id = V

    @property
    def vocab_size(self) -> int:
        return self.config.n_symbols

    # ------------------------------------------------------------ sampling

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n sequences (n, L) of symbols 0..V-1."""
        L = self.config.length
        z = torch.multinomial(self.pi.expand(n, -1), 1, generator=generator)[:, 0]
        out = torch.empty(n, L, dtype=torch.long)
        for t in range(L):
            if t:
                z = torch.multinomial(self.A[z], 1, generator=generator)[:, 0]
            out[:, t] = torch.multinomial(self.E[z], 1, generator=generator)[:, 0]
        return out

    # ------------------------------------------------------------ forward-backward

    def _emissions(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, K) log p(x_t | z_t) for observed t, 0 for masked t (marginalised)."""
        if x.shape[1] != self.config.length:
            raise ValueError(f"sequences must have length {self.config.length}, got {x.shape[1]}")
        if x.min() < 0 or x.max() > self.mask_id:
            raise ValueError(f"tokens must lie in 0..{self.mask_id}")
        obs = x != self.mask_id
        logE = self.E.log().T  # (V, K)
        e = logE[x.clamp(max=self.vocab_size - 1)]  # (B, L, K)
        return e * obs[..., None]

    def _forward_backward(self, x):
        """alpha_t(k) = log p(x_O[<=t], z_t = k); beta_t(k) = log p(x_O[>t] | z_t = k)."""
        e = self._emissions(x)
        B, L, K = e.shape
        logA = self.A.log()
        alpha = torch.empty(B, L, K, dtype=torch.float64)
        beta = torch.zeros(B, L, K, dtype=torch.float64)
        alpha[:, 0] = self.pi.log() + e[:, 0]
        for t in range(1, L):
            alpha[:, t] = torch.logsumexp(alpha[:, t - 1, :, None] + logA, 1) + e[:, t]
        for t in range(L - 2, -1, -1):
            beta[:, t] = torch.logsumexp(logA + (e[:, t + 1] + beta[:, t + 1])[:, None, :], 2)
        return alpha, beta, e

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) exact log p(x_O) in nats; log p(x) when nothing is masked."""
        alpha, _, _ = self._forward_backward(x)
        return torch.logsumexp(alpha[:, -1], -1)

    def state_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, K) log p(z_t | x_O)."""
        alpha, beta, _ = self._forward_backward(x)
        return torch.log_softmax(alpha + beta, -1)

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, V) exact log p(x_i = u | x_O) at masked i (at observed i: the predictive
        of a fresh symbol from z_i's posterior; no algorithm reads it)."""
        post = self.state_posterior(x).exp()  # (B, L, K)
        return (post @ self.E).log()

    def pairwise_log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, L, V, V) exact log p(x_i = u, x_j = w | x_O) for i < j both masked
        (-inf elsewhere; the lower triangle mirrors the upper, transposed).

        The joint of states p(z_i, z_j | x_O) for i < j is alpha_i(z_i) T_ij(z_i, z_j)
        beta_j(z_j) / Z, with T_ij the path sum of transitions and observed emissions in
        (i, j]. Cost O(L^2 K^3) per sequence.
        """
        alpha, beta, e = self._forward_backward(x)
        B, L, K = e.shape
        V = self.vocab_size
        masked = x == self.mask_id
        logZ = torch.logsumexp(alpha[:, -1], -1)  # (B,)
        logA, logE = self.A.log(), self.E.log()  # (K, K), (K, V)
        out = torch.full((B, L, L, V, V), float("-inf"), dtype=torch.float64)
        for i in range(L - 1):
            T = torch.full((B, K, K), float("-inf"), dtype=torch.float64)
            T.diagonal(dim1=1, dim2=2).zero_()  # log identity
            for j in range(i + 1, L):
                T = torch.logsumexp(T[:, :, :, None] + logA[None, None], 2) + e[:, j, None, :]  # T A diag(e_j)
                both = masked[:, i] & masked[:, j]
                if not both.any():
                    continue
                lz = alpha[:, i, :, None] + T + beta[:, j, None, :] - logZ[:, None, None]  # (B, K, K)
                lj = torch.logsumexp(lz[:, :, :, None, None] + logE[None, :, None, :, None]
                                     + logE[None, None, :, None, :], dim=(1, 2))  # (B, V, V)
                lj = torch.where(both[:, None, None], lj, torch.full_like(lj, float("-inf")))
                out[:, i, j] = lj
                out[:, j, i] = lj.transpose(1, 2)
        return out

    def pairwise_mi(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, L) exact I(X_i; X_j | x_O) in nats for masked i != j, else 0 (from
        :meth:`pairwise_log_joint`, not from probing)."""
        lj = self.pairwise_log_joint(x)
        pj = lj.exp()
        li = torch.logsumexp(lj, -1, keepdim=True)
        lw = torch.logsumexp(lj, -2, keepdim=True)
        terms = torch.where(pj > 0, pj * (lj - li - lw), torch.zeros_like(pj))
        upper = terms.sum((-1, -2)).clamp_min(0.0).triu(1)
        return upper + upper.transpose(1, 2)  # exactly symmetric

    # ------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> "HMM":
        return cls(HMMConfig(**d))


class HMMOracle:
    """The exact HMM as a model (public interface): logits are exact log p(x_i | x_O)
    (float64), hidden is None. One call is one "pass" (one forward-backward)."""

    def __init__(self, hmm: HMM):
        self.hmm = hmm
        self.vocab_size = hmm.vocab_size
        self.mask_id = hmm.mask_id

    def __call__(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(logits=self.hmm.conditionals(x), hidden=None)
