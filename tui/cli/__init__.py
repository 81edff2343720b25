"""The headless commands: the parser and one module per command group, printing from the core's events."""
