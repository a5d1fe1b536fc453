"""``python -m mdmi.cli`` (what ``torchrun -m mdmi.cli`` runs)."""

from . import main

main()
