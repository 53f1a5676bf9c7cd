"""The real app for browser tests: gunicorn on a free loopback port, a fresh SQLite file,
the provider emulator on loopback, and Debian's Chromium.

Used by the pytest fixtures in conftest.py and by ``python -m tests.e2e.screenshots``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRETS = {
    "SECRET_KEY": "e2e-session-secret-" + "k" * 32,
    "API_KEY_ENCRYPTION_SECRET": "e2e-encryption-secret-" + "e" * 32,
}
_TOKEN_IN_LOG = re.compile(r"one-time setup token: (\S+)")
# Inherited settings that would point the server elsewhere than its own fresh database, or
# change how it is served and limited.
_NOT_INHERITED = (
    "DATABASE_URL",
    "RATELIMIT_",
    "SETUP_TOKEN_FILE",
    "KEYHOLD_",
    "WEB_CONCURRENCY",
)


def chromium_missing() -> str | None:
    if CHROMIUM.exists():
        return None
    return (
        f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium "
        "(or leave out the browser tests with -m 'not e2e')"
    )


def launch_options() -> dict:
    return {"executable_path": str(CHROMIUM), "headless": True, "args": CHROMIUM_ARGS}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    folder: Path
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def setup_token(self, timeout: float = 10) -> str:
        """The one-time token from the server log, where an operator finds it on first start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _TOKEN_IN_LOG.findall(self.log_text())
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no setup token in the server log:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def server_env(folder: Path, emulator: Emulator | None, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env = {k: v for k, v in env.items() if not k.startswith(("PROVIDER_", "GUNICORN_"))}
    env.update(SECRETS)
    env.update(
        KEYHOLD_ENV="production",
        # Plain http on loopback: a Secure cookie would not come back.
        SESSION_COOKIE_SECURE="false",
        DATABASE_URL=f"sqlite:///{folder / 'keyhold.sqlite3'}",
        KEYHOLD_INSTANCE_PATH=str(folder / "instance"),
        RATELIMIT_STORAGE_URI="memory://",
        # Every test registers and logs in from 127.0.0.1; the limits are tested elsewhere.
        RATELIMIT_REGISTER="100/minute",
        RATELIMIT_LOGIN_IP="100/minute",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_THREADS="4",
        GUNICORN_ACCESSLOG=str(folder / "access.log"),
        PYTHONPATH=str(ROOT),
    )
    for provider, url in (emulator.base_urls() if emulator else {}).items():
        env[f"PROVIDER_{provider.upper()}_BASE_URL"] = url
    env["PROVIDER_BASE_URLS_CHECK_KEYS"] = "true"  # the emulator refuses keys it does not know
    return env


def start_server(
    folder: Path, emulator: Emulator | None, workers: int = 1, **settings: str
) -> LiveServer:
    """Migrate a fresh SQLite database and serve it with gunicorn, as in production.

    ``settings`` override the environment; ready once ``workers`` workers have booted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**server_env(folder, emulator, port), **settings}
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "flask"), "--app", "webapp", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", folder, env, log, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_text()}")
        try:
            ready = httpx.get(server.url + "/readyz", timeout=2).status_code == 200
            if ready and server.log_text().count("Booting worker") >= workers:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn did not become ready:\n{server.log_text()}")
