"""Upload validation of a task model: does the manifest fit the model's signature? Every mismatch is listed."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import onnx

from flashml.errors import BadRequestError, ValidationFailedError
from flashml.registry.manifest import MANIFEST_NAME, Manifest, _bundle_path
from flashml.runtime.batching.hints import BatchingHints
from flashml.signature import Signature
from flashml.tasks.config import TaskConfig, parse_task
from flashml.tasks.io import image_input, output_of

TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
INT_TYPES = ("INT64", "INT32")
MAX_METADATA_LABELS_CHARS = 4 << 20  # parsed whole (ast for YOLO's names); a million labels fit


def _fits(dim: int, want: int) -> bool:
    return dim in (-1, want)


def _image_problems(config: TaskConfig, sig: Signature) -> list[str]:
    image = config.image
    assert image is not None
    spec = image_input(config, sig)
    if spec is None:
        named = f"input {image.input!r}" if image.input else "exactly one 4-D input"
        return [f"An image task needs {named} (batch, channels, height, width); the model's inputs are "
                + ", ".join(f"{t.name} {t.shape}" for t in sig.inputs) + "."]
    problems = []
    if len(sig.inputs) != 1:
        problems.append(f"An image task feeds only the image; the model also wants "
                        f"{', '.join(t.name for t in sig.inputs if t.name != spec.name)}.")
    if len(spec.shape) != 4:
        return [*problems, f"Input {spec.name} has shape {spec.shape}; an image input is 4-D."]
    if spec.datatype not in ("FP32", "FP16"):
        problems.append(f"Input {spec.name} is {spec.datatype}; image tasks feed FP32 or FP16 pixels.")
    h, w = image.size
    c_axis, hw = (1, (2, 3)) if image.layout == "NCHW" else (3, (1, 2))
    if not _fits(spec.shape[c_axis], 3):
        other = "NHWC" if image.layout == "NCHW" else "NCHW"
        problems.append(f"Input {spec.name} has shape {spec.shape}: with layout {image.layout} axis {c_axis} holds "
                        f"the 3 colour channels, but it is {spec.shape[c_axis]} (is the layout {other}?).")
    if not (_fits(spec.shape[hw[0]], h) and _fits(spec.shape[hw[1]], w)):
        problems.append(f"Input {spec.name} has shape {spec.shape}, but [preprocess] size is [{h}, {w}] "
                        f"(height, width) in layout {image.layout}.")
    return problems


def _classes(config: TaskConfig, n: int, what: str) -> list[str]:
    if config.labels is not None and n != -1 and n != len(config.labels):
        return [f"{what} has {n} classes but {len(config.labels)} labels are given."]
    return []


def _logits_problems(config: TaskConfig, sig: Signature) -> list[str]:
    out = output_of(config.post.output, sig)
    if out is None:
        return [f"The model has no output {config.post.output!r}."]
    if len(out.shape) != 2:
        return [f"A classifier's output is [batch, classes]; output {out.name} has shape {out.shape}."]
    return _classes(config, out.shape[1], f"Output {out.name}")


def _detection_problems(config: TaskConfig, sig: Signature) -> list[str]:
    if config.post.format == "yolov8":
        out = output_of(config.post.output, sig)
        if out is None:
            return [f"The model has no output {config.post.output!r}."]
        if len(out.shape) != 3:
            return [f"Format yolov8 reads an output [batch, 4 + classes, anchors]; output {out.name} has shape "
                    f"{out.shape} (is the format boxes-scores-classes?)."]
        if out.shape[1] != -1 and out.shape[1] < 5:
            return [f"Format yolov8 reads [batch, 4 + classes, anchors]; axis 1 of {out.name} is {out.shape[1]}, "
                    "so it has no class scores."]
        return _classes(config, out.shape[1] - 4 if out.shape[1] != -1 else -1, f"Output {out.name}")
    if config.post.format in ("yolov5", "end-to-end"):
        out = output_of(config.post.output, sig)
        layout = ("[batch, anchors, 5 + classes] (cx, cy, w, h, objectness, then a score per class)"
                  if config.post.format == "yolov5" else "[batch, k, 6] (x1, y1, x2, y2, score, class)")
        if out is None:
            return [f"The model has no output {config.post.output!r}."]
        if len(out.shape) != 3:
            return [f"Format {config.post.format} reads an output {layout}; output {out.name} has shape {out.shape}."]
        if config.post.format == "end-to-end":
            return [] if _fits(out.shape[2], 6) else [
                f"Format end-to-end reads {layout}; axis 2 of {out.name} is {out.shape[2]}, not 6."]
        if out.shape[2] != -1 and out.shape[2] < 6:
            return [f"Format yolov5 reads {layout}; axis 2 of {out.name} is {out.shape[2]}, so it has no class "
                    "scores."]
        return _classes(config, out.shape[2] - 5 if out.shape[2] != -1 else -1, f"Output {out.name}")
    names = {o.name: o for o in sig.outputs}
    missing = [n for n in ("boxes", "scores", "classes") if n not in names]
    if missing:
        return [f"Format boxes-scores-classes reads outputs boxes [batch, n, 4], scores [batch, n] and classes "
                f"[batch, n]; the model lacks {', '.join(missing)} (its outputs: {', '.join(names)})."]
    problems = []
    if len(names["boxes"].shape) != 3 or not _fits(names["boxes"].shape[2], 4):
        problems.append(f"Output boxes has shape {names['boxes'].shape}; it must be [batch, n, 4] (x1, y1, x2, y2).")
    for n in ("scores", "classes"):
        if len(names[n].shape) != 2:
            problems.append(f"Output {n} has shape {names[n].shape}; it must be [batch, n].")
    return problems


def _text_problems(config: TaskConfig, sig: Signature, bundle_dir: Path) -> list[str]:
    assert config.tokenizer is not None
    problems = []
    path = bundle_dir / _bundle_path(bundle_dir, "tokenizer.file", config.tokenizer.file)
    if path.is_symlink() or not path.is_file():
        problems.append(f"[tokenizer] file names {config.tokenizer.file!r}, which is not a file in the bundle.")
    else:
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any reason it does not load is the upload's problem
            problems.append(f"{config.tokenizer.file} is not a Hugging Face tokenizer.json: {exc}")
    names = [t.name for t in sig.inputs]
    if "input_ids" not in names:
        problems.append(f"The tokenizer feeds input_ids (and attention_mask, token_type_ids); the model's inputs are "
                        f"{', '.join(names)}.")
    for t in sig.inputs:
        if t.name not in TOKEN_INPUTS:
            problems.append(f"Model input {t.name} is not something a tokenizer gives (it gives "
                            f"{', '.join(TOKEN_INPUTS)}).")
        elif t.datatype not in INT_TYPES or len(t.shape) != 2:
            problems.append(f"Model input {t.name} is {t.datatype} {t.shape}; token inputs are INT64 or INT32 "
                            "[batch, tokens].")
    if config.task == "text-classification":
        return problems + _logits_problems(config, sig)
    assert config.embedding is not None
    out = output_of(config.embedding.output, sig)
    if out is None:
        problems.append(f"The model has no output {config.embedding.output!r}.")
    elif len(out.shape) not in (2, 3):
        problems.append(f"Embeddings come from an output [batch, dim] or [batch, tokens, dim]; {out.name} has shape "
                        f"{out.shape}.")
    return problems


def metadata_labels(model_path: Path) -> list[str] | None:
    """Labels from the ONNX metadata: ``labels`` (JSON list or one per line) or ``names`` (a YOLO dict)."""
    model = onnx.load(str(model_path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    for key in ("labels", "names"):
        if len(props.get(key, "")) > MAX_METADATA_LABELS_CHARS:
            raise ValidationFailedError(f"The model's {key!r} metadata is longer than {MAX_METADATA_LABELS_CHARS} "
                                        "characters; give the labels in a labels_file instead.",
                                        code="task_mismatch", details={"metadata": key})
    if "labels" in props:
        text = props["labels"].strip()
        try:
            value = json.loads(text)
            if isinstance(value, list):
                return [str(x) for x in value]
        except (ValueError, RecursionError):  # deep nesting is no label list either: read it as lines
            pass
        return [x.strip() for x in text.replace(",", "\n").splitlines() if x.strip()]
    if "names" in props:
        try:
            value = ast.literal_eval(props["names"])
        except (ValueError, SyntaxError, MemoryError, RecursionError):  # deep nesting: the parser's own limits
            return None
        if isinstance(value, dict):
            try:
                return [str(value[k]) for k in sorted(value)]
            except TypeError:  # keys of mixed types: keep their order
                return [str(v) for v in value.values()]
        if isinstance(value, list):
            return [str(x) for x in value]
    return None


def _text_batching(sig: Signature, given: BatchingHints, pad_id: int) -> BatchingHints:
    """Pad token axes so texts of different lengths share batches (unless [batching] says otherwise)."""
    values = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0}
    try:
        return given.filled({"padded_inputs": {t.name: {"axis": 1, "value": values[t.name]} for t in sig.inputs},
                             "padded_outputs": {o.name: 1 for o in sig.outputs if len(o.shape) == 3}})
    except BadRequestError as exc:
        raise ValidationFailedError(f"{MANIFEST_NAME} [batching]: {exc.message}", code=exc.code,
                                    details=exc.details) from None


def check_task(manifest: Manifest, signature: Signature, bundle_dir: Path) -> Manifest:
    """Check the manifest against the signature; return it with labels and batching filled in."""
    if manifest.task == "raw":
        return manifest
    config = parse_task(manifest.to_dict())
    labels = config.labels
    if labels is None and manifest.task != "embeddings":
        labels = metadata_labels(bundle_dir / manifest.model)
        config = dataclasses.replace(config, labels=labels)
    if config.image is not None:
        problems = _image_problems(config, signature)
        problems += _logits_problems(config, signature) if config.task == "image-classification" else \
            _detection_problems(config, signature)
    else:
        problems = _text_problems(config, signature, bundle_dir)
    if problems:
        raise ValidationFailedError(f"The manifest does not fit the model ({manifest.task}): " + " ".join(problems),
                                    code="task_mismatch", details={"task": manifest.task, "problems": problems})
    batching = manifest.batching
    if config.tokenizer is not None:
        from flashml.tasks.text import pad_id_of

        batching = _text_batching(signature, batching, pad_id_of(config.tokenizer, bundle_dir))
    return dataclasses.replace(manifest, labels=labels, batching=batching)
