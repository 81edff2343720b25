"""The full-screen Textual app: layout, keys, owners of its behaviour, widgets, screens. No openstack or asyncssh."""
