"""The owners of the app's behaviour, one module each (polling, instances, volumes, remote jobs, setup, Jupyter,
tunnels, the instances' remote life, clusters, leaving): plain objects that own their state, made by
`tui.ui.app.CadesApp` and reached through it (`app.polling`, …). `base.Owner` is what they share; the App's
`action_*`/`on_*` methods delegate to them in one line."""
