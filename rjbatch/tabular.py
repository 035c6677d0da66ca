"""Tabular batch jobs: rows of CSV, PSV, JSON, fixed width, Excel or Parquet as dicts.

``TabularInput`` takes the first row of an uploaded file as its header and hands each
later row to ``perform`` as a dict (rows are parsed by the workers, a slice at a
time, so parsing runs on every core). ``TabularOutput`` turns the dicts ``perform``
returns into rows of the format the download's file name asks for, under
``tabular_output_header``, with the header line first.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rjbatch.codecs.tabular import Tabular, format_from_file_name
from rjbatch.fields import field


class TabularInput:
    """Mixin for batch jobs: ``class ImportJob(TabularInput, BatchJob)``."""

    tabular_input_format: ClassVar[str | None] = None  # None: from the file name, else csv
    tabular_input_columns: ClassVar[list[str] | None] = None  # preset: the file has no header
    tabular_input_options: ClassVar[dict[str, Any]] = {}  # allowed_columns, required_columns, ...
    _skip_none_records: ClassVar[bool] = True  # blank lines are not performed

    def _input_tabular(self, category: str, file_name: str | None) -> Tabular:
        """The parser an upload uses: it reads the header, unless columns are preset."""
        settings = self.input_category(category)  # type: ignore[attr-defined]
        name = settings.format if settings.format not in (None, "auto") else None
        fmt = name or self.tabular_input_format or (format_from_file_name(file_name) if file_name else None)
        options = dict(self.tabular_input_options)
        return Tabular(
            fmt or "csv", columns=settings.columns or self.tabular_input_columns,
            allowed_columns=settings.allowed_columns or options.pop("allowed_columns", None),
            required_columns=settings.required_columns or options.pop("required_columns", None),
            skip_unknown=options.pop("skip_unknown", settings.skip_unknown),
            header_cleanser=options.pop("header_cleanser", settings.header_cleanser),
            format_options=settings.format_options or options.pop("format_options", None),
        )

    def _worker_tabular(self) -> Tabular:
        cached = self.__dict__.get("_tabular_input")
        if cached is None:
            settings = self.input_category("main")  # type: ignore[attr-defined]
            fmt = settings.format if settings.format not in (None, "auto") else (self.tabular_input_format or "csv")
            columns = settings.columns or self.tabular_input_columns
            cached = Tabular(fmt, columns=columns, format_options=settings.format_options or None)
            self.__dict__["_tabular_input"] = cached
        return cached

    def _prepare_records(self, records: list[Any], first_record_number: int) -> list[Any]:
        if not records:
            return records
        tabular = self._worker_tabular()
        sample = records[0] if records[0] is not None else next((r for r in records if r is not None), None)
        if isinstance(sample, str):
            return tabular.parse_many(records, line_number=first_record_number + 1)
        if isinstance(sample, list | tuple):
            return [None if row is None else tabular.parse_row(row) for row in records]
        return records


class TabularOutput:
    """Mixin for batch jobs: the dicts ``perform`` returns become rows of a file.

    When the columns are known before processing (``tabular_output_header``, or the
    input's header), each worker renders its slice's rows as it finishes it, in
    ``tabular_output_format`` (csv): rendering runs on every core and a download of that
    format is a plain copy. Otherwise the dicts are kept and rendered on download.
    A download to another format (by its file name) converts the rows.
    """

    tabular_output_header = field(list, user_editable=True, copy_on_restart=True)
    tabular_output_format: ClassVar[str] = "csv"

    def _output_columns(self, category: str, look_at_output: bool = True) -> list[str] | None:
        if self.tabular_output_header:
            return list(self.tabular_output_header)
        try:
            columns = self.input_category("main").columns  # type: ignore[attr-defined]
        except KeyError:
            columns = None
        if columns:
            return list(columns)
        if look_at_output:
            for record in self.output(category):  # type: ignore[attr-defined]
                if isinstance(record, dict):
                    return list(record)
        return None

    def _rendered_tabular(self) -> Tabular | None:
        """The renderer workers use at the end of each slice (None: keep the dicts)."""
        if "_tabular_rendered" not in self.__dict__:
            columns = self._output_columns("main", look_at_output=False)
            tabular = Tabular(self.tabular_output_format, columns=columns) if columns else None
            self.__dict__["_tabular_rendered"] = tabular if tabular is None or not tabular.is_binary else None
        return self.__dict__["_tabular_rendered"]

    def _finish_outputs(self, outputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        rows = outputs.get("main")
        tabular = self._rendered_tabular() if rows else None
        if tabular is not None:
            if all(type(r) is dict for r in rows):
                outputs["main"] = tabular.render_many(rows)
            else:
                outputs["main"] = [r if isinstance(r, str) or r is None else tabular.render(r) for r in rows]
        return outputs

    def _output_tabular(self, category: str, file_name: str | None) -> Tabular:
        key = (category, file_name)
        cache = self.__dict__.setdefault("_tabular_output", {})
        if key not in cache:
            fmt = (format_from_file_name(file_name) if file_name else None) or self.tabular_output_format
            cache[key] = Tabular(fmt, columns=self._output_columns(category))
        return cache[key]

    def _output_header_line(self, category: str, file_name: str | None) -> str | None:
        if category != "main":
            return None
        return self._output_tabular(category, file_name).render_header()

    def _render_for_download(self, category: str, block: list[Any], file_name: str | None) -> list[Any]:
        if category != "main" or not block:
            return block
        target = self._output_tabular(category, file_name)
        rendered = self._rendered_tabular()
        if rendered is not None and rendered.format == target.format:
            return block  # already rows of this format: a plain copy
        return [target.render(r) for r in self._rows(block)]

    def _rows(self, block: list[Any]) -> list[Any]:
        """Stored records as dicts (parsing rows rendered by the workers)."""
        rendered = self._rendered_tabular()
        if rendered is None:
            return block
        return [rendered.parse(r) if isinstance(r, str) else r for r in block]

    def output_rows(self, category: str = "main") -> Any:
        """The output as dicts, in upload order, whatever form the workers stored."""
        from rjbatch.batch.download import record_blocks

        for block in record_blocks(self, category):  # type: ignore[arg-type]
            yield from (self._rows(block) if category == "main" else block)
