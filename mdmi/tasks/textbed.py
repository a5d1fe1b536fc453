"""The prompted text testbed: three tasks whose answer tokens depend on each other.

Formats (fixed). A problem file has one problem per line, ``prompt<TAB>reference``; the
reference is one valid answer and :func:`check` decides validity:

- ``add``: prompt ``A+B=`` (``A``, ``B`` decimal, 1-12 digits, no leading zeros); the one
  valid answer is the sum, most significant digit first (carries couple the digits);
- ``split``: prompt ``N=`` (``N`` of 2-12 digits); valid answers are ``A+B`` with ``A, B >= 0``
  without leading zeros and ``A + B = N`` (many; the digits of A and B are coupled). The
  reference gives ``A`` as many digits as ``N``: its top digit from 1 to ``N``'s top digit
  minus one (so ``B`` is as long too, unless ``N`` starts with 1), each other digit drawn
  uniformly at or below ``N``'s digit in that place, so that ``B``'s digit there is their
  difference (no borrow). The digits of one place line up in prompt and answer, the places
  are independent, and the coupling is between the two digits of one place (the checker
  accepts any split);
- ``perm``: prompt ``W:`` (``W`` 3-12 distinct lowercase letters); valid answers are the
  permutations of ``W``'s letters (many; each letter exactly once).

Answers end with EOS and are padded with EOS to ``GEN_LENGTH``. Prompts are left-padded to
``PROMPT_WIDTH`` so every answer starts at the same position. Splits are disjoint by
construction: a problem belongs to the split its prompt's hash picks (train 80%, valid
10%, test 10%), whatever the seed.
"""

from __future__ import annotations

import hashlib
import random
import string

import torch

from .text import CharTokenizer

TASKS = ("add", "split", "perm")
SPLITS = ("train", "valid", "test")
CHARS = "0123456789+=:" + string.ascii_lowercase
TOKENIZER = CharTokenizer(CHARS)
PROMPT_WIDTH = 26  # "A+B=" with two 12-digit numbers
GEN_LENGTH = 32  # enough for every answer + EOS
SEQ_LEN = PROMPT_WIDTH + GEN_LENGTH


def _number(rng: random.Random, lo_digits: int, hi_digits: int) -> int:
    d = rng.randint(lo_digits, hi_digits)
    return rng.randint(10 ** (d - 1) if d > 1 else 0, 10 ** d - 1)


def sample_problem(task: str, rng: random.Random) -> tuple[str, str]:
    """One ``(prompt, reference)`` of ``task`` (the reference: one valid answer, drawn at random
    where there are many)."""
    if task == "add":
        a, b = _number(rng, 1, 12), _number(rng, 1, 12)
        return f"{a}+{b}=", str(a + b)
    if task == "split":
        n = _number(rng, 2, 12)
        top, rest = int(str(n)[0]), str(n)[1:]
        # A as long as N (top digit >= 1), B too where N's top digit allows (<= top - 1);
        # the other digits of A at or below N's: no borrow, and A's digits sit under N's
        a = int(str(rng.randint(1, max(1, top - 1))) + "".join(str(rng.randint(0, int(d))) for d in rest))
        return f"{n}=", f"{a}+{n - a}"
    if task == "perm":
        w = rng.sample(string.ascii_lowercase, rng.randint(3, 12))
        p = w[:]
        rng.shuffle(p)
        return "".join(w) + ":", "".join(p)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def split_of(prompt: str) -> str:
    """The split a prompt belongs to, from its hash (80/10/10)."""
    h = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % 10
    return "train" if h < 8 else "valid" if h == 8 else "test"


