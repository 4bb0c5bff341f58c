"""Flower's exposure rule is enforced where Flower reads its config (flowerconfig.py): started for real, a
non-loopback bind without real credentials exits with the reason — however the address was given."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from app.processes import free_port
from tasks.flower_guard import (
    FlowerExposed,
    check_exposure,
    has_real_credentials,
    is_loopback,
)
from tests.support.processes import ROOT, ProcessGroup, subprocess_env, wait_for

pytestmark = pytest.mark.slow


def flower_args(*extra: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "tasks", "flower", *extra]


@pytest.mark.parametrize("args,env", [
    (["--address=0.0.0.0"], {}),
    (["--address=0.0.0.0"], {"FLOWER_BASIC_AUTH": " : "}),
    (["--address=0.0.0.0", "--basic-auth=admin:"], {}),
    ([], {"FLOWER_ADDRESS": "0.0.0.0"}),
])
def test_flower_refuses_to_listen_beyond_loopback_without_credentials(database_url: str, args, env) -> None:
    environment = subprocess_env(database_url)
    environment.pop("FLOWER_BASIC_AUTH", None)
    environment.update(env)
    finished = subprocess.run(flower_args(*args, f"--port={free_port()}"), env=environment, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode != 0
    assert "refusing to start Flower" in finished.stderr


def test_flower_starts_on_any_loopback_address_and_beyond_it_with_credentials(database_url: str,
                                                                              processes: ProcessGroup) -> None:
    loopback_port, open_port = free_port(), free_port()
    env = subprocess_env(database_url)
    env.pop("FLOWER_BASIC_AUTH", None)
    processes.start(flower_args("--address=127.0.0.2", f"--port={loopback_port}"), env, "flower-loopback")
    processes.start(flower_args("--address=0.0.0.0", f"--port={open_port}", "--basic-auth=admin:s3cret"), env,
                    "flower-open")

    def answers(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(lambda: answers(f"http://127.0.0.2:{loopback_port}/healthcheck"), 90, message="loopback flower")
    wait_for(lambda: answers(f"http://127.0.0.1:{open_port}/healthcheck"), 90, message="flower with auth")
    assert httpx.get(f"http://127.0.0.1:{open_port}/api/workers", timeout=10).status_code == 401


def test_the_rule() -> None:
    assert is_loopback("127.0.0.2") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("") and not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert has_real_credentials(["a:b"]) and not has_real_credentials([" : "]) and not has_real_credentials([])
    with pytest.raises(FlowerExposed):
        check_exposure("0.0.0.0", None, None)
    check_exposure("0.0.0.0", None, "flower.views.auth.GithubLoginHandler")
