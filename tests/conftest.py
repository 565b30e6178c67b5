"""The session-wide real stack, registered once here so the integration and the end-to-end tests
share one Temporal dev server and one PostgreSQL per run."""

pytest_plugins = ["tests.real_stack"]
