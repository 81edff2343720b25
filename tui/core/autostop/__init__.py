"""Autostop on the VM: a watchdog installed by setup stops (or shelves) an idle instance with the laptop closed."""
