"""cades-tui: set up a Python analytics server on an OpenStack cloud from one terminal app."""

__version__ = "0.1.0"
