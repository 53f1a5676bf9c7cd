"""gunicorn settings for Keyhold: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be overridden from the environment. Requests are short and
CPU-bound except key checks, which wait on a provider for up to
VALIDATION_TIMEOUT seconds, so threaded workers keep a slow provider from tying
up a whole process.

The defaults come from ``python -m bench --only sweep --no-docs`` (docs/benchmarks.md,
"Choosing the gunicorn settings"). Once each worker has its own listening socket,
worker and thread counts from 2 x 2 to 4 x 4 served the status call within about
20% of each other on a 2-core machine; one worker per core keeps memory low, and
four threads per worker leave room beside a slow provider check. One worker per core
needs a shared rate-limit store (Redis); without one, Keyhold runs a single worker.
Recycling every 5,000 requests halved the trivial endpoint's throughput under load
and gave p99 spikes of half a second.
"""

import multiprocessing
import os
import socket
import sys

_host = os.environ.get("HOST", "127.0.0.1").strip()
if ":" in _host and not _host.startswith("["):
    _host = f"[{_host}]"  # an IPv6 address: its colons are not the port's
bind = os.environ.get("GUNICORN_BIND", f"{_host}:{os.environ.get('PORT', '8000')}")


def _switch(name: str, default: bool) -> bool:
    """An on/off setting, read as Keyhold's own switches are (webapp/config.py)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    sys.exit(f"Keyhold: {name} must be on or off (1/0, true/false, yes/no, on/off), got {raw!r}")


def _whole(name: str, default: int, least: int = 0) -> int:
    """A count or a number of seconds, at least ``least``; anything else stops gunicorn with
    a clear message."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 9 and int(raw) >= least:
        return int(raw)
    sys.exit(f"Keyhold: {name} must be a whole number of at least {least}, got {raw!r}")


# Rate limits kept in memory (RATELIMIT_STORAGE_URI unset or memory://) are counted by each
# process on its own: with several workers, every budget (sign-in guesses included) would be
# multiplied by the number of workers. So without a shared store Keyhold runs one worker (its
# threads serve requests concurrently), and refuses to start with more.
_storage = os.environ.get("RATELIMIT_STORAGE_URI", "").strip().lower() or "memory://"
_limits_per_process = _switch("RATELIMIT_ENABLED", True) and _storage.startswith("memory:")
# No worker (0) would leave gunicorn's master waiting forever with nothing serving.
workers = _whole(
    "WEB_CONCURRENCY", 1 if _limits_per_process else multiprocessing.cpu_count(), least=1
)


def _check_listening(server) -> None:
    """With a socket per worker (reuse_port) the master binds nothing itself, and a worker
    that cannot bind is replaced by one that cannot either, forever: try each address here
    first, so that a port taken by another program or an address this machine does not have
    stops gunicorn with a message and a failed exit."""
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            continue  # a Unix socket: the master binds it itself and fails loudly
        host, port = address[0], address[1]
        if not 0 <= port <= 65535:
            sys.exit(
                f"Keyhold: cannot listen on {host}:{port}: a port is a number from 0 to 65535."
            )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                sys.exit(f"Keyhold: cannot listen on {host}:{port}: {exc.strerror}.")


def on_starting(server) -> None:
    """Checked on the final settings, so ``-w`` on the command line cannot slip past."""
    count = server.cfg.workers
    if count > 1 and _limits_per_process:
        sys.exit(
            f"Keyhold: {count} workers with rate limits kept in memory would give each worker "
            f"its own budget ({count}x the configured limits). Set RATELIMIT_STORAGE_URI to a "
            "Redis URL (redis://host:6379/0) so that all workers share one count, or run one "
            "worker (WEB_CONCURRENCY=1)."
        )
    if server.cfg.reuse_port:
        _check_listening(server)


def when_ready(server) -> None:
    """With a socket per worker the master binds none, and gunicorn's "Listening at" line
    names no address: this one says where the workers listen."""
    if server.cfg.reuse_port:
        server.log.info("Keyhold: each worker listens at %s", ", ".join(server.cfg.bind))


worker_class = "gthread"
threads = _whole("GUNICORN_THREADS", 4, least=1)
# The heartbeat: a worker whose main loop is silent this long is killed and replaced. With
# threads it does not bound a request (key checks are bounded by VALIDATION_TIMEOUT).
timeout = _whole("GUNICORN_TIMEOUT", 30)
# On SIGTERM, running requests get this long to finish. The longest is a validate-all of
# every provider: two rounds of VALIDATION_MAX_WORKERS checks at VALIDATION_TIMEOUT (2 x 10 s
# by default) and a little more, so it must outlast that or the last answers are cut off.
graceful_timeout = _whole("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections
# over them. On one shared socket, the first worker to wake accepts a whole burst of keep-alive
# connections and the other cores sit idle for as long as those connections live: under load
# that halved throughput in about half of the benchmark's windows. The price: connections still
# queued on a worker that exits are reset (Linux 5.14+ hands them to the other workers with
# sysctl net.ipv4.tcp_migrate_req=1), and workers are recycled rarely; and a second server
# started by the same user on the same port shares it instead of failing to bind.
reuse_port = _switch("GUNICORN_REUSE_PORT", True)
# Recycle workers now and then so a slow leak cannot accumulate. Not often: a new worker
# spends about a second of CPU starting, and while it starts the others take its load. A
# worker's memory stays flat under load (docs/benchmarks.md), so this is only a backstop.
max_requests = _whole("GUNICORN_MAX_REQUESTS", 100000)
max_requests_jitter = max_requests // 10
# gunicorn's control socket (for gunicornc) sits at one path per system user by default, so a
# second server run by the same user took it over, and stopping either removed it for both.
# Keyhold is managed by signals (SIGTERM, SIGHUP), not through it.
control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The access log line never carries request bodies; the query string is kept, and keys are
# never sent in URLs. The last field is the worker's process id.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms %(p)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
