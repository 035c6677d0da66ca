"""Tabular batch jobs: rows of CSV, PSV, JSON, fixed width, Excel or Parquet as dicts.

``TabularInput`` makes the main input category tabular: an upload takes the format from
the file's name (or ``tabular_input_format``) and its header from the first row, and
stores both with the category; each worker parses its own slice into dicts, so parsing
runs on every core. ``TabularOutput`` makes every output category tabular: the dicts
``perform`` returns are written under ``tabular_output_header`` (default: the input's
columns, then every new key in first-seen order) in the format the download's file name
asks for. Both only set the category settings a job starts with: the stored settings,
not the class, decide how any process reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from rjbatch.errors import ValidationError
from rjbatch.job.callbacks import before_save
from rjbatch.job.fields import field
from rjbatch.plugins.base import BatchJobMixin

if TYPE_CHECKING:
    from rjbatch.batch.categories import InputCategory, OutputCategory

_INPUT_OPTIONS = ("allowed_columns", "required_columns", "skip_unknown", "header_cleanser",
                  "duplicate_columns", "format_options")


class TabularInput(BatchJobMixin):
    """Mixin for batch jobs: ``class ImportJob(TabularInput, BatchJob)``."""

    tabular_input_format: ClassVar[str | None] = None  # None: from the file name, else csv
    tabular_input_columns: ClassVar[list[str] | None] = None  # preset: the file has no header
    tabular_input_options: ClassVar[dict[str, Any]] = {}  # allowed_columns, required_columns, ...

    def configure_categories(self, inputs: list[InputCategory], outputs: list[OutputCategory]) -> None:
        super().configure_categories(inputs, outputs)
        main = next(c for c in inputs if c.name == "main")
        unknown = set(self.tabular_input_options) - set(_INPUT_OPTIONS)
        if unknown:
            raise ValidationError({"tabular_input_options": [
                f"unknown options {sorted(unknown)} (known: {', '.join(_INPUT_OPTIONS)})"]})
        if main.format is None:
            main.format = self.tabular_input_format or "auto"
        if main.columns is None and self.tabular_input_columns:
            main.columns = list(self.tabular_input_columns)
        for key, value in self.tabular_input_options.items():
            setattr(main, key, dict(value) if isinstance(value, dict) else value)
        layout = main.format_options.get("layout") if main.format_options else None
        if main.format == "auto" and layout:
            main.format = "fixed"  # a layout names the format


class TabularOutput(BatchJobMixin):
    """Mixin for batch jobs: the dicts ``perform`` returns become rows of a file.

    ``tabular_output_format`` is the format of a download whose file name names none.
    When the columns are known before processing (``tabular_output_header``), each
    worker stores the rows of a slice as CSV lines where nothing is lost by it, so a CSV
    download is a plain copy; any other row keeps the values ``perform`` returned.
    """

    tabular_output_header = field(list, user_editable=True, copy_on_restart=True)
    tabular_output_format: ClassVar[str] = "csv"
    output_categories: Any

    def configure_categories(self, inputs: list[InputCategory], outputs: list[OutputCategory]) -> None:
        super().configure_categories(inputs, outputs)
        if not outputs:  # rows that are thrown away are no output: collect main
            from rjbatch.batch.categories import OutputCategory

            outputs.append(OutputCategory())
        for category in outputs:
            if category.format is None and category.serializer != "bzip2":
                category.format = self.tabular_output_format
            if category.columns is None and self.tabular_output_header:
                category.columns = list(self.tabular_output_header)

    @before_save
    def _sync_output_header(self) -> None:
        """A header edited on the job (Mission Control, ``--set``) is the categories' header."""
        if "tabular_output_header" not in self.changed_fields():
            return
        header = list(self.tabular_output_header) if self.tabular_output_header else None
        categories = self.output_categories or []
        if header and any(c.get("format") and c.get("columns") != header for c in categories):
            self.output_categories = [{**c, "columns": header} if c.get("format") else c for c in categories]

    def output_rows(self, category: str = "main") -> Iterator[Any]:
        """The output as dicts, in upload order (the same as ``output``)."""
        return self.output(category)
