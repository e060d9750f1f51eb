"""A model version's signature: its input and output tensors, as stored and as served."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # V2 datatype name, e.g. "FP32"
    shape: list[int]  # -1 marks a dynamic dimension (as V2 metadata does)
    dim_names: list[str | None] = field(default_factory=list)  # symbolic names of dynamic dims

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(d["name"], d["datatype"], list(d["shape"]), list(d.get("dim_names") or []))


@dataclass(frozen=True)
class Signature:
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    # The sizes of the dynamic dimensions (by symbolic name, else "input:axis") that the upload's warm-up ran
    # at (flashml.runtime.samples); None where no made-up input ran the model.
    sample_sizes: dict[str, int] | None = None
    # Some output has no row per input row (NMS results, a summary): requests cannot be merged into batches.
    unbatched: bool = False

    def input(self, name: str) -> TensorSpec | None:
        return self._by_name[0].get(name)

    def output(self, name: str) -> TensorSpec | None:
        return self._by_name[1].get(name)

    @cached_property
    def _by_name(self) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
        # Looked up for every tensor of every request; a signature never changes once made.
        return {t.name: t for t in self.inputs}, {t.name: t for t in self.outputs}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inputs": [t.to_dict() for t in self.inputs],
                               "outputs": [t.to_dict() for t in self.outputs]}
        if self.sample_sizes is not None:
            out["sample_sizes"] = dict(self.sample_sizes)
        if self.unbatched:
            out["unbatched"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        sizes = d.get("sample_sizes")
        return cls([TensorSpec.from_dict(t) for t in d["inputs"]], [TensorSpec.from_dict(t) for t in d["outputs"]],
                   {str(k): int(v) for k, v in sizes.items()} if isinstance(sizes, dict) else None,
                   bool(d.get("unbatched", False)))
