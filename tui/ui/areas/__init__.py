"""The app's areas of actions, one module each: its key actions, the workers they start and the handlers of what
those workers and the core report. `tui.ui.app.CadesApp` combines them; `base.Area` is what they share."""
