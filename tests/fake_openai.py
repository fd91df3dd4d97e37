"""A local HTTP server that answers like the OpenAI chat-completions API, for tests.

Each test gives a ``respond(body, headers)`` function returning ``(status, payload, headers)``:
``payload`` is a dict (sent as JSON), raw bytes (to send malformed bodies), or a function of the
request handler that writes the reply itself (the faults below: a connection closed without a
reply or in the middle of the body, a cut stream, a reply that comes too late). The server records
every request (JSON body and lower-cased headers) and listens on 127.0.0.1 only. It is bounded:
each connection times out after ``socket_timeout`` seconds and after ``max_requests`` requests
the server closes every further connection without answering.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Respond = Callable[[dict, dict], tuple[int, "dict | bytes | Callable", dict]]


def completion(content: str | None, model: str = "fake", usage: tuple[int, int] | None = None):
    """A chat-completion body whose single choice says ``content`` (``None``: null content);
    ``usage``: (prompt tokens, completion tokens)."""
    message = {"role": "assistant", "content": content}
    body = {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }  # fmt: skip
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)
        }  # fmt: skip
    return body


def close_without_reply(handler) -> None:
    """Reset the connection (RST) before any byte of a reply."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True


def cut_body(raw: bytes) -> Callable:
    """Promise ``len(raw)`` bytes, send the first half, and close the connection."""

    def write(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw[: len(raw) // 2])
        handler.wfile.flush()
        handler.close_connection = True

    return write


def chunked(raw: bytes, content_type: str = "application/json") -> Callable:
    """Send ``raw`` as a well-framed chunked body (so only the content can be incomplete)."""

    def write(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(raw), 40):
            piece = raw[start : start + 40]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")
        handler.close_connection = True

    return write


def event_stream(content: str, *, done: bool = True, model: str = "fake") -> Callable:
    """A server-sent-events stream of ``content`` in pieces; without ``done`` it stops before
    the last piece and ``[DONE]`` (a truncated stream)."""
    pieces = [content[i : i + 4] for i in range(0, len(content), 4)] or [""]
    events = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        if last and not done:
            break
        choice = {
            "index": 0,
            "delta": {"content": piece},
            "finish_reason": "stop" if last else None,
        }
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [choice]}
        events.append(f"data: {json.dumps(chunk)}\n\n")
    if done:
        events.append("data: [DONE]\n\n")
    return chunked("".join(events).encode(), "text/event-stream")


def late(seconds: float, payload: dict) -> Callable:
    """Answer ``payload`` after ``seconds`` (past the client's timeout: a timeout)."""

    def write(handler) -> None:
        time.sleep(seconds)
        raw = json.dumps(payload).encode()
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:
            pass  # the client gave up first

    return write


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # resets are the faults' own
            super().handle_error(request, client_address)


class FakeOpenAI:
    """``with FakeOpenAI(respond) as server: ... server.url ... server.requests``"""

    def __init__(
        self, respond: Respond, *, max_requests: int = 10_000, socket_timeout: float = 10.0
    ) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.respond = respond
        fake = self

        class Handler(BaseHTTPRequestHandler):
            timeout = socket_timeout
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    if len(fake.requests) >= max_requests:
                        self.close_connection = True
                        return
                    fake.requests.append({"headers": headers, "body": body})
                status, payload, extra = fake.respond(body, headers)
                if callable(payload):
                    payload(self)
                    return
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if not any(key.lower() == "content-type" for key in extra):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
