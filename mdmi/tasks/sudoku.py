"""Sudoku: parsing, a unique-solution puzzle generator, augmentation and a checker.

Tokens: digit d (1..9) is token id d - 1, so the model predicts over ``VOCAB_SIZE = 9``
real tokens and the mask id of our own model is ``MASK_ID = 9``. A puzzle string has 81
characters, ``1``-``9`` for givens and ``0`` or ``.`` for blanks, read row by row.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

VOCAB_SIZE = 9
MASK_ID = 9
N = 81
BLANKS = "0."

ROW = [i // 9 for i in range(N)]
COL = [i % 9 for i in range(N)]
BOX = [(i // 27) * 3 + (i % 9) // 3 for i in range(N)]
_POPCOUNT = [bin(m).count("1") for m in range(1 << 10)]
_DIGITS = [[d for d in range(1, 10) if m >> d & 1] for m in range(1 << 10)]
_ALL = 0b1111111110  # bits 1..9
UNITS = [[i for i in range(N) if key[i] == u] for key in (ROW, COL, BOX) for u in range(9)]  # 27 units of 9 cells


def same_unit() -> torch.Tensor:
    """Bool (81, 81): cells sharing a row, column or box (the diagonal excluded)."""
    r, c, b = (torch.tensor(v) for v in (ROW, COL, BOX))
    s = (r[:, None] == r) | (c[:, None] == c) | (b[:, None] == b)
    return s & ~torch.eye(N, dtype=torch.bool)


# ---------------------------------------------------------------- parsing and encoding


def parse(puzzle: str) -> list[int]:
    """81-character puzzle -> list of 81 ints (0 = blank). Raises ValueError when malformed:
    wrong length, a character other than 1-9 / 0 / '.', or givens that break a rule."""
    if not isinstance(puzzle, str):
        raise ValueError(f"puzzle must be a str, got {type(puzzle).__name__}")
    s = puzzle.strip()
    if len(s) != N:
        raise ValueError(f"puzzle must have 81 cells, got {len(s)}: {s[:90]!r}")
    bad = sorted({ch for ch in s if ch not in "123456789" and ch not in BLANKS})
    if bad:
        raise ValueError(f"puzzle has characters other than 1-9, 0 and '.': {bad}")
    cells = [0 if ch in BLANKS else int(ch) for ch in s]
    conflict = first_conflict(cells)
    if conflict:
        raise ValueError(f"puzzle givens break a rule: {conflict}")
    return cells


def first_conflict(cells: list[int]) -> str | None:
    """Describe the first repeated digit in a row, column or box, or None."""
    for name, key in (("row", ROW), ("column", COL), ("box", BOX)):
        seen = {}
        for i, d in enumerate(cells):
            if d:
                k = (key[i], d)
                if k in seen:
                    return f"digit {d} twice in {name} {key[i] + 1} (cells {seen[k]} and {i})"
                seen[k] = i
    return None


def encode(puzzle: str, mask_id: int = MASK_ID) -> torch.Tensor:
    """Puzzle string -> LongTensor (81,): digit d -> token d-1, blanks -> ``mask_id``."""
    cells = parse(puzzle)
    return torch.tensor([d - 1 if d else mask_id for d in cells], dtype=torch.long)


def to_string(tokens) -> str:
    """Tokens (81,) -> puzzle string; token t in 0..8 -> digit t+1, anything else -> '.'."""
    t = torch.as_tensor(tokens).reshape(-1).tolist()
    if len(t) != N:
        raise ValueError(f"tokens must have 81 entries, got {len(t)}")
    return "".join(str(v + 1) if 0 <= v < 9 else "." for v in t)


def pretty(puzzle: str) -> str:
    """A 9 x 9 grid with box separators, for the terminal."""
    lines = []
    for r in range(9):
        if r and r % 3 == 0:
            lines.append("------+-------+------")
        row = puzzle[9 * r: 9 * r + 9].replace("0", ".")
        lines.append(" | ".join(" ".join(row[3 * b: 3 * b + 3]) for b in range(3)))
    return "\n".join(lines)


@dataclass
class Puzzle:
    puzzle: str
    solution: str | None = None
    where: str = ""  # 'file:line' it came from, for error messages


def read_puzzles(path: str | Path) -> list[Puzzle]:
    """Read a file with one puzzle, or ``puzzle solution``, per line ('#' comments and
    blank lines skipped). Errors name the line."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if not parts:  # a line of separators only
            continue
        if len(parts) > 2:
            raise ValueError(f"{path}:{n}: expected 'puzzle' or 'puzzle solution', got {len(parts)} fields")
        try:
            p = "".join(str(d) for d in parse(parts[0]))
            s = None
            if len(parts) == 2:
                s = "".join(str(d) for d in parse(parts[1]))
                if not check(s, p):
                    raise ValueError("the solution is not a valid grid consistent with the puzzle")
        except ValueError as e:
            raise ValueError(f"{path}:{n}: {e}") from None
        out.append(Puzzle(p, s, f"{path}:{n}"))
    if not out:
        raise ValueError(f"{path}: no puzzles found")
    return out


