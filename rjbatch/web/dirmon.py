"""The directory monitor pages: dirmon entries listed, shown, created, edited, copied,
enabled, disabled and destroyed (as in RJMC; docs/web.md, Pages), and the same as JSON.

An entry's properties form is generated (``forms``) from its job class's
``user_editable`` fields, less ``run_at``; only the values that differ from the class
defaults are stored. A class name typed into the form is looked up among the job classes
already loaded and never imports a module.

Two rules keep an entry made here from running what its author should not (docs/web.md):
properties that set a field of the class's ``admin_only_fields`` (an on-demand job's
``code``) are refused (403) unless the user is an admin, and the pattern (and an absolute
archive directory) must resolve into a folder of the dirmon whitelist
(``rjbatch web --dirmon-whitelist``); an empty whitelist lets no entry be saved here.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rjbatch import config
from rjbatch.errors import (
    Errors,
    InvalidTransition,
    JobNotFound,
    RjbatchError,
    StoreError,
    ValidationError,
)
from rjbatch.job import Job, registry
from rjbatch.job.fields import Field
from rjbatch.jobs.dirmon import DirmonEntry, confining_folder
from rjbatch.web import forms, security
from rjbatch.web.common import (
    audit,
    audit_action,
    client_of,
    flash,
    form_of,
    json_body,
    json_response,
    redirect,
    render,
    require,
    require_fields,
)

STATES = ("pending", "enabled", "failed", "disabled")  # the sidebar's order
# the model's transitions (DirmonEntry.enable/disable): which buttons the page offers
ENABLE_FROM = ("pending", "disabled")
DISABLE_FROM = ("enabled", "failed")
ACTIONS = {"enable": "Enable", "disable": "Disable", "destroy": "Destroy"}
ENTRY_FIELDS = {"name": "Name", "job_class_name": "Job Class", "pattern": "Pattern",
                "archive_directory": "Archive Directory", "properties": "Properties", "state": "State"}
PREFIX = "properties."  # form keys of the properties controls
LEFT_OUT = ("run_at",)  # a dirmon job runs when its file arrives
VERBS = {"new": "create", "edit": "update", "copy": "copy"}
_UNSET = object()


# -- lookups ------------------------------------------------------------------------------
def resolve_job_class(name: str) -> type[Job] | None:
    """The job class an entry names, among the classes already loaded (a name typed into
    a form must not import a module: ``module:Class`` works only for a module already imported)."""
    name = name.strip()
    if not name or (":" in name and name.partition(":")[0] not in sys.modules):
        return None
    found = registry.by_name(name)
    return found if isinstance(found, type) and issubclass(found, Job) else None


def find_entry(entry_id: str) -> DirmonEntry:
    try:
        return DirmonEntry.find(entry_id)
    except JobNotFound:
        raise HTTPException(404, f"Could not find dirmon entry with id: {entry_id}") from None


def list_entries(state: str, q: str) -> tuple[list[DirmonEntry], dict[str, int]]:
    """The entries of one state (or all), searched over name, job class and pattern, by name;
    and the count per state."""
    entries = DirmonEntry.all()
    counts = {s: 0 for s in STATES}
    for entry in entries:
        counts[entry.state] = counts.get(entry.state, 0) + 1
    counts["all"] = len(entries)
    needle = q.casefold()
    chosen = [entry for entry in entries
              if (state == "all" or entry.state == state)
              and (not needle or any(needle in (text or "").casefold()
                                     for text in (entry.name, entry.job_class_name, entry.pattern)))]
    return sorted(chosen, key=lambda e: (e.name.casefold(), e.name, e.id)), counts


def list_params(request: Request) -> tuple[str, str]:
    state = request.query_params.get("state") or "all"
    if state not in ("all", *STATES):
        raise HTTPException(404, f"no such state: {state}")
    return state, request.query_params.get("q", "").strip()


def counts_only() -> dict[str, int]:
    return list_entries("all", "")[1]


def whitelist_of(request: Request) -> list[str]:
    """The folders entries saved here may watch: ``create_app(dirmon_whitelist=...)``, else the
    setting (``configure`` or ``RJBATCH_DIRMON_WHITELIST``), read now so a change applies at once."""
    given = getattr(request.app.state, "dirmon_whitelist", None)
    return list(given) if given is not None else config.dirmon_whitelist()


# -- properties ---------------------------------------------------------------------------
def property_fields(job_class: type[Job] | None, role: str | None) -> list[Field]:
    """The properties ``role`` may set: an admin's include the class's admin_only_fields."""
    return forms.editable_fields(job_class, exclude=LEFT_OUT, role=role) if job_class else []


def property_values(job_class: type[Job] | None, properties: dict[str, Any], role: str | None) -> dict[str, Any]:
    """What the controls show: the class defaults, overridden by the entry's properties."""
    values = {}
    for described in property_fields(job_class, role):
        if described.name in properties:
            values[described.name] = described.from_storage(properties[described.name])
        else:
            values[described.name] = forms.default_value(described)
    return values


