"""Directory monitoring: files that land in watched folders become batch jobs.

A ``DirmonEntry`` names a glob pattern and the job class (with its properties) that
takes each matching file. ``DirmonJob`` scans the enabled entries every
``check_seconds``; a file is taken once two scans see the same size (it is complete),
moved to the entry's archive folder as ``<job id>_<name>``, and handed to an
``UploadFileJob`` that uploads it into a new job of that class.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bson import ObjectId

from rjbatch import clock
from rjbatch.errors import JobNotFound, RjbatchError, ValidationError
from rjbatch.job import Job, registry
from rjbatch.job.callbacks import before_create
from rjbatch.job.exception import JobException
from rjbatch.job.fields import field
from rjbatch.plugins import Restart, Singleton

if TYPE_CHECKING:
    from rjbatch.store.protocol import Store

log = logging.getLogger("rjbatch.dirmon")

# A process-wide list of folders files may come from; empty: any folder.
_whitelist: list[str] = []


def add_whitelist_path(path: str) -> list[str]:
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise RjbatchError(f"whitelist path {path} does not exist")
    if real not in _whitelist:
        _whitelist.append(real)
    return list(_whitelist)


def delete_whitelist_path(path: str) -> list[str]:
    real = os.path.realpath(path)
    if real in _whitelist:
        _whitelist.remove(real)
    return list(_whitelist)


_GLOB_MAGIC = re.compile(r"[*?[]")


def _under(real: str, folder: str) -> bool:
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def confining_folder(path: str, whitelist: list[str], *, what: str = "pattern") -> str:
    """The resolved whitelist folder that holds ``path`` (a glob, or a folder), or ValueError saying why not.

    Why: a pattern typed into Mission Control must not reach beyond the folders the
    operator listed (``/etc/*.conf``). The pattern must be absolute (a worker would resolve
    a relative one against its own directory), may not hold a ``..`` component, and the
    folder before its first wildcard is resolved (``os.path.realpath``: symlinks followed)
    before it is compared, so neither ``..`` nor a symlink leads out of the whitelist.
    """
    path = (path or "").strip()
    whitelist = [folder for folder in whitelist if folder and folder.strip()]  # "" would mean the cwd
    if not whitelist:
        raise ValueError("no dirmon whitelist is configured, so no folder may be watched from here")
    if not os.path.isabs(path):
        raise ValueError(f"the {what} must be an absolute path")
    parts = path.split(os.sep)
    if ".." in parts or (os.altsep and ".." in path.split(os.altsep)):
        raise ValueError(f"the {what} may not contain '..'")
    fixed = []
    for part in parts:
        if _GLOB_MAGIC.search(part):
            break
        fixed.append(part)
    real = os.path.realpath(os.sep.join(fixed) or os.sep)
    for folder in whitelist:
        root = os.path.realpath(folder)
        if _under(real, root):
            return root
    raise ValueError(f"{real} is not under a whitelisted folder ({', '.join(whitelist)})")


class DirmonEntry:
    """A watched pattern and the job its files go to (stored in the job store)."""

    STATES = ("pending", "enabled", "disabled", "failed")
    default_archive_directory: ClassVar[str] = "archive"

    def __init__(self, *, name: str = "", pattern: str = "", job_class_name: str = "",
                 properties: dict[str, Any] | None = None, archive_directory: str | None = None,
                 state: str = "pending", exception: Any = None, id: str | None = None,
                 confined_to: str | None = None) -> None:
        self.id = str(id or ObjectId())
        self.name = name
        self.pattern = pattern
        self.job_class_name = job_class_name
        self.properties = dict(properties or {})
        self.archive_directory = self.default_archive_directory if archive_directory is None else archive_directory
        self.state = state
        self.exception = JobException.coerce(exception) if exception else None
        self.errors: dict[str, list[str]] = {}
        # set when saved from Mission Control: the whitelisted folder every file taken must
        # resolve into, so a symlink planted later in a watched folder cannot lead out of it
        self.confined_to = confined_to

    # -- persistence --------------------------------------------------------------------
    @staticmethod
    def _store() -> Store:
        from rjbatch.config import get_store

        return get_store()

    @classmethod
    def create(cls, **values: Any) -> DirmonEntry:
        return cls(**values).save()

    def to_doc(self) -> dict[str, Any]:
        doc = {"_id": self.id, "name": self.name, "pattern": self.pattern, "state": self.state,
               "job_class_name": self.job_class_name, "properties": self.properties,
               "archive_directory": self.archive_directory,
               "exception": self.exception.to_dict() if self.exception else None}
        if self.confined_to:
            doc["confined_to"] = self.confined_to
        return doc

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> DirmonEntry:
        return cls(id=doc["_id"], name=doc["name"], pattern=doc["pattern"], state=doc["state"],
                   job_class_name=doc.get("job_class_name", ""), properties=doc.get("properties"),
                   archive_directory=doc.get("archive_directory"), exception=doc.get("exception"),
                   confined_to=doc.get("confined_to"))

    def save(self, validate: bool = True) -> DirmonEntry:
        if validate and not self.is_valid():
            raise ValidationError(self.errors, "DirmonEntry")
        self._store().save_dirmon_entry(self.to_doc())
        return self

    def destroy(self) -> None:
        self._store().delete_dirmon_entry(self.id)

    @classmethod
    def all(cls) -> list[DirmonEntry]:
        return [cls._from_doc(doc) for doc in cls._store().find_dirmon_entries()]

    @classmethod
    def enabled(cls) -> list[DirmonEntry]:
        return [cls._from_doc(doc) for doc in cls._store().find_dirmon_entries({"state": "enabled"})]

    @classmethod
    def find(cls, key: str) -> DirmonEntry:
        """By id or by name."""
        for doc in cls._store().find_dirmon_entries({"$or": [{"_id": key}, {"name": key}]}):
            return cls._from_doc(doc)
        raise JobNotFound(f"no dirmon entry {key!r}")

    @classmethod
    def counts_by_state(cls) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in cls.all():
            counts[entry.state] = counts.get(entry.state, 0) + 1
        return counts

    # -- validation ---------------------------------------------------------------------
    def job_class(self) -> type[Job] | None:
        cls = registry.by_name(self.job_class_name) if self.job_class_name else None
        return cls if isinstance(cls, type) and issubclass(cls, Job) else None

    def is_valid(self) -> bool:
        self.pattern = (self.pattern or "").strip()
        self.archive_directory = (self.archive_directory or "").strip()
        errors: dict[str, list[str]] = {}
        for name in ("name", "pattern", "job_class_name", "archive_directory"):
            if not getattr(self, name):
                errors.setdefault(name, []).append("can't be blank")
        if self.state not in self.STATES:
            errors.setdefault("state", []).append(f"must be one of {', '.join(self.STATES)}")
        if self.name and any(str(doc.get("_id")) != self.id
                             for doc in self._store().find_dirmon_entries({"name": self.name})):
            errors.setdefault("name", []).append("has already been taken")
        cls = self.job_class()
        if self.job_class_name and cls is None:
            errors.setdefault("job_class_name", []).append(f"job class {self.job_class_name} is not known")
        elif cls is not None:
            for key in self.properties:
                if key not in cls.field_names():
                    errors.setdefault("properties", []).append(f"{cls.__name__} has no field {key!r}")
        self.errors = errors
        return not errors

    # -- events -------------------------------------------------------------------------
    def _event(self, allowed_from: tuple[str, ...], to: str, event: str) -> None:
        if self.state not in allowed_from:
            from rjbatch.errors import InvalidTransition

            raise InvalidTransition(event, self.state, "DirmonEntry")
        self.state = to
        self.save(validate=event != "fail")  # an entry fails because it is no longer valid here

    def enable(self) -> None:
        self._event(("pending", "disabled"), "enabled", "enable")

    def disable(self) -> None:
        self._event(("enabled", "failed"), "disabled", "disable")

    def fail(self, exc_or_message: BaseException | str | None = None, worker_name: str | None = None) -> None:
        if isinstance(exc_or_message, BaseException):
            self.exception = JobException.from_exception(exc_or_message, worker_name)
        else:
            self.exception = JobException("rjbatch.DirmonEntryException", exc_or_message, [], worker_name)
        self._event(("enabled",), "failed", "fail")

    # -- scanning -----------------------------------------------------------------------
    def archive_folder(self, path: str) -> str:
        folder = self.archive_directory
        return folder if os.path.isabs(folder) else os.path.join(os.path.dirname(path), folder)

    def each_file(self) -> list[str]:
        """Files matching the pattern: not hidden, not in an archive folder, whitelisted."""
        found = []
        for path in sorted(glob.glob(self.pattern, recursive=True)):
            if not os.path.isfile(path) or os.path.basename(path).startswith("."):
                continue
            real = os.path.realpath(path)
            if self._in_archive(real):
                continue
            if _whitelist and not any(real == w or real.startswith(w + os.sep) for w in _whitelist):
                log.warning("skipping %s: not under a whitelisted path", real)
                continue
            if self.confined_to and not _under(real, os.path.realpath(self.confined_to)):
                log.warning("skipping %s: it resolves outside %s, the folder entry %s is confined to",
                            real, self.confined_to, self.name)
                continue
            if not os.access(real, os.W_OK):
                log.warning("skipping %s: it cannot be moved to the archive (not writable)", real)
                continue
            found.append(real)
        return found

    def _in_archive(self, real: str) -> bool:
        """Is the file inside an archive folder? Whole folder names are compared (Rocket Job
        skipped every path that merely contained the text "archive")."""
        folder = self.archive_directory
        if os.path.isabs(folder):
            return Path(os.path.realpath(folder)) in Path(real).parents
        parts = Path(folder).parts
        directories = Path(real).parent.parts
        return any(directories[i:i + len(parts)] == parts for i in range(len(directories)))

    def target_class(self) -> type[Job]:
        """The batch job class files become; ``DirmonEntryError`` saying why there is none."""
        try:
            cls = registry.by_name(self.job_class_name)
        except registry.AmbiguousJobClass as exc:
            raise DirmonEntryError(str(exc)) from None
        if not (isinstance(cls, type) and issubclass(cls, Job)):
            raise DirmonEntryError(f"job class {self.job_class_name} is not known to this worker "
                                   "(load it with --jobs)")
        if not hasattr(cls, "upload"):
            raise DirmonEntryError(f"{cls.__name__} cannot upload files: it is not a batch job")
        return cls

    def later(self, path: str) -> Job:
        """Archive the file and start the job that uploads it.

        The job class is checked first: a file that cannot become a job stays where it is
        and the entry fails with the reason (Rocket Job archived the file, then lost it).
        """
        try:
            self.target_class()
        except DirmonEntryError as exc:
            log.error("dirmon entry %s failed: %s (%s left in place)", self.name, exc, path)
            self.fail(str(exc))
            raise
        job_id = str(ObjectId())
        folder = self.archive_folder(path)
        os.makedirs(folder, exist_ok=True)
        archived = os.path.join(folder, f"{job_id}_{os.path.basename(path)}")
        shutil.move(path, archived)
        log.info("%s: archived %s as %s", self.name, path, archived)
        return UploadFileJob.create(
            job_class_name=self.job_class_name, properties=self.properties,
            description=f"{self.name}: {os.path.basename(path)}", upload_file_name=archived,
            original_file_name=path, job_id=job_id,
        )


class DirmonEntryError(RjbatchError):
    """A dirmon entry cannot turn files into jobs (its class is unknown, or not a batch job)."""


class UploadFileJob(Job):
    """Uploads one file into a new job of ``job_class_name`` (its id: ``job_id``)."""

    priority = 30
    job_class_name = field(str, user_editable=True)
    properties = field(dict, {}, user_editable=True)
    # together they choose a class and its values (an on-demand job's code among them)
    admin_only_fields: ClassVar[frozenset[str]] = frozenset({"job_class_name", "properties"})
    upload_file_name = field(str)
    original_file_name = field(str)
    job_id = field(str)

    def validate(self) -> None:
        if not self.job_class_name:
            self.errors.add("job_class_name", "can't be blank")
        else:
            cls = registry.by_name(self.job_class_name)
            if not (isinstance(cls, type) and issubclass(cls, Job)):
                self.errors.add("job_class_name", f"job class {self.job_class_name} is not known")
            elif not hasattr(cls, "upload"):
                self.errors.add("job_class_name", f"{cls.__name__} cannot upload files (it is not a batch job)")
        name = self.upload_file_name
        if not name:
            self.errors.add("upload_file_name", "Upload file name can't be blank.")
        elif "://" not in name and not os.path.exists(name):
            self.errors.add("upload_file_name", f"Upload file: {name} does not exist.")

    def perform(self) -> str:
        from rjbatch.batch import BatchJob

        cls = registry.by_name(self.job_class_name or "")
        if cls is None or not issubclass(cls, BatchJob):
            raise DirmonEntryError(f"job class {self.job_class_name!r} is not a known batch job class")
        properties = dict(self.properties)
        # category settings are merged into the class's categories by name, not replacing them
        categories = {k: properties.pop(k) for k in ("input_categories", "output_categories") if k in properties}
        properties.setdefault("description", self.description)  # "entry: file name"
        job = cls(**properties, **({"id": self.job_id} if self.job_id else {}))
        for kind, entries in categories.items():
            for entry in entries or []:
                settings = {k: v for k, v in entry.items() if k != "name"}
                job.update_category(kind.split("_")[0], entry.get("name", "main"), **settings)
        try:
            original = os.path.basename(self.original_file_name) if self.original_file_name else None
            job.upload(self.upload_file_name, file_name=original)
            job.save()
        except BaseException:
            job.delete()  # no half-built job or slices left behind
            raise
        return job.id


class DirmonJob(Singleton, Restart, Job):
    """Scans the enabled dirmon entries every ``check_seconds``."""

    priority = 30
    description = "Directory monitor"
    check_seconds = field(float, 300.0, copy_on_restart=True, user_editable=True)
    # [path, size] pairs: paths are not used as keys, so no two can ever collide
    previous_file_names = field(list, [], copy_on_restart=True)

    @before_create
    def _dirmon_schedule(self) -> None:
        if self.run_at is None:
            self.run_at = clock.now() + timedelta(seconds=self.check_seconds)

    def perform(self) -> int:
        previous = {path: size for path, size in self.previous_file_names or []}
        seen: list[list[Any]] = []
        started = 0
        try:
            for entry in DirmonEntry.enabled():
                for path in entry.each_file():
                    size = os.path.getsize(path)
                    if previous.get(path) != size:
                        seen.append([path, size])
                        continue
                    try:
                        entry.later(path)
                    except DirmonEntryError:
                        break  # the entry failed: its files stay for when it is fixed
                    started += 1
        finally:
            self.previous_file_names = seen
        return started


def ensure_scanner() -> DirmonJob | None:
    """Start the DirmonJob that scans the entries unless one is queued, running or paused:
    an enabled entry does nothing without it. The new job, or None when one was there."""
    if DirmonJob.where(state__in=["queued", "running", "paused"]).count():
        return None
    try:
        return DirmonJob.create(run_at=clock.now())  # its first scan at once, not a period later
    except ValidationError:  # another process started it at the same moment (a Singleton)
        return None
