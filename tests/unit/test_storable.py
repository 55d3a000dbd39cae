"""Values the database could not store exactly are named with their path."""

from __future__ import annotations

import json

from jobyard.domain.storable import MAX_DEPTH, json_problem, text_problem


def test_plain_values_pass() -> None:
    value = {"a": [1, 2.5, "x", None, True, {"b": -(2**63)}], "ünï": "čódé"}
    assert json_problem(value, "args") is None


def test_each_problem_names_its_path() -> None:
    assert json_problem({"a": ["ok", "bad\x00"]}, "args") == (
        "args.a[1]",
        "contains a NUL character (\\u0000)",
    )
    assert "lone surrogate" in str(json_problem({"s": "\ud800"}, "args"))
    key_problem = json_problem({"k\x00": 1}, "args")
    assert key_problem == ("args", "a key contains a NUL character (\\u0000)")
    assert "nan is not a JSON number" in str(json_problem({"n": float("nan")}, "args"))
    assert "inf" in str(json_problem(json.loads('{"n": 1e400}'), "args"))
    assert "64-bit" in str(json_problem({"n": 2**64}, "args"))


def test_nesting_is_capped() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    assert "nested deeper than 64" in str(json_problem(deep, "args"))
    assert text_problem("fine") is None
