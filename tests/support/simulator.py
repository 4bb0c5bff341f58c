"""Start the LLM simulator (``litscreen llm-simulator``) as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from app.processes import ChildProcess
from tests.support.processes import ProcessGroup, wait_for

_LISTENING = re.compile(r"llm-simulator listening on (http://[\d.]+:\d+/v1)")


@dataclass
class Simulator:
    """A running simulator: its base URL (ending in /v1) and its process."""

    base_url: str
    process: ChildProcess

    def stats(self, window: float = 1.0) -> dict[str, Any]:
        """``GET /v1/stats``: calls_total, calls_by_model (every request, errored ones included), ..."""
        response = httpx.get(f"{self.base_url}/stats", params={"window": window}, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Zero the simulator's counters."""
        httpx.delete(f"{self.base_url}/stats", timeout=10).raise_for_status()


def start_simulator(processes: ProcessGroup, name: str = "llm-simulator", **knobs: Any) -> Simulator:
    """Start ``litscreen llm-simulator`` with ``knobs`` (latency=0.1, error_rate=0.3, malformed_repairable=True,
    ...) on a free port, and wait until it answers."""
    args = [sys.executable, "-m", "app.cli", "llm-simulator", "--host", "127.0.0.1", "--port", "0"]
    for key, value in knobs.items():
        option = "--" + key.replace("_", "-")
        if value is True:
            args.append(option)
        elif value not in (False, None):
            args += [option, str(value)]
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    process = processes.start(args, env, name)
    log_path = process.log_path

    def listening() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"simulator exited: {log_path.read_text(errors='replace')}")
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        return match.group(1) if match else None

    base_url = str(wait_for(listening, timeout=30, interval=0.05, message="the simulator to listen"))
    simulator = Simulator(base_url, process)
    wait_for(lambda: _answers(simulator), timeout=30, interval=0.05, message="the simulator to answer")
    return simulator


def _answers(simulator: Simulator) -> bool:
    try:
        return httpx.get(f"{simulator.base_url}/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
