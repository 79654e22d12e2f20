import hashlib
import importlib
import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# The plugin imports the layers when a session uses them, not when it loads. pytester's in-process
# runs (runpytest) restore sys.modules when they end, dropping what an inner session imported while
# its objects stay in use (psutil then fails to find itself in sys.modules): the layers the plugin
# imports lazily are imported here first, as the plugin's import did before it became lazy.
for _module in ("pytest_iobench.plugin.startup", "pytest_iobench.report.session", "pytest_iobench.report.text",
                "pytest_iobench.storage.factory", "pytest_iobench.data.datasets", "pytest_iobench.workload.config",
                "pytest_iobench.mpi.session", "psutil"):
    importlib.import_module(_module)

# torch (installed with the s3torch extra) cannot be imported twice in one process, and s3dlio
# imports it whenever it is installed. pytester's in-process sessions drop the modules they
# imported when they end, so the next session's s3dlio imported torch again, which failed
# ("SystemError: ... bad call flags") and then crashed the process. Imported here, before any
# inner session, it stays loaded.
if importlib.util.find_spec("torch") is not None:
    import torch  # noqa: F401

# Settings a pytest run reads from the environment. s3dlio takes its credentials from the
# process environment, so once a test in this session has used the embedded endpoint through
# s3dlio these hold that endpoint; the inner sessions pytester starts must not inherit them.
_INHERITED_SETTINGS = ("AWS_", "IOBENCH_")


@pytest.fixture(autouse=True)
def _isolated_inner_sessions(request, monkeypatch):
    if "pytester" in request.fixturenames:
        for name in list(os.environ):
            if name.startswith(_INHERITED_SETTINGS):
                monkeypatch.delenv(name)
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """The plugin's own tests write their session's result document under the temporary
    directory, never into the checkout's reports/ (where a user's runs and baselines live).
    Runs before the plugin resolves its settings; an explicit --iobench-json or ini or
    environment value still wins."""
    if (getattr(config.option, "iobench_json", None) or os.environ.get("IOBENCH_JSON")
            or config.getini("iobench_json")):
        return None
    checkout = hashlib.sha1(str(config.rootpath).encode()).hexdigest()[:10]
    config.option.iobench_json = str(Path(tempfile.gettempdir()) / f"iobench-tests-{os.getuid()}" / checkout
                                     / "tests.json")
    return None
