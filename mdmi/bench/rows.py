"""One benchmark row: a selector setting and what it measured. :class:`BenchRow` holds the
fields every analysis reads, typed; ``extra`` the rest of each benchmark's fields.
:meth:`BenchRow.as_dict` is the JSON row exactly as the benchmarks have always written it
(same keys, same order), so stored results stay byte-identical; :meth:`BenchRow.from_dict`
reads one back."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path

# The JSON keys of each benchmark's rows, in the order its runs write them. A key ending in
# "?" is written only when set (not None); any other typed field is always written, None as
# null. Keys of ``extra`` are written when present, here in this order, unknown ones last.
LAYOUTS = {
    "sudoku": ("selector", "params", "solve_rate", "solve_rate_ci95", "mean_nfe", "cell_accuracy", "non_unique",
               "n", "seconds", "puzzles_per_s", "mean_blanks", "solved_per_puzzle", "nfe_per_puzzle",
               "oracle_extra_passes_per_puzzle", "nfe_reduction_vs_sequential", "provenance?"),
    "hmm": ("selector", "params", "mean_nfe", "seconds", "nll_per_token", "cooc_tv", "n", "provenance?"),
    # a sampled sequential row measures its JSD last, against a second sequential run (the
    # floor): there "jsd" moves to just before "jsd_floor"
    "antibody": ("selector", "params", "task", "n", "temperature", "samples", "mean_nfe", "recovery", "pll",
                 "per_seq", "jsd?", "seconds", "seqs_per_s", "mean_filled", "observed_untouched",
                 "oracle_extra_passes_per_seq", "jsd_floor", "nfe_reduction_vs_sequential", "matches_sequential",
                 "neg_jsd", "block_length", "provenance?"),
    "text": ("selector", "params", "validity", "validity_ci95", "validity_by_task", "mean_nfe", "n", "samples",
             "temperature", "block_length", "prefix_cache", "tokens_per_pass", "distinct_valid", "jsd_to_sequential", "seconds",
             "answers_per_s", "per_seq", "nfe_reduction_vs_sequential", "provenance?"),
}


@dataclass
class BenchRow:
    """One (selector, params) setting of a benchmark and what it measured."""

    selector: str  # registry name, or a curve name such as "mi_budget(eta=0)" (analysis.curve_rows)
    params: dict  # the selector's knobs in this setting
    mean_nfe: float  # model passes per puzzle / sequence, mean: the cost axis
    n: int | None = None  # puzzles, sequences or samples scored
    seconds: float | None = None  # wall-clock of the setting (differs run to run)
    # quality: each benchmark fills its own, the others stay None
    solve_rate: float | None = None  # sudoku: fraction of puzzles solved, higher is better
    solve_rate_ci95: list | None = None  # sudoku: [lo, hi], 95% Wilson interval of solve_rate
    cell_accuracy: float | None = None  # sudoku: blanks equal to the unique solution (None: no puzzle has one)
    nll_per_token: float | None = None  # hmm: exact NLL of the samples, nats per token, lower is better
    cooc_tv: float | None = None  # hmm: total variation of pair co-occurrences vs the true HMM, lower is better
    recovery: float | None = None  # antibody: fraction of filled residues equal to the native one
    pll: float | None = None  # antibody: pseudo-log-likelihood, nats per filled residue, higher is better
    jsd: float | None = None  # antibody, sampled: JSD to sequential's samples, nats, lower is better
    validity: float | None = None  # text: fraction of answers the task's checker accepts, higher is better
    nfe_reduction_vs_sequential: float | None = None  # sequential's mean NFE / this row's (None: no sequential)
    provenance: dict | None = None  # command, versions and date of the run (set by the CLI)
    extra: dict = field(default_factory=dict)  # the benchmark's other fields, by JSON key

    @property
    def benchmark(self) -> str:
        """"sudoku", "hmm", "antibody" or "text": which layout :meth:`as_dict` writes, told by the
        quality fields that are set."""
        if self.solve_rate is not None:
            return "sudoku"
        if self.nll_per_token is not None:
            return "hmm"
        if self.pll is not None or self.recovery is not None:
            return "antibody"
        if self.validity is not None:
            return "text"
        raise ValueError(f"row {self.selector} {self.params} has no quality field (solve_rate, nll_per_token, "
                         "recovery or pll): not a benchmark row")

    def get(self, key: str, default=None):
        """The field or extra field named ``key`` (a metric named by a string, e.g. "pll")."""
        if key in _TYPED:
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)

    def as_dict(self) -> dict:
        """The JSON row: the keys of :data:`LAYOUTS` for this benchmark, in that order."""
        layout = list(LAYOUTS[self.benchmark])
        if self.benchmark == "antibody" and "jsd_floor" in self.extra:
            layout.remove("jsd?")
            layout.insert(layout.index("jsd_floor"), "jsd?")
        out = {}
        for entry in layout:
            key = entry.rstrip("?")
            if key in _TYPED:
                value = getattr(self, key)
                if value is not None or not entry.endswith("?"):
                    out[key] = value
            elif key in self.extra:
                out[key] = self.extra[key]
        for key in _TYPED:  # set, but not a key of this benchmark's rows
            if key not in out and getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> BenchRow:
        """A row as :meth:`as_dict` (or any earlier version of the benchmarks) wrote it."""
        missing = [k for k in ("selector", "params", "mean_nfe") if k not in d]
        if missing:
            raise ValueError(f"not a benchmark row (no {', '.join(missing)}): keys {list(d)}")
        return cls(**{k: v for k, v in d.items() if k in _TYPED},
                   extra={k: v for k, v in d.items() if k not in _TYPED})


_TYPED = tuple(f.name for f in fields(BenchRow) if f.name != "extra")


def dumps(rows: list[BenchRow]) -> str:
    """The JSON text of a result file: the rows' dicts, indented, one newline at the end."""
    return json.dumps([r.as_dict() for r in rows], indent=2) + "\n"


def write_rows(rows: list[BenchRow], path: str | Path) -> None:
    """Write ``rows`` as a JSON result file (its folder made if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(rows))


def read_rows(path: str | Path) -> list[BenchRow]:
    """The rows of a JSON result file written by a ``bench`` command."""
    try:
        got = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from None
    if not isinstance(got, list) or not all(isinstance(r, dict) for r in got):
        raise ValueError(f"{path} is not a bench result (a list of rows)")
    return [BenchRow.from_dict(r) for r in got]


def _model_in(prov: dict) -> str | None:
    """The ``--model`` of the command in ``prov``, or of the command it was made ``from``
    (a script that restricts bench rows, such as ``benchmarks/text_by_task.py``)."""
    argv = shlex.split(prov.get("command", ""))
    if "--model" in argv[:-1]:
        return argv[argv.index("--model") + 1]
    return _model_in(prov["from"]) if isinstance(prov.get("from"), dict) else None


def model_of(rows: list[BenchRow], default: str = "sudoku") -> str:
    """The ``--model`` of the runs that wrote ``rows``, from their provenance (``default``
    where a command gave none), joined with " + " when they differ."""
    names = []
    for r in rows:
        name = _model_in(r.provenance or {}) or default
        if name not in names:
            names.append(name)
    return " + ".join(names)
