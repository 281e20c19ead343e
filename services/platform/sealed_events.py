"""Which attributes of each domain event are sealed before it is stored, and under whose key.

A field's mark is declared once (``contracts.personal``). Where a domain event is published,
its attributes take the marks of the integration event fields they become (through the
service's ``Published`` declarations); an attribute that never leaves its service (a slip's
provisional identity, a consent's witness) is marked on the domain event itself, the same
way. ``services.platform.eventstore.TracingMapper`` seals what is marked as it stores an event,
so that the event store, and every copy made from it, holds only ciphertext.

A subject that is not a person is linked to the person (or case) the event names, so that
erasing the person erases it too.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from contracts.personal import NotPersonal, Personal, personal_fields
from services.platform.publishing import Published
from services.platform.sealing import Sealer

# Attributes naming whom an aggregate's event is about: its own subject is linked to each.
ABOUT = ("person_id", "case_ids")
ORIGINATOR = "originator_id"


@dataclass(frozen=True)
class SealedField:
    """An attribute (then a key in each item it holds) sealed under the id at ``subject``,
    a path from the event, or from the same item when it shares the field's first step."""

    path: tuple[str, ...]
    subject: tuple[str, ...]


class Sealing:
    """A service's sealing of its domain events: which fields, and the keys."""

    def __init__(self, published: Iterable[Published], sealer: Sealer) -> None:
        self._published = {p.domain: p for p in published}
        self.sealer = sealer
        self._fields: dict[type, tuple[SealedField, ...]] = {}

    def fields(self, kind: type) -> tuple[SealedField, ...]:
        found = self._fields.get(kind)
        if found is None:
            found = self._fields[kind] = sealed_fields(kind, self._published.get(kind))
        return found

    def seal(self, event: Any) -> Any:
        """A copy of ``event`` with its marked fields sealed; its subjects linked."""
        for about in ABOUT:
            named = getattr(event, about, None)
            for target in named if isinstance(named, list) else [named]:
                if isinstance(target, UUID):
                    self.sealer.keys.link(event.originator_id, target)
        fields = self.fields(type(event))
        if not fields:
            return event
        sealed = copy.copy(event)
        state: dict[str, Any] = sealed.__dict__
        for field in fields:
            name = field.path[0]
            state[name] = self._sealed(state[name], field.path[1:], field, state, event)
        return sealed

    def _sealed(
        self, value: Any, rest: tuple[str, ...], field: SealedField, item: Any, event: Any
    ) -> Any:
        if value is None:
            return None
        if not rest:
            subject = _subject(field, item, event)
            if isinstance(value, list):
                return [self.sealer.seal(subject, v, event.timestamp) for v in value]
            return self.sealer.seal(subject, value, event.timestamp)
        if isinstance(value, list):
            return [self._sealed(v, rest, field, v, event) for v in value]
        opened = dict(value)
        opened[rest[0]] = self._sealed(opened.get(rest[0]), rest[1:], field, opened, event)
        return opened


def _subject(field: SealedField, item: Mapping[str, Any] | Any, event: Any) -> UUID:
    if len(field.subject) > 1 and isinstance(item, Mapping):
        value = item[field.subject[-1]]
    else:
        value = getattr(event, field.subject[0])
    return value if isinstance(value, UUID) else UUID(str(value))


def sealed_fields(kind: type, published: Published | None) -> tuple[SealedField, ...]:
    """The fields of domain event ``kind`` to seal: its own marks and, if it is published as
    ``published``, those of the fields it becomes."""
    found = dict(_own_marks(kind))
    for path, subject in _published_marks(published):
        if path[0] in found:
            raise TypeError(f"{kind.__qualname__}.{path[0]} is marked on both ends")
        found[path[0]] = SealedField(path, subject)
    return tuple(found.values())


def _own_marks(kind: type) -> Iterator[tuple[str, SealedField]]:
    for name, hint in typing.get_type_hints(kind, include_extras=True).items():
        for mark in getattr(hint, "__metadata__", ()):
            if isinstance(mark, Personal):
                yield name, SealedField((name,), (mark.subject,))


def _published_marks(
    published: Published | None,
) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    if published is None:
        return
    seen: set[tuple[str, ...]] = set()
    for contract in (published.contract, *published.variants):
        for path, mark in personal_fields(contract).items():
            steps = tuple(path.split("."))
            source = published.source(steps[0])
            subject = tuple(mark.subject.split("."))
            subject_source = published.source(subject[0])
            # A derived field is sealed where the attribute it is derived from is marked.
            if source is None or subject_source is None or (source, *steps[1:]) in seen:
                continue
            seen.add((source, *steps[1:]))
            yield (source, *steps[1:]), (subject_source, *subject[1:])


def unmarked_attributes(kind: type, published: Published | None) -> list[str]:
    """``kind``'s attributes that may hold text yet have no mark, on either end."""
    marked = {name for name, _ in _own_marks(kind)}
    if published is not None:
        for contract in (published.contract, *published.variants):
            marked |= {
                source
                for name in contract.model_fields
                if (source := published.source(name)) is not None
            }
    hints = typing.get_type_hints(kind, include_extras=True)
    return [
        name
        for name, hint in hints.items()
        if name not in marked and not _marked_not_personal(hint) and _holds_text(hint)
    ]


def _marked_not_personal(hint: Any) -> bool:
    return any(isinstance(m, NotPersonal) for m in getattr(hint, "__metadata__", ()))


def _holds_text(hint: Any) -> bool:
    if hint is str or hint is Any:
        return True
    return any(_holds_text(argument) for argument in typing.get_args(hint))
