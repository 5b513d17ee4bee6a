"""Tool schemas as short as they can be while saying the same: every tools/list carries them, and a
client may hand them to the model in every conversation."""

from __future__ import annotations

from typing import Any, cast

_DEFINITION = "#/$defs/"


def without_titles(schema: Any) -> Any:
    """A JSON schema without its `title`s (pydantic's "Max Rows", "queryArguments"): names already say
    it. A property that is itself called `title` is kept."""
    if isinstance(schema, list):
        return [without_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    compact = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "properties" and isinstance(value, dict):
            compact[key] = {name: without_titles(spec) for name, spec in value.items()}
        else:
            compact[key] = without_titles(value)
    return compact


def compact_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema that validates the same, written short: record definitions inline (a client
    resolves no `$ref`; the records are small and not recursive), `X or null` as one type list, and
    no titles, descriptions, defaults or `additionalProperties: true` (all say nothing to a validator)."""
    definitions = schema.get("$defs", {})

    def compact(node: Any) -> Any:
        if isinstance(node, list):
            return [compact(item) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(_DEFINITION):
            return compact(definitions[reference.removeprefix(_DEFINITION)])
        if (nullable := _nullable(node)) is not None:
            return compact(nullable)
        return {
            key: (compact(value) if key != "properties" else {k: compact(v) for k, v in value.items()})
            for key, value in node.items()
            if key not in _SAYS_NOTHING and not (key == "additionalProperties" and value is True)
        }

    return cast(dict[str, Any], compact(schema))


_SAYS_NOTHING = frozenset({"$defs", "default", "title", "description"})


def _nullable(node: dict[str, Any]) -> dict[str, Any] | None:
    """`{"anyOf": [S, {"type": "null"}]}` as S with "null" added to its type, when S names one type."""
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return None
    (other,) = [option for option in options if option != {"type": "null"}]
    if not isinstance(other, dict) or not isinstance(other.get("type"), str):
        return None
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    return {**rest, **other, "type": [other["type"], "null"]}
