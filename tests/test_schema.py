"""arcs/schema.json is current and agrees with the validator."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from setlist.arcs import ARC_FIELDS, PHASE_FIELDS, json_schema
from setlist.cli import schema_text
from setlist.yamlsrc import parse_yaml

from .conftest import ARCS


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((ARCS / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_schema_file_is_current() -> None:
    assert (ARCS / "schema.json").read_text(encoding="utf-8") == schema_text(), (
        "arcs/schema.json is stale: run 'make schema'"
    )


def test_schema_describes_every_field() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == set(ARC_FIELDS)
    assert set(schema["definitions"]["phase"]["properties"]) == set(PHASE_FIELDS)
    for key, prop in schema["properties"].items():
        assert prop["description"], key


@pytest.mark.parametrize("path", sorted(ARCS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_arcs_match_schema(validator: jsonschema.Draft7Validator, path: Path) -> None:
    data = parse_yaml(path.read_text(encoding="utf-8"), path.name).plain()
    assert list(validator.iter_errors(data)) == []


@pytest.mark.parametrize(
    "snippet",
    [
        {"name": "x", "lenght": "1h", "phases": []},
        {"name": "x", "phases": [{"name": "onset", "duraton": "5m", "intensity": 0.2}]},
        {"name": "x", "phases": [{"name": "onset", "duration": "5 minutes", "intensity": 0.2}]},
        {"name": "x", "phases": [{"name": "onset", "duration": "5m", "intensity": 1.5}]},
        {
            "name": "x",
            "phases": [{"name": "onset", "duration": "5m", "intensity": 0.2, "vocals": "nope"}],
        },
        {"name": "Bad Name", "phases": [{"name": "a", "duration": "5m", "intensity": 0.2}]},
        {"name": "x"},
    ],
)
def test_schema_rejects_what_the_validator_rejects(
    validator: jsonschema.Draft7Validator, snippet: dict[str, object]
) -> None:
    assert list(validator.iter_errors(snippet)), snippet


def test_schema_accepts_every_value_form(validator: jsonschema.Draft7Validator) -> None:
    data = {
        "name": "forms",
        "length": "1:00:00",
        "volume": "70%",
        "tempo": [60, 80],
        "tags": {"prefer": "calm", "avoid": ["harsh"]},
        "phases": [
            {
                "name": "onset",
                "duration": "90s",
                "intensity": [0.1, 0.3],
                "volume": 0.5,
                "tempo": {"min": 60, "max": 70},
            },
            {
                "name": "peak",
                "duration": {"min": "20m", "max": "1h"},
                "intensity": [{"at": "40%", "value": 0.6}, {"at": "10m", "value": 0.7}, 0.5],
            },
            {"name": "integration", "duration": "1h15m", "intensity": 0.2, "volume": "-6 dB"},
        ],
    }
    assert list(validator.iter_errors(data)) == []
    assert list(validator.iter_errors({"name": "child", "extends": "forms"})) == []
