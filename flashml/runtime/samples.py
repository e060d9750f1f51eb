"""Representative inputs for a model's signature: the one place that makes up data to run a model on.

The sandboxed probe at upload, auto-tune, the warm-ups and the GPU memory reading all run a model on inputs
nobody sent. Every dynamic dimension set to 1 is the guess that refuses valid models: a detector whose
feature pyramid needs height and width in multiples of 32, an audio model whose reflect padding needs more
samples than the pad. So the sizes come from, in order:

1. what the graph names: inputs that share a symbolic dimension name (``batch``, ``sequence``, ``height``)
   get the same size, so ``input_ids`` and ``attention_mask`` always agree;
2. a task's settings (an image task's size and layout, a text task's tokenizer length: ``task_sizes``);
3. candidate sizes tried in turn (``CANDIDATE_SIZES``) until one runs: the probe records the one that ran
   in the signature (``Signature.sample_sizes``) and everything after it uses that one.

Values fit the likely use of their type rather than zeros everywhere: floats are small seeded noise,
integer masks are ones, other integers (token ids, indices) are zeros, which every vocabulary holds, and a
short fixed-length integer vector, the usual shape input of ``Expand``, is ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from flashml.datatypes import BY_V2
from flashml.signature import Signature, TensorSpec

# Sizes a dynamic dimension is tried at, in turn: one (the cheapest), then sizes that convolutional and
# audio models accept (multiples of 32 up to a common image side, and a second of 16 kHz audio).
CANDIDATE_SIZES = (1, 32, 64, 224, 16000)
MASK = re.compile(r"mask", re.I)
SHAPE_VECTOR_MAX = 8  # a fixed-length integer vector at most this long is taken for a shape input
MAX_SAMPLE_ELEMENTS = 1 << 24  # a candidate whose inputs would hold more (64 MB of floats) is not tried


def dim_key(spec: TensorSpec, axis: int) -> str:
    """How a dynamic dimension is known: its symbolic name, else its input and axis."""
    names = spec.dim_names or []
    name = names[axis] if axis < len(names) else None
    return name if name else f"{spec.name}:{axis}"


def batch_keys(signature: Signature) -> set[str]:
    """The keys of the batch axis (axis 0 of every input, where every input's first dimension is dynamic)."""
    if not signature.inputs or not all(t.shape and t.shape[0] == -1 for t in signature.inputs):
        return set()
    return {dim_key(t, 0) for t in signature.inputs}


def task_sizes(signature: Signature, hints: dict | None) -> dict[str, int]:
    """Sizes a task's settings give, by dimension key: an image task's ``size`` ([height, width], on the axes its
    ``layout`` puts them), a text task's tokenizer ``max_length`` (axis 1 of its integer inputs)."""
    out: dict[str, int] = {}
    image = (hints or {}).get("image")
    if image:
        named = [t for t in signature.inputs if t.name == image.get("input")]
        four_d = named or [t for t in signature.inputs if len(t.shape) == 4]
        if len(four_d) == 1:
            spec = four_d[0]
            axes = (2, 3) if image.get("layout", "NCHW") == "NCHW" else (1, 2)
            for axis, size in zip(axes, image["size"], strict=True):
                if spec.shape[axis] == -1:
                    out[dim_key(spec, axis)] = int(size)
    sequence = (hints or {}).get("sequence")
    if sequence:
        for spec in signature.inputs:
            if len(spec.shape) >= 2 and spec.shape[1] == -1 and BY_V2[spec.datatype].numpy.kind in "iu":
                out[dim_key(spec, 1)] = int(sequence)
    return out


def candidate_sizes(signature: Signature, hints: dict[str, int] | None = None) -> Iterator[dict[str, int]]:
    """Sizes for the dynamic dimensions that are not the batch axis, to try in turn (first: most likely)."""
    keys = sorted({dim_key(t, i) for t in signature.inputs for i, d in enumerate(t.shape) if d == -1}
                  - batch_keys(signature))
    hints = {k: v for k, v in task_sizes(signature, hints).items() if k in keys}
    seen: set[tuple] = set()
    for size in CANDIDATE_SIZES:
        sizes = {k: hints.get(k, size) for k in keys}
        marker = tuple(sorted(sizes.items()))
        if marker not in seen and _elements(signature, sizes) <= MAX_SAMPLE_ELEMENTS:
            seen.add(marker)
            yield sizes


def _elements(signature: Signature, sizes: dict[str, int]) -> int:
    batch = batch_keys(signature)
    total = 0
    for spec in signature.inputs:
        n = 1
        for axis, d in enumerate(spec.shape):
            key = dim_key(spec, axis) if d < 0 else ""
            n *= d if d >= 0 else (1 if key in batch else sizes.get(key, 1))
        total += n
    return total


def shape_sizes(signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, int]:
    """The sizes of the dynamic dimensions (not the batch axis) that these real inputs have, by dimension key."""
    batch = batch_keys(signature)
    out: dict[str, int] = {}
    for spec in signature.inputs:
        arr = inputs.get(spec.name)
        if arr is None or arr.ndim != len(spec.shape):
            continue
        for axis, d in enumerate(spec.shape):
            if d == -1 and dim_key(spec, axis) not in batch:
                out[dim_key(spec, axis)] = int(arr.shape[axis])
    return out


def sample_inputs(signature: Signature, rows: int = 1, sizes: dict[str, int] | None = None,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """One input array per input: ``rows`` on the batch axis, other dynamic dimensions from ``sizes`` (by
    default the signature's recorded ``sample_sizes``, else 1)."""
    sizes = signature.sample_sizes if sizes is None else sizes
    sizes = sizes or {}
    batch = batch_keys(signature)
    rng = np.random.default_rng(seed)
    out = {}
    for spec in signature.inputs:
        shape = []
        for axis, d in enumerate(spec.shape):
            if d >= 0:
                shape.append(d)
                continue
            key = dim_key(spec, axis)
            shape.append(rows if key in batch else int(sizes.get(key, 1)))
        out[spec.name] = _values(spec, shape, rng)
    return out


def _values(spec: TensorSpec, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    dt = BY_V2[spec.datatype]
    if dt.v2 == "BYTES":
        return np.full(shape, "", dtype=object)
    if dt.v2 == "BOOL":
        return np.ones(shape, dtype=bool)
    if dt.numpy.kind == "f" or dt.v2 == "BF16":
        return (rng.standard_normal(shape, dtype=np.float32) * 0.5).astype(dt.numpy)
    if MASK.search(spec.name) or (len(shape) == 1 and -1 not in spec.shape and shape[0] <= SHAPE_VECTOR_MAX):
        return np.ones(shape, dtype=dt.numpy)  # an attention mask; a shape input (ones broadcast to anything)
    return np.zeros(shape, dtype=dt.numpy)  # token ids, indices: zero is in every range


def rows_follow_the_batch(signature: Signature, row: dict[str, np.ndarray],
                          run: Callable[[dict[str, np.ndarray]], Sequence[Sequence[int]]]) -> bool:
    """Whether every output has a row per input row, checked by running one row of inputs and then three copies
    of it (``run`` answers the outputs' shapes): the batcher can then merge requests and cut the answers apart.
    NMS results, a pooled summary or a fixed table have no such axis. False where there is no batch axis, or
    where either run fails."""
    if not batch_keys(signature):
        return False
    one = {k: v[:1] for k, v in row.items()}
    try:
        shapes_one, shapes_three = run(one), run({k: np.concatenate([v] * 3) for k, v in one.items()})
    except Exception:  # noqa: BLE001 - one row, or three, does not run: one request at a time
        return False
    return all(tuple(a[:1]) == (1,) and tuple(b[:1]) == (3,) for a, b in zip(shapes_one, shapes_three, strict=True))
