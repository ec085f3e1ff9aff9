"""How raw samples are stored: one chunk per source per batch, as columns of doubles.

A chunk holds the times and, per metric, the values of samples one source
sent together: little-endian float64 columns after each other (times first),
with NaN where a sample lacked the metric. Writing one row per source and
batch, and never turning floats into text, is what lets a small server take
tens of thousands of samples a second.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from service.monitoring.samples import WireChunk, WireSample

MISSING = math.nan


@dataclass(frozen=True)
class Chunk:
    """Samples of one source: ``times`` and one column per metric (NaN: not reported)."""

    source: str
    times: array[float]
    columns: dict[str, array[float]]
    info: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, source: str, samples: Sequence[WireSample]) -> Chunk:
        """A chunk of ``samples`` (all from ``source``), in time order."""
        ordered = sorted(samples, key=lambda s: s.time)
        names = tuple(ordered[0].values)
        if all(tuple(s.values) == names for s in ordered):  # the usual case: transpose in C
            rows = zip(*(s.values.values() for s in ordered), strict=True)
            columns = {name: array("d", row) for name, row in zip(names, rows, strict=True)}
        else:
            every = sorted({name for s in ordered for name in s.values})
            columns = {
                name: array("d", [s.values.get(name, MISSING) for s in ordered]) for name in every
            }
        info = ordered[-1].info
        return cls(source, array("d", [s.time for s in ordered]), columns, info)

    @classmethod
    def from_wire(cls, wire: WireChunk) -> Chunk:
        """The chunk a sender sent in columns, put in time order."""
        times = wire.times
        order = (
            None
            if all(a <= b for a, b in pairwise(times))
            else sorted(range(len(times)), key=times.__getitem__)
        )
        columns = {}
        for name, column in wire.values.items():
            values = [MISSING if v is None else v for v in column]
            if order is not None:
                values = [values[i] for i in order]
            columns[name] = array("d", values)
        ordered = times if order is None else [times[i] for i in order]
        return cls(wire.source, array("d", ordered), columns, wire.info)

    def last(self) -> dict[str, float]:
        """The newest reported value of each metric."""
        newest = {}
        for name, column in self.columns.items():
            for value in reversed(column):
                if value == value:  # not NaN
                    newest[name] = value
                    break
        return newest

    def encode(self) -> tuple[list[str], bytes]:
        """The metric names and the packed columns (times first)."""
        names = list(self.columns)
        packed = array("d", self.times)
        for name in names:
            packed.extend(self.columns[name])
        if sys.byteorder == "big":
            packed.byteswap()
        return names, packed.tobytes()

    @classmethod
    def decode(cls, source: str, names: list[str], data: bytes) -> Chunk:
        """The chunk ``encode`` packed."""
        packed = array("d")
        packed.frombytes(data)
        if sys.byteorder == "big":
            packed.byteswap()
        count = len(packed) // (len(names) + 1)
        columns = {name: packed[(i + 1) * count : (i + 2) * count] for i, name in enumerate(names)}
        return cls(source, packed[:count], columns)

    def points(self, metric: str) -> list[tuple[float, float]]:
        """``(time, value)`` of ``metric`` where it was reported."""
        column = self.columns.get(metric)
        if column is None:
            return []
        return [(t, v) for t, v in zip(self.times, column, strict=True) if v == v]  # not NaN


def chunks_of(samples: Sequence[WireSample], wire: Sequence[WireChunk] = ()) -> list[Chunk]:
    """``samples`` grouped into one chunk per source, and the ``wire`` chunks, as chunks."""
    by_source: dict[str, list[WireSample]] = defaultdict(list)
    for sample in samples:
        by_source[sample.source].append(sample)
    chunks = [Chunk.of(source, group) for source, group in by_source.items()]
    return chunks + [Chunk.from_wire(chunk) for chunk in wire]
