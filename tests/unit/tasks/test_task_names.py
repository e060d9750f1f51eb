"""A task named in a sentence: words instead of the manifest's identifier, with the right article."""

from __future__ import annotations

from flashml.console.filters import FILTERS
from flashml.tasks.config import IMAGE_TASKS, TEXT_TASKS, task_model


def test_each_task_reads_with_its_article():
    assert task_model("image-classification") == "an image classification model"
    assert task_model("object-detection") == "an object detection model"
    assert task_model("text-classification") == "a text classification model"
    assert task_model("embeddings") == "a text embedding model"
    assert task_model("raw") == "a tensor model"
    assert task_model("audio-tagging") == "an audio tagging model"  # a task added later still reads as words
    for task in (*IMAGE_TASKS, *TEXT_TASKS):
        assert "-" not in task_model(task)
    assert FILTERS["task_model"] is task_model  # what the playground writes with {{ task.task | task_model }}
