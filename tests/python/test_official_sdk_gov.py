"""The official Python SDK's governance (client.gov, ai.run_tool), unmodified, against
onceonly-server.

Run through tests/python/run.sh, which starts the server with `--allow-tool-host 127.0.0.1`;
the `client` fixture is in conftest.py. Registered tools are served by a small http.server on
loopback that checks every call's signature and counts the calls.
"""

import asyncio
import json
import uuid

import pytest

from conftest import ToolHost

from onceonly.exceptions import ApiError, ValidationError

SECRET = "py-tool-secret-value"


def agent(prefix="agent"):
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def host():
    h = ToolHost(SECRET)
    yield h
    h.close()


def register(client, host, name, scope_id="global"):
    return client.gov.create_tool(
        {
            "name": name,
            "scope_id": scope_id,
            "url": host.url,
            "auth": {"type": "hmac_sha256", "secret": SECRET},
            "max_retries": 0,
        }
    )


# ---------------------------------------------------------------- policies


def test_upsert_get_and_list_policies(client):
    bot = agent("billing")
    p = client.gov.upsert_policy(
        {
            "max_actions_per_hour": 5,
            "max_spend_usd_per_day": 2.5,
            "blocked_tools": ["delete_*"],
            "max_calls_per_tool": {"charge": 3},
            "pricing_rules": [{"tool": "charge", "price_usd": 0.5}],
            "x_team": "ops",
        },
        agent_id=bot,
    )
    assert p.agent_id == bot
    assert p.max_actions_per_hour == 5
    assert p.max_spend_usd_per_day == 2.5
    assert p.blocked_tools == ["delete_*"]
    assert p.max_calls_per_tool == {"charge": 3}
    assert p.pricing_rules == [{"tool": "charge", "price_usd": 0.5}]
    assert p.raw["policy"]["x_team"] == "ops", "the answer is nested and keeps extra keys"

    got = client.gov.get_policy(bot)
    assert got.agent_id == bot and got.max_actions_per_hour == 5
    listed = {x.agent_id: x for x in client.gov.list_policies()}
    assert listed[bot].max_calls_per_tool == {"charge": 3}

    # The target id wins over the body's.
    other = agent("other")
    q = client.gov.upsert_policy({"agent_id": other, "allowed_tools": ["read_*"]})
    assert q.agent_id == other and q.allowed_tools == ["read_*"]


def test_policy_from_template(client):
    bot = agent("support")
    p = client.gov.policy_from_template(
        bot, "support_bot", overrides={"max_actions_per_hour": 120, "blocked_tools": ["delete_user"]}
    )
    assert p.agent_id == bot
    assert p.max_actions_per_hour == 120
    assert p.blocked_tools == ["delete_user"]
    assert p.max_spend_usd_per_day == 50.0
    assert "send_email" in p.allowed_tools
    assert client.gov.policy_from_template(agent(), "strict").max_actions_per_hour == 30
    with pytest.raises(ValidationError):
        client.gov.policy_from_template(bot, "lenient")


def test_policy_errors(client):
    with pytest.raises(ApiError) as e:
        client.gov.get_policy(agent("nobody"))
    assert e.value.status_code == 404
    assert e.value.detail["error"] == "not_found"
    with pytest.raises(ValidationError):
        client.gov.upsert_policy({"max_actions_per_hour": -1}, agent_id=agent())
    with pytest.raises(ValidationError):
        client.gov.upsert_policy({}, agent_id="bad agent")


# ---------------------------------------------------------------- agents


def test_kill_switch_logs_and_metrics(client):
    bot = agent("ops")
    off = client.gov.disable_agent(bot, reason="suspicious")
    assert off.agent_id == bot
    assert off.is_enabled is False and off.enabled is False
    assert off.disabled_reason == "suspicious"
    assert off.disabled_at.endswith("Z")

    blocked = client.ai.run_tool(agent_id=bot, tool="send_email", args={"to": "a"})
    assert blocked.allowed is False and blocked.ok is False
    assert blocked.decision == "blocked"
    assert blocked.policy_reason == "agent_disabled"
    assert blocked.risk_level == "high"

    on = client.gov.enable_agent(bot, reason="reviewed")
    assert on.is_enabled is True
    assert on.disabled_reason is None and on.disabled_at is None

    logs = client.gov.agent_logs(bot, limit=10)
    assert len(logs) == 1
    item = logs[0]
    assert item.agent_id == bot and item.tool == "send_email"
    assert item.allowed is False and item.decision == "blocked"
    assert item.policy_reason == "agent_disabled" and item.risk_level == "high"
    assert isinstance(item.ts, int) and len(item.args_hash) == 64
    assert item.spend_usd == 0.0

    m = client.gov.agent_metrics(bot, period="hour")
    assert m.agent_id == bot and m.period == "hour"
    assert m.total_actions == 1 and m.blocked_actions == 1
    assert m.top_tools == [{"tool": "send_email", "count": 1}]
    assert client.gov.agent_metrics(bot).period == "day"

    with pytest.raises(ValidationError):
        client.gov.agent_logs(bot, limit=0)
    with pytest.raises(ValidationError):
        client.gov.agent_logs(bot, limit=501)
    with pytest.raises(ValidationError):
        client.gov.agent_metrics(bot, period="month")
    with pytest.raises(ValidationError):
        client.gov.disable_agent(bot, reason="x" * 600)


