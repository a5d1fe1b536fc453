import pytest
import torch

import mdmi
from mdmi.selectors import make_selector
from mdmi.tasks import sudoku

from conftest import CountingModel, TableModel

PUZZLE = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"


def _batch(mask_id):
    p = sudoku.encode(PUZZLE, mask_id)
    q = p.clone()
    q[q == mask_id] = 0  # fully observed except ...
    q[:5] = mask_id  # ... five cells
    return torch.stack([p, q, sudoku.encode("0" * 81, mask_id)])


@pytest.mark.parametrize("order", ["confidence", "margin", "entropy"])
def test_sequential_fills_every_mask_and_keeps_givens(tiny_sudoku_model, order):
    m = CountingModel(tiny_sudoku_model)
    x = _batch(m.mask_id)
    res = mdmi.decode(m, x, make_selector("sequential", order=order))
    given = x != m.mask_id
    assert not (res.tokens == m.mask_id).any()
    assert res.tokens[given].equal(x[given])
    assert ((res.tokens >= 0) & (res.tokens < 9)).all()
    n_masked = (x == m.mask_id).sum(1)
    assert res.nfe.equal(n_masked)  # sequential: one position per pass
    # NFE counts passes: every sequence in a pass is charged once, finished ones are not
    assert int(res.nfe.sum()) == m.rows and m.calls == int(n_masked.max())


def test_sequential_order_follows_confidence():
    table = torch.tensor([[0.0, 0.0], [5.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    m = TableModel(table, mask_id=2)
    res = mdmi.decode(m, torch.full((1, 4), 2), make_selector("sequential"), trace=True)
    assert [s["filled"][0] for s in res.trace] == [[1], [3], [2], [0]]
    assert res.tokens.tolist() == [[0, 0, 0, 0]]


def test_never_rewrites_and_temperature_is_seeded(tiny_sudoku_model):
    x = _batch(tiny_sudoku_model.mask_id)
    sel = make_selector("sequential")
    a = mdmi.decode(tiny_sudoku_model, x, sel, generator=torch.Generator().manual_seed(0), temperature=1.0, trace=True)
    b = mdmi.decode(tiny_sudoku_model, x, sel, generator=torch.Generator().manual_seed(0), temperature=1.0)
    assert a.tokens.equal(b.tokens)
    filled = [(r, i) for s in a.trace for r, f in zip(s["rows"], s["filled"]) for i in f]
    assert len(filled) == len(set(filled)) == int((x == tiny_sudoku_model.mask_id).sum())


def test_allowed_restricts_tokens(tiny_sudoku_model):
    allowed = torch.zeros(9, dtype=torch.bool)
    allowed[3] = True
    res = mdmi.decode(tiny_sudoku_model, _batch(9), make_selector("sequential"), allowed=allowed)
    x = _batch(9)
    assert (res.tokens[x == 9] == 3).all()


def test_bad_arguments(tiny_sudoku_model):
    with pytest.raises(ValueError, match="temperature"):
        mdmi.decode(tiny_sudoku_model, _batch(9), make_selector("sequential"), temperature=-1)
    with pytest.raises(ValueError, match="order"):
        make_selector("sequential", order="random")
    with pytest.raises(ValueError, match="unknown selector"):
        make_selector("nope")


def test_evaluate_counts(tiny_sudoku_model):
    ps = sudoku.generate(3, 70, seed=0)
    res = sudoku.evaluate(tiny_sudoku_model, ps, make_selector("sequential"))
    assert res.n == 3 and res.mean_nfe == 11
    assert 0 <= res.solve_rate <= 1 and 0 <= res.cell_accuracy <= 1
    # the JSON rows' keys, in their order
    assert list(res.as_dict()) == ["solve_rate", "solve_rate_ci95", "mean_nfe", "cell_accuracy", "non_unique", "n",
                                   "seconds", "puzzles_per_s", "mean_blanks", "outputs", "solved", "nfe",
                                   "extra_passes"]
