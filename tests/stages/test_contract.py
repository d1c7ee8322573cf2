"""Readers of a prepared dataset check the candidates against the ``candidates_sha256`` of prepare."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.errors import DataError
from stages.llm.prompts import read_dataset
from stages.seqrec.data import load_prepared
from tests.conftest import make_dataset

READERS = {"seqrec": load_prepared, "prompts": read_dataset}


def swap_two_candidates(dataset: Path) -> None:
    """The order of one test row's candidates changed: still valid on its own, not what prepare drew."""
    path = dataset / "examples.parquet"
    table = pq.read_table(path)
    candidates = table.column("candidates").to_pylist()
    row = table.column("split").to_pylist().index("test")
    candidates[row][0], candidates[row][1] = candidates[row][1], candidates[row][0]
    column = pa.array(candidates, type=table.schema.field("candidates").type)
    pq.write_table(table.set_column(table.schema.get_field_index("candidates"), "candidates", column), path)


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_readers_accept_the_dataset_as_prepared(reader, tmp_path: Path) -> None:
    reader(make_dataset(tmp_path / "d"))


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_edited_candidates_are_refused(reader, tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    swap_two_candidates(dataset)
    with pytest.raises(DataError, match="candidates_sha256") as error:
        reader(dataset)
    assert error.value.field == "candidates" and error.value.file == str(dataset / "examples.parquet")


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize(
    ("text", "field"),
    [("{not json", None), ('["a list"]', None), (None, "candidates_sha256")],
    ids=["not-json", "not-an-object", "no-candidates-sha256"],
)
def test_a_broken_dataset_json_names_file_and_field(reader, text, field, tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    meta_path = dataset / "dataset.json"
    if text is None:
        meta = json.loads(meta_path.read_text())
        del meta["candidates_sha256"]
        text = json.dumps(meta)
    meta_path.write_text(text)
    with pytest.raises(DataError) as error:
        reader(dataset)
    assert error.value.file == str(meta_path) and error.value.field == field