def diff_properties(job_class: type[Job], values: dict[str, Any], keep: dict[str, Any],
                    role: str | None) -> dict[str, Any]:
    """The properties to store: each value ``role`` may edit that differs from the class
    default, plus whatever else the entry held that the form does not edit."""
    fields = property_fields(job_class, role)
    editable = {described.name for described in fields}
    result = {key: value for key, value in keep.items() if key not in editable}
    for described in fields:
        value = values.get(described.name)
        if value != forms.default_value(described):
            result[described.name] = described.to_storage(value)
    return result


def target_of(entry: DirmonEntry) -> str:
    return f"dirmon={entry.id} name={entry.name!r}"


def check_admin_only(request: Request, mode: str, entry: DirmonEntry, job_class: type[Job] | None,
                     before: dict[str, Any]) -> None:
    """403 unless the user may set every admin-only property this save would set or change.

    A new entry or a copy sets every property it carries (a copy of an entry with code
    carries the code); an edit sets those that differ from what was stored, so a dirmon
    user may still rename an entry an admin gave code to, but not change that code.
    """
    protected = security.admin_only_fields(job_class)
    old = before if mode == "edit" else {}
    setting = [key for key in protected if entry.properties.get(key, _UNSET) != old.get(key, _UNSET)]
    require_fields(request, job_class, setting, f"dirmon_{VERBS[mode]}", target_of(entry))


def check_folders(request: Request, mode: str, entry: DirmonEntry, errors: Errors) -> None:
    """The pattern, and an absolute archive directory, must resolve into the whitelist;
    the entry is then confined to that folder when its files are taken (``each_file``)."""
    whitelist = whitelist_of(request)
    found = []
    if entry.pattern:
        try:
            entry.confined_to = confining_folder(entry.pattern, whitelist)
        except ValueError as exc:
            errors.add("pattern", str(exc))
            found.append(f"pattern={entry.pattern!r}")
    archive = entry.archive_directory or ""
    if archive and os.path.isabs(archive):
        try:
            confining_folder(archive, whitelist, what="archive directory")
        except ValueError as exc:
            errors.add("archive_directory", str(exc))
            found.append(f"archive_directory={archive!r}")
    elif ".." in archive.replace("\\", "/").split("/"):
        errors.add("archive_directory", "the archive directory may not contain '..'")
        found.append(f"archive_directory={archive!r}")
    if found:
        audit.warning("refused user=%s role=%s action=dirmon_%s %s %s reason=not-whitelisted client=%s",
                      request.state.username, request.state.role, VERBS[mode], target_of(entry), " ".join(found),
                      client_of(request))


def save_entry(request: Request, mode: str, entry: DirmonEntry, values: dict[str, Any], base: dict[str, Any],
               *, blocked: bool = False) -> Errors:
    """Everything after the properties were read, for the form and the API alike: the
    properties to store, the admin-only check (403), validity (a unique name too), the whitelist,
    then the save (not when there are errors, or when ``blocked``). Returns the errors."""
    job_class = resolve_job_class(entry.job_class_name)
    errors = Errors()
    if job_class is None:
        errors.add("job_class_name", "Invalid Job Class" if entry.job_class_name else "can't be blank")
    else:
        entry.properties = diff_properties(job_class, values, keep=base, role=request.state.role)
    check_admin_only(request, mode, entry, job_class, base)
    if not entry.is_valid():
        for name, messages in entry.errors.items():
            if name == "job_class_name" and "job_class_name" in errors:
                continue  # already "Invalid Job Class"
            for message in messages:
                errors.add(name, message)
    check_folders(request, mode, entry, errors)
    if not errors and not blocked:
        try:
            entry.save()
        except ValidationError as exc:
            for name, messages in exc.errors.items():
                for message in messages:
                    errors.add(name, message)
        except StoreError as exc:  # the store keeps one entry per pattern
            errors.add("pattern", str(exc))
    return errors


def saved(request: Request, mode: str, entry: DirmonEntry, source: DirmonEntry | None) -> None:
    extra = {"copied_from": source.id} if source else {}
    audit_action(request, f"dirmon_{VERBS[mode]}", target_of(entry), **extra)


