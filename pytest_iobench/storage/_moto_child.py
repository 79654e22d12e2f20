"""The embedded endpoint's child process: moto's server, ending with its parent.

``python -m pytest_iobench.storage._moto_child PARENT_PID moto-server-args...``. The child runs in
a session of its own (a Ctrl-C at the terminal reaches the benchmark, which stops the endpoint
when it has cleaned up, not the endpoint first), so it must notice by itself when its parent
is gone, killed even: it checks every second and exits.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)  # the session that started us is gone: nothing will ever call us again


def main() -> None:
    parent = int(sys.argv[1])
    if os.getppid() != parent:
        return
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()
    sys.argv = ["moto_server", *sys.argv[2:]]
    runpy.run_module("moto.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
