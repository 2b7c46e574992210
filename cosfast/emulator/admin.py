"""The admin endpoint, for driving an emulator in another process (``--admin``).

It exists only when enabled; otherwise these paths are ordinary object paths. It takes no
credentials: enable it only on a loopback address, for tests.

    GET    /-/emulator/faults          the active faults with their counters
    POST   /-/emulator/faults          add one (JSON fields of Fault; new_data as hex) -> {"id": n}
    DELETE /-/emulator/faults          remove all
    DELETE /-/emulator/faults/<id>     remove one
    GET    /-/emulator/log             the request log as JSON records
    DELETE /-/emulator/log             clear it
    POST   /-/emulator/buckets         create {"name", "public_read", "versioning"}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from cosfast.emulator.errors import CosError
from cosfast.emulator.faults import Fault

if TYPE_CHECKING:
    from cosfast.emulator.handlers import Parts

ADMIN_PREFIX = "/-/emulator/"


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


class AdminHandlers:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    async def handle(self, request: web.Request) -> web.StreamResponse:
        route = request.raw_path.split("?", 1)[0][len(ADMIN_PREFIX) :].strip("/")
        method = request.method
        try:
            if route == "faults" and method == "GET":
                return _json(self.parts.faults.snapshot())
            if route == "faults" and method == "POST":
                fault = Fault.from_json(await request.json())
                return _json({"id": self.parts.faults.add(fault)}, 201)
            if route == "faults" and method == "DELETE":
                self.parts.faults.clear()
                return _json({})
            if route.startswith("faults/") and method == "DELETE":
                self.parts.faults.remove(int(route.split("/", 1)[1]))
                return _json({})
            if route == "log" and method == "GET":
                # settle=0: waiting here would block the very loop that ends the requests in flight
                return _json([r.to_json() for r in self.parts.log.records(settle=0)])
            if route == "log" and method == "DELETE":
                self.parts.log.clear()
                return _json({})
            if route == "buckets" and method == "POST":
                body = await request.json()
                self.parts.storage.create_bucket(
                    body["name"],
                    public_read=bool(body.get("public_read", False)),
                    versioning=bool(body.get("versioning", False)),
                )
                return _json({"name": body["name"]}, 201)
        except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            return _json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        except CosError as exc:
            return _json({"error": exc.code, "message": exc.message}, exc.status)
        return _json({"error": f"no admin route {method} {route!r}"}, 404)
