"""Times as people write them: epoch seconds, ISO 8601, relative to now."""

from __future__ import annotations

import pytest

from service.times import parse_time

NOW = 1_765_076_400.0  # 2025-12-07T03:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        (" NOW ", NOW),
        ("-90s", NOW - 90),
        ("-30m", NOW - 1800),
        ("-1h", NOW - 3600),
        ("1h", NOW - 3600),  # the minus may be left out (`titan logs --since 1h`)
        ("-1.5h", NOW - 5400),
        ("-2d", NOW - 2 * 86400),
        ("-1w", NOW - 7 * 86400),
        ("1765000000", 1_765_000_000.0),
        ("1765000000.25", 1_765_000_000.25),
        ("2025-12-07T03:00:00Z", NOW),
        ("2025-12-07T04:00:00+01:00", NOW),
        ("2025-12-07T03:00:00", NOW),  # no zone: UTC
        ("2025-12-07 03:00", NOW),
        ("2025-12-07", NOW - 3 * 3600),
    ],
)
def test_accepted_forms(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "-1y",
        "-h",
        "--1h",
        "-5",
        "1e9",
        "nan",
        "inf",
        "12:00",
        "2025-13-01",
        "9" * 400,
        "-" + "9" * 20 + "d",
        "\x00",
        "\ud800",
        "2025-12-07T03:00:00Z\x00",
    ],
)
def test_anything_else_is_a_value_error_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_time(text, NOW)
    assert "ISO 8601" in str(info.value) and "-1h" in str(info.value)


def test_times_before_1970_or_after_5138_are_refused() -> None:
    with pytest.raises(ValueError, match="outside 1970"):
        parse_time("-100000w", NOW)
    with pytest.raises(ValueError, match="outside 1970"):
        parse_time("999999999999", NOW)
    with pytest.raises(ValueError, match="outside 1970"):
        parse_time("1900-01-01", NOW)
