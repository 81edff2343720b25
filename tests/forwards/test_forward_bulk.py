"""The asyncssh forwarder's per-connection tuning (`tune_for_bulk`, `asyncssh_fast`) against a real OpenSSH sshd:
the data stays whole both ways on the lean paths, across key exchanges in both directions and with other channels
interleaved; a flipped bit is refused, never delivered; with a cipher that is not AEAD asyncssh's own paths stay."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import asyncssh

from tui.core.remote.asyncssh_fast import FastReceive, lean_sender
from tui.core.remote.asyncssh_forward import tune_for_bulk

# `size` random bytes on stdout (CHANNEL_DATA), their SHA-256 on stderr
_RANDOM_DOWN = "f=$(mktemp) && head -c {size} /dev/urandom > $f && sha256sum $f >&2 && cat $f && rm $f"


async def test_tuned_connection_carries_megabytes_both_ways(connect: Any) -> None:
    conn = await connect()
    try:
        tune_for_bulk(conn)
        receive, send = vars(conn)["data_received"], lean_sender(conn)
        assert isinstance(receive, FastReceive) and send is not None  # both in effect (AES-GCM negotiated)
        down = await conn.run(_RANDOM_DOWN.format(size=4000000), check=True, encoding=None)
        assert down.stdout is not None and len(down.stdout) == 4_000_000
        assert down.stderr.split()[0].decode() == hashlib.sha256(down.stdout).hexdigest()
        payload = bytes(range(256)) * 12_000  # ~3 MB up, in 32 KB packets without an IGNORE before each
        up = await conn.run("sha256sum", input=payload, check=True, encoding=None)
        assert up.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
        assert receive.lean_packets > 100 and send.lean_packets > 80  # the lean paths carried them
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
        receive = vars(conn)["data_received"]
        assert isinstance(receive, FastReceive) and receive.lean_packets == 0  # asyncssh's own parser did it
    finally:
        conn.close()


async def test_key_exchanges_mid_stream_both_ways(ssh_host: Any, client_key: Any) -> None:
    """Key exchanges while data flows (by time on the way down, by bytes on the way up): the lean paths take each
    new key from asyncssh and the data stays whole."""
    conn = await asyncssh.connect(
        "127.0.0.1", ssh_host.port, username=ssh_host.user, client_keys=[client_key],
        known_hosts=asyncssh.import_known_hosts(ssh_host.known_hosts_line()),
        encryption_algs=["aes128-gcm@openssh.com"], config=[], agent_path=None, connect_timeout=5,
        rekey_seconds=0.05, rekey_bytes=1 << 20)
    try:
        tune_for_bulk(conn)
        receive, send = vars(conn)["data_received"], lean_sender(conn)
        assert isinstance(receive, FastReceive) and send is not None
        down = await conn.run(_RANDOM_DOWN.format(size=12000000), check=True, encoding=None)
        assert down.stdout is not None and len(down.stdout) == 12_000_000
        assert down.stderr.split()[0].decode() == hashlib.sha256(down.stdout).hexdigest()
        payload = bytes(range(256)) * 24_000  # ~6 MB up: a key exchange every MB sent
        up = await conn.run("sha256sum", input=payload, check=True, encoding=None)
        assert up.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
        assert receive.keys_seen >= 3 and send.keys_seen >= 3, (receive.keys_seen, send.keys_seen)
        assert receive.lean_packets > 300 and send.lean_packets > 150
    finally:
        conn.close()


async def test_other_channels_interleave_with_bulk_data(connect: Any) -> None:
    """Commands (their EOFs, exit statuses and closes go to asyncssh's parser) while another channel streams."""
    conn = await connect()
    try:
        tune_for_bulk(conn)
        bulk = asyncio.ensure_future(conn.run("head -c 16000000 /dev/zero | tr '\\0' x", check=True,
                                              encoding=None))
        for n in range(15):
            assert (await conn.run(f"echo {n}", check=True)).stdout == f"{n}\n"
        down = await bulk
        assert down.stdout == b"x" * 16_000_000
        assert vars(conn)["data_received"].lean_packets > 400
    finally:
        conn.close()


async def test_a_flipped_bit_is_refused_not_delivered(connect: Any) -> None:
    """One bit flipped in the ciphertext on the way in: the connection ends with asyncssh's MAC error and the
    channel never gets bytes that differ from what was sent."""
    conn = await connect()
    try:
        tune_for_bulk(conn)
        receive = vars(conn)["data_received"]
        got = bytearray()

        class Collect(asyncssh.SSHClientSession[bytes]):
            def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
                got.extend(data)

        flipped = False

        def corrupting(data: bytes | memoryview, datatype: object = None) -> None:
            nonlocal flipped
            if not flipped and len(data) > 40_000:
                flipped = True
                data = bytes(data[:20_000]) + bytes([data[20_000] ^ 1]) + bytes(data[20_001:])
            receive(data)

        vars(conn)["data_received"] = corrupting
        chan, _ = await conn.create_session(Collect, "head -c 8000000 /dev/zero", encoding=None)
        await asyncio.wait_for(chan.wait_closed(), 20)
        await asyncio.wait_for(conn.wait_closed(), 20)
        assert flipped and receive.lean_packets > 0
        assert len(got) < 8_000_000 and got == b"\0" * len(got)  # cut short; nothing altered got through
    finally:
        conn.close()


async def test_an_untested_asyncssh_release_gets_asyncssh_own_paths(connect: Any, monkeypatch: Any) -> None:
    """The lean paths read asyncssh's internals: on a release they were not tested with they stay out of the way."""
    monkeypatch.setattr(asyncssh, "__version__", "2.99.0")
    conn = await connect()
    try:
        tune_for_bulk(conn)
        assert not isinstance(vars(conn).get("data_received"), FastReceive) and lean_sender(conn) is None
        payload = bytes(range(256)) * 4_000
        up = await conn.run("sha256sum", input=payload, check=True, encoding=None)
        assert up.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
    finally:
        conn.close()


async def test_the_server_s_key_exchanges_mid_stream(tmp_path: Any, client_key: Any) -> None:
    """sshd itself asks for new keys every MB (RekeyLimit): its KEXINIT arrives among the data packets."""
    from pathlib import Path

    from tui.sandbox.sshhost import SSHHost

    class RekeyingHost(SSHHost):
        def _write_config(self) -> Path:
            cfg: Path = super()._write_config()  # type: ignore[misc]
            cfg.write_text(cfg.read_text() + "RekeyLimit 1M\n")
            return cfg

    host = RekeyingHost(tmp_path / "vm", [client_key.export_public_key().decode()])
    host.start()
    conn = None
    try:
        conn = await asyncssh.connect(
            "127.0.0.1", host.port, username=host.user, client_keys=[client_key],
            known_hosts=asyncssh.import_known_hosts(host.known_hosts_line()),
            encryption_algs=["aes128-gcm@openssh.com"], config=[], agent_path=None, connect_timeout=5)
        tune_for_bulk(conn)
        receive, send = vars(conn)["data_received"], lean_sender(conn)
        assert isinstance(receive, FastReceive) and send is not None
        down = await conn.run(_RANDOM_DOWN.format(size=6_000_000), check=True, encoding=None)
        assert down.stderr.split()[0].decode() == hashlib.sha256(down.stdout).hexdigest()
        payload = bytes(range(256)) * 16_000  # ~4 MB up
        up = await conn.run("sha256sum", input=payload, check=True, encoding=None)
        assert up.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
        assert receive.keys_seen >= 4 and send.keys_seen >= 2, (receive.keys_seen, send.keys_seen)
    finally:
        if conn is not None:
            conn.close()
        host.stop()
