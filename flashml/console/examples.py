"""Example V2 request bodies built from a model's signature: the model page's snippets and the playground's editor."""

from __future__ import annotations

import math
from typing import Any


def example_value(datatype: str) -> Any:
    if datatype == "BOOL":
        return True
    if datatype == "BYTES":
        return "text"
    if datatype.startswith(("FP", "BF")):
        return 1.0
    return 1


def example_shape(shape: list[int]) -> list[int]:
    return [d if d > 0 else 1 for d in shape]


def v2_example(signature: dict[str, Any] | None) -> dict[str, Any]:
    """A valid V2 JSON body for this signature: dynamic dimensions set to 1, every value the same."""
    inputs = []
    for spec in (signature or {}).get("inputs", []):
        shape = example_shape(spec["shape"])
        inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape,
                       "data": [example_value(spec["datatype"])] * math.prod(shape)})
    return {"inputs": inputs}
