"""Lean paths for an asyncssh connection carrying bulk channel data with AES-GCM keys (the asyncssh forwarder's).

asyncssh parses every packet by slicing its input buffer (the rest of it copied after each packet), decrypts a
concatenation and gives the channel a copy of a copy; sending, it joins and copies a packet some eight times. With
a dozen Python calls per 32 KB packet on top, that was most of the forwarder's CPU. In the steady state (AES-GCM
keys in use, no compression, no key exchange due or running, no packet being handled asynchronously):
- `FastReceive` (the connection's `data_received`) decrypts each packet straight out of the received bytes
  through a memoryview; CHANNEL_DATA goes to asyncssh's own `SSHChannel._accept_data` (its window accounting,
  pausing and delivery), CHANNEL_WINDOW_ADJUST to the channel's send window and buffer;
- `LeanSend` (the connection's `send_packet`) frames, encrypts and writes CHANNEL_DATA with one join, and
  `LeanSend.write` sends a channel's data straight from the caller's buffer as far as the peer's window allows.

Every other packet, either way (requests, replies, key exchange, a failing tag, anything unexpected), goes through
asyncssh's own code, one packet at a time, with the cipher's counter and the sequence numbers kept in step:
asyncssh stays the one authority on the protocol. What the lean paths read of asyncssh's internals is checked when
they are installed (`install_*` return False and change nothing where they differ), and they are installed only
on the asyncssh releases they were tested with (`TESTED_ASYNCSSH`; a newer one runs asyncssh's own code, slower
but right, until tests/forwards/test_forward_bulk.py — a real sshd, key exchanges and a flipped bit included —
passes with it and it is added here).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import asyncssh
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MSG_CHANNEL_WINDOW_ADJUST = 93
MSG_CHANNEL_DATA = 94
_HEADER = 4  # the packet length, in clear: GCM's associated data
_TAG = 16
_DATA_OFFSET = 10  # padding length (1), type (1), recipient channel (4), data length (4)

TESTED_ASYNCSSH = ("2.24",)  # the asyncssh major.minor releases whose internals the lean paths were tested with

_CONN_ATTRS = ("_inpbuf", "_recv_handler", "_recv_encryption", "_recv_seq", "_channels", "_decompressor",
               "_auth_complete", "_max_recv_pktlen", "_transport")
_CONN_METHODS = ("_recv_pkthdr", "_recv_data", "_reset_keepalive_timer", "internal_error")


def _gcm_cipher(conn: Any, which: str = "_recv_encryption") -> Any | None:
    """The connection's receive (or send) cipher if it is asyncssh's AES-GCM one, whose state is kept in step."""
    cipher = getattr(getattr(conn, which), "_cipher", None)
    if type(cipher).__name__ != "GCMCipher":
        return None
    iv, key = getattr(cipher, "_iv", None), getattr(cipher, "_key", None)
    return cipher if isinstance(iv, bytes) and len(iv) == 12 and isinstance(key, bytes) else None


class FastReceive:
    """The connection's `data_received` (see the module docstring); `slow` is the one it replaces."""

    def __init__(self, conn: Any, slow: Callable[..., None]) -> None:
        self.conn = conn
        self.slow = slow
        self._keyed: tuple[Any, AESGCM] | None = None  # (the GCM cipher, an AESGCM of its key), made once per key
        self.lean_packets = 0  # packets moved by the lean path (for tests)
        self.keys_seen = 0  # keys it has decrypted with (a key exchange brings a new one)

    def __call__(self, data: bytes | memoryview, datatype: object = None) -> None:
        """Take received `data` (a memoryview of `IntoBuffer`'s buffer is read now, never kept)."""
        conn = self.conn
        if not self._steady() or _gcm_cipher(conn) is None:
            self.slow(data if isinstance(data, bytes) else bytes(data))
            return
        head, conn._inpbuf = conn._inpbuf, b""
        conn._reset_keepalive_timer()
        try:
            if not head:
                self._consume(data)
                return
            # the packet begun last time, completed from `data` (not all of `data` copied behind it)
            need = _HEADER + int.from_bytes(head[:_HEADER], "big") + _TAG - len(head) if len(head) >= _HEADER \
                else len(data)
            if need >= len(data):
                self._consume(head + bytes(data))
            else:
                self._consume(head + bytes(data[:need]))
                self._consume(data, need)
        except Exception:  # as asyncssh's own parser does with what a packet's handling raises
            conn.internal_error()

    def _steady(self) -> bool:
        conn = self.conn
        return bool(conn._auth_complete) and conn._decompressor is None and conn._transport is not None \
            and conn._recv_handler == conn._recv_pkthdr

    def _aead(self, cipher: Any) -> AESGCM:
        if self._keyed is None or self._keyed[0] is not cipher:
            self._keyed = (cipher, AESGCM(cipher._key))
            self.keys_seen += 1
        return self._keyed[1]

    def _consume(self, buf: bytes | memoryview, pos: int = 0) -> None:
        """Move `buf`'s packets from `pos` on: runs of lean ones, and each other one through asyncssh's parser."""
        conn = self.conn
        view, size = memoryview(buf), len(buf)
        while pos < size:
            cipher = _gcm_cipher(conn) if self._steady() and not conn._inpbuf else None
            if cipher is None:  # asyncssh is mid-way (an async handler, a key exchange): it takes the rest
                if conn._transport is not None:
                    conn._inpbuf += bytes(buf[pos:])
                    if conn._recv_handler == conn._recv_pkthdr:
                        conn._recv_data()
                return
            pos = self._lean(view, pos, cipher)
            if pos >= size or conn._transport is None:
                return
            pktlen = int.from_bytes(view[pos:pos + _HEADER], "big") if size - pos >= _HEADER else 0
            end = pos + _HEADER + pktlen + _TAG
            if end > size and pktlen <= conn._max_recv_pktlen:
                conn._inpbuf = bytes(buf[pos:])  # not all here yet
                return
            conn._inpbuf = bytes(buf[pos:end])
            conn._recv_data()  # one packet, asyncssh's way (a too-long one is refused there)
            pos = end

    def _lean(self, view: memoryview, pos: int, cipher: Any) -> int:
        """Move the lean packets from `pos` on; where the first other one (or an incomplete one) starts."""
        conn = self.conn
        size, aead = len(view), self._aead(cipher)
        fixed, counter = cipher._iv[:4], int.from_bytes(cipher._iv[4:], "big")
        channels, limit = conn._channels, conn._max_recv_pktlen
        try:
            while size - pos >= _HEADER + _TAG:
                pktlen = int.from_bytes(view[pos:pos + _HEADER], "big")
                end = pos + _HEADER + pktlen + _TAG
                if pktlen > limit or end > size:
                    break
                try:
                    plain = aead.decrypt(fixed + counter.to_bytes(8, "big"), view[pos + _HEADER:end],
                                         view[pos:pos + _HEADER])
                except InvalidTag:
                    break  # asyncssh's parser fails it and disconnects
                lean = len(plain) >= _DATA_OFFSET and plain[1] in _LEAN_TYPES
                chan = channels.get(int.from_bytes(plain[2:6], "big")) if lean else None
                if chan is None or not _LEAN_TYPES[plain[1]](chan, plain):
                    break
                counter = (counter + 1) & 0xFFFFFFFFFFFFFFFF
                conn._recv_seq = (conn._recv_seq + 1) & 0xFFFFFFFF
                self.lean_packets += 1
                pos = end
                if conn._transport is None:
                    break  # closed by what the data caused
        finally:
            cipher._iv = fixed + counter.to_bytes(8, "big")
        return pos


