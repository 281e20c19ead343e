"""OpenTelemetry set-up and the W3C trace-context carrier that travels with each event.

The carrier is a plain ``dict`` (``traceparent``/``tracestate``) so it can be stored with an
event, put in a CloudEvent and in Kafka headers, and turned back into a parent context.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def setup_tracing(
    service_name: str, exporter: SpanExporter | None = None, otlp_endpoint: str | None = None
) -> TracerProvider:
    """Install a tracer provider once per process.

    ``exporter`` (tests) receives every span as it ends; ``otlp_endpoint`` (the distributed
    stack's collector) receives them in batches.
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        trace.set_tracer_provider(provider)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces"))
        )
    return provider


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> Context | None:
    if not carrier:
        return None
    return _PROPAGATOR.extract(dict(carrier))
