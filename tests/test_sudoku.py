
import pytest
import torch

from mdmi.tasks import sudoku

SOLVED = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
PUZZLE = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"


def test_parse_and_encode_round_trip():
    t = sudoku.encode(PUZZLE)
    assert t.shape == (81,) and t.dtype == torch.long
    assert int((t == sudoku.MASK_ID).sum()) == PUZZLE.count("0")
    assert sudoku.to_string(t) == PUZZLE.replace("0", ".")
    assert sudoku.encode(PUZZLE.replace("0", ".")).equal(t)
    assert sudoku.encode(PUZZLE, mask_id=42).max() == 42


@pytest.mark.parametrize("bad, msg", [
    (PUZZLE[:80], "81 cells"),
    (PUZZLE + "1", "81 cells"),
    (PUZZLE[:-1] + "x", "characters"),
    ("55" + PUZZLE[2:], "twice in row"),
    (PUZZLE[:27] + "5" + PUZZLE[28:], "twice in column"),
    (PUZZLE[:2] + "9" + PUZZLE[3:], "twice in box"),
])
def test_parse_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        sudoku.parse(bad)


def test_read_puzzles_errors_name_the_line(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text(f"# comment\n{PUZZLE} {SOLVED}\n\n{PUZZLE[:70]}\n")
    with pytest.raises(ValueError, match=r"p.txt:4"):
        sudoku.read_puzzles(f)
    f.write_text(f"{PUZZLE} {SOLVED[:-2]}98\n")
    with pytest.raises(ValueError, match=r"p.txt:1"):
        sudoku.read_puzzles(f)
    f.write_text(f"{PUZZLE} {SOLVED}\n{PUZZLE}\n")
    ps = sudoku.read_puzzles(f)
    assert [p.solution for p in ps] == [SOLVED, None]


def test_checker():
    assert sudoku.check(SOLVED) and sudoku.check(SOLVED, PUZZLE)
    swapped = SOLVED[1] + SOLVED[0] + SOLVED[2:]
    assert not sudoku.check(swapped)
    assert not sudoku.check(SOLVED[:-1] + "0")
    other = sudoku.to_string(sudoku.augment(sudoku.encode(SOLVED)[None], torch.Generator().manual_seed(1))[0])
    assert sudoku.check(other) and not sudoku.check(other, PUZZLE)


def test_solver_counts():
    assert sudoku.solve(sudoku.parse(PUZZLE), 2) == [[int(c) for c in SOLVED]]
    assert sudoku.count_solutions([0] * 81, 5) == 5


@pytest.mark.parametrize("givens", [34, 0])
def test_generator_unique_solutions(givens):
    for p in sudoku.generate(4, givens, seed=3):
        cells = sudoku.parse(p.puzzle)
        assert sudoku.count_solutions(cells, 2) == 1
        assert sudoku.check(p.solution, p.puzzle)
        n = sum(1 for c in cells if c)
        if givens:
            assert n == givens
        else:  # minimal: every clue is needed
            for i in [i for i, c in enumerate(cells) if c][:10]:
                fewer = cells.copy()
                fewer[i] = 0
                assert sudoku.count_solutions(fewer, 2) == 2


def test_splits_do_not_share_grids():
    train = {sudoku.to_string(g) for g in sudoku.grids(200, seed=0, split="train")}
    test = {p.solution.replace("0", ".") for p in sudoku.generate(50, 40, seed=0, split="test")}
    assert not train & test


def test_augment_keeps_validity_and_is_seeded():
    g = sudoku.grids(20, seed=1)
    a = sudoku.augment(g, torch.Generator().manual_seed(7))
    b = sudoku.augment(g, torch.Generator().manual_seed(7))
    assert a.equal(b) and not a.equal(g)
    assert all(sudoku.check(sudoku.to_string(r)) for r in a)


def test_same_unit():
    s = sudoku.same_unit()
    assert s.shape == (81, 81) and s.equal(s.T) and not s.diagonal().any()
    assert int(s[0].sum()) == 20


def _depth_reference(cells):
    """Singles depth written the plain way: candidate sets per cell, then units."""
    g, rounds = list(cells), 0
    units = [[r * 9 + k for k in range(9)] for r in range(9)] + [[k * 9 + c for k in range(9)] for c in range(9)]
    units += [[(br * 3 + a) * 9 + bc * 3 + d for a in range(3) for d in range(3)] for br in range(3) for bc in range(3)]
    while 0 in g:
        cand = {i: set(range(1, 10)) - {g[j] for u in units if i in u for j in u} for i in range(81) if not g[i]}
        fill = {i: next(iter(c)) for i, c in cand.items() if len(c) == 1}
        for u in units:
            for v in range(1, 10):
                places = [i for i in u if i in cand and v in cand[i]]
                if len(places) == 1:
                    fill.setdefault(places[0], v)
        if not fill:
            return rounds, False
        for i, v in fill.items():
            g[i] = v
        rounds += 1
    return rounds, True


def test_singles_depth():
    p = sudoku.generate(1, 34, seed=5)[0]
    full = sudoku.parse(p.solution)
    assert sudoku.singles_depth(full) == (0, True)
    one = full.copy()
    one[40] = 0
    assert sudoku.singles_depth(one) == (1, True)
    assert sudoku.singles_depth([0] * 81) == (0, False)
    for q in sudoku.generate(12, 26, seed=6):
        cells = sudoku.parse(q.puzzle)
        assert sudoku.singles_depth(cells) == _depth_reference(cells)