def problems(task: str, n: int, seed: int = 0, split: str = "test") -> list[tuple[str, str]]:
    """``n`` distinct problems of ``task`` from ``split`` (disjoint across splits)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = random.Random(f"{task}:{seed}")
    out, seen = [], set()
    for _ in range(200 * n + 1000):
        p, r = sample_problem(task, rng)
        if p not in seen and split_of(p) == split:
            seen.add(p)
            out.append((p, r))
            if len(out) == n:
                return out
    raise ValueError(f"could not draw {n} distinct {task} problems of the {split} split")


def _decimal(s: str) -> bool:
    return s.isdigit() and (s == "0" or not s.startswith("0"))


def check(task: str, prompt: str, answer: str) -> bool:
    """Is ``answer`` a valid answer to ``prompt`` (the text before EOS)?"""
    if task == "add":
        a, _, b = prompt[:-1].partition("+")
        return _decimal(answer) and int(answer) == int(a) + int(b)
    if task == "split":
        n = int(prompt[:-1])
        a, plus, b = answer.partition("+")
        return bool(plus) and _decimal(a) and _decimal(b) and int(a) + int(b) == n
    if task == "perm":
        return sorted(answer) == sorted(prompt[:-1]) and len(answer) == len(prompt) - 1
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def task_of(prompt: str) -> str:
    """The task a prompt's format names."""
    if prompt.endswith(":"):
        return "perm"
    return "add" if "+" in prompt else "split"


