"""Reading /metrics in tests: the text parsed with prometheus_client's own parser, samples by name
and labels, and what each label may ever say (fixed vocabularies, never what a client chose)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from sipline import metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of sipline's families; parsing fails loudly on anything off the text format."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape() -> Samples:
    """This process's metrics (all processes' in multi-process mode), as /metrics renders them."""
    return parse(metrics.render().decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the series is absent (not yet touched, or a dead process's gauge)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def vocabulary(routes: set[str]) -> Mapping[str, set[str]]:
    return {
        "method": {*metrics.HTTP_METHODS, metrics.OTHER},
        "route": {*routes, metrics.UNMATCHED_ROUTE},
        "transport": {*metrics.TRANSPORTS, metrics.OTHER},
        "kind": set(metrics.MESSAGE_KINDS),
        "outcome": set(metrics.REGISTER_OUTCOMES),
        "reason": set(metrics.AUTH_FAILURE_REASONS),
        "scope": set(metrics.BLOCK_SCOPES),
        "operation": set(metrics.DB_OPERATIONS),
        # HTTP status codes, and calls' final statuses
        "status": {str(code) for code in range(0, 600)} | set(metrics.CALL_STATUSES) | {metrics.OTHER},
    }


def off_vocabulary(samples: Samples, routes: set[str]) -> list[tuple[str, str, str]]:
    """(metric, label, value) for every label value outside its vocabulary ("le": bucket bounds)."""
    allowed = vocabulary(routes)
    strays = []
    for name, labels in samples:
        for label, text in labels:
            ok = _is_number(text) if label == "le" else text in allowed.get(label, set())
            if not ok:
                strays.append((name, label, text))
    return strays
