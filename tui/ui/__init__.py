"""The full-screen Textual app: layout, keys, areas of actions, widgets, screens. No openstack, no asyncssh."""
