"""The qualification options: ``--iobench-accelerators`` (auto, N, A-B) and
``--iobench-host-memory`` parse with their ini and environment twins, and a bad value is one
line naming the option, where it came from and what is valid."""

from __future__ import annotations

import pytest

import pytest_iobench.plugin.options  # noqa: F401  (declares every layer's options)
from pytest_iobench.qualify.options import Accelerators, GiB, client_hosts, host_memory_bytes
from pytest_iobench.settings import SettingsError, resolve


@pytest.mark.parametrize("text,expected,shown", [
    ("auto", Accelerators(), "auto"),
    ("AUTO", Accelerators(), "auto"),
    ("8", Accelerators(8, 8, fixed=True), "8"),
    ("4-64", Accelerators(4, 64), "4-64"),
    (" 2-2 ", Accelerators(2, 2), "2-2"),
])
def test_accelerators_parse(text, expected, shown):
    value = resolve({"accelerators": text}, {}, {}).accelerators
    assert value == expected and str(value) == shown
    assert value.auto == (expected.low is None)


def test_accelerators_default_is_auto_and_the_environment_twin_is_read():
    assert resolve({}, {}, {}).accelerators.auto
    settings = resolve({}, {}, {"IOBENCH_ACCELERATORS": "16"})
    assert settings.accelerators == Accelerators(16, 16, fixed=True)
    assert settings.sources["accelerators"] == "env IOBENCH_ACCELERATORS"
    assert resolve({}, {"accelerators": "2-4"}, {"IOBENCH_ACCELERATORS": "16"}).accelerators == Accelerators(2, 4)


@pytest.mark.parametrize("text,why", [
    ("many", "give auto, a count such as 8, or a range such as 4-64"),
    ("0", "counts start at 1"),
    ("8-2", "the range 8-2 runs backwards"),
    ("2-", "give auto, a count such as 8"),
    ("1.5", "give auto, a count such as 8"),
])
def test_a_bad_accelerators_value_is_one_clear_line(text, why):
    with pytest.raises(SettingsError) as exc:
        resolve({"accelerators": text}, {}, {})
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"--iobench-accelerators (command line): {text!r} is not valid: ")
    assert why in message


def test_host_memory_is_given_in_gib_or_measured():
    assert resolve({}, {}, {}).host_memory is None
    assert resolve({"host-memory": "0.5"}, {}, {}).host_memory == 0.5
    assert resolve({}, {}, {"IOBENCH_HOST_MEMORY": "512"}).host_memory == 512
    assert host_memory_bytes(2.0) == (2 * GiB, "given")
    measured, where = host_memory_bytes(None)
    assert measured > 0 and where == "this host's"


@pytest.mark.parametrize("text", ["0", "-4", "lots", "inf"])
def test_a_bad_host_memory_is_one_clear_line(text):
    with pytest.raises(SettingsError, match=r"^--iobench-host-memory \(ini iobench_host_memory\): .* is not valid: "
                                            r"give .*memory of each client host in GiB"):
        resolve({}, {"host-memory": text}, {})


def test_client_hosts_count_the_hosts_or_the_hostfile(tmp_path):
    assert client_hosts(None, None) == 1
    assert client_hosts(["a", "b", "c"], None) == 3
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# the clients\nnode1:8\nnode2 slots=8\n\nnode1:8\n")
    assert client_hosts(None, str(hostfile)) == 2
