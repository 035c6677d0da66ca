"""Callback registration and ordering.

Decorators only tag a function; the job class gathers the tags of every class in its
MRO (parents first, in definition order) when it is created, so mixins such as the
plugins register callbacks the same way user code does. Befores run in definition
order, afters in reverse, and an around wraps everything defined after it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

EVENTS = ("start", "complete", "fail", "retry", "pause", "resume", "abort", "requeue")
PERSISTENCE = (
    "after_initialize", "before_validation", "after_validation", "before_save",
    "before_create", "after_create", "after_save", "before_destroy", "after_destroy",
)
# Chains whose befores, afters and arounds nest (ActiveSupport style).
CHAINS = ("perform", "slice", "batch")

KINDS = frozenset(
    [f"{when}_{event}" for event in EVENTS for when in ("before", "after")]
    + [f"{when}_{chain}" for chain in CHAINS for when in ("before", "after", "around")]
    + list(PERSISTENCE)
)

_ATTR = "__rjbatch_callbacks__"


def _register(kind: str) -> Callable[[Callable], Callable]:
    def decorate(function: Callable) -> Callable:
        kinds = getattr(function, _ATTR, ())
        setattr(function, _ATTR, (*kinds, kind))
        return function

    decorate.__name__ = kind
    decorate.__qualname__ = kind
    decorate.__doc__ = f"Register the decorated method as a ``{kind}`` callback."
    return decorate


def callback_kinds(function: Any) -> tuple[str, ...]:
    return getattr(function, _ATTR, ())


before_perform = _register("before_perform")
after_perform = _register("after_perform")
around_perform = _register("around_perform")
before_slice = _register("before_slice")
after_slice = _register("after_slice")
around_slice = _register("around_slice")
before_batch = _register("before_batch")
after_batch = _register("after_batch")
before_start = _register("before_start")
after_start = _register("after_start")
before_complete = _register("before_complete")
after_complete = _register("after_complete")
before_fail = _register("before_fail")
after_fail = _register("after_fail")
before_retry = _register("before_retry")
after_retry = _register("after_retry")
before_pause = _register("before_pause")
after_pause = _register("after_pause")
before_resume = _register("before_resume")
after_resume = _register("after_resume")
before_abort = _register("before_abort")
after_abort = _register("after_abort")
before_requeue = _register("before_requeue")
after_requeue = _register("after_requeue")
after_initialize = _register("after_initialize")
before_validation = _register("before_validation")
after_validation = _register("after_validation")
before_save = _register("before_save")
before_create = _register("before_create")
after_create = _register("after_create")
after_save = _register("after_save")
before_destroy = _register("before_destroy")
after_destroy = _register("after_destroy")


class Callbacks:
    """The callbacks of one job class, by kind, as lists of method names in run order."""

    def __init__(self, classes: list[type]) -> None:
        registered: dict[str, list[str]] = {kind: [] for kind in KINDS}
        # chain kinds keep one list in definition order so befores/arounds/afters interleave
        self.chains: dict[str, list[tuple[str, str]]] = {chain: [] for chain in CHAINS}
        for klass in classes:
            for name, value in vars(klass).items():
                function = value.__func__ if isinstance(value, classmethod | staticmethod) else value
                for kind in callback_kinds(function):
                    names = registered[kind]
                    # as in Rocket Job: registering a name again leaves a before where it
                    # was, and moves an after to the front so that it runs first
                    if name in names:
                        if not kind.startswith("after_"):
                            continue
                        names.remove(name)
                    names.append(name)
                    when, _, subject = kind.partition("_")
                    if subject in self.chains:
                        chain = self.chains[subject]
                        entry = (when, name)
                        if entry in chain:
                            chain.remove(entry)
                        chain.append(entry)
        self.by_kind: dict[str, tuple[str, ...]] = {}
        for kind, names in registered.items():
            if kind.startswith("after_") and kind != "after_initialize":
                names = list(reversed(names))
            self.by_kind[kind] = tuple(names)
        self.argcounts: dict[str, int] = {}
        for names in registered.values():
            for name in names:
                for klass in reversed(classes):
                    if name in vars(klass):
                        self.argcounts[name] = _positional_count(vars(klass)[name])
                        break

    def has_chain(self, chain: str) -> bool:
        return bool(self.chains[chain])

    def run(self, job: Any, kind: str, *args: Any) -> None:
        """Run the callbacks of one kind; event arguments go to callbacks that take them."""
        for name in self.by_kind[kind]:
            method = getattr(job, name)
            wanted = self.argcounts.get(name, 0)
            method(*args[:wanted]) if wanted else method()

    def run_chain(self, job: Any, chain: str, inner: Callable[..., Any], *args: Any) -> Any:
        """Run ``inner`` inside the chain's befores, arounds and afters; returns its value."""
        entries = self.chains[chain]
        result: list[Any] = [None]

        def step(index: int) -> None:
            if index == len(entries):
                result[0] = inner(*args)
                return
            when, name = entries[index]
            method = getattr(job, name)
            if when == "before":
                method()
                step(index + 1)
            elif when == "around":
                method(lambda: step(index + 1))
            else:
                step(index + 1)
                method()

        step(0)
        return result[0]


def _positional_count(function: Any) -> int:
    """How many event arguments (after self) a callback accepts."""
    function = function.__func__ if isinstance(function, classmethod | staticmethod) else function
    try:
        parameters = list(inspect.signature(function).parameters.values())[1:]
    except (TypeError, ValueError):
        return 0
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 99
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
