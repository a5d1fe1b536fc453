"""Decoding benchmarks: every selector over its knob, one loop, one NFE count.

- :mod:`.settings`: the knob sweeps of each benchmark, the settings a ``--selectors`` list
  asks for, the selector built from one;
- :mod:`.rows`: :class:`BenchRow`, one setting and what it measured (its JSON row);
- :mod:`.sudoku`, :mod:`.hmm`, :mod:`.antibody`, :mod:`.text`: the runs, each returning BenchRows;
- :mod:`.analysis`: reduction vs sequential, equal-NFE comparisons, sequential match, tables.
"""

from .analysis import (METRICS, NFE_LABEL, Comparison, Metric, add_reduction, antibody_comparisons, comparisons,
                       curve_rows, equal_nfe, interpolate, matches_sequential, print_antibody_table, print_comparison,
                       print_hmm_table, print_sequential_match, print_sudoku_table, sequential_match, sequential_row,
                       sudoku_comparison)
from .antibody import run_antibody
from .hmm import cooccurrence_tv, run_hmm
from .rows import LAYOUTS, BenchRow, model_of, read_rows, write_rows
from .settings import (ANTIBODY_SWEEPS, HMM_SWEEPS, SWEEPS, TEXT_SWEEPS, build, picked_settings, selector_names,
                       settings)
from .sudoku import run_sudoku
from .text import print_text_table, run_text

__all__ = [
    "ANTIBODY_SWEEPS", "HMM_SWEEPS", "LAYOUTS", "METRICS", "NFE_LABEL", "SWEEPS", "TEXT_SWEEPS", "BenchRow", "Comparison", "Metric",
    "add_reduction", "antibody_comparisons", "build", "picked_settings", "comparisons", "cooccurrence_tv", "curve_rows", "equal_nfe",
    "interpolate", "matches_sequential", "model_of", "print_antibody_table", "print_comparison", "print_hmm_table",
    "print_sequential_match", "print_sudoku_table", "read_rows", "run_antibody", "run_hmm", "run_sudoku",
    "run_text", "print_text_table", "selector_names", "sequential_match", "sequential_row", "settings", "sudoku_comparison", "write_rows",
]
