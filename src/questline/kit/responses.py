"""JSON replies rendered by orjson.

Replies with a response model are serialized by pydantic's own (Rust) serializer straight to
bytes, FastAPI's fast path; everything else that answers JSON (plain dicts, explicit replies
with a status chosen at run time, problems) goes through orjson, never the standard library.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
