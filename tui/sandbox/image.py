"""Glance v2: the public Ubuntu images, with `next` paging and filters."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from tui.sandbox import data, userimages
from tui.sandbox.router import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

_FILTERS = ("name", "status", "visibility", "os_distro", "os_version", "disk_format", "id", "owner")


def _not_found(what: str) -> HTTPError:
    body = f"404 Not Found\n\nNo image found with ID {what}\n\n   ".encode()
    return HTTPError(404, body, {"Content-Type": "text/plain; charset=UTF-8"})


def register(router: Router, sb: Sandbox) -> None:
    def versions(req: Request) -> Response:
        vs = [("v2.16", "CURRENT")] + [(f"v2.{n}", "SUPPORTED") for n in range(15, -1, -1)]
        return Response(
            300,
            {
                "versions": [
                    {"id": vid, "status": status, "links": [{"rel": "self", "href": f"{sb.url}/image/v2/"}]}
                    for vid, status in vs
                ]
            },
        )

    def list_(req: Request) -> Response:
        try:
            limit = min(int(req.arg("limit") or 25), 1000)
        except ValueError:
            raise HTTPError(400, b"400 Bad Request\n\nlimit param must be an integer\n\n   ") from None
        every = [*data.IMAGES.values(), *userimages.glance_images(sb)]
        images = sorted(every, key=lambda i: (i["created_at"], i["id"]), reverse=True)
        for key in _FILTERS:
            wanted = req.arg(key)
            if wanted is not None:
                images = [i for i in images if str(i.get(key)) == wanted]
        marker = req.arg("marker")
        if marker:
            ids = [i["id"] for i in images]
            if marker not in ids:
                raise HTTPError(400, f"400 Bad Request\n\nmarker {marker} not found\n\n   ".encode())
            images = images[ids.index(marker) + 1 :]
        page = images[:limit]
        body = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if len(images) > limit:
            params = {k: v[-1] for k, v in req.query.items() if k not in ("marker", "limit")}
            params.update(marker=page[-1]["id"], limit=str(limit))
            body["next"] = "/v2/images?" + urlencode(params)
        return Response(200, body)

    def show(req: Request) -> Response:
        image = data.IMAGES.get(req.params["id"]) or userimages.show(sb, req.params["id"])
        if image is None:
            raise _not_found(req.params["id"])
        return Response(200, image)

    router.add("GET", r"/image", versions, auth=False)
    router.add("GET", r"/image/v2/images", list_)
    router.add("GET", r"/image/v2/images/(?P<id>[^/]+)", show)
