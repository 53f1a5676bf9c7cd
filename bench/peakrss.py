"""Run a command and write its peak resident size (KiB) to a file: ``peakrss OUT CMD...``.

A process's peak RSS as reported by the kernel starts from what its parent
held when it forked, so a large benchmark process would inflate the figure
of every command it starts. Started through this small process, the command
is measured from a clean parent.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> int:
    out, *command = sys.argv[1:]
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    with open(out, "w", encoding="ascii") as fh:
        fh.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(main())
