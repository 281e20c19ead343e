"""The desk's one message catalogue: gettext PO files read at start-up, Japanese first.

The PO files are the source and are read as they are (Babel), so `make run` needs no
compilation step. Keys are stable ids; a code is looked up as ``<kind>.<code>``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALES = ("ja", "en")
DEFAULT_LOCALE = "ja"
_HERE = Path(__file__).parent


@cache
def catalogue(locale: str) -> Catalog:
    with (_HERE / f"{locale}.po").open("rb") as po:
        return read_po(po, locale=locale)


@cache
def messages(locale: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in catalogue(locale) if m.id and m.string}


class Translator:
    """One locale's lookups. A key the catalogue lacks is shown as the key itself, which the
    catalogue tests forbid for every code in the reference data."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self._messages = messages(self.locale)

    def __call__(self, key: str) -> str:
        return self._messages.get(key, key)

    def code(self, kind: str, value: str | None) -> str:
        if value is None or value == "":
            return ""
        return self(f"{kind}.{value}")

    def knows(self, key: str) -> bool:
        return key in self._messages