def encode_problems(pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Training sequences ``[pad.. prompt | answer EOS..]`` (B, SEQ_LEN) and the answer region
    (B, SEQ_LEN) bool: the only positions a training mask may hide."""
    tok = TOKENIZER
    x = torch.full((len(pairs), SEQ_LEN), tok.eos_id, dtype=torch.long)
    for b, (p, r) in enumerate(pairs):
        ids = tok.encode(p)
        x[b, : PROMPT_WIDTH - len(ids)] = tok.pad_id
        x[b, PROMPT_WIDTH - len(ids): PROMPT_WIDTH] = torch.tensor(ids)
        x[b, PROMPT_WIDTH: PROMPT_WIDTH + len(r)] = torch.tensor(tok.encode(r))
    answer = torch.zeros_like(x, dtype=torch.bool)
    answer[:, PROMPT_WIDTH:] = True
    return x, answer


def train_sampler(seed: int = 0):
    """``sample(B, g) -> (x0, maskable)``: training problems of the three tasks, in equal shares."""
    def sample(B: int, g: torch.Generator):
        # the batch's problems come from g, whose state checkpoints save: --resume continues the stream
        rng = random.Random(f"train:{seed}:{int(torch.randint(2 ** 62, (1,), generator=g))}")
        pairs = []
        while len(pairs) < B:
            p, r = sample_problem(TASKS[len(pairs) % 3], rng)
            if split_of(p) == "train":
                pairs.append((p, r))
        return encode_problems(pairs)

    return sample


def content_weight(x0: torch.Tensor) -> torch.Tensor:
    """(B, L) float: 1 on every token but EOS, 0 on EOS (the answer's end and its padding).
    The loss weight of the first phase of ``mdmi train text --content-first``: a small model
    under the whole loss learns the answer's length from the many EOS positions but not to
    copy the prompt's tokens; on content alone it learns to copy (``benchmarks/text_copy_probe.py``),
    and the shipped ``text`` model kept copying once the EOS positions joined."""
    return (x0 != TOKENIZER.eos_id).float()


def label_sampler(split: str = "train"):
    """``sample(n, g) -> (tokens, regions)`` for label jobs (``mdmi label --task text``):
    problems of ``split``, the three tasks in turn, drawn from ``g``; ``regions`` is -1 on
    the prompt (never masked) and 0 on the answer, so contexts hide answer tokens only."""

    def sample(n: int, g: torch.Generator):
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=g)))
        pairs = []
        while len(pairs) < n:
            p, r = sample_problem(TASKS[len(pairs) % 3], rng)
            if split_of(p) == split:
                pairs.append((p, r))
        x, answer = encode_problems(pairs)
        return x, answer.long() - 1

    return sample


def read_problems(path) -> list[tuple[str, str]]:
    """``prompt<TAB>reference`` lines -> pairs; ValueError naming a malformed line."""
    from pathlib import Path

    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        p, tab, r = line.partition("\t")
        if not tab or not p:
            raise ValueError(f"{path}:{n}: expected 'prompt<TAB>reference', got {line!r}")
        out.append((p, r))
    if not out:
        raise ValueError(f"{path} holds no problems")
    return out


def write_problems(path, pairs: list[tuple[str, str]]) -> None:
    from pathlib import Path

    Path(path).write_text("".join(f"{p}\t{r}\n" for p, r in pairs))


def answer_jsd(a: list[str], b: list[str]) -> float:
    """Jensen-Shannon divergence (nats) between two samples' empirical answer distributions."""
    import math
    from collections import Counter

    ca, cb = Counter(a), Counter(b)
    na, nb = len(a), len(b)
    out = 0.0
    for k in set(ca) | set(cb):
        p, q = ca[k] / na, cb[k] / nb
        m = (p + q) / 2
        out += 0.5 * (p * math.log(p / m) if p else 0.0) + 0.5 * (q * math.log(q / m) if q else 0.0)
    return out


def evaluate(model, pairs: list[tuple[str, str]], selector, block_length: int | None = None,
             temperature: float = 0.0, samples: int = 1, seed: int = 0, batch_size: int = 256,
             reference: list[list[str]] | None = None, progress: bool = False, prefix_cache: bool = False) -> dict:
    """Validity of ``selector``'s answers to ``pairs`` (greedy, or ``samples`` draws at
    ``temperature``): rate with its 95% Wilson interval over all answers, per problem the
    fraction valid and the rate per task, mean NFE per answer; when sampling, the mean fraction of distinct valid
    answers per prompt, and with ``reference`` (another decoder's answers per prompt, e.g.
    sequential's) the mean per-prompt JSD (nats) of the answer distributions."""
    from ..stats import wilson
    from .text import generate

    if samples < 1 or (samples > 1 and temperature == 0):
        raise ValueError("samples > 1 needs temperature > 0 (greedy answers are all the same)")
    prompts = [p for p, _ in pairs for _ in range(samples)]
    gens = generate(model, prompts, selector, gen_length=GEN_LENGTH, block_length=block_length,
                    temperature=temperature, generator=torch.Generator().manual_seed(seed), batch_size=batch_size,
                    progress=progress, prefix_cache=prefix_cache)
    answers = [[g.text for g in gens[i * samples:(i + 1) * samples]] for i in range(len(pairs))]
    ok = [[check(task_of(p), p, a) for a in ans] for (p, _), ans in zip(pairs, answers)]
    k, n = sum(map(sum, ok)), len(prompts)
    lo, hi = wilson(k, n)
    tasks = [task_of(p) for p, _ in pairs]
    per_problem = [sum(o) / samples for o in ok]
    by_task = {t: sum(v for v, tt in zip(per_problem, tasks) if tt == t) / tasks.count(t) for t in TASKS if t in tasks}
    out = {"validity": k / n, "validity_ci95": [lo, hi], "validity_by_task": by_task, "n_problems": len(pairs),
           "samples": samples,
           "mean_nfe": sum(g.nfe for g in gens) / n, "mean_tokens_per_pass": sum(g.tokens_per_pass for g in gens) / n,
           "valid_per_problem": per_problem, "nfe_per_problem": [
               sum(g.nfe for g in gens[i * samples:(i + 1) * samples]) / samples for i in range(len(pairs))],
           "answers": answers}
    if samples > 1:
        out["distinct_valid"] = sum(len({a for a, v in zip(ans, o) if v}) / samples
                                    for ans, o in zip(answers, ok)) / len(pairs)
        if reference is not None:
            out["jsd_to_reference"] = sum(answer_jsd(a, r) for a, r in zip(answers, reference)) / len(pairs)
    return out
