"""Where the database, the job modules and the encryption keys come from.

Lookup order for the database: ``configure(database=...)``, then ``RJBATCH_DATABASE``,
then ``[tool.rjbatch] database`` in the nearest ``pyproject.toml`` (or an
``rjbatch.toml``), then ``sqlite:///rjbatch.db`` in the current directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rjbatch.errors import ConfigurationError
from rjbatch.store import Store, open_store

DEFAULT_DATABASE = "sqlite:///rjbatch.db"


class PathList(list):
    """A list of folders; a string is split on ``os.pathsep`` (``/a:/b``), as in the environment."""

    def __init__(self, value: Iterable[str | os.PathLike] | str | os.PathLike = ()) -> None:
        if isinstance(value, str | os.PathLike):
            value = os.fspath(value).split(os.pathsep)
        super().__init__(os.fspath(item) for item in value if os.fspath(item).strip())


@dataclass
class Settings:
    """Runtime settings; every one can be given to :func:`configure`."""

    database: str | None = None
    jobs: list[str] = field(default_factory=list)
    heartbeat_seconds: float = 15.0
    max_poll_seconds: float = 5.0
    re_check_seconds: float = 60.0
    zombie_heartbeats: int = 4
    shutdown_grace_seconds: float = 30.0
    max_workers: int = 0  # 0: one per CPU core
    # folders dirmon entries saved from Mission Control may watch (docs/web.md); empty: none
    dirmon_whitelist: PathList = field(default_factory=PathList)


settings = Settings()
_store: Store | None = None
_store_key: tuple[str, int] | None = None


def configure(
    database: str | None = None,
    *,
    ciphers: Sequence[Any] | None = None,
    encryption_config: str | os.PathLike | None = None,
    environment: str | None = None,
    jobs: Iterable[str] | None = None,
    **options: Any,
) -> None:
    """Set the database, encryption keys, job modules and runtime settings."""
    global _store, _store_key
    if database is not None:
        if _store is not None and database != _store.url:
            _store = None
            _store_key = None
        settings.database = database
    if jobs is not None:
        settings.jobs = list(jobs)
    for name, value in options.items():
        if not hasattr(settings, name):
            raise ConfigurationError(f"unknown setting {name!r}")
        setattr(settings, name, type(getattr(settings, name))(value))
    if ciphers is not None:
        from rjbatch.codecs import set_ciphers

        set_ciphers(list(ciphers))
    if encryption_config is not None:
        from rjbatch.codecs import load_encryption_config, set_ciphers

        set_ciphers(load_encryption_config(encryption_config, environment))


#: Runtime settings the command line also takes from ``[tool.rjbatch]`` or ``rjbatch.toml``.
PROJECT_SETTINGS = ("heartbeat_seconds", "max_poll_seconds", "re_check_seconds", "zombie_heartbeats",
                    "shutdown_grace_seconds", "max_workers")


def apply_project_settings() -> None:
    """The runtime settings of the nearest project file (the CLI reads them at start)."""
    found = _project_config()
    if found:
        configure(**{name: value for name, value in found[0].items() if name in PROJECT_SETTINGS})


def dirmon_whitelist() -> list[str]:
    """``configure(dirmon_whitelist=...)``, else ``RJBATCH_DIRMON_WHITELIST`` (``os.pathsep`` separated)."""
    if settings.dirmon_whitelist:
        return list(settings.dirmon_whitelist)
    return list(PathList(os.environ.get("RJBATCH_DIRMON_WHITELIST", "")))


def _project_config(start: Path | None = None) -> tuple[dict[str, Any], Path] | None:
    """``[tool.rjbatch]`` of the nearest pyproject.toml that has one, or an rjbatch.toml."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        own = folder / "rjbatch.toml"
        if own.is_file():
            return _read_toml(own), folder
        project = folder / "pyproject.toml"
        if project.is_file():
            section = _read_toml(project).get("tool", {}).get("rjbatch")
            if section is not None:
                return section, folder
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None


def database_url() -> str:
    if settings.database:
        return settings.database
    if os.environ.get("RJBATCH_DATABASE"):
        return os.environ["RJBATCH_DATABASE"]
    found = _project_config()
    if found and found[0].get("database"):
        url = str(found[0]["database"])
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
            url = "sqlite:///" + str(found[1] / url[len("sqlite:///"):])  # relative to the file
        return url
    return DEFAULT_DATABASE


def get_store() -> Store:
    """The store of this process, opened on first use (a forked child opens its own)."""
    global _store, _store_key
    key = (database_url(), os.getpid())
    if _store is None or _store_key != key:
        _store = open_store(key[0])
        _store_key = key
    return _store


_inherited: list[Store] = []


def reset_store() -> None:
    """Forget the open store (tests, and processes that change database)."""
    global _store, _store_key
    if _store is not None and _store_key and _store_key[1] == os.getpid():
        _store.close()
    elif _store is not None:
        # a forked child must never close its parent's connections: keep them unused
        _inherited.append(_store)
    _store = None
    _store_key = None


def job_sources() -> list[str]:
    """Modules or paths to import job classes from: settings, env, project file, ``jobs/``."""
    if settings.jobs:
        return list(settings.jobs)
    if os.environ.get("RJBATCH_JOBS"):
        return [part.strip() for part in os.environ["RJBATCH_JOBS"].split(",") if part.strip()]
    found = _project_config()
    if found and found[0].get("jobs"):
        jobs = found[0]["jobs"]
        # paths are relative to the file that names them (as the database path is)
        return [_beside(found[1], entry) for entry in ([jobs] if isinstance(jobs, str) else list(jobs))]
    return ["jobs"] if Path("jobs").is_dir() else []


def _beside(folder: Path, entry: str) -> str:
    """A project file's job source: a path (``jobs/``, ``a.py``) made absolute against its
    folder; a module name (``myapp.jobs``) as it is."""
    if entry.endswith(".py") or "/" in entry or (folder / entry).exists():
        return str((folder / entry).resolve())
    return entry


def load_jobs(sources: Iterable[str] | None = None) -> list[str]:
    """Import job modules: a module name, a ``.py`` file, or a folder of them (recursively)."""
    loaded = []
    for source in job_sources() if sources is None else sources:
        path = Path(source)
        if path.is_dir():
            for file in sorted(path.rglob("*.py")):
                loaded.append(_import_file(file))
        elif path.suffix == ".py" or path.is_file():
            if not path.is_file():
                raise ConfigurationError(f"job file {source} does not exist")
            loaded.append(_import_file(path))
        else:
            try:
                import_module(source)
            except ImportError as exc:
                raise ConfigurationError(f"cannot import job module {source!r}: {exc}") from None
            loaded.append(source)
    return loaded


def import_module(name: str) -> Any:
    """Import a module named on the command line (``--jobs``, ``--auth``) from the current
    folder too, as ``python -m`` would: the ``rjbatch`` console script does not look there."""
    _importable(Path.cwd())
    return importlib.import_module(name)


def _importable(folder: Path) -> None:
    """Let the modules of ``folder`` be imported (appended: never shadows the library)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.append(entry)


def _import_file(path: Path) -> str:
    path = path.resolve()
    name = "rjbatch_jobs_" + "_".join(path.with_suffix("").parts[-3:]).replace("-", "_").replace(".", "_")
    if name in sys.modules:
        return name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import job file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _importable(path.parent)  # a job file imports the modules beside it, as `python file.py` would
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigurationError(f"cannot import job file {path}: {type(exc).__name__}: {exc}") from exc
    return name
