"""Tool inputs as pydantic models: the JSON schema Claude receives and the errors it reads.

One model per tool (`ToolArgs` subclasses, declared in `catalog`) is both the schema sent
with every request and the validation of what comes back, so the two cannot drift. The
schema is pydantic's, tidied for the model to read (no titles, no `$ref`, no null
branches); a validation failure is worded as `Error: invalid input for <tool> (<field>):
<problem>`, the style the tools used when jsonschema checked them.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema


class ToolArgs(BaseModel):
    """Base of every tool's input model: unknown fields, nulls and type coercion are errors.

    Strict because the schema Claude reads is the contract: `"5"` for an integer or an
    unexpected field is a mistake to report, not to guess around. Optional fields are
    declared `X | None = None` but null is refused: the schema tells Claude to leave the
    field out, and the validation says the same.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null", "null is not allowed; leave the field out instead")
        return value


# -- the JSON schema Claude receives -------------------------------------------------------


class _ToolSchemaGenerator(GenerateJsonSchema):
    """pydantic's JSON schema, minus what would mislead or distract the model.

    Optional fields appear as their plain type (null is refused, so it is not offered) with
    no `default: null`, and fields get no generated titles (the name says it already).
    """

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        result = super().default_schema(schema)
        if result.get("default", ...) is None:
            del result["default"]
        return result

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


_SCHEMA_KEY_ORDER = ("type", "description", "properties", "required", "additionalProperties")


def _tidy(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s (the models are not recursive), drop titles, order the usual keys first."""
    if isinstance(node, list):
        return [_tidy(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**defs[ref.removeprefix("#/$defs/")], **siblings}
    out: dict[str, Any] = {}
    for key in (*_SCHEMA_KEY_ORDER, *node):
        if key not in node or key in out or key in ("title", "$defs"):
            continue
        value = node[key]
        if key == "properties":
            out[key] = {name: _tidy(sub, defs) for name, sub in value.items()}
        elif key in ("items", "anyOf", "allOf", "oneOf", "additionalProperties", "not"):
            out[key] = _tidy(value, defs)
        else:
            out[key] = value
    return out


@cache
def tool_schema(model: type[ToolArgs]) -> dict[str, Any]:
    """The `input_schema` sent to Claude for `model`: self-contained, untitled, described.

    The model's docstring (written for developers) is not sent; the tool's description is.
    """
    raw = model.model_json_schema(schema_generator=_ToolSchemaGenerator)
    schema: dict[str, Any] = _tidy(raw, raw.get("$defs", {}))
    schema.pop("description", None)
    schema.setdefault("properties", {})
    return schema


# -- validation errors, worded for the model ----------------------------------------------


def _shown(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_JSON_TYPES = {
    "string_type": "string",
    "int_type": "integer",
    "int_from_float": "integer",
    "bool_type": "boolean",
    "float_type": "number",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
    "list_type": "array",
}


def _problem(error: Any, tool: str, model: type[ToolArgs] | None) -> str:
    kind: str = error["type"]
    value = error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        if model is None or len(error["loc"]) != 1:
            return "unknown field"
        fields = ", ".join(model.model_fields)
        return f"unknown field; {tool} takes " + (
            f"only these fields: {fields}" if fields else "no fields"
        )
    if kind in _JSON_TYPES:
        return f"{_shown(value)} is not of type '{_JSON_TYPES[kind]}'"
    if kind == "greater_than_equal":
        return f"{_shown(value)} is less than the minimum of {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{_shown(value)} is greater than the maximum of {ctx['le']}"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"{_shown(value)} is shorter than {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"is {len(value):,} characters long; at most {ctx['max_length']:,} are allowed"
    if kind == "literal_error":
        return f"{_shown(value)} is not one of {ctx['expected']}"
    message: str = error["msg"]
    return message[:1].lower() + message[1:]


def describe_invalid(tool: str, model: type[ToolArgs] | None, exc: ValidationError) -> str:
    """`Error: invalid input for <tool> (<field>): <problem>`, one part per wrong field."""
    parts = []
    for error in exc.errors():
        where = "/".join(str(p) for p in error["loc"]) or "input"
        parts.append(f"({where}): {_problem(error, tool, model)}")
    return f"Error: invalid input for {tool} " + "; ".join(parts)
