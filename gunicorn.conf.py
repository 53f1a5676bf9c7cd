"""gunicorn settings for Keyhold: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be overridden from the environment. Requests are short and
CPU-bound except key checks, which wait on a provider for up to
VALIDATION_TIMEOUT seconds, so threaded workers keep a slow provider from tying
up a whole process.

The defaults come from ``python -m bench --only sweep --no-docs`` (docs/benchmarks.md,
"Choosing the gunicorn settings"). Once each worker has its own listening socket,
worker and thread counts from 2 x 2 to 4 x 4 served the status call within about
20% of each other on a 2-core machine; one worker per core keeps memory low, and
four threads per worker leave room beside a slow provider check. Recycling every
5,000 requests halved the trivial endpoint's throughput under load and gave p99
spikes of half a second.
"""

import multiprocessing
import os

bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A validate-all waits for the slowest provider (10 s by default) plus margin.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections
# over them. On one shared socket, the first worker to wake accepts a whole burst of keep-alive
# connections and the other cores sit idle for as long as those connections live: under load
# that halved throughput in about half of the benchmark's windows. The price: connections still
# queued on a worker that exits are reset (Linux 5.14+ hands them to the other workers with
# sysctl net.ipv4.tcp_migrate_req=1), and workers are recycled rarely; and a second server
# started by the same user on the same port shares it instead of failing to bind.
# Read as Keyhold's own switches are (webapp/config.py): unset or blank is the default.
_reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "").strip().lower() or "true"
reuse_port = _reuse_port in ("1", "true", "yes", "on")
# Recycle workers now and then so a slow leak cannot accumulate. Not often: a new worker
# spends about a second of CPU starting, and while it starts the others take its load. A
# worker's memory stays flat under load (docs/benchmarks.md), so this is only a backstop.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The access log line never carries request bodies; the query string is kept, and keys are
# never sent in URLs.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