def write_puzzles(path: str | Path, puzzles: list[Puzzle]) -> None:
    lines = [p.puzzle + (f" {p.solution}" if p.solution else "") for p in puzzles]
    Path(path).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- checking


def check(solution: str, puzzle: str | None = None) -> bool:
    """True if ``solution`` is a complete valid grid and agrees with the givens of ``puzzle``."""
    if len(solution) != N or any(ch not in "123456789" for ch in solution):
        return False
    cells = [int(ch) for ch in solution]
    if first_conflict(cells) is not None:
        return False
    if puzzle is not None:
        return all(p in BLANKS or p == s for p, s in zip(puzzle, solution))
    return True


# ---------------------------------------------------------------- solver / counter


def _search(cells, rows, cols, boxes, empties, limit, rng, found):
    """Backtracking with the most-constrained cell first; appends solutions to ``found``
    until it holds ``limit`` of them."""
    if not empties:
        found.append(cells.copy())
        return
    best_k, best_m, best_n = -1, 0, 10
    for k, i in enumerate(empties):
        m = _ALL & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]])
        n = _POPCOUNT[m]
        if n < best_n:
            best_k, best_m, best_n = k, m, n
            if n <= 1:
                break
    if best_n == 0:
        return
    i = empties[best_k]
    empties[best_k] = empties[-1]
    empties.pop()
    digits = _DIGITS[best_m]
    if rng is not None and len(digits) > 1:
        digits = digits[:]
        rng.shuffle(digits)
    r, c, b = ROW[i], COL[i], BOX[i]
    for d in digits:
        bit = 1 << d
        cells[i] = d
        rows[r] |= bit
        cols[c] |= bit
        boxes[b] |= bit
        _search(cells, rows, cols, boxes, empties, limit, rng, found)
        rows[r] ^= bit
        cols[c] ^= bit
        boxes[b] ^= bit
        if len(found) >= limit:
            break
    cells[i] = 0
    empties.append(i)
    empties[best_k], empties[-1] = empties[-1], empties[best_k]


def solve(cells: list[int], limit: int = 2, rng: random.Random | None = None) -> list[list[int]]:
    """Up to ``limit`` solutions of a grid (0 = blank); random digit order when ``rng`` given."""
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    for i, d in enumerate(cells):
        if d:
            bit = 1 << d
            if (rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]]) & bit:
                return []
            rows[ROW[i]] |= bit
            cols[COL[i]] |= bit
            boxes[BOX[i]] |= bit
    found: list[list[int]] = []
    _search(list(cells), rows, cols, boxes, [i for i in range(N) if not cells[i]], limit, rng, found)
    return found


def count_solutions(cells: list[int], limit: int = 2) -> int:
    return len(solve(cells, limit))


