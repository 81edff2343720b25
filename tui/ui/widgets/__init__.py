"""The main screen's widgets: panes, tables, the bounded log view, formatting helpers, palette commands."""
