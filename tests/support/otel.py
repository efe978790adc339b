"""OpenTelemetry's SDK with an in-memory metric reader and span exporter, installed as ours; and
the library's structured log events, read back from pytest's log capture."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from entra_ciam.opentelemetry import instrument, uninstrument

Attributes = frozenset[tuple[str, Any]]
Points = dict[str, dict[Attributes, Any]]


def points(reader: InMemoryMetricReader) -> Points:
    """What ``reader`` holds now, as {metric name: {attributes: value}}; a histogram's value is
    its (count, sum). The tests and bench/operations_plot.py read metrics through this."""
    data = reader.get_metrics_data()
    out: Points = {}
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                series = out.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = frozenset((point.attributes or {}).items())
                    if hasattr(point, "count"):
                        series[key] = (point.count, point.sum)
                    else:
                        series[key] = point.value
    return out


@dataclass
class Otel:
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter

    def points(self) -> Points:
        """{metric name: {attributes: value}}; a histogram's value is its (count, sum)."""
        return points(self.reader)

    def value(self, name: str, **attributes: Any) -> Any:
        """The value of ``name`` for exactly these attributes (0 when never reported)."""
        return self.points().get(name, {}).get(frozenset(attributes.items()), 0)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@contextmanager
def otel() -> Iterator[Otel]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(meter_provider=meter_provider, tracer_provider=tracer_provider)
    try:
        yield Otel(reader, exporter)
    finally:
        uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    """The records of the event ``name``, in order."""
    return [r for r in caplog.records if getattr(r, "event", None) == name]
