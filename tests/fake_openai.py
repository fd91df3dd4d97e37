"""A local HTTP server that answers like the OpenAI chat-completions API, for tests.

Each test gives a ``respond(body, headers)`` function returning ``(status, payload, headers)``:
``payload`` is a dict (sent as JSON) or raw bytes (to send malformed bodies). The server records
every request (JSON body and lower-cased headers) and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Respond = Callable[[dict, dict], tuple[int, "dict | bytes", dict]]


def completion(content: str, model: str = "fake") -> dict:
    """A chat-completion body whose single choice says ``content``."""
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }  # fmt: skip


class FakeOpenAI:
    """``with FakeOpenAI(respond) as server: ... server.url ... server.requests``"""

    def __init__(self, respond: Respond) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    fake.requests.append({"headers": headers, "body": body})
                status, payload, extra = respond(body, headers)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
