"""Jobs whose work is Python code given as text (from Mission Control, or a console).

Their code fields are listed in ``admin_only_fields``: Mission Control lets only an
``admin`` set them, in the edit form, the JSON API and dirmon entry properties.

The code is compiled when the job is validated, so a syntax error is a validation
error, not a failure in a worker. It runs with ``job``, ``data`` (a dict kept on the
job for results) and ``logger`` in scope; a batch job's ``code`` also gets ``row``
and returns the row's result.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any, ClassVar

from rjbatch.batch import BatchJob, OutputCategory
from rjbatch.job import Job
from rjbatch.job.callbacks import after_batch, before_batch
from rjbatch.job.fields import field
from rjbatch.plugins import Cron, Retry


def compile_code(code: str, arguments: tuple[str, ...], label: str) -> Callable[..., Any]:
    source = f"def __on_demand__({', '.join(arguments)}):\n" + textwrap.indent(code.strip() or "pass", "    ")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<{label}>", "exec"), namespace)  # noqa: S102 - running given code is the job
    return namespace["__on_demand__"]


def _check(job: Job, name: str, arguments: tuple[str, ...]) -> None:
    code = getattr(job, name)
    if not code:
        return
    try:
        compile_code(code, arguments, name)
    except SyntaxError as exc:
        job.errors.add(name, f"Failed to parse :{name}, line {exc.lineno}: {exc.msg}")


class OnDemandJob(Cron, Retry, Job):
    """``OnDemandJob.create(code="data['total'] = 42")``."""

    description = "On Demand Job"
    destroy_on_complete = False
    retry_limit = 0
    code = field(str, required=True, copy_on_restart=True, user_editable=True)
    data = field(dict, {}, copy_on_restart=True)
    # code a worker runs: Mission Control lets only an admin set it (docs/web.md)
    admin_only_fields: ClassVar[frozenset[str]] = frozenset({"code"})

    def validate(self) -> None:
        _check(self, "code", ("job", "data", "logger"))

    def perform(self) -> Any:
        return compile_code(self.code, ("job", "data", "logger"), "code")(self, self.data, self.logger)


class OnDemandBatchJob(Cron, BatchJob):
    """``code`` is the body of ``perform(row)``; ``before_code``/``after_code`` run around the batch."""

    priority = 90
    description = "Batch Job"
    destroy_on_complete = False
    code = field(str, required=True, copy_on_restart=True, user_editable=True)
    before_code = field(str, copy_on_restart=True, user_editable=True)
    after_code = field(str, copy_on_restart=True, user_editable=True)
    data = field(dict, {}, copy_on_restart=True)
    # code a worker runs: Mission Control lets only an admin set it (docs/web.md)
    admin_only_fields: ClassVar[frozenset[str]] = frozenset({"code", "before_code", "after_code"})

    def validate(self) -> None:
        _check(self, "code", ("job", "row", "data", "logger"))
        _check(self, "before_code", ("job", "data", "logger"))
        _check(self, "after_code", ("job", "data", "logger"))

    def add_output_category(self, **settings: Any) -> None:
        """Output is collected only once a category is added (``name`` defaults to main)."""
        category = OutputCategory(**settings)
        category.validate()
        self.output_categories = [c for c in self.output_categories if c["name"] != category.name] + [
            {**category.__dict__}]

    def perform(self, row: Any) -> Any:
        function = self.__dict__.get("_compiled_code")
        if function is None:
            function = self.__dict__["_compiled_code"] = compile_code(
                self.code, ("job", "row", "data", "logger"), "code")
        return function(self, row, self.data, self.logger)

    @before_batch
    def _run_before_code(self) -> None:
        if self.before_code:
            compile_code(self.before_code, ("job", "data", "logger"), "before_code")(self, self.data, self.logger)

    @after_batch
    def _run_after_code(self) -> None:
        if self.after_code:
            compile_code(self.after_code, ("job", "data", "logger"), "after_code")(self, self.data, self.logger)
            if self.is_persisted:
                self.update_attribute("data", self.data)
