"""Plugins are mixins: ``class NightlyJob(Cron, Retry, Job)``.

Each registers callbacks like user code does; the worker loop knows none of them.
"""

from rjbatch.plugins.processing_window import ProcessingWindow
from rjbatch.plugins.recurring import Cron
from rjbatch.plugins.restart import Restart
from rjbatch.plugins.retry import Retry
from rjbatch.plugins.singleton import Singleton
from rjbatch.plugins.throttles import LowerPriority, ThrottleDependentJobs, ThrottleWindows
from rjbatch.plugins.transaction import Transaction

__all__ = [
    "Cron", "LowerPriority", "ProcessingWindow", "Restart", "Retry", "Singleton",
    "ThrottleDependentJobs", "ThrottleWindows", "Transaction",
]
