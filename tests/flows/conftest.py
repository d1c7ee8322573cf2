import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect API (temporary SQLite) for flow tests; heartbeats off keeps runs fast."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