# -- the form -----------------------------------------------------------------------------
def form_text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def submitted_properties(form: FormData) -> list[str]:
    return [key[len(PREFIX):] for key in form.keys() if key.startswith(PREFIX)]


def form_page(request: Request, mode: str, entry: DirmonEntry, *, source: DirmonEntry | None = None,
              properties: dict[str, Any] | None = None, texts: dict[str, str] | None = None,
              errors: Errors | None = None, property_errors: Errors | None = None,
              status: int = 200) -> Response:
    """The create / edit / copy form; ``properties`` are the values the controls start from."""
    role = request.state.role
    errors = errors or Errors()
    property_errors = property_errors or Errors()
    job_class = resolve_job_class(entry.job_class_name)
    values = property_values(job_class, entry.properties if properties is None else properties, role)
    controls = forms.widgets(property_fields(job_class, role), values, prefix=PREFIX, texts=texts,
                             errors=property_errors)
    lines = [f"{ENTRY_FIELDS.get(name, forms.label_of(name))}: {message}" if name != "base" else message
             for name, messages in errors.items() for message in messages]
    lines += ["Properties: " + line for line in forms.error_lines(property_errors)]
    action = {"new": "/dirmon/new", "edit": f"/dirmon/{entry.id}/edit",
              "copy": f"/dirmon/{(source or entry).id}/copy"}[mode]
    title = {"new": "New dirmon entry", "edit": f"Edit {entry.name}", "copy": f"Copy {(source or entry).name}"}[mode]
    classes = sorted({cls.__name__ for cls in registry.all_classes() if hasattr(cls, "upload")})
    admin_only = (security.fields_refused(role, job_class, job_class.user_editable_fields()) if job_class else [])
    return render(request, "dirmon_form.html", status_code=status, mode=mode, entry=entry, source=source,
                  action=action, title=title, controls=controls, errors=errors, error_lines=lines,
                  properties_for=job_class.__name__ if job_class and entry.job_class_name else "",
                  job_classes=classes, dirmon_counts=counts_only(), labels=ENTRY_FIELDS,
                  whitelist=whitelist_of(request), admin_only=admin_only)


def submit(request: Request, mode: str, entry: DirmonEntry, base: dict[str, Any],
           source: DirmonEntry | None = None) -> Response:
    """Save the submitted form into ``entry`` (new, copied or edited), or show it again:
    for "Load properties", or with the errors (422, nothing stored)."""
    form = form_of(request)
    role = request.state.role
    job_class = resolve_job_class(entry.job_class_name)
    require_fields(request, job_class, submitted_properties(form), f"dirmon_{VERBS[mode]}", target_of(entry))
    values = property_values(job_class, base, role)
    parsed, texts, property_errors = forms.parse_form(property_fields(job_class, role), form, values, prefix=PREFIX)
    shown_for = form_text(form, "properties_for")

    if "load" in form or (mode != "edit" and job_class and shown_for and shown_for != job_class.__name__):
        errors = Errors()
        if job_class is None:
            errors.add("job_class_name", "Invalid Job Class" if entry.job_class_name else "can't be blank")
        if "load" not in form and job_class is not None:
            errors.add("properties", f"the job class changed: check the properties of {job_class.__name__}, "
                                     "then save again")
        return form_page(request, mode, entry, source=source, properties=base, texts=texts, errors=errors,
                         status=422 if errors else 200)

    errors = save_entry(request, mode, entry, {**values, **parsed}, base, blocked=bool(property_errors))
    if errors or property_errors:
        return form_page(request, mode, entry, source=source, properties=base, texts=texts, errors=errors,
                         property_errors=property_errors, status=422)
    saved(request, mode, entry, source)
    done = {"new": "Created", "edit": "Saved", "copy": "Created"}[mode]
    flash(request, "success", f"{done} dirmon entry {entry.name}")
    return redirect(request, f"/dirmon/{entry.id}")


def entry_from(form: FormData, job_class_name: str | None = None) -> DirmonEntry:
    return DirmonEntry(name=form_text(form, "name"), pattern=form_text(form, "pattern"),
                       job_class_name=form_text(form, "job_class_name") if job_class_name is None else job_class_name,
                       archive_directory=form_text(form, "archive_directory"))


# -- pages --------------------------------------------------------------------------------
def dirmon_list(request: Request) -> Response:
    state, q = list_params(request)
    entries, counts = list_entries(state, q)
    return render(request, "dirmon_list.html", entries=entries, dirmon_counts=counts, state=state, q=q,
                  dirmon_states=STATES)


