"""``iobench datasize``: mlpstorage's figures, the override to give them, and one-line errors."""

from __future__ import annotations

import pytest

from pytest_iobench.__main__ import main


def test_datasize_prints_files_bytes_and_the_override(capsys):
    assert main(["datasize", "unet3d_h100", "--hosts", "1", "--host-memory", "128", "--accelerators", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("unet3d_h100: 28000 files of 140 MiB (1 sample a file), 4104817584000 bytes")
    assert "4687 files" in out[2] and "dictated by the steps" in out[2]
    assert out[3] == "  --iobench-workload=unet3d_h100 --iobench-set unet3d_h100:dataset.num_files_train=28000"


def test_datasize_takes_overrides_and_this_host_s_memory(capsys):
    # batch 14 doubles the steps' files: 500 x 8 x 14 = 56000
    assert main(["datasize", "unet3d_h100", "--accelerators", "8", "--set", "reader.batch_size=14"]) == 0
    out = capsys.readouterr().out
    assert "this host's" in out and "dataset.num_files_train=56000" in out


@pytest.mark.parametrize("argv,message", [
    (["datasize", "nope", "--accelerators", "8"], "unknown workload 'nope'"),
    (["datasize", "unet3d_h100", "--accelerators", "0"], "'0' must be more than 0"),
])
def test_bad_input_is_one_error_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err + str(exc.value.code)
    assert message in err


def test_datasize_gives_the_time_to_generate_at_a_given_rate(capsys):
    # 28000 files of 146,600,628 B = 4,104,817,584,000 B at 500 MB/s = 8209.6 s = 2 h 17 min
    assert main(["datasize", "unet3d_h100", "--host-memory", "128", "--accelerators", "8",
                 "--generate-rate", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[4] == "  to generate: 2 h 17 min at 500.0 MB/s (given)"


def test_datasize_measures_the_generation_rate_on_this_host(capsys, monkeypatch):
    # the memory's environment twin is read; cosmoflow's 2.8 MB files: a sample of 24 files (64 MiB)
    monkeypatch.setenv("IOBENCH_HOST_MEMORY", "0.25")
    assert main(["datasize", "cosmoflow_h100", "--accelerators", "1", "--generate-threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "1 host x 256 MiB (given)" in out[1]
    assert out[4].startswith("  to generate: ") and " MB/s (measured on this host: 24 files of tfrecord, " in out[4]
    assert out[4].endswith(" s, 1 thread; a slower storage's writes set the pace)")


def test_a_bad_host_memory_in_the_environment_is_one_error_line(capsys, monkeypatch):
    monkeypatch.setenv("IOBENCH_HOST_MEMORY", "lots")
    with pytest.raises(SystemExit) as exc:
        main(["datasize", "unet3d_h100", "--accelerators", "8", "--generate-rate", "1"])
    assert str(exc.value.code) == ("error: IOBENCH_HOST_MEMORY: 'lots' is not valid: give the memory of each client "
                                   "host in GiB, such as 512")
