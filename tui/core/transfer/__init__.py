"""Copy and sync files between here and an instance over the app's verified SSH connection, with resume and
SHA-256 checks (`cades-tui cp`, `cades-tui sync`). Never imports textual."""