def singles_depth(cells: list[int]) -> tuple[int, bool]:
    """(rounds, solved): the puzzle's depth under the two simplest deductions done in
    parallel. Each round fills every naked single (one candidate left) and hidden single
    (a digit with one place left in a row, column or box) of the grid as it stands; solved
    is False when a round finds none and blanks remain. A decoder that fills only cells the
    givens force needs at least ``rounds`` model passes on a puzzle solved this way."""
    cells = list(cells)
    rounds = 0
    while 0 in cells:
        rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
        for i, d in enumerate(cells):
            if d:
                rows[ROW[i]] |= 1 << d
                cols[COL[i]] |= 1 << d
                boxes[BOX[i]] |= 1 << d
        cand = {i: _ALL & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]]) for i in range(N) if not cells[i]}
        fill = {i: _DIGITS[m][0] for i, m in cand.items() if _POPCOUNT[m] == 1}
        for unit in UNITS:
            for d in range(1, 10):
                places = [i for i in unit if i in cand and cand[i] >> d & 1]
                if len(places) == 1:
                    fill.setdefault(places[0], d)
        if not fill:
            return rounds, False
        for i, d in fill.items():
            cells[i] = d
        rounds += 1
    return rounds, True


# ---------------------------------------------------------------- generation


def random_grid(rng: random.Random) -> list[int]:
    """A uniformly-ish random complete grid by randomised backtracking."""
    return solve([0] * N, limit=1, rng=rng)[0]


def make_puzzle(grid: list[int], givens: int, rng: random.Random) -> list[int]:
    """Remove clues from ``grid`` in random order, keeping the solution unique, until
    ``givens`` remain; ``givens=0`` goes through every cell and yields a minimal puzzle
    (no clue can be removed). Each removal is checked by the solution counter."""
    cells = list(grid)
    n = N
    order = list(range(N))
    rng.shuffle(order)
    for i in order:
        if givens and n <= givens:
            break
        d, cells[i] = cells[i], 0
        if count_solutions(cells, 2) == 1:
            n -= 1
        else:
            cells[i] = d
    return cells


def generate(n: int, givens: int, seed: int, split: str = "test", progress: bool = False) -> list[Puzzle]:
    """``n`` unique-solution puzzles with ``givens`` clues (0 = minimal). Base grids come
    from a random stream keyed by (split, seed), so the ``train`` and ``test`` splits
    never share a base grid."""
    if givens and not 17 <= givens <= 81:
        raise ValueError(f"givens must be 0 (minimal) or in 17..81, got {givens}")
    rng = random.Random(f"{split}:{seed}")
    out = []
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"generating {split} puzzles", unit="puzzle")
    for _ in it:
        grid = random_grid(rng)
        cells = make_puzzle(grid, givens, rng)
        out.append(Puzzle("".join(map(str, cells)), "".join(map(str, grid))))
    return out


def grids(n: int, seed: int, split: str = "train") -> torch.Tensor:
    """``n`` random complete grids as tokens, LongTensor (n, 81) with ids 0..8."""
    rng = random.Random(f"{split}:{seed}")
    return torch.tensor([[d - 1 for d in random_grid(rng)] for _ in range(n)], dtype=torch.long)


# ---------------------------------------------------------------- augmentation


def _perm_within_blocks(B: int, g: torch.Generator) -> torch.Tensor:
    """(B, 9) permutations of 0..8 that permute the three blocks and within each block."""
    outer = torch.argsort(torch.rand(B, 3, generator=g), dim=1)  # (B, 3)
    inner = torch.argsort(torch.rand(B, 3, 3, generator=g), dim=2)  # (B, 3, 3)
    return (outer[:, :, None] * 3 + inner).reshape(B, 9)


