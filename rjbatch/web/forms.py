"""Forms generated from a job class's ``user_editable`` fields (RJMC's edit-job widgets).

The job edit page and the dirmon entry pages both show one widget per editable field and
read the submitted form back into typed values. The widget follows the field's kind:
numbers get a number input, a field with ``choices`` a select, a str a textarea, a bool a
blank/true/false select, a dict a JSON text input, a list of strings one value per line,
a datetime a ``datetime-local`` input (UTC), a timedelta its seconds (or HH:MM:SS).
A blank input is ``None``. Values are checked with the field's own coercion, so the form
accepts exactly what the job accepts, and every error names its field.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rjbatch.errors import Errors, ValidationError
from rjbatch.job import Job
from rjbatch.job.fields import Field
from rjbatch.web import security

# widget per field kind (a field with choices is always a select)
_WIDGETS: dict[Any, str] = {
    int: "number", float: "number", Decimal: "text", str: "textarea", bool: "bool",
    dict: "json", list: "lines", dt.datetime: "datetime", dt.date: "date", dt.timedelta: "duration",
    object: "json", None: "json",
}
_HINTS = {
    "json": "JSON", "lines": "one value per line", "datetime": "UTC", "duration": "seconds, or HH:MM:SS",
    "date": "YYYY-MM-DD",
}


@dataclass
class Widget:
    """One form control, as ``_form_field.html`` draws it."""

    name: str  # the field's name
    input_name: str  # the form key: prefix + name
    label: str
    widget: str  # number, select, textarea, bool, json, lines, datetime, date, duration, text
    type_name: str
    text: str  # the value as the control shows it
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label) for selects
    step: str = "1"
    hint: str = ""
    description: str = ""
    required: bool = False
    errors: list[str] = field(default_factory=list)


def editable_fields(job_class: type[Job], exclude: Iterable[str] = (), *, role: str | None = None) -> list[Field]:
    """The class's ``user_editable`` fields ``role`` may set, in declaration order, less ``exclude``.

    A field in the class's ``admin_only_fields`` (code a worker runs) is left out unless
    ``role`` is admin: a form never offers what the server would refuse.
    """
    left_out = set(exclude) | set(security.fields_refused(role, job_class, job_class.user_editable_fields()))
    return [job_class.field_definition(name) for name in job_class.user_editable_fields() if name not in left_out]


def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def type_name(described: Field) -> str:
    kind = described.kind
    return "any" if kind in (None, object) else getattr(kind, "__name__", str(kind))


def widget_kind(described: Field, value: Any = None) -> str:
    """Which control edits this field; a list holding anything but strings is edited as JSON."""
    if described.choices is not None:
        return "select"
    kind = _WIDGETS.get(described.kind, "text")
    if kind == "lines" and isinstance(value, list) and not all(isinstance(item, str) for item in value):
        return "json"
    return kind


def default_value(described: Field) -> Any:
    """The class default, as a value of the field's kind (None for a computed default)."""
    if described.has_dynamic_default:
        return None
    return described.coerce(described.static_default())


def to_text(described: Field, value: Any, widget: str | None = None) -> str:
    """The value as its control shows it."""
    if value is None:
        return ""
    widget = widget or widget_kind(described, value)
    if widget == "bool":
        return "true" if value else "false"
    if widget == "json":
        return json.dumps(value, default=str, ensure_ascii=False)
    if widget == "lines":
        return "\n".join(value)
    if widget == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if widget == "duration" and isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds == int(seconds) else str(seconds)
    return str(value)


def parse_text(described: Field, text: str, widget: str) -> Any:
    """The value a control's text stands for; ValueError with a message for the person."""
    text = text.replace("\r\n", "\n")
    if widget != "textarea":
        text = text.strip()
    if widget == "lines":
        items = [line.strip() for line in text.split("\n") if line.strip()]
        return _coerce(described, items) if items else None
    if text == "" or (widget == "textarea" and not text.strip()):
        return None
    if widget == "select":
        for choice in described.choices or ():
            if str(choice) == text:
                return choice
        raise ValueError("must be one of: " + ", ".join(str(c) for c in described.choices or ()))
    if widget == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"must be true or false, not {text!r}")
        return text == "true"
    if widget == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON: {exc}") from None
        if described.kind is dict and not isinstance(value, dict):
            raise ValueError("must be a JSON object ({...})")
        if described.kind is list and not isinstance(value, list):
            raise ValueError("must be a JSON array ([...])")
        return _coerce(described, value)
    return _coerce(described, text)


def _coerce(described: Field, value: Any) -> Any:
    try:
        return described.coerce(value)
    except ValidationError as exc:
        raise ValueError("; ".join(exc.errors.get(described.name) or exc.errors.full_messages())) from None


def widgets(fields: Iterable[Field], values: Mapping[str, Any], *, prefix: str = "",
            texts: Mapping[str, str] | None = None, errors: Mapping[str, list[str]] | None = None) -> list[Widget]:
    """The controls for ``fields`` showing ``values``; ``texts`` (what was typed, by field name)
    win over the values when a form is shown again."""
    texts = texts or {}
    errors = errors or {}
    built = []
    for described in fields:
        name = described.name
        value = values.get(name)
        kind = widget_kind(described, value)
        options: list[tuple[str, str]] = []
        if kind == "select":
            choices = [str(choice) for choice in described.choices or ()]
            shown = texts.get(name, to_text(described, value, kind))
            options = [("", "")] + [(c, c) for c in choices]
            if shown and shown not in choices:  # a stored value the choices no longer list
                options.append((shown, f"{shown} (not allowed)"))
        elif kind == "bool":
            options = [("", ""), ("true", "true"), ("false", "false")]
        built.append(Widget(
            name=name, input_name=prefix + name, label=label_of(name), widget=kind,
            type_name=type_name(described), text=texts.get(name, to_text(described, value, kind)),
            options=options, step="any" if described.kind is float else "1", hint=_HINTS.get(kind, ""),
            description=described.description or "", required=described.required,
            errors=list(errors.get(name, [])),
        ))
    return built


def parse_form(fields: Iterable[Field], form: Mapping[str, Any], values: Mapping[str, Any], *,
               prefix: str = "") -> tuple[dict[str, Any], dict[str, str], Errors]:
    """Read the submitted controls of ``fields``.

    Returns the typed values (for the fields the form carried), the texts as typed (to show
    the form again), and the errors by field name. A control whose text is what the current
    value shows keeps that value exactly (a datetime keeps its milliseconds, a dict its types).
    """
    parsed: dict[str, Any] = {}
    texts: dict[str, str] = {}
    errors = Errors()
    for described in fields:
        name = described.name
        raw = form.get(prefix + name)
        if raw is None or not isinstance(raw, str):
            continue  # not on the form: left as it is
        texts[name] = raw
        current = values.get(name)
        kind = widget_kind(described, current)
        if raw.replace("\r\n", "\n") == to_text(described, current, kind):
            parsed[name] = current
            continue
        try:
            parsed[name] = parse_text(described, raw, kind)
        except ValueError as exc:
            errors.add(name, str(exc))
    return parsed, texts, errors


def error_lines(errors: Mapping[str, list[str]]) -> list[str]:
    """One line per error, naming the field: ``Priority: must be between 1 and 100``."""
    return [message if name == "base" else f"{label_of(name)}: {message}"
            for name, messages in errors.items() for message in messages]
