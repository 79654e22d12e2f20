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
