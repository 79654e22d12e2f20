import os

import pytest

pytest_plugins = ["pytester"]

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
