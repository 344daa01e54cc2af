"""The URL fragment that sets a request's timeouts: read, clamped, never sent."""

from __future__ import annotations

import pytest

from sipline.webhooks import Timeouts
from sipline.webhooks.timeouts import split


def test_without_a_fragment_the_contract_defaults_apply() -> None:
    assert split("https://example.com/voice") == ("https://example.com/voice", Timeouts(2.0, 5.0, 15.0))


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("ct=1000", Timeouts(1.0, 5.0, 15.0)),
        ("ot=1000", Timeouts(1.0, 5.0, 15.0)),  # the contract's spelling of ct
        ("rt=250", Timeouts(2.0, 0.25, 15.0)),
        ("tt=8000", Timeouts(2.0, 5.0, 8.0)),
        ("ct=1000&rt=3000&tt=9000", Timeouts(1.0, 3.0, 9.0)),
    ],
)
def test_the_fragment_overrides_each_timeout_in_milliseconds(fragment: str, expected: Timeouts) -> None:
    assert split(f"https://example.com/voice?a=1#{fragment}") == ("https://example.com/voice?a=1", expected)


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("ct=5", Timeouts(0.1, 5.0, 15.0)),
        ("ct=60000", Timeouts(10.0, 5.0, 15.0)),
        ("rt=0", Timeouts(2.0, 0.1, 15.0)),
        ("rt=20000", Timeouts(2.0, 15.0, 15.0)),
        ("tt=-3", Timeouts(2.0, 5.0, 0.1)),
        ("tt=99999", Timeouts(2.0, 5.0, 15.0)),
    ],
)
def test_values_out_of_range_are_clamped_into_it(fragment: str, expected: Timeouts) -> None:
    assert split(f"https://example.com/#{fragment}")[1] == expected


@pytest.mark.parametrize("fragment", ["ct=fast", "rt=1.5", "tt=", "rc=3&rp=all&e=dublin&sni=n", "section-2", "ct"])
def test_values_that_are_not_whole_numbers_and_other_keys_are_ignored(fragment: str) -> None:
    assert split(f"https://example.com/#{fragment}")[1] == Timeouts()


def test_the_url_is_kept_exactly_as_written_up_to_the_fragment() -> None:
    for url in ("http://h/p?", "http://h//double?a=1&a=2", "http://h/p;params?q=%41"):
        assert split(url + "#rt=300")[0] == url
