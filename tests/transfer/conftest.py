"""The CLI's remote-test world (a sandbox instance launched with the real CLI, tests/cli_remote/conftest.py),
shared here: `cli_world`, `cli`, `subprocess_env`."""

from tests.cli_remote.conftest import cli, cli_world, subprocess_env

__all__ = ["cli", "cli_world", "subprocess_env"]
