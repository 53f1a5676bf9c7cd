"""The app under gunicorn, started from ``gunicorn.conf.py`` as ``make serve`` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.env import ROOT, VENV_BIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat(int(entry.name))[1])
        except OSError:
            continue
        if parent == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Gunicorn:
    proc: subprocess.Popen
    url: str
    log: Path
    conf: dict  # gunicorn.conf.py as it resolved for this server
    log_start: int = 0  # where this server's lines begin in a log shared with earlier runs

    def log_text(self) -> str:
        """What this server has written to its log."""
        with self.log.open("rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")

    def worker_pids(self) -> list[int]:
        return _children(self.proc.pid)

    def worker_rss(self) -> list[float]:
        return [rss_mib(pid) for pid in self.worker_pids()]

    def worker_cpu_seconds(self) -> float:
        """CPU time used by all workers so far, including workers already replaced."""
        fields = _stat(self.proc.pid)
        total = int(fields[13]) + int(fields[14])  # cutime, cstime: reaped workers
        for pid in self.worker_pids():
            try:
                worker = _stat(pid)
            except OSError:
                continue
            total += int(worker[11]) + int(worker[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # The command name may contain spaces; the numbered fields follow the closing bracket.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@contextmanager
def gunicorn(env: dict[str, str], log: Path, **settings: str) -> Iterator[Gunicorn]:
    """Serve the app with gunicorn.conf.py; ``settings`` are its environment overrides."""
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", **settings}
    with log.open("ab") as out:
        log_start = out.tell()
        proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(proc, f"http://127.0.0.1:{port}", log, resolved(env), log_start)
    try:
        _wait_ready(server, server.conf["workers"])
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: workers finish what they are serving
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(server: Gunicorn, workers: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {server.log}:\n{server.log.read_text()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                if len(server.worker_pids()) >= workers:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not become ready; see {server.log}")


def resolved(env: dict[str, str]) -> dict:
    """What gunicorn.conf.py resolves to in the environment ``env`` (and nothing else)."""
    import runpy
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def shape(workers: int, threads: int) -> str:
    """``2 workers × 4 threads``, ``1 worker × 1 thread``."""
    return f"{workers} worker{'s' * (workers != 1)} × {threads} thread{'s' * (threads != 1)}"


def config_summary(conf: dict) -> str:
    return (
        f"gunicorn {conf['worker_class']}, {shape(conf['workers'], conf['threads'])}, "
        f"max_requests {conf['max_requests']}"
    )
