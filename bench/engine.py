"""Benchmark: the pure engine's resume latency, and custom actions in process vs over HTTP.

Run:  .venv/bin/python -m bench.engine [--resumes 20000] [--actions 300]

Prints, in one run:
- the median / p99 time of one ``resume`` on a realistic flow (flows/booth_locator.yaml:
  a choice answered, a regex answer re-asked, then validated), against a baseline of a
  JSON round trip of the same session state (what storing the session costs anyway);
  target: median resume <= 50 us;
- one ``action_find_booth`` through the in-process rasa-sdk bridge vs the same action
  through rasa-sdk's own action server (``python -m rasa_sdk``) on loopback;
  target: in process >= 20x faster.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bot.engine import inputs, load_path, resume, start
from bot.rasa_bridge import ActionRunner, RemoteActionRunner

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-23T06:00:00Z"


def _percentiles(ns: list[int]) -> tuple[float, float]:
    ordered = sorted(ns)
    return statistics.median(ordered) / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def bench_resume(n: int) -> None:
    flow = load_path(ROOT / "flows" / "booth_locator.yaml")
    first = start(flow, {"name": "Asha", "phone": "+919876543210"}, channel="whatsapp", now=NOW)
    # Three realistic resumes: a choice by synonym, a wrong EPIC (re-ask), a right one.
    steps = [(first.state, inputs.Text("nahi"))]
    after_choice = resume(flow, first.state, inputs.Text("nahi"), now=NOW)
    steps.append((after_choice.state, inputs.Text("12345")))
    steps.append((after_choice.state, inputs.Text("ABC1234567")))
    for state, received in steps:  # warm up
        resume(flow, state, received, now=NOW)
    times: list[int] = []
    base: list[int] = []
    for i in range(n):
        state, received = steps[i % len(steps)]
        t = time.perf_counter_ns()
        resume(flow, state, received, now=NOW)
        times.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        json.loads(json.dumps(state))
        base.append(time.perf_counter_ns() - t)
    med, p99 = _percentiles(times)
    bmed, bp99 = _percentiles(base)
    verdict = "meets" if med <= 50 else "BELOW"
    print(f"resume: median {med:.1f} us, p99 {p99:.1f} us over {n:,} resumes ({1e6 / med:,.0f}/s on one core)")
    print(
        f"  baseline JSON round trip of the state: median {bmed:.1f} us, p99 {bp99:.1f} us "
        f"(resume = {med / bmed:.1f}x baseline); target median <= 50 us: {verdict}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _time_runner(label: str, runner: ActionRunner | RemoteActionRunner, state: dict, flow: object, n: int) -> float:
    for _ in range(50):  # warm up (imports, connections, caches)
        first = runner.run("action_find_booth", state, flow, latest_text="ABC1234567")
        assert first.failed is None, first.failed
    gc.collect()
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        runner.run("action_find_booth", state, flow, latest_text="ABC1234567")
        times.append(time.perf_counter_ns() - t)
    med, p99 = _percentiles(times)
    print(f"action_find_booth {label}: median {med:.1f} us, p99 {p99:.0f} us over {n} calls")
    return med


def bench_actions(n: int) -> None:
    flow = load_path(ROOT / "flows" / "booth_locator.yaml")
    sprint = start(flow, {"name": "Asha", "phone": "+919876543210"}, channel="whatsapp", now=NOW)
    sprint = resume(flow, sprint.state, inputs.Text("2"), now=NOW)
    sprint = resume(flow, sprint.state, inputs.Text("ABC1234567"), now=NOW)
    state = sprint.state
    local = ActionRunner("flows.actions")
    # In process first, before the action server (and its worker processes) share the cores.
    local_median = _time_runner("in process", local, state, flow, n)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANIC_HOST": "127.0.0.1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "flows.actions", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the rasa-sdk action server did not start")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        remote = RemoteActionRunner(f"http://127.0.0.1:{port}/webhook")
        remote_median = _time_runner("action server (HTTP)", remote, state, flow, n)
    finally:
        local.close()
        server.terminate()
        server.wait(timeout=10)
    ratio = remote_median / local_median
    verdict = "meets" if ratio >= 20 else "BELOW"
    print(f"  in process is {ratio:.1f}x faster than the HTTP action server; target >= 20x: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resumes", type=int, default=20_000)
    parser.add_argument("--actions", type=int, default=1000)
    args = parser.parse_args()
    bench_resume(args.resumes)
    bench_actions(args.actions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
