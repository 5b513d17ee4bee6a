"""Tool arguments checked against the tool's input schema, with one sentence per mistake.

The SDK would answer a pydantic dump (`1 validation error for describe_tableArguments …
https://errors.pydantic.dev/…`) and drop unknown argument names silently; a model corrects itself
faster from "describe_table needs the argument table (string)".
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_TYPE_NAMES = {"string": "text", "integer": "an integer", "number": "a number", "boolean": "true or false"}


def unknown_arguments(tool: str, schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """A sentence naming arguments the tool does not take, or None."""
    known = schema.get("properties", {})
    unknown = sorted(set(arguments) - set(known))
    if not unknown:
        return None
    takes = ", ".join(known) or "no arguments"
    names = ", ".join(repr(name) for name in unknown)
    return f"{tool} does not take the argument{'s' if len(unknown) > 1 else ''} {names}; it takes: {takes}."


def explain_invalid(tool: str, schema: dict[str, Any], error: ValidationError) -> str:
    """One sentence for the first problem pydantic found, naming the argument and what it accepts."""
    details = error.errors()
    if not details:
        return f"The arguments of {tool} are invalid."
    first = details[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    accepts = _accepts(schema.get("properties", {}).get(name, {}))
    if first["type"] == "missing":
        return f"{tool} needs the argument {name} ({accepts})."
    return f"The argument {name} of {tool} must be {accepts}: {first['msg'].lower()}."


def _accepts(spec: dict[str, Any]) -> str:
    kinds = [spec.get("type")] + [option.get("type") for option in spec.get("anyOf", [])]
    names = [_TYPE_NAMES.get(str(kind), str(kind)) for kind in kinds if kind and kind != "null"]
    text = " or ".join(dict.fromkeys(names)) or "a value"
    if "minimum" in spec or "maximum" in spec:
        text += f" from {spec.get('minimum', '…')} to {spec.get('maximum', '…')}"
    return text
