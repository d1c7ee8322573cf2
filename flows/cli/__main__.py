"""``python -m flows.cli ...``: the same as ``llara ...``."""

from flows.cli import main

main()
