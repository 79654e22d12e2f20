"""Which shards a checkpoint has, which rank writes each, and their sizes.

The model's size follows DLIO's parameter count for a transformer (the ``model`` keys):

    P = 2*V*H + L*(2*H + H*(H + 2*dkv) + H^2 + 3*H*F) + H,   dkv = H / heads * kv_heads

(V vocab, H hidden, F ffn hidden, L layers): the embedding and the LM head (V*H each), per
layer two norms, the attention projections with grouped KV heads, the output projection and
a gated MLP, and the final norm. Model states take ``model_datatype`` bytes per parameter
(fp16: 2); optimizer states are three values per parameter (fp32 master weights, Adam's
momentum and variance) in ``optimizer_datatype`` (fp32: 12 bytes per parameter).

Parallelism (``model.parallelism``): ranks = tensor x pipeline x data. Layers are split over
pipeline stages (embedding on the first, LM head and final norm on the last) and each stage's
parameters over tensor ranks. Rank r has tp = r % T, pp = (r // T) % P, dp = r // (T * P).

- optimizer states: ZeRO stage >= 1 shards them over the data-parallel ranks (every rank
  writes a 1/D share of its stage's slice); stage 0 keeps them whole on each replica;
- model states: ZeRO stage 3 shards them over the data-parallel ranks too; below 3 every
  replica holds the same states and only data-parallel rank 0 writes them, one file per layer.

``checkpoint.type: all_ranks`` makes every replica write what it holds (replicas included);
``rank_zero`` (DLIO's default) writes each distinct state once. A model without layers
(``num_layers`` <= 0, e.g. unet3d) checkpoints ``model_size_bytes`` of model state.
``layer_parameters`` / ``optimization_groups``, when given, replace the formula's per-layer
parameter counts and the optimizer's parameter count.

Sizes scale by ``scale`` (``--iobench-scale``), shard by shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import WorkloadConfig

DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8, "int8": 1, "uint8": 1}
#: optimizer values per parameter (Adam: master weights, momentum, variance)
OPTIMIZER_VALUES = 3


class LayoutError(ValueError):
    """The model and parallelism keys do not make a layout; the message says why."""


@dataclass(frozen=True)
class Shard:
    #: path under the checkpoint's folder, e.g. zero_pp_rank_0_mp_rank_00_optim_states.pt
    name: str
    size: int
    #: the rank of the layout that writes it
    rank: int
    kind: str  # "model" or "optimizer"


@dataclass
class CheckpointLayout:
    model: str
    parameters: int
    tensor: int
    pipeline: int
    data: int
    zero_stage: int
    model_bytes_per_parameter: int
    optimizer_bytes_per_parameter: int
    scale: float
    shards: list[Shard] = field(default_factory=list)
    #: the size before scaling (what the full model writes)
    full_size: int = 0

    @property
    def ranks(self) -> int:
        return self.tensor * self.pipeline * self.data

    @property
    def size(self) -> int:
        """Bytes of one checkpoint at this scale."""
        return sum(s.size for s in self.shards)

    def shards_of(self, rank: int) -> list[Shard]:
        return [s for s in self.shards if s.rank == rank]

    def assign(self, processes: int, subset: bool = False) -> dict[int, list[Shard]]:
        """Shards per process when ``processes`` run the layout: process p writes the shards
        of layout ranks p, p + processes, ... (all of them when processes == ranks). With
        ``subset`` (DLIO's checkpoint.mode: subset) process p writes layout rank p's shards
        only, and the ranks beyond the processes are not written."""
        if processes < 1:
            raise LayoutError(f"processes must be >= 1, not {processes}")
        out: dict[int, list[Shard]] = {p: [] for p in range(processes)}
        for shard in self.shards:
            if subset and shard.rank >= processes:
                continue
            out[shard.rank % processes].append(shard)
        return out

    def describe(self) -> str:
        return (f"{self.model}: {self.parameters:,} parameters, tensor {self.tensor} x pipeline {self.pipeline} "
                f"x data {self.data} = {self.ranks} ranks, ZeRO stage {self.zero_stage}, "
                f"{len(self.shards)} shards, {self.size:,} bytes per checkpoint"
                + (f" (scale {Fraction(self.scale).limit_denominator(10**9)} of {self.full_size:,})"
                   if self.scale != 1 else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "parameters": self.parameters, "tensor": self.tensor,
                "pipeline": self.pipeline, "data": self.data, "ranks": self.ranks, "zero_stage": self.zero_stage,
                "model_bytes_per_parameter": self.model_bytes_per_parameter,
                "optimizer_bytes_per_parameter": self.optimizer_bytes_per_parameter, "scale": self.scale,
                "size_bytes": self.size, "full_size_bytes": self.full_size, "shards": len(self.shards)}


def transformer_parameters(vocab: int, hidden: int, ffn: int, layers: int, heads: int, kv_heads: int) -> int:
    """DLIO's parameter count (see the module docstring)."""
    return int(embedding_parameters(vocab, hidden) * 2 + layers * layer_parameters(hidden, ffn, heads, kv_heads)
               + hidden)


def embedding_parameters(vocab: int, hidden: int) -> int:
    return vocab * hidden


def layer_parameters(hidden: int, ffn: int, heads: int, kv_heads: int) -> int:
    dkv = Fraction(hidden, heads) * kv_heads
    if dkv.denominator != 1:
        raise LayoutError(f"hidden_size {hidden} / num_attention_heads {heads} x num_kv_heads {kv_heads} "
                          "is not a whole number of KV dimensions")
    h = hidden
    return int(2 * h + h * (h + 2 * dkv) + h * h + 3 * h * ffn)


def _split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` whole pieces that differ by at most one and sum to it."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _scaled(size: int, scale: float) -> int:
    return round(size * scale)


def layout_for(config: WorkloadConfig, processes: int = 0, scale: float = 1.0) -> CheckpointLayout:
    """The layout of ``config``'s model. ``model.parallelism.data`` gives the data parallelism;
    when it is -1 (unset) it is what ``processes`` allow, as in DLIO (processes / (T x P))."""
    model = config.model
    par = model.parallelism
    tp, pp = par.tensor, par.pipeline
    if par.data > 0:
        dp = par.data
    else:
        if processes < 1:
            raise LayoutError("model.parallelism.data is not set: give it, or the number of processes")
        if processes % (tp * pp):
            raise LayoutError(f"{processes} processes are not a multiple of tensor {tp} x pipeline {pp}; "
                              "set model.parallelism.data or run a multiple of tensor x pipeline processes")
        dp = processes // (tp * pp)
    zero = max(0, par.zero_stage)
    try:
        model_bytes = DTYPE_BYTES[model.model_datatype]
        opt_bytes = OPTIMIZER_VALUES * DTYPE_BYTES[model.optimizer_datatype]
    except KeyError as exc:
        raise LayoutError(f"no size known for data type {exc.args[0]!r}; valid: {', '.join(DTYPE_BYTES)}") from None
    all_ranks = config.checkpoint.type == "all_ranks"

    if model.num_layers <= 0 and not model.layer_parameters:
        return _flat_layout(config, tp, pp, dp, zero, model_bytes, opt_bytes, scale, all_ranks)

    t = model.transformer
    if model.layer_parameters:
        per_layer = list(model.layer_parameters)
        head_params, tail_params = 0, 0
    else:
        if model.num_layers < pp:
            raise LayoutError(f"model.num_layers {model.num_layers} cannot fill {pp} pipeline stages")
        per_layer = [layer_parameters(t.hidden_size, t.ffn_hidden_size, t.num_attention_heads, t.num_kv_heads)
                     ] * model.num_layers
        head_params = embedding_parameters(t.vocab_size, t.hidden_size)
        tail_params = embedding_parameters(t.vocab_size, t.hidden_size) + t.hidden_size
    parameters = sum(per_layer) + head_params + tail_params

    # layers of each pipeline stage: named units with their parameter counts
    counts = _split(len(per_layer), pp)
    stages: list[list[tuple[str, int]]] = []
    first = 0
    for s, n in enumerate(counts):
        units = [(f"layer_{first + i + 1:02d}", per_layer[first + i]) for i in range(n)]
        first += n
        if s == 0 and head_params:
            units.insert(0, ("layer_00", head_params))
        if s == pp - 1 and tail_params:
            units.append((f"layer_{len(per_layer) + 1:02d}", tail_params))
        stages.append(units)

    # optimizer: the parameters it covers (optimization_groups replaces the model's count)
    opt_total = sum(model.optimization_groups) if model.optimization_groups else parameters
    opt_stage = _split(opt_total, pp) if model.optimization_groups else [sum(c for _, c in u) for u in stages]

    layout = CheckpointLayout(model.name, parameters, tp, pp, dp, zero, model_bytes, opt_bytes, scale)
    shards: list[Shard] = []
    full = 0
    for d in range(dp):
        for s in range(pp):
            for r_tp in range(tp):
                rank = d * tp * pp + s * tp + r_tp
                mp = s * tp + r_tp
                # model states
                if zero >= 3:
                    own = sum(_split(c, tp)[r_tp] for _, c in stages[s])
                    size = _split(own, dp)[d] * model_bytes
                    shards.append(Shard(f"zero_pp_rank_{d}_mp_rank_{mp:02d}_model_states.pt",
                                        _scaled(size, scale), rank, "model"))
                    full += size
                elif d == 0 or all_ranks:
                    for unit, c in stages[s]:
                        size = _split(c, tp)[r_tp] * model_bytes
                        name = f"{unit}-model_{mp:02d}-model_states.pt"
                        if all_ranks and d:
                            name = f"dp_rank_{d}/{name}"
                        shards.append(Shard(name, _scaled(size, scale), rank, "model"))
                        full += size
                # optimizer states
                slice_params = _split(opt_stage[s], tp)[r_tp]
                if zero >= 1:
                    size = _split(slice_params, dp)[d] * opt_bytes
                elif d == 0 or all_ranks:
                    size = slice_params * opt_bytes
                else:
                    continue
                shards.append(Shard(f"zero_pp_rank_{d}_mp_rank_{mp:02d}_optim_states.pt",
                                    _scaled(size, scale), rank, "optimizer"))
                full += size
    layout.shards = [s for s in shards if s.size > 0]
    layout.full_size = full
    return layout


def _flat_layout(config: WorkloadConfig, tp: int, pp: int, dp: int, zero: int, model_bytes: int, opt_bytes: int,
                 scale: float, all_ranks: bool) -> CheckpointLayout:
    """A model known by its size only (model_size_bytes): rank 0 writes it, or every rank."""
    model = config.model
    layout = CheckpointLayout(model.name, model.model_size_bytes // model_bytes, tp, pp, dp, zero, model_bytes,
                              opt_bytes, scale)
    writers = range(layout.ranks) if all_ranks else range(1)
    full = []
    for r in writers:
        full.append(Shard(f"model_states-{r}.pt", model.model_size_bytes, r, "model"))
        for i, n in enumerate(model.optimization_groups):
            full.append(Shard(f"optimizer_group_{i}-{r}.pt", n * opt_bytes, r, "optimizer"))
    layout.full_size = sum(s.size for s in full)
    layout.shards = [Shard(s.name, _scaled(s.size, scale), s.rank, s.kind) for s in full
                     if _scaled(s.size, scale) > 0]
    return layout