# ---------------------------------------------------------------- tools


def test_tools_registry_never_echoes_the_secret(client, host):
    scope = agent("agent")
    name = f"send_email_{uuid.uuid4().hex[:6]}"
    created = register(client, host, name, scope_id=scope)
    assert created["name"] == name and created["scope_id"] == scope
    assert created["has_secret"] is True
    assert created["secret_mask"] == "***" + SECRET[-3:]
    assert SECRET not in json.dumps(created)

    listed = client.gov.list_tools(scope_id=scope)
    assert [t["name"] for t in listed] == [name]
    assert SECRET not in json.dumps(listed)
    assert all(t["name"] != name for t in client.gov.list_tools())

    got = client.gov.get_tool(name, scope_id=scope)
    assert got == created
    off = client.gov.toggle_tool(name, enabled=False, scope_id=scope)
    assert off["name"] == name and off["enabled"] is False
    assert client.gov.delete_tool(name, scope_id=scope) == {"ok": True, "deleted": name}
    with pytest.raises(ApiError) as e:
        client.gov.get_tool(name, scope_id=scope)
    assert e.value.status_code == 404

    with pytest.raises(ValidationError):
        client.gov.create_tool(
            {"name": "bad name", "url": host.url, "auth": {"type": "hmac_sha256", "secret": SECRET}}
        )
    with pytest.raises(ValidationError):
        client.gov.create_tool(
            {"name": "t", "url": host.url, "auth": {"type": "hmac_sha256", "secret": "short"}}
        )


# ---------------------------------------------------------------- governed tool calls


def test_run_tool_executes_once_signed_then_dedups(client, host):
    bot = agent("payer")
    tool = f"charge_{uuid.uuid4().hex[:6]}"
    register(client, host, tool, scope_id=f"agent:{bot}")
    client.gov.upsert_policy({"max_actions_per_hour": 2}, agent_id=bot)

    first = client.ai.run_tool(agent_id=bot, tool=tool, args={"order": 1}, spend_usd=0.25)
    assert first.ok and first.allowed
    assert first.decision == "executed"
    assert first.policy_reason == "ok" and first.risk_level == "low"
    assert first.result == {"echo": {"order": 1}, "tool": tool}

    again = client.ai.run_tool(agent_id=bot, tool=tool, args={"order": 1}, spend_usd=0.25)
    assert again.decision == "dedup" and again.result == first.result

    second = client.ai.run_tool(agent_id=bot, tool=tool, args={"order": 2})
    assert second.decision == "executed"
    third = client.ai.run_tool(agent_id=bot, tool=tool, args={"order": 3})
    assert third.decision == "blocked" and third.allowed is False
    assert third.policy_reason == "hourly_action_limit"

    assert [c["args"] for c in host.calls] == [{"order": 1}, {"order": 2}]
    assert host.refused == 0
    assert all(c["agent_id"] == bot and c["tool"] == tool for c in host.calls)
    m = client.gov.agent_metrics(bot, period="hour")
    assert m.total_actions == 4 and m.blocked_actions == 1
    assert m.total_spend_usd == 0.25


def test_run_tool_carries_the_run_id_and_works_async(client, host):
    bot = agent("runner")
    tool = f"lookup_{uuid.uuid4().hex[:6]}"
    register(client, host, tool)
    run_id = f"run_{uuid.uuid4().hex[:8]}"
    res = client.ai.run_tool(agent_id=bot, tool=tool, args={"q": "x"}, run_id=run_id)
    assert res.decision == "executed"
    assert host.calls[-1]["args"]["run_id"] == run_id
    timeline = client.get_run_timeline(run_id)
    assert {"tool_call", "tool_result"} <= {e["type"] for e in timeline["events"]}

    async def go():
        r = await client.ai.run_tool_async(agent_id=bot, tool=tool, args={"q": "y"})
        await client.aclose()
        return r

    res = asyncio.run(go())
    assert res.decision == "executed" and res.result["echo"] == {"q": "y"}
    assert len(host.calls) == 2


def test_run_tool_unknown_tool_is_api_error_404(client):
    bot = agent("lost")
    with pytest.raises(ApiError) as e:
        client.ai.run_tool(agent_id=bot, tool="no_such_tool")
    assert e.value.status_code == 404
    assert e.value.detail["error"] == "tool_not_found"
    logs = client.gov.agent_logs(bot)
    assert logs[0].policy_reason == "tool_not_found", "the refusal is audited"


def test_key_mode_run_is_not_a_tool_result(client):
    res = client.ai.run(key=f"report:{uuid.uuid4().hex}")
    # A queued run (an AiRun, not an AiToolResult): nobody holds it yet.
    assert res.status == "in_progress" and res.lease_id is None and res.charged == 1
