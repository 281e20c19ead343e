"""Reading the desk's forms: strings trimmed, empty fields left out, lists kept as lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def values(form: Any, names: Iterable[str], lists: Iterable[str] = ()) -> dict[str, Any]:
    """What the user typed, to fill the form again if the API refuses it."""
    found: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in names}
    for name in lists:
        found[name] = [str(v) for v in form.getlist(name)]
    return found


def body(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The API body: the named fields the user filled in (an empty field is "not given")."""
    return {name: values[name] for name in names if values.get(name) not in ("", None, [])}


def options(t: Any, kind: str, codes: Iterable[str]) -> list[tuple[str, str]]:
    """(code, label) pairs for a select or a set of choices; never a raw code shown."""
    return [(code, t.code(kind, code)) for code in codes]
