"""The engine's capability objects (`engine.cluster`, `engine.forwards`, ...): each owns one capability's behaviour
behind a Protocol of `tui.core.api`, and does the engine's cross-cutting work for it (the ssh config followed,
SSH contexts forgotten, failures as `ManagerError`). `tui.core.engine.CoreEngine` builds them and hands each only
the narrow parts it needs."""
