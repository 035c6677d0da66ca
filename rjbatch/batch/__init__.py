"""Batch jobs: uploads into slices, processing by many workers, output in upload order."""

from rjbatch.batch.categories import InputCategory, OutputCategory
from rjbatch.batch.job import BatchJob, UnknownCategory
from rjbatch.batch.result import Result, Results

__all__ = ["BatchJob", "InputCategory", "OutputCategory", "Result", "Results", "UnknownCategory"]