def entry_page(request: Request) -> Response:
    entry = find_entry(request.path_params["entry_id"])
    role = request.state.role
    may_change = security.has_role(role, security.DIRMON_ROLE)
    actions = [action for action, allowed in (("enable", entry.state in ENABLE_FROM),
                                               ("disable", entry.state in DISABLE_FROM)) if allowed and may_change]
    if security.has_role(role, security.DIRMON_DESTROY_ROLE):
        actions.append("destroy")
    return render(request, "dirmon_entry.html", entry=entry, actions=actions, labels=ACTIONS,
                  may_change=may_change, job_class=resolve_job_class(entry.job_class_name),
                  dirmon_counts=counts_only())


def new_page(request: Request) -> Response:
    require(request, security.DIRMON_ROLE, "create dirmon entries")
    return form_page(request, "new", DirmonEntry())


def create(request: Request) -> Response:
    require(request, security.DIRMON_ROLE, "create dirmon entries")
    return submit(request, "new", entry_from(form_of(request)), base={})


def edit_page(request: Request) -> Response:
    require(request, security.DIRMON_ROLE, "edit dirmon entries")
    return form_page(request, "edit", find_entry(request.path_params["entry_id"]))


def update(request: Request) -> Response:
    require(request, security.DIRMON_ROLE, "edit dirmon entries")
    entry = find_entry(request.path_params["entry_id"])
    base = dict(entry.properties)
    form = form_of(request)
    # the job class stays: the properties belong to it
    entry.name, entry.pattern = form_text(form, "name"), form_text(form, "pattern")
    entry.archive_directory = form_text(form, "archive_directory")
    return submit(request, "edit", entry, base=base)


def copy_of(source: DirmonEntry) -> DirmonEntry:
    return DirmonEntry(name=f"{source.name} (copy)", pattern=source.pattern, job_class_name=source.job_class_name,
                       properties=dict(source.properties), archive_directory=source.archive_directory)


def copy_page(request: Request) -> Response:
    require(request, security.DIRMON_ROLE, "copy dirmon entries")
    source = find_entry(request.path_params["entry_id"])
    entry = copy_of(source)
    # a copy of an entry carrying code would set that code: say so now, not after the form
    check_admin_only(request, "copy", entry, resolve_job_class(entry.job_class_name), {})
    return form_page(request, "copy", entry, source=source)


def replicate(request: Request) -> Response:
    require(request, security.DIRMON_ROLE, "copy dirmon entries")
    source = find_entry(request.path_params["entry_id"])
    entry = entry_from(form_of(request))
    # the copy starts from the old entry's properties when it keeps its job class
    base = dict(source.properties) if entry.job_class_name == source.job_class_name else {}
    return submit(request, "copy", entry, base=base, source=source)


