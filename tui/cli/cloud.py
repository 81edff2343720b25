"""Old home of `make_cloud`, kept while tests/manager/conftest.py imports it from here: use `tui.cli.common`."""

from tui.cli.common import make_cloud

__all__ = ["make_cloud"]
