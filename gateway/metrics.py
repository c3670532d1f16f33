"""Prometheus metrics, one registry per gateway instance (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._made: dict[str, object] = {}

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return self._get(Counter, name, doc, labels)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return self._get(Gauge, name, doc, labels)

    def histogram(self, name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] | None = None) -> Histogram:
        kw = {"buckets": buckets} if buckets else {}
        return self._get(Histogram, name, doc, labels, **kw)

    def _get(self, cls, name, doc, labels, **kw):  # type: ignore[no-untyped-def]
        m = self._made.get(name)
        if m is None:
            m = cls(name, doc, labels, registry=self.registry, **kw)
            self._made[name] = m
        elif not isinstance(m, cls):
            raise TypeError(f"metric {name} already registered as {type(m).__name__}")
        return m

    def render(self) -> bytes:
        return generate_latest(self.registry)
