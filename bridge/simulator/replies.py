"""Raw ASGI replies of the API pipeline: responses, error envelopes, dropped sockets.

Everything here writes bytes; deciding what to answer is the pipeline's job.
"""

import math
from dataclasses import dataclass, field

from starlette.types import Receive, Send

from bridge.simulator.errors import ApiError, code_for_status, error_body, json_bytes
from bridge.simulator.panel import Panel

# uvicorn looks up the reason phrase after marking the response started, so an
# unknown status raises before any byte is written and the socket is then closed.
_ABORT_STATUS = 999


@dataclass
class Reply:
    """A response about to be sent; ``after`` is a post-apply fault to play."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    after: str | None = None

    async def send(self, send: Send) -> None:
        """Write the response."""
        raw = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
        ]
        raw += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        await send(
            {"type": "http.response.start", "status": self.status, "headers": raw}
        )
        await send({"type": "http.response.body", "body": self.body})


def error_reply(
    panel: Panel, status: int, message: str, code: str | None = None
) -> Reply:
    """Return an error in the panel's envelope (code derived from the status)."""
    code = code or code_for_status(status)
    body = error_body(panel.config, status, code, message)
    return Reply(status=status, body=json_bytes(body))


def api_error_reply(panel: Panel, exc: ApiError) -> Reply:
    """Return ``exc`` as a reply, with its extra headers."""
    reply = error_reply(panel, exc.status_for(panel.config), exc.message, exc.code)
    reply.headers.update(exc.headers)
    return reply


def storm_reply(panel: Panel, left: float) -> Reply:
    """Return the 429 of a storm with ``left`` seconds to go."""
    reply = error_reply(panel, 429, "Too many requests")
    reply.headers = {
        "X-RateLimit-Limit": str(panel.config.limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.ceil(panel.now() + left)),
    }
    if panel.config.retry_after:
        reply.headers["Retry-After"] = str(max(1, math.ceil(left)))
    return reply


_FORCED_TEXT = {
    400: "Simulated bad request",
    401: "Missing authorization",
    403: "Simulated forbidden",
    404: "Not found",
    409: "Simulated conflict",
    429: "Too many requests",
}


def forced_reply(panel: Panel, status: int) -> Reply:
    """Return the reply of a ``fail-next`` request."""
    return error_reply(panel, status, _FORCED_TEXT.get(status, "Simulated failure"))


class ClientGone(Exception):  # noqa: N818 - an event, not an error of ours
    """The client disconnected before its request body was complete."""


async def read_body(receive: Receive) -> bytes:
    """Read the whole request body; raise ClientGone if it never completes.

    An HTTP server does not hand an incomplete request to the application (a
    body shorter than its Content-Length is no request), so neither does the
    panel: a client killed half-way through writing a request changes nothing.
    """
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def abort(send: Send) -> None:
    """Close the connection without a status line (the outcome-unknown case)."""
    try:
        await send(
            {
                "type": "http.response.start",
                "status": _ABORT_STATUS,
                "headers": [(b"content-length", b"1")],
            }
        )
    except KeyError:
        return
