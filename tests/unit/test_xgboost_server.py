"""The XGBoost serving app on a loopback port (a thread) with models trained here."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xgboost

from tests.waiting import wait_for
from workers.model_folder import (
    METADATA_FILE,
    MODEL_FILE,
    newest_version,
    publish,
    shared_folder,
    versions,
)
from workers.serving.served_model import ServedModel, check_instances
from workers.serving.xgboost_server import ModelServer

FEATURES = 4


def trained(seed: int, rounds: int = 5) -> tuple[Any, Any]:
    """A small booster and rows it was not trained on."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, FEATURES)).astype(np.float32)
    y = x @ rng.normal(size=FEATURES) + rng.normal(scale=0.1, size=300)
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 3}, xgboost.DMatrix(x, y), rounds
    )
    return booster, rng.normal(size=(7, FEATURES)).astype(np.float32)


def metadata(rmse: float = 0.5) -> dict[str, Any]:
    return {"features": {"count": FEATURES}, "metric": {"name": "rmse", "value": rmse}}


def own_predictions(booster: Any, rows: Any) -> list[float]:
    """XGBoost's own predictions, as the app's JSON carries them."""
    return [float(v) for v in booster.predict(xgboost.DMatrix(rows))]


Start = Callable[..., tuple[str, ModelServer]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start apps on 127.0.0.1:0 serving tmp_path/models; all stopped after."""
    servers: list[ModelServer] = []

    def begin(version: str | None = None, device: str = "cpu") -> tuple[str, ModelServer]:
        model = ServedModel(tmp_path / "models", version, device)
        server = ModelServer(("127.0.0.1", 0), model, reload_seconds=0.05)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.url, server

    yield begin
    for server in servers:
        server.shutdown()
        server.server_close()


def serving(url: str, version: str) -> Callable[[], bool]:
    """True once the app at ``url`` serves ``version``."""

    def check() -> bool:
        answer = httpx.get(url + "/healthz")
        return answer.status_code == 200 and answer.json()["model_version"] == version

    return check


def test_healthy_only_with_a_model_and_predictions_are_xgboosts_own(
    tmp_path: Path, start: Start
) -> None:
    url, _ = start()
    waiting = httpx.get(url + "/healthz")
    assert waiting.status_code == 503
    assert "no model loaded yet: waiting for a model version in" in waiting.text
    refused = httpx.post(url + "/predict", json={"instances": [[0.0] * FEATURES]})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "no_model"
    assert httpx.get(url + "/model").json()["model_version"] is None

    booster, rows = trained(1)
    version = publish(booster, metadata(0.25), tmp_path / "models")
    wait_for(serving(url, version.name), timeout=10, every=0.05)

    answer = httpx.post(url + "/predict", json={"instances": rows.tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "predictions": own_predictions(booster, rows),
        "model_version": version.name,
    }
    with_missing = httpx.post(url + "/predict", json={"instances": [[None, 1.0, 2.0, None]]})
    nan_row = np.array([[np.nan, 1.0, 2.0, np.nan]], dtype=np.float32)
    assert with_missing.json()["predictions"] == own_predictions(booster, nan_row)

    for path in ("/", "/model"):
        described = httpx.get(url + path).json()
        assert described["model_version"] == version.name and described["features"] == FEATURES
        assert described["metadata"]["metric"] == {"name": "rmse", "value": 0.25}
        assert described["metadata"]["version"] == version.name
        assert described["device"] == "cpu" and described["follows"] == "newest version"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "the body is not JSON: Expecting property name"),
        (b'{"instances": [[NaN, 1, 2, 3]]}', 400, "NaN is not a number JSON allows"),
        (b"null", 400, 'the body must be a JSON object {"instances": [...]}'),
        (b'{"rows": [[1, 2, 3, 4]]}', 400, 'the body must be a JSON object {"instances"'),
        (b'{"instances": []}', 400, "'instances' must be a non-empty list of rows"),
        (b'{"instances": [1, 2, 3, 4]}', 400, "instances[0] must be a list of 4 numbers"),
        (
            b'{"instances": [[1, 2, 3, 4], [1, 2, 3]]}',
            400,
            "instances[1] has 3 values; the model takes 4 features",
        ),
        (b'{"instances": [[1, "2", 3, 4]]}', 400, "instances[0][1] is the text '2': values must"),
        (b'{"instances": [[1, 2, true, 4]]}', 400, "instances[0][2] is True: values must be"),
        (b'{"instances": [[1, 2, 3, 1e39]]}', 400, "instances[0][3] is 1e+39: values must be"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(
    tmp_path: Path, start: Start, body: bytes, status: int, message: str
) -> None:
    booster, _ = trained(1)
    version = publish(booster, metadata(), tmp_path / "models")
    url, _ = start()
    wait_for(serving(url, version.name), timeout=10, every=0.05)
    answer = httpx.post(url + "/predict", content=body)
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"], answer.text
    assert httpx.get(url + "/healthz").status_code == 200  # it goes on serving


def test_wrong_routes_and_methods_are_named(tmp_path: Path, start: Start) -> None:
    url, _ = start()
    missing = httpx.get(url + "/nope")
    assert missing.status_code == 404 and "use /predict, /healthz or /model" in missing.text
    assert httpx.post(url + "/nope", json={}).status_code == 404
    assert httpx.get(url + "/predict").status_code == 405
    empty = httpx.post(url + "/predict")
    assert empty.status_code == 400 and "send a JSON body" in empty.text


def test_a_new_version_is_served_once_published_and_withdrawing_it_goes_back(
    tmp_path: Path, start: Start
) -> None:
    folder = tmp_path / "models"
    first, rows = trained(1)
    one = publish(first, metadata(), folder)
    url, _ = start()
    wait_for(serving(url, one.name), timeout=10, every=0.05)

    second, _ = trained(2, rounds=8)
    two = publish(second, metadata(), folder)
    assert two.name > one.name and [v.name for v in versions(folder)] == [one.name, two.name]
    wait_for(serving(url, two.name), timeout=10, every=0.05)
    answer = httpx.post(url + "/predict", json={"instances": rows.tolist()}).json()
    assert answer == {"predictions": own_predictions(second, rows), "model_version": two.name}
    assert own_predictions(second, rows) != own_predictions(first, rows)

    shutil.rmtree(two.folder)  # withdraw the bad model: the newest left is served again
    wait_for(serving(url, one.name), timeout=10, every=0.05)
    answer = httpx.post(url + "/predict", json={"instances": rows.tolist()}).json()
    assert answer["predictions"] == own_predictions(first, rows)


def test_a_pinned_version_is_served_whatever_is_newer(tmp_path: Path, start: Start) -> None:
    folder = tmp_path / "models"
    first, rows = trained(1)
    one = publish(first, metadata(), folder)
    two = publish(trained(2)[0], metadata(), folder)
    url, server = start(version=one.name)
    wait_for(serving(url, one.name), timeout=10, every=0.05)
    assert server.model.refresh() is False  # the newer version is not taken up
    answer = httpx.post(url + "/predict", json={"instances": rows.tolist()}).json()
    assert answer == {"predictions": own_predictions(first, rows), "model_version": one.name}
    assert httpx.get(url + "/model").json()["follows"] == "pinned version"
    assert newest_version(folder) == two


def test_a_version_that_does_not_load_leaves_the_current_one_serving(
    tmp_path: Path, start: Start
) -> None:
    folder = tmp_path / "models"
    first, rows = trained(1)
    one = publish(first, metadata(), folder)
    url, server = start()
    wait_for(serving(url, one.name), timeout=10, every=0.05)
    broken = publish(trained(2)[0], metadata(), folder)
    (broken.model_file).write_text("not a model")

    def error_shown() -> str | None:
        return httpx.get(url + "/model").json()["last_error"]  # type: ignore[no-any-return]

    error = wait_for(error_shown, timeout=10, every=0.05)
    assert error.startswith(f"version {broken.name} did not load:")
    assert httpx.get(url + "/healthz").json()["model_version"] == one.name
    answer = httpx.post(url + "/predict", json={"instances": rows.tolist()}).json()
    assert answer["model_version"] == one.name
    assert server.model.refresh() is False  # not tried again until its file changes


def test_a_version_whose_metadata_disagrees_with_the_model_is_not_served(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "models"
    publish(trained(1)[0], {"features": {"count": FEATURES + 1}}, folder)
    model = ServedModel(folder)
    assert model.refresh() is False and model.current is None
    assert "metadata says 5 features, the model has 4" in model.waiting_reason()


def test_cuda_is_used_only_where_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert ServedModel(Path("/nonexistent"), device="cuda").device == "cpu"
    assert ServedModel(Path("/nonexistent")).device == "cpu"


def test_publishing_is_atomic_and_versions_sort_by_time(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    booster, _ = trained(1)
    made = [publish(booster, metadata(), folder) for _ in range(3)]
    assert [v.name for v in versions(folder)] == [v.name for v in made]
    assert len({v.name for v in made}) == 3  # same second: -2, -3 appended
    assert sorted(p.name for p in made[0].folder.iterdir()) == [METADATA_FILE, MODEL_FILE]
    written = json.loads((made[0].folder / METADATA_FILE).read_text())
    assert written["version"] == made[0].name and written["model_file"] == MODEL_FILE
    assert written["created_at"].endswith("Z") and written["metric"]["name"] == "rmse"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # nothing left
    (folder / "20991231T000000Z").mkdir()  # being written (no metadata yet): not a version
    (folder / "notes").mkdir()
    assert newest_version(folder) == made[-1]


def test_the_recipe_folder_path_is_found_where_the_local_backend_links_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "store").mkdir()
    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path / "store", tmp_path / "models")
    assert shared_folder("/models") == tmp_path / "models"  # no /models here: the link
    assert shared_folder(str(tmp_path / "store")) == tmp_path / "store"
    assert shared_folder("relative/dir") == Path("relative/dir")


def test_instances_are_checked_row_by_row() -> None:
    assert check_instances([[1, 2.5, None]], 3) == [[1, 2.5, None]]
    with pytest.raises(ValueError, match=r"instances\[0\]\[0\] is 10000000000.*: values must"):
        check_instances([[10**400, 1, 1]], 3)
    with pytest.raises(ValueError, match=r"e\.g\. \{\"instances\": \[\[0\.5, 0\.5, 0\.5, \.\.\.\]"):
        check_instances({"a": 1}, 5)


def test_training_publishes_only_a_model_that_learned(tmp_path: Path) -> None:
    from workers.training.__main__ import publish_if
    from workers.training.xgboost_train import TrainingResult

    booster, _ = trained(1)
    poor = TrainingResult("cpu", 300, FEATURES, 5, rmse=0.9, baseline_rmse=1.0, seconds=0.1)
    assert publish_if(False, str(tmp_path / "models"), poor, booster) == {}
    assert versions(tmp_path / "models") == []
    good = TrainingResult("cpu", 300, FEATURES, 5, rmse=0.1, baseline_rmse=1.0, seconds=0.1)
    published = publish_if(True, str(tmp_path / "models"), good, booster)
    [version] = versions(tmp_path / "models")
    assert published == {"version": version.name, "published": str(version.folder)}
    assert version.metadata()["metric"] == {"name": "rmse", "value": 0.1, "baseline": 1.0}
    assert version.metadata()["features"] == {"count": FEATURES}
    assert publish_if(True, None, good, booster) == {}  # no --publish: nothing published


def test_no_request_fails_while_a_new_version_is_taken_up_under_load(
    tmp_path: Path, start: Start
) -> None:
    folder = tmp_path / "models"
    first, rows = trained(1)
    one = publish(first, metadata(), folder)
    url, _ = start()
    wait_for(serving(url, one.name), timeout=10, every=0.05)
    second, _ = trained(2, rounds=8)
    expected = {one.name: own_predictions(first, rows)}
    answers: list[httpx.Response] = []

    def call(count: int) -> None:
        with httpx.Client(base_url=url) as client:  # one kept-alive connection each
            for _ in range(count):
                answers.append(client.post("/predict", json={"instances": rows.tolist()}))

    callers = [threading.Thread(target=call, args=(40,)) for _ in range(4)]
    for caller in callers:
        caller.start()
    two = publish(second, metadata(), folder)
    expected[two.name] = own_predictions(second, rows)
    for caller in callers:
        caller.join()
    wait_for(serving(url, two.name), timeout=10, every=0.05)
    assert len(answers) == 160 and {a.status_code for a in answers} == {200}
    for answer in answers:  # each answer is wholly the version it names
        body = answer.json()
        assert body["predictions"] == expected[body["model_version"]]
