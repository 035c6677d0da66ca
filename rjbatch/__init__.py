"""rjbatch: durable jobs and batch processing of large files, in the spirit of Rocket Job."""

import logging
from typing import TYPE_CHECKING

from rjbatch.config import configure, get_store
from rjbatch.errors import (
    ConfigurationError,
    InvalidTransition,
    JobNotFound,
    RjbatchError,
    StoreError,
    UnknownFieldError,
    ValidationError,
)
from rjbatch.job import Job
from rjbatch.job.callbacks import (
    after_abort,
    after_batch,
    after_complete,
    after_create,
    after_destroy,
    after_fail,
    after_initialize,
    after_pause,
    after_perform,
    after_requeue,
    after_resume,
    after_retry,
    after_save,
    after_slice,
    after_start,
    after_validation,
    around_perform,
    around_slice,
    before_abort,
    before_batch,
    before_complete,
    before_create,
    before_destroy,
    before_fail,
    before_pause,
    before_perform,
    before_requeue,
    before_resume,
    before_retry,
    before_save,
    before_slice,
    before_start,
    before_validation,
)
from rjbatch.job.exception import JobException
from rjbatch.job.fields import field
from rjbatch.job.throttling import throttle

__version__ = "0.1.0"

# a library logs; the application decides where to (no "No handlers" tracebacks on stderr)
logging.getLogger("rjbatch").addHandler(logging.NullHandler())


if TYPE_CHECKING:  # loaded lazily at run time (below); a type checker sees the real classes
    from rjbatch.batch import BatchJob, Result, Results

_BATCH_NAMES = ("BatchJob", "Result", "Results")


def __getattr__(name: str) -> object:
    # the file pipeline (and its cryptography import) loads only when asked for
    if name == "Cipher":
        from rjbatch.codecs import Cipher

        return Cipher
    if name in _BATCH_NAMES:  # API.md: from rjbatch import BatchJob, Result
        from rjbatch import batch

        return getattr(batch, name)
    raise AttributeError(f"module 'rjbatch' has no attribute {name!r}")


__all__ = [
    "BatchJob", "Cipher", "Result", "Results", "ConfigurationError", "InvalidTransition", "Job", "JobException", "JobNotFound",
    "RjbatchError", "StoreError", "UnknownFieldError", "ValidationError", "configure",
    "field", "get_store", "throttle",
    "after_abort", "after_batch", "after_complete", "after_create", "after_destroy",
    "after_fail", "after_initialize", "after_pause", "after_perform", "after_requeue",
    "after_resume", "after_retry", "after_save", "after_slice", "after_start",
    "after_validation", "around_perform", "around_slice", "before_abort", "before_batch",
    "before_complete", "before_create", "before_destroy", "before_fail", "before_pause",
    "before_perform", "before_requeue", "before_resume", "before_retry", "before_save",
    "before_slice", "before_start", "before_validation",
]
