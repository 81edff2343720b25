"""Jupyter on a VM: start/stop/find in screen or tmux, its log, readiness over HTTP, activity and idle nudges."""
