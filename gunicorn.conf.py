"""gunicorn settings for Keyhold: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be overridden from the environment. Requests are short and
CPU-bound except key checks, which wait on a provider for up to
VALIDATION_TIMEOUT seconds, so threaded workers keep a slow provider from tying
up a whole process. docs/benchmarks.md has the figures under load; ``python -m
bench --only sweep --no-docs`` compares other worker and thread counts.
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
# Recycle workers now and then so slow leaks cannot accumulate.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The access log line never carries request bodies; the query string is kept, and keys are
# never sent in URLs.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