def augment(tokens: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Apply a random validity-preserving symmetry to each grid: digit relabelling,
    band/row and stack/column permutations, transpose. tokens: (B, 81) ids 0..8."""
    B = tokens.shape[0]
    digit = torch.argsort(torch.rand(B, 9, generator=g), dim=1)  # (B, 9)
    x = torch.gather(digit, 1, tokens)
    rows, cols = _perm_within_blocks(B, g), _perm_within_blocks(B, g)
    idx = rows[:, :, None] * 9 + cols[:, None, :]  # (B, 9, 9) source cell of each target cell
    transpose = torch.rand(B, generator=g) < 0.5
    idx = torch.where(transpose[:, None, None], idx.transpose(1, 2), idx)
    return torch.gather(x, 1, idx.reshape(B, N))


# ---------------------------------------------------------------- solving with a model


@dataclass
class SudokuEval:
    """What :func:`evaluate` measures; :meth:`as_dict` is the JSON row (fields in this order)."""

    solve_rate: float  # valid grid consistent with the givens
    solve_rate_ci95: list  # [lo, hi], the 95% Wilson interval
    mean_nfe: float  # model passes per puzzle
    cell_accuracy: float | None  # blank cells equal to the unique solution, over puzzles that have one; None if none has
    non_unique: int  # puzzles with several solutions: scored by validity only
    n: int
    seconds: float
    puzzles_per_s: float
    mean_blanks: float
    outputs: list  # per puzzle: the output grid as a string
    solved: list  # per puzzle: bool
    nfe: list  # per puzzle: model passes
    extra_passes: int  # exact-MI passes of an oracle selector, in all; 0 else

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(model, puzzles: list[Puzzle], selector, batch_size: int = 256, temperature: float = 0.0,
             generator: torch.Generator | None = None, progress: bool = False) -> SudokuEval:
    """Solve ``puzzles`` with ``model`` and ``selector`` through :func:`mdmi.decode`: solve
    rate, NFE and cell accuracy, overall and per puzzle (see :class:`SudokuEval`)."""
    import time

    from ..decode import decode
    from ..stats import wilson

    if not puzzles:
        raise ValueError("puzzles is empty")
    mask_id = model.mask_id
    solutions = reference_solutions(puzzles)
    outs, nfes, extra = [], [], 0
    t0 = time.time()
    starts = range(0, len(puzzles), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="solving", unit="batch")
    for s in starts:
        x = torch.stack([encode(p.puzzle, mask_id) for p in puzzles[s: s + batch_size]])
        res = decode(model, x, selector, generator=generator, temperature=temperature)
        outs += [to_string(t) for t in res.tokens]
        nfes += res.nfe.tolist()
        extra += int(res.extra_passes.sum())
    seconds = time.time() - t0
    solved = [check(o, p.puzzle) for o, p in zip(outs, puzzles)]
    right = scored = blanks = 0
    for o, p, sol in zip(outs, puzzles, solutions):
        for a, q, b in zip(o, p.puzzle, sol or p.puzzle):
            if q in BLANKS:
                blanks += 1
                if sol is not None:  # cell accuracy needs the one solution
                    scored += 1
                    right += a == b
    k, n = sum(solved), len(puzzles)
    lo, hi = wilson(k, n)
    return SudokuEval(
        solve_rate=k / n, solve_rate_ci95=[lo, hi], mean_nfe=sum(nfes) / n,
        cell_accuracy=right / scored if scored else None, non_unique=solutions.count(None),
        n=n, seconds=seconds, puzzles_per_s=n / seconds, mean_blanks=blanks / n,
        outputs=outs, solved=solved, nfe=nfes, extra_passes=extra,
    )


def reference_solutions(puzzles: list[Puzzle]) -> list[str | None]:
    """Per puzzle its unique solution, or None when it has several (then only validity can
    score it: any valid completion counts as solved). A puzzle with no solution raises
    ValueError naming it; a file's solution for a non-unique puzzle is not trusted."""
    out = []
    for n, p in enumerate(puzzles):
        found = solve(parse(p.puzzle), 2)
        if not found:
            where = f"{p.where}: " if p.where else ""
            raise ValueError(f"{where}the puzzle has no solution (its givens admit no valid grid)")
        out.append("".join(map(str, found[0])) if len(found) == 1 else None)
    return out
