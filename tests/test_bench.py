import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from mdmi import bench
from mdmi.cli import main
from mdmi.labels import load_labels
from mdmi.models.transformer import MaskedTransformer, MDMConfig


def script(name: str):
    """A script of benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_settings_grid_and_errors():
    jobs = bench.settings(["sequential", "topk:k=2/5", "mi_budget:gamma=0.01/1e-3"])
    assert jobs == [("sequential", {}), ("topk", {"k": 2}), ("topk", {"k": 5}),
                    ("mi_budget", {"gamma": 0.01}), ("mi_budget", {"gamma": 0.001})]
    assert isinstance(jobs[1][1]["k"], int)
    assert bench.settings(["mi_budget:gamma=1/2+eta=0"]) == [("mi_budget", {"gamma": 1, "eta": 0}),
                                                              ("mi_budget", {"gamma": 2, "eta": 0})]
    with pytest.raises(ValueError, match=r"name:knob=value,knob2=v1/v2"):
        bench.settings(["mi_budget:gamma=1+eta"])
    assert bench.settings(["threshold"], sweep=False) == [("threshold", bench.SWEEPS["threshold"][0])]
    assert len(bench.settings(["entropy_bound"], sweeps=bench.HMM_SWEEPS)) == len(bench.HMM_SWEEPS["entropy_bound"])
    with pytest.raises(ValueError, match="no sweep"):
        bench.settings(["bogus"])
    with pytest.raises(ValueError, match="name:knob=value"):
        bench.settings(["topk:k"])
    with pytest.raises(ValueError, match="k must be an integer"):
        bench.settings(["topk:k=a/b"])
    assert bench.settings(["mi_budget:order=margin/confidence+gamma=0.5"]) == [
        ("mi_budget", {"order": "margin", "gamma": 0.5}), ("mi_budget", {"order": "confidence", "gamma": 0.5})]
    names = bench.selector_names(bench.SWEEPS, has_estimator=False)
    assert "mi_budget" not in names and "entropy_bound" in names and not any(n.endswith("_oracle") for n in names)


def _row(sel, nfe, rate, **params):
    return bench.BenchRow(sel, params, nfe, solve_rate=rate)


def test_equal_nfe_interpolates_and_flags_tolerance():
    rows = [_row("sequential", 60.0, 0.9),
            _row("entropy_bound", 10.0, 0.5, gamma=0.1), _row("entropy_bound", 20.0, 0.7, gamma=0.01),
            _row("entropy_bound", 40.0, 0.8, gamma=0.001),  # 1.5x fewer: outside 2x-6x
            _row("mi_budget", 12.0, 0.8, gamma=0.1), _row("mi_budget", 22.0, 0.9, gamma=0.01)]
    cmp = bench.equal_nfe(rows)
    at_eb = [e for e in cmp if e["at"] == "entropy_bound"]
    assert [e["nfe"] for e in at_eb] == [10.0, 20.0]  # 6x and 3x
    e10, e20 = at_eb
    assert e10["mi_budget_solve_interp"] is None and e10["ours_minus_ref"] is None  # below mi_budget's range
    assert e10["mi_budget_nearest"]["nfe"] == 12.0 and not e10["nearest_within_tol"]  # 20% away
    assert not e10["mi_budget_dominates"] and e20["mi_budget_dominates"]  # mi 12 NFE 0.8 >= eb 20 NFE 0.7
    assert e20["mi_budget_solve_interp"] == pytest.approx(0.88)  # 0.8 + 0.1 * 8/10
    assert e20["ours_minus_ref"] == pytest.approx(0.18) and e20["nearest_within_tol"]  # 22 vs 20: 10%
    at_mi = [e for e in cmp if e["at"] == "mi_budget"]
    assert [e["nfe"] for e in at_mi] == [12.0, 22.0]
    assert at_mi[0]["entropy_bound_solve_interp"] == pytest.approx(0.54)
    assert at_mi[0]["ours_minus_ref"] == pytest.approx(0.26)
    assert [r.params for r in bench.sequential_match(rows, frac=0.4)] == [{"gamma": 0.01}]
    assert bench.sequential_match(rows) == []  # 1/4 of 60 = 15: only gamma=0.1 (0.8 < 0.89)
    with pytest.raises(ValueError, match="sequential"):
        bench.equal_nfe(rows[1:])


def test_bench_sudoku_cli_writes_rows_and_comparison(tmp_path, capsys):
    from mdmi.estimator import Estimator, EstimatorConfig

    torch.manual_seed(0)
    MaskedTransformer(MDMConfig(d_model=32, n_layers=2, n_heads=2, grid=9)).save(tmp_path / "m")
    Estimator(EstimatorConfig(d_hidden=32, width=16, rank=8)).save(tmp_path / "m" / "estimator")
    pz = tmp_path / "p.txt"
    main(["generate-puzzles", "--n", "6", "--givens", "60", "--seed", "3", "--out", str(pz)])
    out = tmp_path / "b.json"
    main(["bench", "sudoku", "--puzzles", str(pz), "--model", str(tmp_path / "m"), "--json", str(out),
          "--selectors", "sequential,entropy_bound:gamma=0.001/10,mi_budget:gamma=0.001/10,topk:k=3"])
    rows = json.loads(out.read_text())
    assert [r["selector"] for r in rows] == ["sequential"] + ["entropy_bound"] * 2 + ["mi_budget"] * 2 + ["topk"]
    assert all({"selector", "params", "solve_rate", "mean_nfe", "n", "seconds"} <= set(r) for r in rows)
    assert rows[0]["mean_nfe"] == 21 and rows[-1]["mean_nfe"] == 7
    assert out.with_suffix(".csv").read_text().count("\n") == len(rows) + 1
    cmp = json.loads((tmp_path / "b_equal_nfe.json").read_text())
    assert isinstance(cmp, list)
    printed = capsys.readouterr().out
    assert "equal NFE" in printed and "within 1 point of sequential" in printed
    # a second run merged with the first reports as one
    main(["bench", "sudoku", "--puzzles", str(pz), "--model", str(tmp_path / "m"), "--json", str(tmp_path / "c.json"),
          "--selectors", "threshold:tau=0.9"])
    main(["bench", "merge", str(out), str(tmp_path / "c.json"), "--json", str(tmp_path / "all.json")])
    merged = json.loads((tmp_path / "all.json").read_text())
    assert [r["selector"] for r in merged][-1] == "threshold" and len(merged) == len(rows) + 1
    assert merged[-1]["nfe_reduction_vs_sequential"] == pytest.approx(21 / merged[-1]["mean_nfe"])
    with pytest.raises(SystemExit, match="more than one input"):
        main(["bench", "merge", str(out), str(out)])


def test_label_task_hmm(tmp_path):
    main(["train", "hmm", "--out", str(tmp_path / "h"), "--length", "6", "--n-states", "3", "--n-symbols", "4",
          "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--steps", "2", "--batch-size", "8"])
    main(["label", "--model", str(tmp_path / "h"), "--task", "hmm", "--contexts", "6", "--shard-size", "3",
          "--out", str(tmp_path / "lab")])
    lab = load_labels(tmp_path / "lab")
    assert lab["tokens"].shape == (6, 6) and int(lab["tokens"].max()) <= 4
    MaskedTransformer(MDMConfig(d_model=16, n_layers=1, n_heads=2, grid=9)).save(tmp_path / "m0")
    with pytest.raises(SystemExit, match="trained with 'mdmi train hmm'"):
        main(["label", "--model", str(tmp_path / "m0"), "--task", "hmm",
              "--contexts", "2", "--out", str(tmp_path / "lab2")])


def test_equal_nfe_survives_ties():
    """Two settings with the same NFE and the same score (one ran out of masks in one step
    either way) once crashed the comparison by comparing their params dicts."""
    from mdmi.bench import equal_nfe

    rows = [bench.BenchRow("sequential", {}, 10.0, pll=-0.3), bench.BenchRow("mi_budget", {"gamma": 30}, 4.0, pll=-0.4),
            bench.BenchRow("mi_budget", {"gamma": 1, "eta": 0}, 4.0, pll=-0.4),
            bench.BenchRow("factor", {"f": 4}, 4.0, pll=-0.5)]
    out = equal_nfe(rows, ref="factor", metric="pll", label="pll", lo=2.0, hi=3.0)
    at_factor = next(e for e in out if e["at"] == "factor")
    assert abs(at_factor["ours_minus_ref"] - 0.1) < 1e-12


def test_ranking_paired_difference_by_hand():
    ranking = script("ranking")
    # per puzzle: differences +1, 0, 0, -1 -> mean 0, sd sqrt(2/3)
    m, lo, hi = ranking.paired({"solved_per_puzzle": "1010"}, {"solved_per_puzzle": "0011"})
    half = 1.96 * math.sqrt(2 / 3) / 2
    assert m == 0 and math.isclose(lo, -half) and math.isclose(hi, half)
    # per sequence, antibody rows: PLL differences 0.1 and 0.3; JSD is turned into "higher is better"
    a = {"per_seq": {"pll": [-1.0, -1.0], "jsd": [0.2, 0.1]}}
    b = {"per_seq": {"pll": [-1.1, -1.3], "jsd": [0.3, 0.4]}}
    m, lo, hi = ranking.paired(a, b, "pll")
    assert math.isclose(m, 0.2) and math.isclose(hi - m, 1.96 * math.sqrt(0.02) / math.sqrt(2))
    assert math.isclose(ranking.paired(a, b, "neg_jsd")[0], 0.2)
    assert ranking.paired(a, {"pll": -1.0}, "pll") is None  # rows made before per-sequence outcomes


def test_curve_rows_give_eta_zero_its_own_curve():
    rows = [_row("sequential", 60.0, 0.9), _row("mi_budget", 12.0, 0.8, gamma=3.0),
            _row("mi_budget", 20.0, 0.6, gamma=0.1, eta=0.0), _row("mi_budget", 30.0, 0.7, gamma=1.0, eta=1.0)]
    out = bench.curve_rows(rows)
    assert [r.selector for r in out] == ["sequential", "mi_budget", "mi_budget(eta=0)", "mi_budget"]
    assert rows[2].selector == "mi_budget"  # the input rows are left as they were
    clash = [_row("mi_budget", 9.0, 0.9, gamma=1.0, eta=0.0, distinct=0.01), _row("mi_budget", 9.0, 0.9, gamma=1.0, distinct=0.01)]
    assert [r.selector for r in bench.curve_rows(clash)] == ["mi_budget(eta=0,distinct)", "mi_budget(distinct)"]


def test_model_of_follows_rows_restricted_from_a_bench():
    from dataclasses import replace

    from mdmi.bench.rows import model_of

    bench_prov = {"command": "mdmi bench text --model text --problems p.tsv"}
    restricted = {"command": "python benchmarks/text_by_task.py --rows r.json --task perm", "from": bench_prov}
    rows = [replace(_row("sequential", 32.0, 1.0), provenance=p) for p in (restricted, bench_prov)]
    assert model_of(rows) == "text"
    assert model_of([replace(_row("sequential", 32.0, 1.0), provenance={"command": "python x.py"})]) == "sudoku"


def test_bench_rows_read_back_as_stored():
    """Every stored bench result reads into BenchRows whose dicts are the stored rows, keys
    in the same order: rewriting a result file from its rows changes no byte."""
    from pathlib import Path

    checked = 0
    for f in sorted((Path(__file__).parent.parent / "benchmarks" / "results").rglob("*.json")):
        got = json.loads(f.read_text())
        if not (isinstance(got, list) and got and all(isinstance(r, dict) and "mean_nfe" in r for r in got)):
            continue  # not a list of bench rows (rankings, MI, likelihood results)
        rows = [bench.BenchRow.from_dict(r) for r in got]
        assert json.dumps([r.as_dict() for r in rows], indent=2) == json.dumps(got, indent=2), f
        checked += 1
    assert checked > 0


def test_bench_row_layouts():
    row = bench.BenchRow("sequential", {}, 12.0, n=2, seconds=1.0, recovery=0.5, pll=-0.7, jsd=0.4,
                         extra={"task": "cdr3", "jsd_floor": 0.4, "per_seq": {}, "samples": 3})
    keys = list(row.as_dict())
    # a sampled sequential row measures its JSD last, just before its floor
    assert keys == ["selector", "params", "task", "n", "samples", "mean_nfe", "recovery", "pll", "per_seq", "seconds",
                    "jsd", "jsd_floor", "nfe_reduction_vs_sequential"]
    other = bench.BenchRow("topk", {"k": 2}, 6.0, recovery=0.5, pll=-0.7, jsd=0.5, extra={"per_seq": {}})
    assert list(other.as_dict())[6:8] == ["per_seq", "jsd"] and other.get("pll") == -0.7
    assert "jsd" not in bench.BenchRow("topk", {}, 6.0, pll=-1.0).as_dict()  # greedy: no JSD key
    s = bench.BenchRow("topk", {"k": 2}, 6.0, n=3, solve_rate=1.0, solve_rate_ci95=[0.4, 1.0])
    assert s.as_dict()["cell_accuracy"] is None and s.benchmark == "sudoku"  # always written, null when unknown
    with pytest.raises(ValueError, match="mean_nfe"):
        bench.BenchRow.from_dict({"selector": "topk", "params": {}})


def test_empty_equal_nfe_says_why(capsys):
    rows = [_row("sequential", 60.0, 0.9), _row("entropy_bound", 50.0, 0.9, gamma=0.1),
            _row("mi_budget", 55.0, 0.9, gamma=0.1)]
    c = bench.sudoku_comparison(rows)
    assert c.entries == []
    bench.print_comparison(c)
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["equal NFE, mi_budget vs entropy_bound: no setting of mi_budget or entropy_bound at 2x-6x fewer "
                   "NFE than sequential; run with --sweep (or give settings in that range)"]


def test_every_selector_has_its_own_plot_style():
    from mdmi.plots import selector_style

    names = set(bench.SWEEPS) | set(bench.HMM_SWEEPS) | set(bench.ANTIBODY_SWEEPS) | {"mi_budget(eta=0)", "mi_budget(eta=0,distinct)", "mi_budget(distinct)"}
    styles = {n: tuple(sorted(selector_style(n).items())) for n in names}
    assert len(set(styles.values())) == len(names)  # colour, marker, fill and line tell every curve apart
    assert selector_style("mi_budget_oracle")["color"] == selector_style("mi_budget")["color"]
    assert selector_style("not_in_the_table") == selector_style("not_in_the_table")  # fixed, not by call order


def test_without_sweep_the_shipped_heads_picks_run():
    from pathlib import Path

    from mdmi.estimator import Estimator
    from mdmi.resources import checkpoint_dir

    picked = {"mi_budget": [{"gamma": 7}, {"gamma": 0.1, "eta": 0.0}]}
    assert bench.settings(["sequential", "mi_budget", "threshold"], sweep=False, sweeps=bench.ANTIBODY_SWEEPS,
                          picked=picked) == [("sequential", {}), ("mi_budget", {"gamma": 7}),
                                             ("mi_budget", {"gamma": 0.1, "eta": 0.0}),
                                             ("threshold", bench.ANTIBODY_SWEEPS["threshold"][0])]
    assert bench.settings(["mi_budget"], sweep=True, sweeps=bench.ANTIBODY_SWEEPS, picked=picked) == \
        [("mi_budget", p) for p in bench.ANTIBODY_SWEEPS["mi_budget"]]  # --sweep ignores the picks
    head = Estimator.load(Path(checkpoint_dir("sapiens_vh")) / "estimator")
    cdr3 = bench.picked_settings(head, "cdr3", 0.0)
    assert {"mi_budget", "threshold", "factor", "entropy_bound"} <= set(cdr3)
    assert bench.picked_settings(head, "cdr3", 1.0) == {}  # picked greedily: not for sampling
    assert set(bench.picked_settings(head, "denovo", 1.0)) >= {"mi_budget"}



def test_layout_probe_moves_only_the_prompt():
    from mdmi.tasks import textbed

    mod = script("text_layout_probe")
    pairs = [("4512=", "3201+1311"), ("45=", "21+24")]
    right, ans_r = mod.encode(pairs, "right")
    left, ans_l = mod.encode(pairs, "left")
    W, tok = textbed.PROMPT_WIDTH, textbed.TOKENIZER
    assert torch.equal(ans_r, ans_l) and torch.equal(right[:, W:], left[:, W:])  # the answers are where they were
    for b, (prompt, _) in enumerate(pairs):
        ids = torch.tensor(tok.encode(prompt))
        assert torch.equal(left[b, :len(ids)], ids) and (left[b, len(ids):W] == tok.pad_id).all()
        assert torch.equal(right[b, W - len(ids):W], ids) and (right[b, :W - len(ids)] == tok.pad_id).all()
    # from N's first digit to A's: the same offset for every N on the left, len(N) + 1 in the shipped layout
    first = [int((row != tok.pad_id).nonzero()[0]) for row in left], [int((row != tok.pad_id).nonzero()[0]) for row in right]
    assert [W - i for i in first[0]] == [W, W] and [W - i for i in first[1]] == [len(p) for p, _ in pairs]

def test_text_rows_restricted_to_one_task():
    mod = script("text_by_task")
    tasks = ["add", "perm", "perm", "split"]
    rows = [{"selector": "sequential", "params": {}, "samples": 1, "validity": 0.5, "mean_nfe": 10.0,
             "per_seq": {"validity": [0.0, 1.0, 1.0, 0.0], "nfe": [14.0, 8.0, 10.0, 8.0]}, "jsd_to_sequential": 0.1},
            {"selector": "threshold", "params": {"tau": 0.9}, "samples": 1, "validity": 0.25, "mean_nfe": 5.0,
             "per_seq": {"validity": [0.0, 1.0, 0.0, 0.0], "nfe": [2.0, 4.0, 5.0, 9.0]}}]
    seq, thr = mod.restrict(rows, tasks, "perm", {"command": "x"})
    assert (seq["validity"], seq["mean_nfe"], seq["n"]) == (1.0, 9.0, 2)
    assert (thr["validity"], thr["mean_nfe"], thr["nfe_reduction_vs_sequential"]) == (0.5, 4.5, 2.0)
    assert thr["per_seq"] == {"validity": [1.0, 0.0], "nfe": [4.0, 5.0]} and "jsd_to_sequential" not in seq
    assert thr["validity_by_task"] == {"perm": 0.5} and thr["provenance"]["command"] == "x"
    with pytest.raises(SystemExit, match="not the problem file"):
        mod.restrict(rows, tasks[:3], "perm", {})


def test_text_traces_fault_kinds_by_hand():
    mod = script("text_traces")
    # a trace of two rows, answers from position 10: row 0 fills 10, 11 together, then 12; row 1 one per step
    trace = [{"rows": [0, 1], "filled": [[10, 11], [10]], "entropy": [[1.0, 1.0], [0.5]], "tokens": [[0, 0], [0]]},
             {"rows": [0, 1], "filled": [[12], [11]], "entropy": [[0.1], [0.5]], "tokens": [[0], [0]],
              "eos": [[13], []], "eos_id": 9}]
    when = mod.fill_steps(trace, 2, 10)
    assert when == [{0: 0, 1: 0, 2: 1, 3: 1}, {0: 0, 1: 1}]
    assert mod.fault("abc", "cab", when[0]) is None
    assert mod.fault("abc", "aac", when[0]) == "joint"  # both a's in step 0
    assert mod.fault("abc", "aca", when[0]) == "repeat"  # the second a came a step later
    assert mod.fault("abc", "ab", when[0]) == "length" and mod.fault("abc", "abd", when[0]) == "foreign"
    passes = mod.passes(trace, 10, ["aac", "ab"])
    assert passes == [{"doubled": True, "size": 2, "entropy": 1.0, "pairwise_sum": None}]


def test_text_traces_on_the_shipped_model_agree_with_the_checker():
    import mdmi
    from mdmi.estimator import Estimator
    from mdmi.resources import checkpoint_dir
    from mdmi.tasks import textbed

    mod = script("text_traces")
    model, est = mdmi.load("text"), Estimator.load(checkpoint_dir("text/estimator"))
    pairs = [("abcdefg:", "abcdefg"), ("qwerty:", "qwerty"), ("xyz:", "xyz")]
    for name, params in [("sequential", {}), ("threshold", {"tau": 0.3}), ("mi_budget", {"gamma": 1.0, "eta": 0.0})]:
        r = mod.run(model, est, pairs, name, params, block_length=8, batch_size=2)
        assert r["n"] == 3 and sum(r["faults"].values()) == sum(a["fault"] is not None for a in r["answers"])
        for a in r["answers"]:
            assert (a["fault"] is None) == textbed.check("perm", a["prompt"], a["answer"])
        assert r["doubling_passes"] <= r["multi_letter_passes"]
        if name == "mi_budget":  # the head's pairwise score rides in the trace
            assert r["multi_letter_passes"] == 0 or r["pairwise_clean"] is not None or r["pairwise_doubling"] is not None


def test_ranking_matched_pairs_every_setting_in_the_band(tmp_path):
    ranking = script("ranking")
    per = {"a": [1, 1, 0, 0], "b": [1, 1, 1, 0], "c": [0, 0, 0, 0]}

    def row(sel, nfe, outcomes, **params):
        r = bench.BenchRow(sel, params, nfe, validity=sum(outcomes) / 4)
        r.extra["per_seq"] = {"validity": [float(v) for v in outcomes]}
        return r

    test = [row("sequential", 32.0, per["b"]), row("threshold", 8.0, per["a"], tau=0.5),
            row("threshold", 30.0, per["b"], tau=0.9),  # 1.07x fewer: outside 2x-6x
            row("factor", 6.0, per["c"], f=2.0), row("mi_budget", 7.5, per["b"], gamma=0.1),
            row("mi_budget", 5.5, per["a"], gamma=0.3)]
    out = tmp_path / "m.json"
    ranking.matched(test, test[0], "mi_budget", "validity", 2, 6, out, str, str)
    got = json.loads(out.read_text())
    assert [(r["selector"], r["ours_params"]) for r in got] == [("factor", {"gamma": 0.3}), ("threshold", {"gamma": 0.1})]
    assert got[0]["diff"] == -0.5 and got[1]["diff"] == -0.25  # c - a and a - b, per problem
    assert got[1]["reduction"] == 4.0 and got[1]["ours_nfe"] == 7.5
