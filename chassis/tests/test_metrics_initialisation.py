"""`initialise_labels` exports every combination of the label values known at start, at 0."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from chassis.metrics import initialise_labels


def test_every_combination_of_known_label_values_is_exported_at_zero() -> None:
    registry = CollectorRegistry()
    counter = Counter("sends", "Sends.", ["kind", "outcome"], registry=registry)

    initialise_labels(counter, kind=["welcome", "receipt"], outcome=("sent", "failed"))

    exported = {
        (sample.labels["kind"], sample.labels["outcome"]): sample.value
        for sample in next(iter(registry.collect())).samples
        if sample.name == "sends_total"
    }
    assert exported == {
        ("welcome", "sent"): 0,
        ("welcome", "failed"): 0,
        ("receipt", "sent"): 0,
        ("receipt", "failed"): 0,
    }


def test_a_histogram_is_exported_with_empty_buckets() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("waits", "Waits.", ["queue"], buckets=(1.0,), registry=registry)

    initialise_labels(histogram, queue=["mail"])

    assert registry.get_sample_value("waits_count", {"queue": "mail"}) == 0
    assert registry.get_sample_value("waits_bucket", {"queue": "mail", "le": "+Inf"}) == 0


def test_initialising_keeps_what_was_counted_already() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "Hits.", ["result"], registry=registry)
    counter.labels("hit").inc(3)

    initialise_labels(counter, result=["hit", "miss"])

    assert registry.get_sample_value("hits_total", {"result": "hit"}) == 3
    assert registry.get_sample_value("hits_total", {"result": "miss"}) == 0
