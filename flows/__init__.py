"""Prefect flows that compose the stage tasks, plus the ``llara`` command line (``flows.cli``)."""
