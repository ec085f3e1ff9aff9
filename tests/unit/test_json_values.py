"""What Titan accepts from a client: JSON decoded with limits, text fields without control
characters, names without a trailing newline, sizes and durations within bounds, and
error bodies that can always be encoded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.errors import InvalidInput, MalformedRequest
from service.json_values import MAX_INT, MIN_INT, decode_json, shown
from service.recipes.models import RecipeInvalid, parse_recipe
from service.recipes.units import parse_duration, parse_memory


def refused(text: str) -> dict[str, Any]:
    with pytest.raises(InvalidInput) as info:
        decode_json(text.encode())
    (problem,) = info.value.details
    assert info.value.message.startswith(problem["path"] or "the body")
    return dict(problem)


@pytest.mark.parametrize(
    ("text", "path", "word"),
    [
        (
            '{"spec": {"environment_variables": {"FOO": ' + "9" * 5000 + "}}}",
            "spec.environment_variables.FOO",
            "5000 digits",
        ),
        ('{"spec": {"n_workers": 9223372036854775808}}', "spec.n_workers", "range"),
        ('{"spec": {"n_workers": -9223372036854775809}}', "spec.n_workers", "range"),
        ('{"a": [0, {"b": 1e400}]}', "a[1].b", "too large"),
        ('{"a": -1e400}', "a", "too large"),
        ('{"a": NaN}', "a", "NaN"),
        ("[Infinity]", "[0]", "Infinity"),
        ('{"a": {"b": "x\\u0000"}}', "a.b", "NUL"),
        ('{"a": "\\ud800"}', "a", "surrogate"),
        ('{"a": "\\udc00\\ud800"}', "a", "surrogate"),  # a pair the wrong way round
        ('{"a": {"x\\u0000y": 1}}', 'a["x\\u0000y"]', "key"),
        ('{"a": {"\\ud800": 1}}', 'a["\\ud800"]', "surrogate"),
        ('"\\u0000"', "", "NUL"),
    ],
)
def test_unstorable_values_are_refused_with_their_path(text: str, path: str, word: str) -> None:
    problem = refused(text)
    assert problem["path"] == path and word in problem["message"]
    json.dumps(problem).encode()  # the answer can be sent


def test_the_first_bad_value_in_document_order_is_named() -> None:
    assert refused('{"a": 1, "b": ["ok", "\\u0000"], "c": "\\ud800"}')["path"] == "b[1]"


def test_good_json_comes_back_as_json_would_decode_it() -> None:
    text = '{"a": [1, -2.5, "\\ud83d\\ude00", "tab\\tnewline\\n", null, true]'
    text += f', "b": {MAX_INT}, "c": {MIN_INT}}}'
    assert decode_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    ("body", "word"), [(b"\xff", "UTF-8"), (b"{", "not valid JSON"), (b"[" * 100_000, "deeply")]
)
def test_text_that_is_not_json_is_malformed(body: bytes, word: str) -> None:
    with pytest.raises(MalformedRequest, match=word):
        decode_json(body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**5000, "an integer of about 5000 digits"),
        (float("nan"), "nan"),
        ("\ud800x", "\\ud800x"),
        ("y" * 300, "y" * 200 + "…"),
        ({"a": 10**5000}, None),
        ([1, "\ud800"], "[1, '\\ud800']"),
        (7, 7),
    ],
    ids=lambda v: type(v).__name__,
)
def test_anything_shown_in_an_error_can_be_encoded(value: Any, expected: Any) -> None:
    assert shown(value) == expected
    json.dumps(shown(value), allow_nan=False).encode()


def recipe_problems(**spec: Any) -> dict[str, str]:
    with pytest.raises(RecipeInvalid) as info:
        parse_recipe({"type": "job", "name": "j", "spec": {"command": "true", **spec}})
    return {p["path"]: p["message"] for p in info.value.problems}


@pytest.mark.parametrize(
    ("spec", "path", "word"),
    [
        ({"command": "echo \x1b[2J"}, "spec.command", "U+001B"),
        ({"command": ["echo", "ok", "\x07"]}, "spec.command", "item 2"),
        ({"command": "echo \x00"}, "spec.command", "NUL"),
        ({"environment_variables": {"FOO": "a\rb"}}, "spec.environment_variables.FOO", "\\r\\n"),
        ({"environment_variables": {"FOO": "\x7f"}}, "spec.environment_variables.FOO", "U+007F"),
        (
            {"environment_variables": {"FOO": "x" * 32769}},
            "spec.environment_variables.FOO",
            "32768",
        ),
        ({"environment_variables": {"FOO\n": "x"}}, "spec.environment_variables", "variable name"),
        ({"working_directory": "/data\tx"}, "spec.working_directory", "U+0009"),
        ({"start_script": "\ud800"}, "spec.start_script", "string"),
        ({"secrets": [{"name": "s\n", "env": "S"}]}, "spec.secrets[0].name", "DNS label"),
        ({"secrets": [{"name": "s", "file": "f\n"}]}, "spec.secrets[0].file", "file name"),
        ({"image": "titan/cpu\n"}, "spec.image", "image reference"),
        ({"folders": [{"name": "f", "path": "/data\n"}]}, "spec.folders[0].path", "absolute"),
    ],
)
def test_recipe_text_fields_refuse_control_characters(
    spec: dict[str, Any], path: str, word: str
) -> None:
    found = recipe_problems(**spec)
    assert word in found[path], found


def test_tab_and_newline_are_allowed_in_commands_variables_and_scripts() -> None:
    spec = {
        "command": "a\tb\nc",
        "environment_variables": {"PEM": "-----\nx\n"},
        "start_script": "a\n\tb",
    }
    recipe = parse_recipe({"type": "job", "name": "j", "description": "x\ty\n", "spec": spec})
    assert recipe.spec.environment_variables["PEM"] == "-----\nx\n"


def test_a_name_with_a_trailing_newline_is_not_a_dns_label() -> None:
    with pytest.raises(RecipeInvalid, match="DNS label"):
        parse_recipe({"type": "cluster", "name": "web\n"})


@pytest.mark.parametrize("text", ["1" + "0" * 400 + "GiB", "9000000PiB", "9000000TiB"])
def test_sizes_beyond_8_eib_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"8EiB|not a size"):
        parse_memory(text)


@pytest.mark.parametrize("text", ["9" * 5000 + "d", "3651d", "9999999999999s"])
def test_durations_beyond_ten_years_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="3650d"):
        parse_duration(text)


def test_bounds_themselves_are_accepted() -> None:
    assert parse_duration("3650d") == 3650 * 86400
    assert parse_memory("8388607TiB") == 8388607 * 1024**4  # 8EiB less 1TiB
