"""Chainable job queries: ``ReportJob.where(report_date=d).order_by("-priority").first()``.

A query is a ``Query[J]`` for the class it was made on: ``ReportJob.where(...)`` is a
``Query[ReportJob]``, whose ``first()``, ``last()``, ``all()`` and iteration give
``ReportJob``s to a type checker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from rjbatch import clock
from rjbatch.job.fields import Field

if TYPE_CHECKING:
    from rjbatch.job.queries import JobQueries

J = TypeVar("J", bound="JobQueries")

_LOOKUPS = {"lt", "lte", "gt", "gte", "ne", "in", "nin", "exists", "regex"}


class Query(Generic[J]):
    """An immutable description of a set of jobs of one class (and its subclasses).

    Typed by that class: the jobs it reads are ``J``s (each is loaded as the class it
    was stored as, ``J`` or a subclass; only a stored subclass whose module cannot be
    imported here loads as a placeholder of its nearest rjbatch ancestor instead).
    """

    def __init__(
        self,
        model: type[J],
        filter: dict[str, Any] | None = None,
        order: tuple[tuple[str, int], ...] = (),
        limit: int | None = None,
        skip: int = 0,
    ) -> None:
        self.model = model
        self.filter = dict(filter or {})
        self.order = order
        self._limit = limit
        self._skip = skip

    def _copy(self, **changes: Any) -> Query[J]:
        values: dict[str, Any] = {
            "filter": self.filter, "order": self.order, "limit": self._limit, "skip": self._skip,
        }
        values.update(changes)
        return Query(self.model, **values)

    def _store_filter(self) -> dict[str, Any]:
        base = self.model._class_filter()
        if not self.filter:
            return base
        if not base:
            return dict(self.filter)
        return {"$and": [base, self.filter]}

    # -- building -----------------------------------------------------------------------
    def where(self, filter: dict[str, Any] | None = None, /, **equals: Any) -> Query[J]:
        """Equality on fields (``state="queued"``), Django-style lookups
        (``priority__lte=25``), or a raw store filter dict."""
        conditions: dict[str, Any] = {}
        if filter:
            conditions.update(filter)
        for key, value in equals.items():
            name, _, lookup = key.partition("__")
            if lookup and lookup not in _LOOKUPS:
                name, lookup = key, ""
            stored = self.model._stored_name(name)
            value = self._encode(name, value, lookup)
            condition = {f"${lookup}": value} if lookup else value
            previous = conditions.get(stored)
            if isinstance(previous, dict) and isinstance(condition, dict):
                condition = {**previous, **condition}
            conditions[stored] = condition
        merged = dict(self.filter)
        for key, value in conditions.items():
            if key in merged and key != "$or":
                merged = {"$and": [merged, {key: value}]}
            else:
                merged[key] = value
        return self._copy(filter=merged)

    def _encode(self, name: str, value: Any, lookup: str) -> Any:
        described = self.model._fields.get(name)
        if not isinstance(described, Field) or lookup in ("exists", "regex"):
            return value
        if lookup in ("in", "nin"):
            return [described.to_storage(described.coerce(v)) for v in value]
        return described.to_storage(described.coerce(value))

    def order_by(self, *names: str) -> Query[J]:
        order = tuple(
            (self.model._stored_name(n.lstrip("-+")), -1 if n.startswith("-") else 1) for n in names
        )
        return self._copy(order=order)

    def limit(self, count: int) -> Query[J]:
        return self._copy(limit=count)

    def skip(self, count: int) -> Query[J]:
        return self._copy(skip=count)

    # -- scopes -------------------------------------------------------------------------
    def queued(self) -> Query[J]:
        return self.where(state="queued")

    def running(self) -> Query[J]:
        return self.where(state="running")

    def completed(self) -> Query[J]:
        return self.where(state="completed")

    def failed(self) -> Query[J]:
        return self.where(state="failed")

    def aborted(self) -> Query[J]:
        return self.where(state="aborted")

    def paused(self) -> Query[J]:
        return self.where(state="paused")

    def scheduled(self) -> Query[J]:
        """Queued with ``run_at`` in the future."""
        return self.where(state="queued", run_at__gt=clock.now())

    def queued_now(self) -> Query[J]:
        """Queued and due: no ``run_at``, or one that has passed."""
        return self.where(
            {"state": "queued", "$or": [{"run_at": None}, {"run_at": {"$lte": clock.now()}}]}
        )

    # -- reading ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[J]:
        store = self.model._store()
        if self._limit is None and not self._skip:
            docs = store.iter_jobs(self._store_filter(), self.order)
        else:
            docs = iter(store.find_jobs(self._store_filter(), self.order, self._limit, self._skip))
        for doc in docs:
            yield cast(J, self.model._from_doc(doc))

    def all(self) -> list[J]:
        return list(self)

    def count(self) -> int:
        return self.model._store().count_jobs(self._store_filter())

    def exists(self) -> bool:
        return bool(self._store_filter_first(limit=1))

    def _store_filter_first(self, limit: int = 1, descending: bool = False) -> list[dict]:
        order = self.order or (("_id", -1 if descending else 1),)
        if descending and self.order:
            order = tuple((name, -direction) for name, direction in self.order)
        return self.model._store().find_jobs(self._store_filter(), order, limit, self._skip)

    def first(self) -> J | None:
        docs = self._store_filter_first()
        return cast(J, self.model._from_doc(docs[0])) if docs else None

    def last(self) -> J | None:
        docs = self._store_filter_first(descending=True)
        return cast(J, self.model._from_doc(docs[0])) if docs else None

    def counts_by_state(self) -> dict[str, int]:
        counts = self.model._store().count_jobs_by("state", self._store_filter())
        counts = {state: n for state, n in counts.items() if n}
        queued = counts.get("queued", 0)
        if queued:
            scheduled = self.scheduled().count()
            if scheduled:
                counts["scheduled"] = scheduled
            if queued - scheduled:
                counts["queued_now"] = queued - scheduled
        return counts

    # -- changing -----------------------------------------------------------------------
    def delete_all(self) -> int:
        """Remove every matching job without callbacks."""
        return self.model._store().delete_jobs(self._store_filter())

    def destroy_all(self) -> int:
        """Destroy every matching job, running each one's destroy callbacks."""
        jobs = list(self)
        for job in jobs:
            job.destroy()
        return len(jobs)

    def __repr__(self) -> str:
        return f"<Query {self.model.__name__} {self.filter} order={self.order}>"
