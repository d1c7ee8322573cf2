"""Prefect flows that compose the stage tasks; the ``llara`` command line that runs them is ``flows.cli``."""
