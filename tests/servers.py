"""Real Jupyter servers for the browser and formgrader tests: started on a free loopback port with a token, used
once they answer, and stopped afterwards."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT = 60  # seconds for a server to answer its status API


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_jupyter(app: list[str], root: Path, env: dict[str, str], log_path: Path, *options: str):
    """``with running_jupyter(["jupyterlab"], root, env, log) as (url, token):`` the Jupyter application `app` (the
    words after ``python -m``) serving the folder `root`, its output in `log_path`."""
    port, token = free_port(), secrets.token_hex(16)
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", *app, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             *options, *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(server, f"{url}/api/status?token={token}", log_path)
            yield url, token
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_up(server: subprocess.Popen, status_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the Jupyter server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)  # polling a server that is starting
