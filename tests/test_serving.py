"""Serving with gunicorn.conf.py: how many workers, and rate limits that hold across them."""

from __future__ import annotations

import multiprocessing
import os
import runpy
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

import httpx
import pytest

from tests.e2e.live import server_env, start_server
from tests.helpers import drop_redis_keys

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
SHARED_STORE = "redis://127.0.0.1:6379/13"


def _gunicorn_refusing(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """gunicorn started with ``env`` and ``args``, expected to stop on its own at once."""
    return subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py", *args, "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _conf(**env: str) -> dict:
    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_one_worker_per_core_only_with_a_shared_rate_limit_store():
    cores = multiprocessing.cpu_count()
    assert _conf()["workers"] == 1
    assert _conf(RATELIMIT_STORAGE_URI="memory://")["workers"] == 1
    assert _conf(RATELIMIT_STORAGE_URI=SHARED_STORE)["workers"] == cores
    assert _conf(RATELIMIT_STORAGE_URI=SHARED_STORE, WEB_CONCURRENCY="3")["workers"] == 3
    assert _conf(RATELIMIT_ENABLED="false")["workers"] == cores  # nothing to count apart
    assert _conf(WEB_CONCURRENCY="1")["workers"] == 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_CONCURRENCY", "auto", "WEB_CONCURRENCY must be a whole number of at least 1, got"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be a whole number of at least 1, got '0'"),
        ("GUNICORN_THREADS", "0", "GUNICORN_THREADS must be a whole number of at least 1"),
        ("GUNICORN_TIMEOUT", "30s", "GUNICORN_TIMEOUT must be a whole number of at least 0"),
        ("GUNICORN_REUSE_PORT", "maybe", "GUNICORN_REUSE_PORT must be on or off"),
    ],
)
def test_a_setting_gunicorn_cannot_read_stops_it_with_a_message(name, value, message):
    with pytest.raises(SystemExit, match=message):
        _conf(**{name: value})


@pytest.mark.parametrize(
    ("host", "bind"),
    [("::1", "[::1]:8000"), ("[::1]", "[::1]:8000"), ("0.0.0.0", "0.0.0.0:8000")],
)
def test_an_ipv6_host_is_bound_as_one(host, bind):
    assert _conf(HOST=host)["bind"] == bind


@pytest.mark.parametrize(
    ("settings", "args"),
    [({"WEB_CONCURRENCY": "2"}, []), ({}, ["--workers", "3"])],
    ids=["environment", "command line"],
)
def test_gunicorn_refuses_several_workers_that_would_count_limits_apart(tmp_path, settings, args):
    started = _gunicorn_refusing({**server_env(tmp_path, None, 0), **settings}, *args)
    assert started.returncode == 1
    count = settings.get("WEB_CONCURRENCY") or args[-1]
    assert f"Keyhold: {count} workers with rate limits kept in memory" in started.stderr
    assert "RATELIMIT_STORAGE_URI" in started.stderr
    assert "Traceback" not in started.stderr
    assert "Booting worker" not in started.stderr


@pytest.fixture
def served(tmp_path):
    """gunicorn with two workers sharing their rate limits through Redis."""
    prefix = f"keyhold-serving-{uuid.uuid4().hex}"
    server = start_server(
        tmp_path,
        None,
        workers=2,
        RATELIMIT_STORAGE_URI=SHARED_STORE,
        RATELIMIT_KEY_PREFIX=prefix,
        RATELIMIT_DEFAULT="20/minute",
        WEB_CONCURRENCY="2",
    )
    try:
        yield server
    finally:
        server.stop()
        drop_redis_keys(SHARED_STORE, f"*{prefix}*")  # Flask-Limiter puts its own prefix first


def test_two_workers_spend_one_budget(served):
    url = served.url
    # Each request on a new connection: the kernel hands each to either worker.
    codes = [httpx.get(url + "/api/csrf-token").status_code for _ in range(40)]
    assert codes == [200] * 20 + [429] * 20
    # Both workers answered (the access log names the worker), so the budget was one count
    # shared by two processes, not two counts of 20.
    lines = (served.folder / "access.log").read_text().splitlines()
    workers = {line.rsplit(" ", 1)[-1] for line in lines if '"GET /api/csrf-token ' in line}
    assert len(workers) == 2, lines


def test_a_port_another_program_holds_stops_gunicorn_with_a_message(tmp_path):
    # Each worker binds its own socket: without a check first, workers that cannot bind were
    # replaced forever and gunicorn never exited.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = _gunicorn_refusing(server_env(tmp_path, None, port))
    assert started.returncode == 1
    assert f"Keyhold: cannot listen on 127.0.0.1:{port}: Address already in use." in (
        started.stderr
    )
    assert "Booting worker" not in started.stderr


@pytest.mark.parametrize("port", ["65536", "99999"])
def test_a_port_no_machine_has_stops_gunicorn_with_a_message(tmp_path, port):
    env = {**server_env(tmp_path, None, 0), "PORT": port}
    env.pop("GUNICORN_BIND", None)
    started = _gunicorn_refusing(env)
    assert started.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: a port is a number from 0 to 65535." in (
        started.stderr
    )
    assert "Traceback" not in started.stderr


def test_servers_do_not_share_a_control_socket():
    assert _conf()["control_socket_disable"] is True


def test_the_log_says_where_the_workers_listen(served):
    # Each worker binds its own socket, so gunicorn's own line names no address.
    address = served.url.removeprefix("http://")
    assert f"Keyhold: each worker listens at {address}" in served.log_text()
