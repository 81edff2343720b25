"""asyncssh: connections (host keys, ssh config, agent, jump hosts), run/stream commands, tunnels, sessions."""
