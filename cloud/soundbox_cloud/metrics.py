"""Prometheus metrics of one cloud process (prometheus-client), served at GET /metrics.

Counts that live in the database (payments by status, devices online, campaign states) are
read at scrape time, so every process sharing the database reports the same truth; what
only this process sees (HTTP requests, notify->ack latency, OTA chunks) is counted here.
A registry per Cloud keeps several clouds in one process (the tests) apart.
"""
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _FromDatabase:
    """Collector reading the shared state at scrape time."""

    def __init__(self, cloud):
        self.cloud = cloud

    def collect(self):
        cloud = self.cloud
        payments = GaugeMetricFamily("soundbox_payments", "Payments by current status", labels=["status"])
        for status, n in sorted(cloud.store.status_counts().items()):
            payments.add_metric([status], n)
        yield payments
        yield GaugeMetricFamily("soundbox_devices_online", "Devices whose last status is online",
                                value=cloud.store.online_count())
        campaigns = GaugeMetricFamily("soundbox_ota_campaigns", "OTA campaigns by state", labels=["state"])
        states = {}
        for c in cloud.campaign_store.campaigns():
            states[c["state"]] = states.get(c["state"], 0) + 1
        for state, n in sorted(states.items()):
            campaigns.add_metric([state], n)
        yield campaigns
        chunks = cloud.chunks
        yield CounterMetricFamily("soundbox_ota_chunks_sent", "OTA chunks this process sent", value=chunks.chunks_sent)
        yield CounterMetricFamily("soundbox_ota_chunk_requests_throttled",
                                  "OTA chunk requests refused by the per-device rate limit",
                                  value=chunks.throttled_requests)
        webhooks = GaugeMetricFamily("soundbox_webhook_events", "Webhook events by delivery state", labels=["state"])
        for state, n in sorted(cloud.webhooks.stats().items()):
            webhooks.add_metric([state], n)
        yield webhooks
        yield CounterMetricFamily("soundbox_device_messages_dropped", "Malformed device messages dropped",
                                  value=cloud.bad_messages)
        yield CounterMetricFamily("soundbox_telemetry_over_limit",
                                  "Telemetry messages over a box's rate limit, dropped before decoding",
                                  value=cloud.telemetry_gate.dropped)


class CloudMetrics:
    def __init__(self, cloud):
        self.registry = CollectorRegistry()
        self.payments_accepted = Counter("soundbox_payments_accepted", "Payments accepted by this process",
                                         registry=self.registry)
        self.ack_latency = Histogram("soundbox_notify_to_ack_seconds",
                                     "First notification to the device's settling ack, as this process saw it",
                                     buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.http_requests = Counter("soundbox_http_requests", "HTTP requests by route, method and status",
                                     ["route", "method", "code"], registry=self.registry)
        self.http_seconds = Histogram("soundbox_http_request_seconds", "HTTP request time by route",
                                      ["route"], buckets=HTTP_BUCKETS_S, registry=self.registry)
        self.registry.register(_FromDatabase(cloud))

    def http(self, route, method, code, seconds):
        self.http_requests.labels(route, method, str(code)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def render(self):
        return generate_latest(self.registry)
