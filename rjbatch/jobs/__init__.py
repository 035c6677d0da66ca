"""Jobs that come with rjbatch: housekeeping, directory monitoring, code on demand."""

from rjbatch.jobs.dirmon import DirmonEntry, DirmonJob, UploadFileJob
from rjbatch.jobs.housekeeping import HousekeepingJob
from rjbatch.jobs.on_demand import OnDemandBatchJob, OnDemandJob

__all__ = ["DirmonEntry", "DirmonJob", "HousekeepingJob", "OnDemandBatchJob", "OnDemandJob", "UploadFileJob"]
