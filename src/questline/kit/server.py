"""uvicorn's HTTP protocols, answering what they refuse as problem+json.

Some requests never reach the app: uvicorn's HTTP parser refuses them first and answers a
plain-text ``400 Invalid HTTP request received.`` What it refuses (uvicorn 0.3x with httptools,
the default; h11 refuses alike):

- a request line with a raw NUL or other control byte, or a malformed method, target or version;
- a header name or value with a raw NUL or other forbidden byte, or a malformed header line;
- a request target longer than the parser takes (about 64 KiB with httptools; with h11, a
  request head larger than 16 KiB);
- framing it cannot trust (conflicting ``Content-Length``, bad chunked encoding).

These subclasses keep that decision and change only the answer: the same ``400`` as RFC 9457
problem+json (``code: malformed_http``) with a request id, then the connection is closed.
Everything the parser lets through is bounded by the app's edge (``kit.middleware``):
URLs over ``max_url_bytes`` are ``414``, headers over ``max_header_bytes`` ``431``, bodies over
the size limit ``413``, a body that stalls ``408``.
"""

from __future__ import annotations

import importlib.util

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from questline.kit.errors import PROBLEM_CONTENT_TYPE, problem_body
from questline.kit.ids import ulid

_DETAIL = ("the request is not valid HTTP/1.1 (a NUL or control character, a malformed line, "
           "a request target that is too long, or untrustworthy framing)")


def _problem() -> bytes:
    return problem_body(status=400, code="malformed_http", title="Bad request", detail=_DETAIL, instance="",
                        request_id=f"req_{ulid()}")


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = _problem()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head += [b"content-type: " + PROBLEM_CONTENT_TYPE.encode() + b"\r\n",
                 b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class ProblemH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = _problem()
        headers = [(b"content-type", PROBLEM_CONTENT_TYPE.encode()), (b"connection", b"close")]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


def http_protocol() -> type[HttpToolsProtocol] | type[H11Protocol]:
    """The protocol ``uvicorn.run(http=...)`` should use: httptools when installed (as uvicorn would pick)."""
    return ProblemHttpToolsProtocol if importlib.util.find_spec("httptools") is not None else ProblemH11Protocol
