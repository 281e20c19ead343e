"""Which fields of an integration event are personal data, and whose (its data subject).

Each field is marked once, where the event is declared, as ``Annotated`` metadata::

    family_name: Annotated[str | None, Personal(subject="person_id")] = None
    channel: Annotated[str, CODE]

so that crypto-shredding (issue #20) can encrypt what is personal under its subject's key and a
new text field cannot slip by unjudged (a unit test fails on a text field with neither mark).
Pydantic keeps such metadata on the field and leaves it out of the JSON Schema: marking a
published event does not change its schema.

A subject is the field holding the id of the one the data is about. It is ``person_id`` where
every such event names a person; where an event may come before the person is known (an
anonymous consultation, a provisional referral) or speaks of several (a regular meeting's
conclusions), it is the consultation's, referral's or meeting's own id, a subject of its own
to be tied to its person(s) when they are known.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Personal:
    """The field is personal data of the subject whose id the field ``subject`` holds.

    In a part (a model nested in an event, such as a plan's service), ``subject`` is looked up
    in the part first, then in what holds it."""

    subject: str


@dataclass(frozen=True)
class NotPersonal:
    """The field holds text that is not personal data, for the reason given."""

    reason: str


# A personal value as it travels: sealed under its subject's key (services.platform.sealing).
# Text fields hold one as they are; a field of another type takes this too.
Sealed = Annotated[str, StringConstraints(pattern=r"^sealed:v1:[A-Za-z0-9_-]+$")]

OF_PERSON = Personal(subject="person_id")
CODE = NotPersonal("a code: reference data, an agency, a role or a closed set of values")
IDENTIFIER = NotPersonal("an id of a record, a request or a trace, never a person's own number")
STAFF = NotPersonal("the acting staff member's id, kept to answer for what was done")


def personal_fields(model: type[BaseModel]) -> dict[str, Personal]:
    """Every personal field of ``model``, by path (``resource_gaps.gap`` for a part's field),
    with its subject as a path from the event too (``resource_gaps.case_id``: the id in that
    same gap)."""
    found: dict[str, Personal] = {}
    for path, info, scopes in _fields(model):
        mark = _mark(info, f"{model.__name__}.{path}")
        if isinstance(mark, Personal):
            found[path] = Personal(_subject(mark.subject, scopes, f"{model.__name__}.{path}"))
    return found


def unmarked_text_fields(model: type[BaseModel]) -> list[str]:
    """The paths of ``model``'s fields that may hold text but are marked neither way."""
    return [
        path
        for path, info, _ in _fields(model)
        if _holds_text(info.annotation) and _mark(info, f"{model.__name__}.{path}") is None
    ]


Scopes = tuple[tuple[str, type[BaseModel]], ...]
"""The models a field lies in, innermost first, each with its path prefix from the event."""


def _fields(
    model: type[BaseModel], prefix: str = "", outer: Scopes = ()
) -> Iterator[tuple[str, FieldInfo, Scopes]]:
    scopes: Scopes = ((prefix, model), *outer)
    for name, info in model.model_fields.items():
        path = prefix + name
        yield path, info, scopes
        for part in _parts(info.annotation):
            yield from _fields(part, f"{path}.", scopes)


def _parts(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models a field's type holds: itself, or in a list, a map's values, an optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in get_args(annotation):
        yield from _parts(argument)


def _holds_text(annotation: Any) -> bool:
    if annotation is str or annotation is Any:
        return True
    if get_origin(annotation) is Literal:
        return False  # a closed set of values, fixed in the contract
    return any(_holds_text(argument) for argument in get_args(annotation))


def _mark(info: FieldInfo, where: str) -> Personal | NotPersonal | None:
    marks = [m for m in info.metadata if isinstance(m, Personal | NotPersonal)]
    if len(marks) > 1:
        raise TypeError(f"{where} is marked more than once: {marks}")
    return marks[0] if marks else None


def _subject(name: str, scopes: Scopes, where: str) -> str:
    for prefix, scope in scopes:
        field = scope.model_fields.get(name)
        if field is None:
            continue
        # A key is found by the subject's id: one that may be missing could not be kept.
        if field.annotation is not UUID:
            raise TypeError(f"{where}: its subject {prefix}{name} must be a required UUID")
        return prefix + name
    raise TypeError(f"{where}: its subject {name!r} is no field of it or of what holds it")
