"""Input and output categories of a batch job.

A batch job reads its records from input categories (``main`` is processed) and
writes results to output categories. Definitions are made on the class, copied onto
each job (so a worker process rebuilds them from the store), and may be changed per job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rjbatch.batch.slices import SERIALIZERS
from rjbatch.errors import ValidationError

MODES = ("line", "array", "hash")


@dataclass
class InputCategory:
    """Where records come from: how they were uploaded and how each is parsed."""

    name: str = "main"
    serializer: str = "compress"
    slice_size: int = 100
    format: str | None = None            # None (plain records), "auto", csv, psv, json, fixed, ...
    format_options: dict[str, Any] = field(default_factory=dict)
    columns: list[str] | None = None     # the header, once known (or preset: no header row)
    allowed_columns: list[str] | None = None
    required_columns: list[str] | None = None
    skip_unknown: bool = True
    header_cleanser: str = "default"
    mode: str = "line"
    file_name: str | None = None

    def validate(self) -> None:
        if self.serializer not in ("compress", "none", "encrypt"):
            raise ValidationError({"input_categories": [
                f"{self.name}: serializer must be compress, none or encrypt"]})
        if self.slice_size < 1:
            raise ValidationError({"slice_size": ["must be at least 1"]})
        if self.mode not in MODES:
            raise ValidationError({"input_categories": [f"{self.name}: mode must be line, array or hash"]})


@dataclass
class OutputCategory:
    """Where results go: ``nils`` keeps None results (dropped by default)."""

    name: str = "main"
    serializer: str = "compress"
    nils: bool = False
    format: str | None = None
    format_options: dict[str, Any] = field(default_factory=dict)
    columns: list[str] | None = None
    file_name: str | None = None

    def validate(self) -> None:
        if self.serializer not in SERIALIZERS:
            raise ValidationError({"output_categories": [
                f"{self.name}: serializer must be one of {', '.join(SERIALIZERS)}"]})


def to_dict(category: InputCategory | OutputCategory) -> dict[str, Any]:
    return asdict(category)


def from_dict(kind: type, data: dict[str, Any] | str) -> Any:
    if isinstance(data, str):
        return kind(name=data)
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise ValidationError({f"{kind.__name__}": [f"unknown settings {sorted(unknown)}"]})
    return kind(**data)


def merge(categories: list[Any], kind: type, changes: list[dict[str, Any]]) -> list[Any]:
    """Merge per-job settings into class-defined categories by name (``main`` by default)."""
    by_name = {c.name: c for c in categories}
    for change in changes:
        name = change.get("name", "main")
        if name in by_name:
            for key, value in change.items():
                if not hasattr(by_name[name], key):
                    raise ValidationError({kind.__name__: [f"{name}: unknown setting {key!r}"]})
                setattr(by_name[name], key, value)
        else:
            by_name[name] = from_dict(kind, {**change, "name": name})
    return list(by_name.values())
