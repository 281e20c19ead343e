"""One trace spans the HTTP request, the event store write, the relay, Kafka and the projector."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.topics import Topics
from services.platform.bus import KafkaPublisher, Message, ensure_topics
from services.platform.settings import Settings
from services.platform.tracing import setup_tracing
from services.wiring import intake_app, intake_relay, key_store, projection_runner, view_store
from tests.integration.conftest import Cleanup
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.integration


def test_one_trace_from_http_to_the_projector(
    distributed_settings: Settings, auth: Callable[..., dict[str, str]], cleanup: Cleanup
) -> None:
    settings = distributed_settings
    bootstrap = settings.kafka_bootstrap_servers or ""
    topic = Topics(settings.topic_prefix).events("intake")
    ensure_topics(bootstrap, [topic], 1)
    exporter = InMemorySpanExporter()
    setup_tracing("tsunagu-test", exporter=exporter)

    app = intake_app(settings)
    response = cleanup.client(app).post(
        "/consultations",
        json={"channel": "visit", "route_in": "self", "caller_kind": "self"},
        headers=auth(),
    )
    assert response.status_code == 201
    publisher = KafkaPublisher(bootstrap)
    assert cleanup.relay(intake_relay(settings, app.state.application, publisher)).drain() == 1
    publisher.close()

    [record] = read_topic(bootstrap, topic, expect=1)
    headers = tuple((k, bytes(v)) for k, v in record.headers)  # type: ignore[attr-defined]
    store = cleanup.store(view_store(settings))
    keys = key_store(settings)
    runner = projection_runner(settings, store, KafkaPublisher(bootstrap), keys)
    runner.consume(Message(topic, "", record.value, headers))  # type: ignore[attr-defined]
    keys.close()

    spans = exporter.get_finished_spans()
    by_name = {span.name: span for span in spans}
    http = next(s for s in spans if s.name.startswith("POST /consultations") and s.parent is None)
    chain = [
        http,
        by_name["eventstore.save intake"],
        by_name["relay.publish"],
        by_name["projection.apply"],
    ]
    assert {span.context.trace_id for span in chain} == {http.context.trace_id}
    # Each hop is the child of the one before: the trace crossed Kafka in the headers.
    relay, projector = by_name["relay.publish"], by_name["projection.apply"]
    assert by_name["eventstore.save intake"].parent is not None
    assert relay.parent is not None and projector.parent is not None
    assert projector.parent.span_id == relay.context.span_id
    assert relay.parent.span_id == by_name["eventstore.save intake"].context.span_id
