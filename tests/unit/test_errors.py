"""The domain errors: each kind of missing thing has one class, one code and one sentence."""

from __future__ import annotations

import pytest

from flashml.errors import (
    AliasNotFoundError,
    DatasetNotFoundError,
    JobNotFoundError,
    KeyNotFoundError,
    ModelNotFoundError,
    NotFoundError,
    ScheduleNotFoundError,
    UserNotFoundError,
    VersionNotFoundError,
)


@pytest.mark.parametrize(("error", "code", "sentence"), [
    (ModelNotFoundError("resnet"), "model_not_found", "There is no model named 'resnet'."),
    (VersionNotFoundError("resnet", 7), "version_not_found", "Model 'resnet' has no version 7."),
    (AliasNotFoundError("resnet", "staging"), "alias_not_found", "Model 'resnet' has no alias 'staging'."),
    (KeyNotFoundError(12), "key_not_found", "There is no API key with id 12."),
    (UserNotFoundError("ada"), "user_not_found", "There is no user named 'ada'."),
    (DatasetNotFoundError("ds-1"), "dataset_not_found", "There is no dataset 'ds-1'."),
    (JobNotFoundError(3), "job_not_found", "There is no job 3."),
    (ScheduleNotFoundError(4), "schedule_not_found", "There is no schedule 4."),
])
def test_each_missing_thing_answers_404_with_its_code_and_sentence(error, code, sentence):
    assert isinstance(error, NotFoundError)
    assert error.status == 404
    assert error.to_body() == {"error": sentence, "code": code}
