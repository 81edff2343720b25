"""Modal dialogs and full screens of the app (no openstack, no asyncssh)."""
