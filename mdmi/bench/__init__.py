"""Decoding benchmarks: every selector over its knob, one loop, one NFE count."""

from .antibody import ANTIBODY_SWEEPS, print_antibody_table, run_antibody  # noqa: F401
from .sudoku import *  # noqa: F401,F403
from .sudoku import _interp  # noqa: F401
