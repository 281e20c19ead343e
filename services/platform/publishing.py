"""What a service publishes of its domain events, declared one line an event.

Each ``Published`` names a domain event class, the integration event it becomes and only what
differs between them: which field holds the aggregate's id, and the fields the domain names
otherwise or that are derived. Every other field of the integration event is copied by name, so
adding a field to both ends needs no code here; a field the domain event lacks takes the
integration event's default, or fails validation if it has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.events import IntegrationEvent
from services.platform.relay import Translation

# Where an integration event's field comes from: a domain attribute, or a function of the event.
Source = str | Callable[[Any], Any]


@dataclass(frozen=True)
class Published:
    """One domain event class as the integration event other services rely on."""

    domain: type
    contract: type[IntegrationEvent]
    # The integration event's field that holds the aggregate's id (the domain's originator_id).
    originator: str
    fields: Mapping[str, Source] = field(default_factory=dict)
    # Where one domain event stands for several (a referral's moves): which ``contract``'s
    # subclass a given event becomes.
    chosen_by: Callable[[Any], type[IntegrationEvent]] | None = None
    # Every subclass ``chosen_by`` may choose: their fields' marks apply to the domain event.
    variants: tuple[type[IntegrationEvent], ...] = ()

    def source(self, name: str) -> str | None:
        """The domain attribute the integration event's field ``name`` is copied from; None
        where it is derived by a function."""
        source = self.fields.get(name, "originator_id" if name == self.originator else name)
        return source if isinstance(source, str) else None

    def data(self, event: Any) -> IntegrationEvent:
        contract = self.contract if self.chosen_by is None else self.chosen_by(event)
        values: dict[str, Any] = {}
        for name in contract.model_fields:
            source = self.fields.get(name, "originator_id" if name == self.originator else name)
            if callable(source):
                values[name] = source(event)
            elif hasattr(event, source):
                values[name] = getattr(event, source)
        return contract.model_validate(values)


def translation(published: Iterable[Published]) -> Callable[[object], Translation | None]:
    """A service's translation for the relay: each declared domain event as its integration
    event, keyed by the person it is about (None: keyed by the aggregate); others unpublished."""
    by_domain = {p.domain: p for p in published}

    def translate(event: Any) -> Translation | None:
        declared = by_domain.get(type(event))
        if declared is None:
            return None
        data = declared.data(event)
        return data, event.municipality, getattr(data, "person_id", None)

    return translate
