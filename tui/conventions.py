"""Names every room agrees on (core, UI, CLI and the sandbox): plain constants, no imports."""

# The sandbox's SSH convention: a server's SSH port and login user ride in its metadata (a real cloud has neither).
META_SSH_PORT = "sandbox_ssh_port"
META_SSH_USER = "sandbox_ssh_user"

# The sandbox's ready-made key pair, whose private key `--demo` copies into the app's key store.
DEMO_KEY = "sandbox-demo"

# A launch's key name "import:/path/to/id_ed25519.pub" means: import that public key as a key pair first.
IMPORT_KEY_PREFIX = "import:"
