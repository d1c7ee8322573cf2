"""The ``llara`` command line: each subcommand maps to a plain function in ``tasks``/``flows``.

One module per command, named after it (``llara prepare`` is ``flows/cli/prepare.py``; ``pretrain``
holds ``import-sr`` too, ``store`` its subcommands), plus the options several share (``settings``,
``resources``). This module holds the app: the global options, the command table and ``main``, the
entry point (``llara``, ``python -m flows.cli``).

Stage commands print the artifact directory as the last line of stdout, so scripts can do
``data=$(llara prepare bundled:movielens-100k | tail -n 1)``. Logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from artifacts import ArtifactError
from flows.cli.allocator import relaunch_under_tcmalloc
from flows.cli.evaluate import evaluate_command
from flows.cli.finetune import finetune_command
from flows.cli.prepare import prepare_command
from flows.cli.pretrain import import_sr_command, pretrain_command
from flows.cli.report import report_command
from flows.cli.run import run_command
from flows.cli.run_errors import drop_user_error_tracebacks
from flows.cli.serve import serve_command
from flows.cli.stage import STAGE_HELP, stage_command
from flows.cli.store import store_app
from flows.serve import ServeError
from stages.errors import DataError

app = typer.Typer(
    help="Reproducible LLaRA: prepare data, pretrain recommenders, fine-tune an LLM, evaluate, report.",
    # The report ends with the same places (stages.report.report.SEE_ALSO; tests/test_docs_links.py).
    epilog=(
        "How much of LLaRA the project reproduces today: README.md, \"What it reproduces today\". "
        "Every result with its command: docs/results.md; why the small LLM's rows are not learning "
        "yet: docs/learning.md; every document: docs/README.md (paths in the llara-pipeline repository)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(store_app, name="store")


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
) -> None:
    # Our own progress at INFO; libraries (httpx, transformers...) only when something is wrong.
    logging.getLogger("llara").setLevel(logging.WARNING if quiet else logging.INFO)
    # Bars only on a terminal: in a log file each redraw is a line (the stages log lines instead).
    # Hugging Face reads this when imported, else is told directly; child processes inherit it.
    if quiet or not sys.stderr.isatty():
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        if "transformers" in sys.modules:
            sys.modules["transformers"].utils.logging.disable_progress_bar()
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


app.command("prepare")(prepare_command)
app.command("run")(run_command)
app.command("pretrain")(pretrain_command)
app.command("import-sr")(import_sr_command)
app.command("finetune")(finetune_command)
app.command("report")(report_command)
app.command("evaluate")(evaluate_command)
app.command("stage", help=STAGE_HELP)(stage_command)
app.command("serve")(serve_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit code."""
    args = sys.argv[1:] if argv is None else argv
    if argv is None:  # the real command line, not a call from Python
        relaunch_under_tcmalloc(args)
    # Also for the temporary server Prefect starts when no API is configured (`llara run`):
    # its telemetry cannot reach the internet here and would log ERROR lines.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect waits 20 s for that temporary server; a fresh one takes 14-19 s on 2 idle cores and
    # more on a busy machine, so its default turns a slow start into a failed run.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if "--debug" not in args:
        drop_user_error_tracebacks((DataError, ArtifactError, ServeError))
    try:
        app(args=args, prog_name="llara")
    except (DataError, ArtifactError, ServeError) as error:
        if "--debug" in args:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Exception as error:  # noqa: BLE001 - last resort: one line, traceback only with --debug
        if "--debug" in args:
            raise
        message = " ".join(str(error).split())  # one line even for a multi-line validation message
        typer.echo(
            f"error: {type(error).__name__}: {message} (rerun with --debug for the traceback)", err=True
        )
        sys.exit(1)
