"""The ais storage (AIStore's native API through the ``aistore`` SDK): what can be checked
without an AIStore cluster, which these machines cannot run and which is not faked here.

Without ``--iobench-ais-endpoint`` every ais case skips saying so; the settings are checked
at start (tests/test_plugin_options.py); an operation against an endpoint where nothing
listens fails with one StorageError naming the operation, the key and the library, within its
deadline. The storage contract itself is the conformance suite's, run against a real cluster:

    pytest suites/test_storage_conformance.py --iobench-storage=ais \\
        --iobench-ais-endpoint=http://gateway:8080 --iobench-bucket=BUCKET
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_iobench.storage.errors import StorageError
from pytest_iobench.storage.factory import NO_AIS_ENDPOINT
from pytest_iobench.storage.registry import StorageSpec, library_installed, missing_reason, open_storage

REPO = Path(__file__).resolve().parents[1]


def test_without_an_endpoint_every_ais_case_skips_with_the_reason(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites" / "test_storage_conformance.py"), "-p",
         "no:cacheprovider", "-rs", "-q", "--iobench-storage=ais", f"--iobench-json={tmp_path / 'ais.json'}",
         "--iobench-report=none"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=_environ_without("AIS_ENDPOINT"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    tail = out.stdout.strip().splitlines()[-1]
    assert " skipped" in tail and "passed" not in tail and "failed" not in tail, tail
    reason = NO_AIS_ENDPOINT if library_installed("aistore") else missing_reason("aistore")
    assert reason in out.stdout


def _environ_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not library_installed("aistore"), reason=missing_reason("aistore"))
def test_an_unreachable_endpoint_is_one_error_naming_the_operation_and_library():
    url = f"http://127.0.0.1:{_closed_port()}"
    storage = open_storage(StorageSpec("ais", "aistore", bucket="b", prefix="p", endpoint_url=url, op_timeout=4))
    assert storage.uri("k") == "ais://b/p/k"
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        storage.get("k")
    assert time.monotonic() - started < 4 * 3  # the deadline bounds it, retries included
    text = str(caught.value)
    assert "get" in text and "k" in text and "aistore" in text and "\n" not in text.strip()
