"""Bad input is refused with an error that names what is wrong; nothing stored is lost."""

from __future__ import annotations

from datetime import date

import pytest

from rjbatch import Job, UnknownFieldError, ValidationError, field


class TypedJob(Job):
    user_count = field(int, 0)
    report_date = field(date)


def test_a_value_of_the_wrong_type_names_the_field():
    with pytest.raises(ValidationError, match="user_count") as caught:
        TypedJob(user_count="twelve")
    assert "user_count" in caught.value.errors
    job = TypedJob()
    with pytest.raises(ValidationError, match="report_date"):
        job.report_date = "next tuesday"
    assert job.report_date is None


def test_an_unknown_field_in_create_is_an_error_not_dropped():
    with pytest.raises(UnknownFieldError, match="usr_count"):
        TypedJob.create(usr_count=1)
    assert TypedJob.count() == 0
    with pytest.raises(TypeError):  # also a TypeError, as Python users expect
        TypedJob(nonsense=True)


@pytest.mark.parametrize("priority", [0, 101, -5])
def test_priority_outside_1_to_100_is_refused(priority):
    with pytest.raises(ValidationError, match="priority must be between 1 and 100"):
        TypedJob.create(priority=priority)
    assert TypedJob.count() == 0


@pytest.mark.parametrize("priority", [1, 100])
def test_priority_at_the_bounds_is_accepted(priority):
    assert TypedJob.create(priority=priority).priority == priority


def test_an_unknown_log_level_is_refused():
    with pytest.raises(ValidationError, match="log_level"):
        TypedJob.create(log_level="loud")


def test_a_failed_update_leaves_the_stored_job_unchanged():
    job = TypedJob.create(user_count=3)
    with pytest.raises(ValidationError):
        job.update(priority=0)
    assert TypedJob.find(job.id).priority == 50


@pytest.mark.parametrize("name", ["count", "first", "status", "errors", "input", "output", "find"])
def test_a_field_named_after_the_job_api_is_refused_when_the_class_is_defined(name):
    with pytest.raises(TypeError, match=f"cannot be named '{name}'"):
        type("Shadowing", (Job,), {name: field(int), "__module__": __name__})


def test_a_method_shadowing_a_field_is_refused():
    with pytest.raises(TypeError, match="shadows the field 'priority'"):
        class Shadow(Job):
            def priority(self):
                return 1


def test_an_unsupported_field_type_is_refused():
    with pytest.raises(TypeError, match="unsupported field type"):
        field(complex)
