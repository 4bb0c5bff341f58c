"""The terminal client under test: the app served over real HTTP in a thread, and ``litscreen`` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIM_MODELS = "sim:model-a,sim:model-b"


class LiveServer:
    """An app served on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def run_cli(*args: str, url: str, token: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``litscreen ARGS`` as a subprocess with the API settings in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("LITSCREEN_TOKEN", "LITSCREEN_API_URL")}
    env["LITSCREEN_API_URL"] = url
    if token is not None:
        env["LITSCREEN_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str, secret: str | None = None) -> None:
    """Non-zero exit, a readable message, no traceback, and never the token."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output
    if secret:
        assert secret not in output
