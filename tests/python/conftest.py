"""What the official-SDK test files share: the server run.sh started, a client of it, and a
signed tool endpoint for registered tools."""

import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from onceonly import OnceOnly

BASE_URL = os.environ["ONCEONLY_TEST_BASE_URL"]
API_KEY = os.environ["ONCEONLY_TEST_API_KEY"]


@pytest.fixture
def client():
    c = OnceOnly(api_key=API_KEY, base_url=BASE_URL, timeout=10.0)
    yield c
    c.close()


class ToolHost:
    """A tool endpoint on loopback that answers only correctly signed, fresh calls (HMAC-SHA256
    of the body with `secret`, within 300 s), echoing them, and keeps them."""

    def __init__(self, secret):
        self.calls = []
        self.refused = 0
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                given = self.headers.get("X-OnceOnly-Signature") or ""
                alg = self.headers.get("X-OnceOnly-Signature-Alg")
                ts = self.headers.get("X-OnceOnly-Timestamp") or "0"
                want = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
                fresh = abs(time.time() - int(ts)) <= 300
                if alg != "hmac_sha256" or not fresh or not hmac.compare_digest(given, want):
                    with host.lock:
                        host.refused += 1
                    self.answer(401, {"detail": "bad signature"})
                    return
                call = json.loads(raw)
                with host.lock:
                    host.calls.append(call)
                self.answer(200, {"echo": call.get("args"), "tool": call.get("tool")})

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tool"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tools_called(self):
        with self.lock:
            return [c["tool"] for c in self.calls]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