def entry_action(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise HTTPException(404, f"no such action: {action}")
    needed = security.DIRMON_DESTROY_ROLE if action == "destroy" else security.DIRMON_ROLE
    require(request, needed, f"{action} dirmon entries")
    entry = find_entry(request.path_params["entry_id"])
    try:
        if action == "destroy":
            entry.destroy()
        else:
            getattr(entry, action)()
    except InvalidTransition:
        flash(request, "danger", f"Cannot {action} a dirmon entry that is {entry.state}")
        return redirect(request, f"/dirmon/{entry.id}")
    except RjbatchError as exc:  # e.g. its job class is no longer known: the entry cannot be saved
        flash(request, "danger", f"Could not {action} the dirmon entry: {exc}")
        return redirect(request, f"/dirmon/{entry.id}")
    audit_action(request, f"dirmon_{action}", target_of(entry))
    flash(request, "success", f"{ACTIONS[action]}: {entry.name}")
    if action == "destroy":
        return redirect(request, "/dirmon")
    return redirect(request, f"/dirmon/{entry.id}")


# -- JSON ---------------------------------------------------------------------------------
def api_dirmon(request: Request) -> Response:
    state = request.query_params.get("state") or "all"
    if state not in ("all", *STATES):
        return JSONResponse({"error": f"no such state: {state}"}, 404)
    entries, counts = list_entries(state, request.query_params.get("q", "").strip())
    return json_response({"counts": counts, "total": len(entries), "entries": [summary(e) for e in entries]})


def api_save(request: Request, mode: str, entry: DirmonEntry, base: dict[str, Any], body: dict[str, Any],
             source: DirmonEntry | None = None) -> Response:
    """The form's rules for a JSON body's ``properties`` (values, not form texts)."""
    given = body.get("properties") or {}
    if not isinstance(given, dict):
        return JSONResponse({"error": "properties must be a JSON object"}, 400)
    role = request.state.role
    job_class = resolve_job_class(entry.job_class_name)
    require_fields(request, job_class, given, f"dirmon_{VERBS[mode]}", target_of(entry))
    fields = {described.name: described for described in property_fields(job_class, role)}
    values = property_values(job_class, base, role)
    property_errors = Errors()
    for name, value in given.items():
        if job_class is not None and name not in fields:
            property_errors.add(name, "is not an editable property")
        elif job_class is not None:
            try:
                values[name] = None if value is None else fields[name].coerce(value)
            except ValidationError as exc:
                for message in exc.errors.get(name) or exc.errors.full_messages():
                    property_errors.add(name, message)
    errors = save_entry(request, mode, entry, values, base, blocked=bool(property_errors))
    if errors or property_errors:
        return json_response({"errors": {**errors, **{f"properties.{k}": v for k, v in property_errors.items()}}},
                             422)
    saved(request, mode, entry, source)
    return json_response(summary(entry), 200 if mode == "edit" else 201)


def body_of(request: Request) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise HTTPException(400, 'expected a JSON object: {"name": ..., "pattern": ..., "properties": {...}}')
    return body


def text_of(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    return value.strip() if isinstance(value, str) else default


def api_create(request: Request) -> Response:
    """``POST /api/dirmon``: ``{"name", "job_class_name", "pattern", "archive_directory", "properties"}``."""
    require(request, security.DIRMON_ROLE, "create dirmon entries")
    body = body_of(request)
    entry = DirmonEntry(name=text_of(body, "name"), pattern=text_of(body, "pattern"),
                        job_class_name=text_of(body, "job_class_name"),
                        archive_directory=text_of(body, "archive_directory", DirmonEntry.default_archive_directory))
    return api_save(request, "new", entry, {}, body)


def api_update(request: Request) -> Response:
    """``POST /api/dirmon/{id}/edit``: the keys given change (the job class stays)."""
    require(request, security.DIRMON_ROLE, "edit dirmon entries")
    entry = find_entry(request.path_params["entry_id"])
    body = body_of(request)
    base = dict(entry.properties)
    entry.name = text_of(body, "name", entry.name)
    entry.pattern = text_of(body, "pattern", entry.pattern)
    entry.archive_directory = text_of(body, "archive_directory", entry.archive_directory)
    return api_save(request, "edit", entry, base, body)


def api_copy(request: Request) -> Response:
    """``POST /api/dirmon/{id}/copy``: a new entry from the source's values and the keys given."""
    require(request, security.DIRMON_ROLE, "copy dirmon entries")
    source = find_entry(request.path_params["entry_id"])
    body = body_of(request)
    start = copy_of(source)
    entry = DirmonEntry(name=text_of(body, "name", start.name), pattern=text_of(body, "pattern", start.pattern),
                        job_class_name=text_of(body, "job_class_name", start.job_class_name),
                        archive_directory=text_of(body, "archive_directory", start.archive_directory))
    base = dict(source.properties) if entry.job_class_name == source.job_class_name else {}
    return api_save(request, "copy", entry, base, body, source)


def summary(entry: DirmonEntry) -> dict[str, Any]:
    return {"id": entry.id, "name": entry.name, "state": entry.state, "job_class_name": entry.job_class_name,
            "pattern": entry.pattern, "archive_directory": entry.archive_directory,
            "properties": entry.properties, "exception": entry.exception}


# the fixed paths come before /dirmon/{entry_id}
ROUTES = [
    ("/api/dirmon", api_dirmon, ["GET"]),
    ("/api/dirmon", api_create, ["POST"]),
    ("/api/dirmon/{entry_id}/edit", api_update, ["POST"]),
    ("/api/dirmon/{entry_id}/copy", api_copy, ["POST"]),
    ("/dirmon", dirmon_list, ["GET"]),
    ("/dirmon/new", new_page, ["GET"]),
    ("/dirmon/new", create, ["POST"]),
    ("/dirmon/{entry_id}", entry_page, ["GET"]),
    ("/dirmon/{entry_id}/edit", edit_page, ["GET"]),
    ("/dirmon/{entry_id}/edit", update, ["POST"]),
    ("/dirmon/{entry_id}/copy", copy_page, ["GET"]),
    ("/dirmon/{entry_id}/copy", replicate, ["POST"]),
    ("/dirmon/{entry_id}/{action}", entry_action, ["POST"]),
]
