"""``llara serve``: the command's options; what it starts and stops is ``flows.serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.store import StoreOption
from flows.serve import AUTH_ENV


def serve_command(
    port: Annotated[int, typer.Option(help="Port of the Prefect API and UI.")] = 4200,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Anything but loopback (127.0.0.1, ::1, localhost) needs an "
            "auth string."
        ),
    ] = "127.0.0.1",
    auth_string: Annotated[
        str | None,
        typer.Option(
            envvar=AUTH_ENV,
            show_envvar=True,
            help="USER:PASSWORD for Prefect's basic authentication of the API and UI. Prefer the "
            "environment variable: a command-line value shows in `ps`.",
        ),
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Let runs started from the UI or API unpickle llara-release files when their "
            "allow_pickle parameter asks for it. Off: such a run fails, since anyone who reaches the "
            "UI sets the parameters, and unpickling runs code.",
        ),
    ] = False,
    prefect_home: Annotated[
        Path, typer.Option(envvar="PREFECT_HOME", help="Prefect state (SQLite database, logs).")
    ] = Path(".llara/prefect"),
    store: StoreOption = None,
) -> None:
    """Start a Prefect server (SQLite) with the work pool, every deployment and a worker.

    Open the printed UI address, pick Deployments -> llara-reproduce -> Run to start the full
    pipeline, or llara-<stage> to rerun one stage. Ctrl-C or SIGTERM stops the worker and the server.
    """
    from artifacts import default_store_root
    from flows.serve import ServeConfig
    from flows.serve import serve as serve_fn

    config = ServeConfig(
        host=host,
        port=port,
        prefect_home=prefect_home,
        store=store or default_store_root(),
        auth_string=auth_string,
        allow_pickle=allow_pickle,
    )
    serve_fn(config)
