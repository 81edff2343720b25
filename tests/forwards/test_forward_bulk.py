"""The asyncssh forwarder's per-connection tuning (`tune_for_bulk`) against a real OpenSSH sshd: the data stays
whole both ways with the empty SSH_MSG_IGNOREs left out and the input parsed in steps; with a cipher that is not
AEAD the IGNOREs stay."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncssh

from tui.core.remote.asyncssh_forward import tune_for_bulk


async def test_tuned_connection_carries_megabytes_both_ways(connect: Any) -> None:
    conn = await connect()
    try:
        tune_for_bulk(conn)
        assert {"send_packet", "data_received"} <= set(vars(conn))  # both in effect (AES-GCM negotiated)
        down = await conn.run("head -c 4000000 /dev/zero", check=True, encoding=None)
        assert down.stdout == b"\0" * 4_000_000
        payload = bytes(range(256)) * 12_000  # ~3 MB up, in 32 KB packets without an IGNORE before each
        up = await conn.run("sha256sum", input=payload, check=True, encoding=None)
        assert up.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
        tune_for_bulk(conn)  # twice: no second wrapping
        assert (await conn.run("echo again", check=True)).stdout == "again\n"
    finally:
        conn.close()


async def test_ignore_packets_stay_with_a_cipher_that_is_not_aead(ssh_host: Any, client_key: Any) -> None:
    conn = await asyncssh.connect(
        "127.0.0.1", ssh_host.port, username=ssh_host.user, client_keys=[client_key],
        known_hosts=asyncssh.import_known_hosts(ssh_host.known_hosts_line()), encryption_algs=["aes128-ctr"],
        config=[], agent_path=None, connect_timeout=5)
    try:
        tune_for_bulk(conn)
        assert "send_packet" not in vars(conn) and "data_received" in vars(conn)
        assert (await conn.run("head -c 200000 /dev/zero | wc -c", check=True)).stdout.strip() == "200000"
    finally:
        conn.close()
