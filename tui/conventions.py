"""Names every room agrees on (core, UI, CLI and the sandbox): plain constants, no imports."""

# The sandbox's SSH convention: a server's SSH port and login user ride in its metadata (a real cloud has neither).
META_SSH_PORT = "sandbox_ssh_port"
META_SSH_USER = "sandbox_ssh_user"

# The sandbox's ready-made key pair, whose private key `--demo` copies into the app's key store.
DEMO_KEY = "sandbox-demo"

# A launch's key name "import:/path/to/id_ed25519.pub" means: import that public key as a key pair first.
IMPORT_KEY_PREFIX = "import:"

# The app's remappable actions — the ids the profile's `keymap:` takes — with their default keys, by the screen
# they act on (keys must differ within one screen). The core checks a keymap against this without importing the
# UI; tests/ui/test_keymap_ids.py keeps it equal to the app's bindings. The README's "Keys" section lists them.
KEYMAP_DEFAULTS: dict[str, dict[str, str]] = {
    "main screen": {
        "help": "question_mark", "quit": "q", "launch": "n", "resize": "r", "power": "p", "reboot": "b", "shelve": "h",
        "delete": "ctrl+d", "console": "c", "volumes": "v", "setup": "s", "setup.cancel": "ctrl+x",
        "jupyter.start": "j", "jupyter.stop": "x", "jupyter.log": "l", "tunnel.open": "t", "open": "o",
        "cluster": "k", "image": "i", "transfers": "m", "shell": "ctrl+s", "vscode": "e", "snooze": "z",
        "refresh": "f5", "filter": "slash",
        "pane.instances": "1", "pane.flavors": "2", "pane.setup": "3", "pane.tunnels": "4", "pane.next": "tab",
        "pane.previous": "shift+tab", "palette": "ctrl+p", "details": "enter", "tunnel.close": "delete,ctrl+w",
        "interrupt": "ctrl+c", "forward.add": "a", "forward.toggle": "space", "autostop": "u", "autostop.keep": "w",
    },
    "cluster screen": {
        "cluster.close": "escape,q", "cluster.create": "n", "cluster.grow": "plus", "cluster.shrink": "minus",
        "cluster.dashboard": "d", "cluster.delete": "ctrl+d",
    },
    "transfers screen": {
        "transfers.upload": "u", "transfers.download": "d", "transfers.cancel": "x", "transfers.retry": "r",
        "transfers.close": "escape,q",
    },
    "volumes screen": {
        "volumes.create": "a", "volumes.detach": "d", "volumes.delete": "x,delete", "volumes.close": "escape",
    },
    "Jupyter log": {"log.close": "escape,q", "log.filter": "slash", "log.follow": "f", "log.copy": "y"},
    "launch wizard": {"wizard.cancel": "escape", "wizard.back": "ctrl+b"},
    "help": {"help.close": "escape,q,question_mark"},
    "console log": {"console.close": "escape,q"},
    "instance details": {"details.close": "escape,q,enter"},
    "confirm dialog": {"confirm.cancel": "escape"},
    "delete dialog": {"delete.cancel": "escape"},
    "typed confirm dialog": {"typed.cancel": "escape"},
    "host key dialog": {"hostkey.refuse": "escape"},
    "resize dialog": {"resize.cancel": "escape"},
    "resize check dialog": {"verify.later": "escape"},
    "new volume dialog": {"newvolume.cancel": "escape"},
    "worker count dialog": {"workers.cancel": "escape"},
    "sign-in dialog": {"signin.cancel": "escape"},
    "image name dialog": {"imagename.cancel": "escape"},
    "forward dialog": {"forward.cancel": "escape"},
    "autostop dialog": {"autostop.cancel": "escape"},
}
