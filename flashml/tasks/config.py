"""A task model's processing settings, read from its manifest's tables and checked once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flashml.errors import ValidationFailedError

IMAGE_TASKS = ("image-classification", "object-detection")
TEXT_TASKS = ("text-classification", "embeddings")
RESIZES = ("stretch", "letterbox", "center-crop")
FORMATS = ("yolov8", "yolov5", "end-to-end", "boxes-scores-classes")
ACTIVATIONS = ("softmax", "sigmoid", "none")

# What each task is called in a sentence (the manifest's names are identifiers: image-classification).
TASK_NAMES = {"image-classification": "image classification", "object-detection": "object detection",
              "text-classification": "text classification", "embeddings": "text embedding", "raw": "tensor"}


def task_model(task: str) -> str:
    """The task in words with its article, for a sentence: ``an image classification model``."""
    name = TASK_NAMES.get(task, task.replace("-", " ").replace("_", " "))
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name} model"


PREPROCESS_KEYS = ("input", "size", "resize", "color", "layout", "scale", "mean", "std", "pad_value")
POSTPROCESS_KEYS = ("output", "format", "score_threshold", "iou_threshold", "max_detections", "top_k", "activation")
TOKENIZER_KEYS = ("file", "max_length", "truncate", "pad_id")
EMBEDDING_KEYS = ("output", "pooling", "normalize")


def bad(key: str, why: str) -> ValidationFailedError:
    return ValidationFailedError(f"flashml.toml: {key!r} {why}.", code="bad_manifest", details={"key": key})


@dataclass(frozen=True)
class ImageConfig:
    size: tuple[int, int] = (224, 224)  # height, width
    resize: str = "stretch"
    color: str = "RGB"
    layout: str = "NCHW"
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: int = 114  # the grey that letterbox borders are filled with (as YOLO does)
    input: str | None = None  # the model input that takes the image; None: its only 4-D input


@dataclass(frozen=True)
class PostConfig:
    format: str = "yolov8"
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 100
    top_k: int = 5
    activation: str = "softmax"  # classification: how logits become scores
    output: str | None = None  # the output to read; None: the model's first


@dataclass(frozen=True)
class TokenizerConfig:
    file: str = "tokenizer.json"
    max_length: int = 256
    truncate: bool = True  # False: longer texts are refused
    pad_id: int | None = None  # None: the tokenizer's [PAD] / <pad> token, else 0


@dataclass(frozen=True)
class EmbeddingConfig:
    pooling: str = "mean"
    normalize: bool = True
    output: str | None = None


@dataclass(frozen=True)
class TaskConfig:
    task: str = "raw"
    labels: list[str] | None = None
    image: ImageConfig | None = None
    post: PostConfig = field(default_factory=PostConfig)
    tokenizer: TokenizerConfig | None = None
    embedding: EmbeddingConfig | None = None

    @property
    def kind(self) -> str:
        """What a request carries: images, texts, or tensors (raw)."""
        return "images" if self.task in IMAGE_TASKS else "texts" if self.task in TEXT_TASKS else "tensors"


def _check_keys(table: str, values: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in values:
        if key not in known:
            raise bad(f"{table}.{key}", f"is not a known key of [{table}] (known: {', '.join(known)})")


def _number(key: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(key, f"must be a number, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise bad(key, f"must be between {low} and {high}, not {value!r}")
    return float(value)


def _whole(key: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad(key, f"must be a whole number of at least {low}, not {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise bad(key, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def _triple(key: str, value: Any) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise bad(key, "must be a list of 3 numbers (one per colour channel)")
    return _number(key, value[0]), _number(key, value[1]), _number(key, value[2])


def _name(key: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise bad(key, "must be a tensor name (a non-empty string)")
    return value


def parse_image(values: dict[str, Any]) -> ImageConfig:
    _check_keys("preprocess", values, PREPROCESS_KEYS)
    d = ImageConfig()
    size = values.get("size", list(d.size))
    if not isinstance(size, list) or len(size) != 2:
        raise bad("preprocess.size", "must be [height, width]")
    std = _triple("preprocess.std", values.get("std", list(d.std)))
    if any(s == 0 for s in std):
        raise bad("preprocess.std", "must not contain 0 (pixels are divided by it)")
    return ImageConfig(
        size=(_whole("preprocess.size", size[0]), _whole("preprocess.size", size[1])),
        resize=_choice("preprocess.resize", values.get("resize", d.resize), RESIZES),
        color=_choice("preprocess.color", values.get("color", d.color), ("RGB", "BGR")),
        layout=_choice("preprocess.layout", values.get("layout", d.layout), ("NCHW", "NHWC")),
        scale=_number("preprocess.scale", values.get("scale", d.scale)),
        mean=_triple("preprocess.mean", values.get("mean", list(d.mean))), std=std,
        pad_value=int(_number("preprocess.pad_value", values.get("pad_value", d.pad_value), low=0, high=255)),
        input=_name("preprocess.input", values.get("input")))


def parse_post(values: dict[str, Any]) -> PostConfig:
    _check_keys("postprocess", values, POSTPROCESS_KEYS)
    d = PostConfig()
    return PostConfig(
        format=_choice("postprocess.format", values.get("format", d.format), FORMATS),
        score_threshold=_number("postprocess.score_threshold", values.get("score_threshold", d.score_threshold),
                                low=0, high=1),
        iou_threshold=_number("postprocess.iou_threshold", values.get("iou_threshold", d.iou_threshold), low=0, high=1),
        max_detections=_whole("postprocess.max_detections", values.get("max_detections", d.max_detections)),
        top_k=_whole("postprocess.top_k", values.get("top_k", d.top_k)),
        activation=_choice("postprocess.activation", values.get("activation", d.activation), ACTIVATIONS),
        output=_name("postprocess.output", values.get("output")))


def parse_tokenizer(values: dict[str, Any]) -> TokenizerConfig:
    _check_keys("tokenizer", values, TOKENIZER_KEYS)
    d = TokenizerConfig()
    truncate = values.get("truncate", d.truncate)
    if not isinstance(truncate, bool):
        raise bad("tokenizer.truncate", "must be true or false")
    pad_id = values.get("pad_id")
    file = values.get("file", d.file)
    if not isinstance(file, str) or not file:
        raise bad("tokenizer.file", "must name the tokenizer.json file in the bundle")
    return TokenizerConfig(file=file, max_length=_whole("tokenizer.max_length", values.get("max_length", d.max_length)),
                           truncate=truncate, pad_id=None if pad_id is None else _whole("tokenizer.pad_id", pad_id, 0))


def parse_embedding(values: dict[str, Any]) -> EmbeddingConfig:
    _check_keys("embedding", values, EMBEDDING_KEYS)
    normalize = values.get("normalize", True)
    if not isinstance(normalize, bool):
        raise bad("embedding.normalize", "must be true or false")
    return EmbeddingConfig(pooling=_choice("embedding.pooling", values.get("pooling", "mean"), ("mean", "cls")),
                           normalize=normalize, output=_name("embedding.output", values.get("output")))


def parse_task(manifest: dict[str, Any]) -> TaskConfig:
    """The task settings of a manifest (as stored: task, labels and the raw parsed tables)."""
    task = manifest.get("task", "raw")
    raw = manifest.get("raw") or {}
    tables = {name: dict(raw.get(name) or {}) for name in ("preprocess", "postprocess", "tokenizer", "embedding")}
    for name, values in tables.items():
        if values and task not in _USES[name]:
            raise bad(name, f"does not apply to task {task!r} (it is for {', '.join(_USES[name])})")
    labels = manifest.get("labels")
    return TaskConfig(
        task=task, labels=list(labels) if labels is not None else None,
        image=parse_image(tables["preprocess"]) if task in IMAGE_TASKS else None,
        post=parse_post(tables["postprocess"]),
        tokenizer=parse_tokenizer(tables["tokenizer"]) if task in TEXT_TASKS else None,
        embedding=parse_embedding(tables["embedding"]) if task == "embeddings" else None)


_USES = {"preprocess": IMAGE_TASKS, "postprocess": (*IMAGE_TASKS, "text-classification"),
         "tokenizer": TEXT_TASKS, "embedding": ("embeddings",)}


def describe(config: TaskConfig) -> dict[str, Any]:
    """Plain values for the API and the console's model page."""
    from dataclasses import asdict

    out: dict[str, Any] = {"task": config.task, "labels": config.labels}
    if config.image:
        out["preprocess"] = asdict(config.image)
    if config.task in ("object-detection",):
        post = asdict(config.post)
        out["postprocess"] = {k: post[k] for k in ("format", "score_threshold", "iou_threshold", "max_detections",
                                                   "output")}
    elif config.task in ("image-classification", "text-classification"):
        out["postprocess"] = {"top_k": config.post.top_k, "activation": config.post.activation,
                              "output": config.post.output}
    if config.tokenizer:
        out["tokenizer"] = asdict(config.tokenizer)
    if config.embedding:
        out["embedding"] = asdict(config.embedding)
    return out
