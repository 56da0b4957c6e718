"""The official SDK's callers and Rust worker processes on one onceonly-server: a queued run is
executed once by whichever worker claims it, and every caller gets that worker's result."""

import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import API_KEY, BASE_URL

WORKER = os.environ["ONCEONLY_TEST_JOB_WORKER"]


def start_worker(pattern):
    env = dict(os.environ, ONCEONLY_API_KEY=API_KEY)
    # Arguments: target, pattern, lease TTL in ms, how long each run works in ms.
    proc = subprocess.Popen(
        [WORKER, BASE_URL, pattern, "10000", "300"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop_worker(proc):
    proc.stdin.close()
    out = proc.stdout.read()
    proc.wait(timeout=30)
    assert proc.returncode == 0
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_thirty_callers_and_two_worker_processes_execute_a_run_once(client):
    prefix = f"py-report-{uuid.uuid4().hex}:"
    key = prefix + "2026-11"
    workers = [start_worker(prefix + "*") for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(
                lambda _: client.ai.run_and_wait(key=key, timeout=60, poll_min=0.1, poll_max=0.5),
                range(30)))
    finally:
        lines = [line for proc in workers for line in stop_worker(proc)]
    started = [line["started"] for line in lines if "started" in line]
    assert len(started) == 1, lines
    assert started[0]["key"] == key and started[0]["attempt"] == 1
    for answer in answers:
        assert answer.status == "completed"
        assert answer.result == started[0]
    # A finished run answers its result at once, and the run is charged once.
    again = client.ai.run(key=key)
    assert again.status == "completed" and again.charged == 0
