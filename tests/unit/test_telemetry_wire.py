"""What POST /api/v1/telemetry accepts: samples or columns, checked, stored as packed chunks."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from service.monitoring.chunks import Chunk, chunks_of
from service.monitoring.samples import TelemetryBatch
from workers.telemetry import Sample, columns


def test_the_sampler_columns_and_the_sample_form_store_the_same_chunk() -> None:
    sent = [
        Sample(12.0, "gpu:GPU-1", {"gpu_utilization_percent": 10.0, "gpu_power_watts": 100.0}),
        Sample(11.0, "gpu:GPU-1", {"gpu_utilization_percent": 5.0}),  # out of order, one missing
        Sample(11.5, "host:job", {"host_cpu_percent": 7.0}),
    ]
    as_columns = TelemetryBatch.model_validate({"chunks": columns(sent)})
    as_samples = TelemetryBatch.model_validate({"samples": [s.to_json() for s in sent]})
    assert as_columns.count == as_samples.count == 3
    for batch in (as_columns, as_samples):
        chunks = {c.source: c for c in chunks_of(batch.samples, batch.chunks)}
        gpu = chunks["gpu:GPU-1"]
        assert list(gpu.times) == [11.0, 12.0]  # put in time order
        assert gpu.points("gpu_utilization_percent") == [(11.0, 5.0), (12.0, 10.0)]
        assert gpu.points("gpu_power_watts") == [(12.0, 100.0)]  # the missing one is skipped
        assert gpu.last() == {"gpu_utilization_percent": 10.0, "gpu_power_watts": 100.0}
        names, data = gpu.encode()
        again = Chunk.decode(gpu.source, names, data)
        assert list(again.times) == list(gpu.times)
        assert math.isnan(again.columns["gpu_power_watts"][0])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"samples": [{"time": 1, "source": "gpu:x", "values": {"Bad Name": 1}}]},
            "samples[0].values: 'Bad Name' is not a metric name",
        ),
        (
            {"samples": [{"time": 1, "source": "no spaces please", "values": {"v": 1}}]},
            "samples[0].source",
        ),
        (
            {"chunks": [{"source": "gpu:x", "times": [1, 2], "values": {"v": [1]}}]},
            "chunks[0].values.v: 1 values for 2 times",
        ),
        ({"samples": [{"time": 1, "source": "gpu:x", "values": {"v": "NaN"}}]}, "finite"),
        ({"samples": [{"time": 1, "source": "gpu:x", "values": {}}]}, "at least 1"),
        ({"samples": [], "extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_malformed_batches_are_refused_naming_the_place(body: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TelemetryBatch.model_validate(body)
    assert says in str(refused.value)
