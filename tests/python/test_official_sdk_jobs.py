"""The official Python SDK's key-mode runs of actions (ai.run_and_wait with
metadata.agent_id and metadata.actions), unmodified, against onceonly-server, which executes
the actions itself.

Run through tests/python/run.sh, which starts the server with `--allow-tool-host 127.0.0.1`;
the `client` fixture is in conftest.py. The tools are served by a small http.server on
loopback that answers only correctly signed calls and keeps them.
"""

import uuid

import pytest

from conftest import ToolHost

SECRET = "py-jobs-tool-secret"
WAIT = 30.0


def unique(prefix):
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


@pytest.fixture
def host():
    h = ToolHost(SECRET)
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
