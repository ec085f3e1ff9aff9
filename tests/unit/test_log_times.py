"""Times of output lines: parsing ``--since``, recording line times, reading them back."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.backends.base import LogChunk
from service.backends.docker import engine_line_times
from service.backends.log_times import (
    END,
    first_line_since,
    last_lines,
    read_line_times,
    with_times,
)
from service.times import parse_time

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "back"),
    [("30s", 30), ("10m", 600), ("-1h", 3600), ("2d", 172800), ("1w", 604800), ("1.5h", 5400)],
)
def test_a_span_counts_back_from_now(text: str, back: float) -> None:
    assert parse_time(text, NOW) == NOW - back


def test_iso_times_with_and_without_a_zone_are_utc() -> None:
    three = datetime(2026, 12, 7, 3, 0, tzinfo=UTC).timestamp()
    assert parse_time("2026-12-07T03:00:00Z", NOW) == three
    assert parse_time("2026-12-07T03:00:00", NOW) == three
    assert parse_time("2026-12-07T04:00:00+01:00", NOW) == three


def test_a_bad_time_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"'yesterday' is not a time; give .*ISO 8601"):
        parse_time("yesterday", NOW)


def test_the_entrypoint_records_when_each_line_began(tmp_path: Path) -> None:
    times = tmp_path / "output.times"
    entrypoint = [sys.executable, "-m", "workers.entrypoint", "--name", "x", "--telemetry", "none"]
    program = "echo one; printf part; sleep 0.5; echo ial; echo 'to [stderr]' >&2"
    with open(tmp_path / "output.log", "wb") as output:
        subprocess.run(
            [*entrypoint, "--", "sh", "-c", program],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TITAN_LOG_TIMES": str(times)},
            timeout=30,
            check=True,
        )
    data = (tmp_path / "output.log").read_bytes()
    lines = data.splitlines(keepends=True)
    assert b"one\n" in lines and b"partial\n" in lines and b"to [stderr]\n" in lines
    marks = read_line_times(times)
    starts = [sum(len(line) for line in lines[:i]) for i in range(len(lines))]
    assert [offset for offset, _ in marks] == starts  # one mark per line, at its first byte
    when = dict(zip(lines, (t for _, t in marks), strict=True))
    assert when[b"to [stderr]\n"] - when[b"partial\n"] >= 0.4  # when it began, not ended


def test_lines_since_a_time_and_each_with_its_time() -> None:
    marks = [(0, NOW - 60), (6, NOW - 30), (12, NOW)]
    assert first_line_since(marks, NOW - 45) == 6
    assert first_line_since(marks, NOW + 1) == END
    chunk = LogChunk("b\u00e9fe\nafter\nlast\n", 18, 6)  # é is two bytes
    assert with_times(LogChunk("early\nlater\nnow\n", 16, 0), marks).splitlines() == [
        "2026-12-07T03:59:00.000000Z early",
        "2026-12-07T03:59:30.000000Z later",
        "2026-12-07T04:00:00.000000Z now",
    ]
    assert with_times(chunk, [(12, NOW)]).splitlines()[:2] == [
        "- b\u00e9fe",  # before any recorded time
        "2026-12-07T04:00:00.000000Z after",
    ]


def test_last_lines_know_where_they_begin() -> None:
    chunk = last_lines(b"one\ntwo\nthree\nfour", 2, 18)
    assert chunk == LogChunk("three\nfour\n", 18, 8)


def test_the_engines_times_map_to_offsets_of_the_bare_output() -> None:
    stamped = b"2026-12-07T03:59:00.123456789Z first line\n2026-12-07T04:00:00Z second\ngarbage\n"
    marks = engine_line_times(stamped)
    assert marks[0] == (0, pytest.approx(NOW - 60 + 0.123456789))
    assert marks[1] == (11, NOW)
    assert len(marks) == 2
