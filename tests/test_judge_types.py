"""The judge-type registry (judges/types/): each entry is found by the tables and specs of its own type."""

from __future__ import annotations

from typing import get_args

import pytest

from judges.types import TYPES, judge_type, parse_spec

pytestmark = pytest.mark.timeout(30)


def test_each_entry_is_named_by_the_type_literal_of_its_spec() -> None:
    assert list(TYPES) == ["llm", "local", "distilled", "cascade"]  # the order messages name them in
    for name, entry in TYPES.items():
        assert entry.name == name
        assert get_args(entry.spec.model_fields["type"].annotation) == (name,)


def test_a_parsed_table_finds_its_types_entry() -> None:
    tables = {
        "llm": {"type": "llm", "model": "openai/j", "prompt": "faithfulness"},
        "local": {"type": "local", "builtin": "exact_match"},
        "distilled": {"type": "distilled", "artifact": "a.distilled"},
        "cascade": {"type": "cascade", "first": "a", "then": "b"},
    }
    for name, table in tables.items():
        assert judge_type(parse_spec(f"j-{name}", table)) is TYPES[name]
