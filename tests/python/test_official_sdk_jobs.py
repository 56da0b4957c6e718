"""The official Python SDK's key-mode runs of actions (ai.run_and_wait with
metadata.agent_id and metadata.actions), unmodified, against onceonly-server, which executes
the actions itself.

Run through tests/python/run.sh, which starts the server with `--allow-tool-host 127.0.0.1`;
the `client` fixture is in conftest.py. The tools are served by a small http.server on
loopback that answers only correctly signed calls and keeps them.
"""

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "py-jobs-tool-secret"
WAIT = 30.0


def unique(prefix):
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


class ToolHost:
    """A tool endpoint that answers only signed, fresh calls, echoing them, and keeps them."""

    def __init__(self):
        self.calls = []
        self.refused = 0
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                given = self.headers.get("X-OnceOnly-Signature") or ""
                ts = self.headers.get("X-OnceOnly-Timestamp") or "0"
                want = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
                fresh = abs(time.time() - int(ts)) <= 300
                if not fresh or not hmac.compare_digest(given, want):
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


@pytest.fixture
def host():
    h = ToolHost()
    yield h
    h.close()


@pytest.fixture
def tools(client, host):
    """Two tools served by `host`, registered under fresh names: (note, email)."""
    names = (unique("note"), unique("email"))
    for name in names:
        client.gov.create_tool(
            {
                "name": name,
                "url": host.url,
                "auth": {"type": "hmac_sha256", "secret": SECRET},
                "max_retries": 0,
            }
        )
    return names


def three_actions(note, email):
    return [
        {"tool": note, "args": {"n": 1}},
        {"tool": email, "args": {"to": "ana@example.com"}},
        {"tool": note, "args": {"n": 2}},
    ]


def test_run_and_wait_returns_the_results_of_the_actions(client, host, tools):
    note, email = tools
    bot, key = unique("bot"), unique("job")
    metadata = {"agent_id": bot, "actions": three_actions(note, email)}

    res = client.ai.run_and_wait(key=key, metadata=metadata, timeout=WAIT)
    assert res.status == "completed", res
    assert res.result["dry_run"] is False
    actions = res.result["actions"]
    assert [a["decision"] for a in actions] == ["executed"] * 3
    assert actions[1]["result"]["echo"]["to"] == "ana@example.com"
    assert host.tools_called() == [note, email, note]
    assert host.refused == 0

    # The same key again: the stored result, no new call.
    again = client.ai.run_and_wait(key=key, metadata=metadata, timeout=WAIT)
    assert again.status == "completed"
    assert again.result == res.result
    assert len(host.tools_called()) == 3


def test_a_blocked_action_fails_the_run_with_policy_blocked(client, host, tools):
    note, email = tools
    bot, key = unique("bot"), unique("job")
    client.gov.upsert_policy({"blocked_tools": [email]}, agent_id=bot)

    res = client.ai.run_and_wait(
        key=key,
        metadata={"agent_id": bot, "actions": three_actions(note, email)},
        timeout=WAIT,
    )
    assert res.status == "failed", res
    assert res.error_code == "policy_blocked"
    assert host.tools_called() == [note], "nothing after the blocked action ran"
    assert client.ai.status(key).error_code == "policy_blocked"


def test_a_dry_run_completes_with_decisions_and_calls_nothing(client, host, tools):
    note, email = tools
    bot, key = unique("bot"), unique("job")
    client.gov.upsert_policy({"blocked_tools": [email]}, agent_id=bot)

    res = client.ai.run_and_wait(
        key=key,
        metadata={"agent_id": bot, "actions": three_actions(note, email), "dry_run": True},
        timeout=WAIT,
    )
    assert res.status == "completed", res
    assert res.result["dry_run"] is True
    decisions = [(a["decision"], a["policy_reason"]) for a in res.result["actions"]]
    assert decisions == [("dry_run", "ok"), ("blocked", "tool_blocked"), ("dry_run", "ok")]
    assert host.tools_called() == []
