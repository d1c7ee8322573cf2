"""``llara`` re-executes its heavy commands under tcmalloc (``flows.cli.allocator``); the command
line itself is tested in tests/flows/test_long_profile.py (the fine-tune's summary names it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli.allocator import relaunch_env
from stages.llm.process_clock import malloc_in_use

LIB = "libtcmalloc_minimal.so.4"


@pytest.mark.parametrize("args", [["finetune", "--help"], ["-q", "run", "x"], ["--debug", "serve"]])
def test_a_heavy_command_is_relaunched_with_the_library_preloaded(args: list[str]) -> None:
    env = relaunch_env(args, {"PATH": "/bin", "LD_PRELOAD": "libother.so"}, LIB)
    assert env is not None and env["LD_PRELOAD"] == f"libother.so {LIB}" and env["PATH"] == "/bin"
    assert env["LLARA_MALLOC_RELAUNCHED"] == "1"  # the relaunched process does not relaunch again
    assert relaunch_env(args, env, LIB) is None


@pytest.mark.parametrize(
    ("args", "environ", "library"),
    [
        (["prepare", "bundled:movielens-100k"], {}, LIB),  # a data command keeps its fast start
        (["store", "list"], {}, LIB),
        ([], {}, LIB),
        (["finetune"], {"LLARA_MALLOC": "system"}, LIB),  # told to keep the system's malloc
        (["finetune"], {}, None),  # not installed
        (["finetune"], {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, LIB),  # the user chose one
    ],
)
def test_no_relaunch(args: list[str], environ: dict[str, str], library: str | None) -> None:
    assert relaunch_env(args, environ, library) is None


def test_a_named_library_must_exist(tmp_path: Path) -> None:
    lib = tmp_path / "libmine.so"
    with pytest.raises(SystemExit, match="LLARA_MALLOC"):
        relaunch_env(["finetune"], {"LLARA_MALLOC": str(lib)}, LIB)
    lib.write_bytes(b"")
    assert relaunch_env(["finetune"], {"LLARA_MALLOC": str(lib)}, LIB)["LD_PRELOAD"] == str(lib)


def test_malloc_in_use_reads_the_preload_and_the_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    maps = "7f9a-7f9b r--p 00000000 fe:00 5595138  /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n"
    monkeypatch.setenv("LD_PRELOAD", LIB)
    assert malloc_in_use(maps) == "tcmalloc" and malloc_in_use("") == "system"
    monkeypatch.delenv("LD_PRELOAD")
    assert malloc_in_use(maps) == "system"  # mapped by someone, not the process's malloc