def _data(chan: Any, plain: bytes) -> bool:
    """Give CHANNEL_DATA `plain` to `chan` as asyncssh's `_process_data` would; False when asyncssh should judge."""
    datalen = int.from_bytes(plain[6:_DATA_OFFSET], "big")
    if _DATA_OFFSET + datalen + plain[0] != len(plain) or datalen > chan._recv_window \
            or chan._recv_state != "open":
        return False
    end = _DATA_OFFSET + datalen
    chan._accept_data(memoryview(plain)[_DATA_OFFSET:end] if getattr(chan._session, "takes_views", False)
                      else plain[_DATA_OFFSET:end])
    return True


def _window_adjust(chan: Any, plain: bytes) -> bool:
    """CHANNEL_WINDOW_ADJUST as asyncssh's `_process_window_adjust` does it; False when asyncssh should judge."""
    if _DATA_OFFSET + plain[0] != len(plain) or chan._recv_state not in ("open", "eof_pending", "eof"):
        return False
    chan._send_window += int.from_bytes(plain[6:_DATA_OFFSET], "big")
    sender = lean_sender(chan._conn)
    if sender is None:
        chan._flush_send_buf()
    else:
        sender.flush(chan)
    return True


_LEAN_TYPES: dict[int, Callable[[Any, bytes], bool]] = {MSG_CHANNEL_DATA: _data,
                                                        MSG_CHANNEL_WINDOW_ADJUST: _window_adjust}


