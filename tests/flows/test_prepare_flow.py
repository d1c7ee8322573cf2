import logging

from artifacts import ArtifactStore
from flows.prepare import prepare_flow


def test_second_prepare_run_is_a_logged_cache_hit(prefect_harness, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    first = prepare_flow(source="bundled:movielens-100k", store=str(tmp_path))
    assert "computing prepare" in caplog.text
    caplog.clear()
    second = prepare_flow(source="bundled:movielens-100k", store=str(tmp_path))
    assert second == first
    assert "cache hit: prepare" in caplog.text and "computing prepare" not in caplog.text
    assert [a.id for a in ArtifactStore(tmp_path)] == [first]


def test_deleted_artifact_file_is_recomputed(prefect_harness, tmp_path):
    first = prepare_flow(source="bundled:movielens-100k", store=str(tmp_path))
    store = ArtifactStore(tmp_path)
    store.get(first).file("examples.parquet").unlink()
    assert store.lookup(first) is None
    again = prepare_flow(source="bundled:movielens-100k", store=str(tmp_path))
    assert again == first and store.problems(first, full=True) == []
