"""The CLI tests of autostop use the CLI rig of tests/cli_remote (one sandbox instance launched by the CLI)."""

from tests.cli_remote.conftest import cli, cli_world

__all__ = ["cli", "cli_world"]
