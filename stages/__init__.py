"""Pure compute, one module (or package) per pipeline stage; nothing here imports Prefect.

Every stage exposes the same three things:

- ``NAME``: the stage name used in artifact ids and manifests;
- a typed ``...Config`` dataclass with a docstring per field;
- ``run(config, inputs, out_dir) -> dict``: reads its input artifact directories (``inputs`` maps
  a role name to a directory), writes its files into ``out_dir`` and returns a small JSON-able
  summary that goes into the artifact's manifest.

Each stage is a module named like it, ``stages/<package>/<name>.py``; ``stages/registry.py`` lists
them in pipeline order under the one name the CLI, flows, tasks and artifacts use. The configs are
defined in each package's ``config.py`` (and imported by the stage module): those import no torch,
so the flows build them, and a fully cached run checks the store, without loading the libraries
the stages compute with.

Storage, caching and atomic publication are the business of ``artifacts/``; orchestration is
``tasks/`` and ``flows/``.
"""

from stages.known_warnings import silence_known_warnings

silence_known_warnings()
