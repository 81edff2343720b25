"""Nova key pairs: list, show, create (generated or imported, MD5 fingerprint like Nova), delete."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any

from tui.sandbox.nova import microversion, nova_error, ok
from tui.sandbox.router import Request, Response
from tui.sandbox.state import Record, now_usec

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def new_keypair(kps: dict[str, Record], name: str, public_key: str, key_type: str = "ssh") -> Record:
    """Store a key pair record (under the lock); raises ValueError/IndexError on a bad key."""
    kp = {
        "name": name,
        "public_key": public_key.strip(),
        "fingerprint": fingerprint(public_key),
        "type": key_type,
        "created_at": now_usec(),
        "id": len(kps) + 1,
    }
    kps[name] = kp
    return kp


def render_keypair(kp: Record, mv: tuple[int, int], sb: Sandbox, full: bool = False) -> dict[str, Any]:
    out = {"name": kp["name"], "public_key": kp["public_key"], "fingerprint": kp["fingerprint"]}
    if mv >= (2, 2):
        out["type"] = kp["type"]
    if full:
        out.update(
            user_id=sb.state.data["user_id"],
            deleted=False,
            created_at=kp["created_at"],
            deleted_at=None,
            updated_at=None,
            id=kp["id"],
        )
    return out


def list_keypairs(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        kps = sorted(sb.state.table("keypairs").values(), key=lambda k: k["name"])
        return ok(200, {"keypairs": [{"keypair": render_keypair(k, mv, sb)} for k in kps]}, mv)


def show_keypair(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    kp = sb.state.table("keypairs").get(req.params["name"])
    if kp is None:
        raise nova_error(404, f"Keypair {req.params['name']} not found for user {sb.state.data['user_id']}")
    return ok(200, {"keypair": render_keypair(kp, mv, sb, full=True)}, mv)


def create_keypair(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    body = (req.body or {}).get("keypair") or {}
    name = body.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9 _.@-]{1,255}", name):
        raise nova_error(400, "Keypair data is invalid: Keypair name contains unsafe characters")
    public_key = body.get("public_key")
    private_key = None
    if public_key is None:
        if mv >= (2, 92):
            raise nova_error(
                400, "Invalid input for field/attribute keypair. Value: {}. 'public_key' is a required property"
            )
        private_key, public_key = sb.generate_keypair(name)
    try:
        fingerprint(public_key)
    except (IndexError, ValueError):
        raise nova_error(400, "Keypair data is invalid: failed to generate fingerprint") from None
    with sb.state.lock:
        kps = sb.state.table("keypairs")
        if name in kps:
            raise nova_error(409, f"Key pair '{name}' already exists.")
        if 0 <= sb.quota()["key_pairs"] <= len(kps):
            raise nova_error(403, "Quota exceeded, too many key pairs.")
        kp = new_keypair(kps, name, public_key, body.get("type", "ssh"))
        sb.state.touch()
    out = render_keypair(kp, mv, sb)
    out["user_id"] = sb.state.data["user_id"]
    if private_key:
        out["private_key"] = private_key
    return ok(201 if mv >= (2, 2) else 200, {"keypair": out}, mv)


def delete_keypair(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        if sb.state.table("keypairs").pop(req.params["name"], None) is None:
            raise nova_error(404, f"Keypair {req.params['name']} not found for user {sb.state.data['user_id']}")
        sb.state.touch()
    return ok(204 if mv >= (2, 2) else 202, None, mv)
