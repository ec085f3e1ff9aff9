"""Recipe text that is not JSON: where it breaks, and YAML recognised with how to convert it."""

from __future__ import annotations

import json

import pytest

from service.errors import MalformedRequest
from service.json_text import looks_like_yaml, syntax_problem
from service.json_values import decode_json

YAML = "# a cluster\ntype: cluster\nname: demo\nspec:\n  n_workers: 2\n"


def problem_of(text: str) -> str:
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(text)
    return syntax_problem("recipe.json", text, info.value)


@pytest.mark.parametrize(
    "text", [YAML, "---\ntype: job\n", "- a\n- b\n", '"type": job\n', "\ufeffname: x"]
)
def test_yaml_is_recognised(text: str) -> None:
    assert looks_like_yaml(text)


@pytest.mark.parametrize("text", ['{"type": "job",', "[1, 2", "", "  \n", "nope", "{'a': 1}"])
def test_broken_json_is_not_taken_for_yaml(text: str) -> None:
    assert not looks_like_yaml(text)


def test_a_syntax_error_names_line_and_column() -> None:
    message = problem_of('{\n  "type": "job",\n  "name": "x",,\n}')
    assert message.startswith("recipe.json is not valid JSON:")
    assert "line 3 column 15" in message
    assert "YAML" not in message


def test_yaml_gets_how_to_convert_it() -> None:
    message = problem_of(YAML)
    assert "recipes are JSON (this looks like YAML)" in message
    assert "yq -o=json" in message and "yaml.safe_load" in message


def test_a_yaml_body_is_told_so_with_line_and_column() -> None:
    with pytest.raises(MalformedRequest) as info:
        decode_json(YAML.encode())
    assert "line 1 column 1" in info.value.message
    assert "this looks like YAML" in info.value.message
