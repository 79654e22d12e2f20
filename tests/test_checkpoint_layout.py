"""Checkpoint layouts: DLIO's parameter count, the full-size sizes of the reference table,
which rank writes what under tensor/pipeline/data parallelism and ZeRO stages, scaling."""

from __future__ import annotations

import pytest

from pytest_iobench.workload.checkpoint_layout import LayoutError, layout_for, transformer_parameters
from pytest_iobench.workload.config import load_mapping, load_workload

GiB = 2**30

#: the reference table (dlio-compat.md): DLIO prints 2^30 bytes as "GB"; 405b's "5.29 TB"
#: and 1t's "15.4 TiB" are thousands of those units
REFERENCE = {
    "llama3-8b": (8, 105),
    "llama3-70b": (64, 912),
    "llama3-405b": (512, 5290),
    "llama3-1t": (1024, 15400),
}


def test_parameter_count_is_dlios_formula():
    assert transformer_parameters(128256, 4096, 14336, 32, 32, 8) == 8_030_261_248
    # P = 2VH + L(2H + H(H + 2 dkv) + H^2 + 3HF) + H with dkv = H / heads * kv
    V, H, F, L, heads, kv = 128256, 25872, 98304, 128, 192, 32
    dkv = H * kv // heads
    per_layer = 2 * H + H * (H + 2 * dkv) + H * H + 3 * H * F
    assert transformer_parameters(V, H, F, L, heads, kv) == 2 * V * H + L * per_layer + H


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_full_size_layouts_match_the_reference_table(name):
    ranks, gib = REFERENCE[name]
    layout = layout_for(load_workload(name))
    assert layout.ranks == ranks
    assert layout.size == layout.full_size
    assert layout.size / GiB == pytest.approx(gib, rel=0.005)
    # fp16 model states + 3 fp32 optimizer values: 14 bytes per parameter
    assert layout.size == pytest.approx(14 * layout.parameters, rel=1e-6)
    assert {s.rank for s in layout.shards} == set(range(ranks)), "every rank writes something"


def test_zero3_shards_model_and_optimizer_over_data_parallel_ranks():
    layout = layout_for(load_workload("llama3-8b"))
    for rank in range(8):
        names = sorted(s.name for s in layout.shards_of(rank))
        assert names == [f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt",
                         f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"]
    sizes = {s.size for s in layout.shards if s.kind == "model"}
    assert max(sizes) - min(sizes) <= 2, "equal shares"


def test_zero1_with_pipeline_writes_model_layers_once_and_shards_the_optimizer():
    layout = layout_for(load_workload("llama3-405b"))
    model = [s for s in layout.shards if s.kind == "model"]
    optimizer = [s for s in layout.shards if s.kind == "optimizer"]
    # model states only on data-parallel rank 0 (ranks 0..255), one file per layer and tensor rank
    assert {s.rank for s in model} == set(range(256))
    assert len(model) == (126 + 2) * 8
    assert len(optimizer) == 512
    assert sum(s.size for s in model) == 2 * layout.parameters
    assert sum(s.size for s in optimizer) == 12 * layout.parameters
    # the embedding is on the first stage, the LM head on the last
    assert any(s.name.startswith("layer_00-") and s.rank < 8 for s in model)
    assert any(s.name.startswith("layer_127-") and 248 <= s.rank < 256 for s in model)


def test_checkpoint_type_all_ranks_writes_every_replica():
    base = {"model": {"num_layers": 4, "parallelism": {"tensor": 2, "data": 2, "zero_stage": 0}}}
    once = layout_for(load_mapping(base))
    every = layout_for(load_mapping({**base, "checkpoint": {"type": "all_ranks"}}))
    assert every.size == 2 * once.size
    assert {s.rank for s in once.shards} == {0, 1}
    assert {s.rank for s in every.shards} == {0, 1, 2, 3}


def test_datatypes_take_effect():
    base = {"model": {"num_layers": 2, "parallelism": {"data": 1}}}
    fp16 = layout_for(load_mapping(base))
    fp32 = layout_for(load_mapping({"model": {**base["model"], "model_datatype": "fp32"}}))
    bf16_opt = layout_for(load_mapping({"model": {**base["model"], "optimizer_datatype": "bf16"}}))
    assert fp16.size == 14 * fp16.parameters
    assert fp32.size == 16 * fp16.parameters
    assert bf16_opt.size == 8 * fp16.parameters


def test_layer_parameters_and_optimization_groups_replace_the_formula():
    layout = layout_for(load_mapping({"model": {"layer_parameters": [100, 200, 300], "optimization_groups": [1000],
                                                "parallelism": {"data": 1, "zero_stage": 1}}}))
    assert layout.parameters == 600
    assert sum(s.size for s in layout.shards if s.kind == "model") == 600 * 2
    assert sum(s.size for s in layout.shards if s.kind == "optimizer") == 1000 * 12


def test_a_model_known_by_its_size_checkpoints_model_size_bytes():
    layout = layout_for(load_workload("unet3d_h100"), processes=4)
    assert [(s.name, s.size, s.rank) for s in layout.shards] == [("model_states-0.pt", 499153191, 0)]


def test_scale_shrinks_every_shard_and_processes_share_the_layout():
    full = layout_for(load_workload("llama3-8b"))
    small = layout_for(load_workload("llama3-8b"), scale=1 / 1000)
    assert small.full_size == full.size
    assert small.size == pytest.approx(full.size / 1000, abs=len(full.shards))
    assigned = small.assign(2)
    assert sorted(s.name for p in assigned.values() for s in p) == sorted(s.name for s in small.shards)
    assert {s.rank for s in assigned[1]} == {1, 3, 5, 7}


def test_layout_errors_say_what_to_change():
    with pytest.raises(LayoutError, match="not a whole number of KV dimensions"):
        layout_for(load_mapping({"model": {"num_layers": 2, "parallelism": {"data": 1},
                                           "transformer": {"hidden_size": 100, "num_attention_heads": 3}}}))
    with pytest.raises(LayoutError, match="3 processes are not a multiple of tensor 2 x pipeline 1"):
        layout_for(load_mapping({"model": {"num_layers": 2, "parallelism": {"tensor": 2}}}), processes=3)
    assert layout_for(load_mapping({"model": {"num_layers": 2, "parallelism": {"tensor": 2}}}), processes=4).data == 2