class LeanSend:
    """The connection's `send_packet` for CHANNEL_DATA in the steady state (AES-GCM keys, no compression, no key
    exchange due or running): the packet is padded, encrypted and written with one join and one encryption, where
    asyncssh's own makes some eight copies of it. Everything else, and CHANNEL_DATA outside the steady state, goes
    to `slow` (asyncssh's `send_packet`); the cipher's counter and the sequence number are kept in step with it."""

    def __init__(self, conn: Any, slow: Callable[..., None]) -> None:
        self.conn = conn
        self.slow = slow
        self._keyed: tuple[Any, AESGCM] | None = None
        self.lean_packets = 0  # packets sent by the lean path (for tests)
        self.keys_seen = 0  # keys it has encrypted with

    def __call__(self, pkttype: int, *args: bytes, handler: object = None) -> None:
        cipher = self._cipher() if pkttype == MSG_CHANNEL_DATA else None
        if cipher is None:
            self.slow(pkttype, *args, handler=handler)
        else:
            self._seal(cipher, pkttype, args)

    def _cipher(self) -> Any | None:
        """The send cipher when the lean path may send now (see the class docstring), else None."""
        return _gcm_cipher(self.conn, "_send_encryption") if self._steady() else None

    def _seal(self, cipher: Any, pkttype: int, parts: tuple[bytes | memoryview, ...]) -> None:
        """Pad, encrypt and write one packet of `parts` (asyncssh's framing, counters kept in step)."""
        conn = self.conn
        if self._keyed is None or self._keyed[0] is not cipher:
            self._keyed = (cipher, AESGCM(cipher._key))
            self.keys_seen += 1
        padlen = -(conn._send_enchdrlen + 1 + sum(len(part) for part in parts)) % conn._send_blocksize
        if padlen < 4:
            padlen += conn._send_blocksize
        packet = b"".join((bytes((padlen, pkttype)), *parts, os.urandom(padlen)))
        header = len(packet).to_bytes(_HEADER, "big")
        iv = cipher._iv
        sealed = self._keyed[1].encrypt(iv, packet, header)
        cipher._iv = iv[:4] + ((int.from_bytes(iv[4:], "big") + 1) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
        conn._send(header)
        conn._send(sealed)
        conn._send_seq = (conn._send_seq + 1) & 0xFFFFFFFF
        conn._rekey_bytes_sent += len(packet)
        self.lean_packets += 1

    def write(self, chan: Any, data: bytes) -> None:
        """`chan.write(data)`, the part the peer's window allows now sent straight from `data`."""
        cipher = self._cipher() if chan._send_state == "open" and not chan._send_buf and chan._send_chan is not None \
            else None
        if cipher is None:
            chan.write(data)
            return
        view, sent, size = memoryview(data), 0, len(data)
        window, most, recipient = chan._send_window, chan._send_pktsize, chan._send_chan.to_bytes(4, "big")
        while sent < size and window > 0:
            step = min(size - sent, window, most)
            self._seal(cipher, MSG_CHANNEL_DATA, (recipient, step.to_bytes(4, "big"), view[sent:sent + step]))
            sent += step
            window -= step
        chan._send_window = window
        if sent < size:
            chan.write(view[sent:])  # asyncssh queues the rest until the window opens (pausing the writer)

    def flush(self, chan: Any) -> None:
        """`chan._flush_send_buf()` after a window adjust, its plain data sent the lean way."""
        cipher = self._cipher() if chan._send_chan is not None else None
        recipient = chan._send_chan.to_bytes(4, "big") if cipher is not None else b""
        while cipher is not None and chan._send_buf and chan._send_window and chan._send_buf[0][1] is None:
            buf = chan._send_buf[0][0]
            step = min(len(buf), chan._send_window, chan._send_pktsize)
            self._seal(cipher, MSG_CHANNEL_DATA, (recipient, step.to_bytes(4, "big"), memoryview(buf)[:step]))
            if step == len(buf):
                del chan._send_buf[0]
            else:
                del buf[:step]
            chan._send_buf_len -= step
            chan._send_window -= step
        chan._flush_send_buf()  # the rest asyncssh's way: other data types, pausing, a pending EOF or close

    def _steady(self) -> bool:
        conn = self.conn
        return bool(conn._auth_complete and conn._kex_complete) and conn._compressor is None \
            and conn._rekey_bytes_sent < conn._rekey_bytes \
            and not (conn._rekey_seconds and time.monotonic() >= conn._rekey_time)


_SEND_ATTRS = ("_send_encryption", "_send_seq", "_send_enchdrlen", "_send_blocksize", "_compressor",
               "_kex_complete", "_auth_complete", "_rekey_bytes", "_rekey_bytes_sent", "_rekey_seconds",
               "_rekey_time")


class IntoBuffer(asyncio.BufferedProtocol):
    """The SSH socket's protocol in asyncssh's stead: reads go into one buffer kept for the connection's life and
    are handed to `FastReceive` as a memoryview. asyncio's own reads allocate a new object for each, whose fresh
    pages the kernel then faults in: more than half of the forwarder's page faults and a tenth of its CPU. Every
    other protocol event goes to the connection as before."""

    def __init__(self, conn: Any, size: int = 1 << 20) -> None:
        self.conn = conn
        self._view = memoryview(bytearray(size))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.conn.data_received(self._view[:nbytes])  # FastReceive

    def eof_received(self) -> bool | None:
        result: bool | None = self.conn.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()


def tested_asyncssh() -> bool:
    """Whether the asyncssh in use is a release the lean paths were tested with."""
    return ".".join(asyncssh.__version__.split(".")[:2]) in TESTED_ASYNCSSH


def lean_sender(conn: object) -> LeanSend | None:
    """The connection's `LeanSend`, if it has one."""
    sender = vars(conn).get("send_packet")
    return sender if isinstance(sender, LeanSend) else None


def install_lean_send(conn: asyncssh.SSHClientConnection) -> bool:
    """Make `conn` send CHANNEL_DATA through `LeanSend`; False (nothing changed) where asyncssh differs."""
    slow = getattr(conn, "send_packet", None)
    if not tested_asyncssh() or not callable(slow) or isinstance(slow, LeanSend) \
            or not callable(getattr(conn, "_send", None)) or not all(hasattr(conn, name) for name in _SEND_ATTRS):
        return False
    setattr(conn, "send_packet", LeanSend(conn, slow))  # noqa: B010 (an instance attribute)
    return True


def install_fast_receive(conn: asyncssh.SSHClientConnection, received: Callable[..., None]) -> bool:
    """Make `conn` receive through `FastReceive` (with `received` as its fallback); False where asyncssh differs."""
    if not tested_asyncssh() or not all(hasattr(conn, name) for name in _CONN_ATTRS) \
            or not all(callable(getattr(conn, name, None)) for name in _CONN_METHODS) \
            or not isinstance(vars(conn).get("_inpbuf"), bytes) or isinstance(received, FastReceive):
        return False
    setattr(conn, "data_received", FastReceive(conn, received))  # noqa: B010 (an instance attribute)
    transport: Any = vars(conn).get("_transport")
    if callable(getattr(transport, "set_protocol", None)) and callable(getattr(transport, "get_protocol", None)) \
            and transport.get_protocol() is conn:
        transport.set_protocol(IntoBuffer(conn))
    return True
