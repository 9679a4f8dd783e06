"""The tools' input models: the JSON schema Claude receives, and validation that agrees with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
from anthropic.types import ToolParam
from pydantic import TypeAdapter

from smarthole_notes.llm.service import AgentService
from smarthole_notes.tools import catalog
from smarthole_notes.tools.base import Tool, ToolDefinition, ToolError, ToolRegistry
from smarthole_notes.tools.conversation import conversation_tools
from smarthole_notes.tools.git import git_tools
from smarthole_notes.tools.schema import ToolArgs, tool_schema
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault
from smarthole_notes.versioning.repo import GitVault
from tests.llm_helpers import RecordingSleep, provider
from tests.standins.anthropic_api import AnthropicStandIn, text_reply

DEFINITIONS = {d.name: d for d in catalog.ALL_TOOLS}
TOOL_PARAM: TypeAdapter[ToolParam] = TypeAdapter(ToolParam)
"""The SDK's own type for a tool in a request."""

# What Claude is told about each field: type, bounds, default; "*" marks a required field.
SHAPES: dict[str, dict[str, str]] = {
    "read_file": {"path": "string*", "start_line": "integer 1..", "end_line": "integer 1.."},
    "edit_file": {
        "path": "string*",
        "old_text": "string",
        "new_text": "string",
        "replace_all": "boolean =false",
        "insert_after_line": "integer 0..",
        "insert_before_line": "integer 1..",
        "delete_lines": "object{start: integer* 1.., end: integer* 1..}",
        "content": "string",
    },
    "write_file": {"path": "string*", "content": "string*"},
    "create_folder": {"path": "string*"},
    "delete_file": {"path": "string*"},
    "move_file": {"source": "string*", "destination": "string*"},
    "search_files": {
        "pattern": "string* len 1..",
        "file_pattern": 'string ="*.md"',
        "context_lines": "integer 0..20 =2",
        "max_results": "integer 1..200 =10",
    },
    "list_files": {
        "pattern": 'string ="*"',
        "path": 'string =""',
        "max_results": "integer 1..1000 =100",
    },
    "get_file_info": {"path": "string*"},
    "get_active_note": {},
    "search_notes": {
        "query": "string* len 1..500",
        "limit": "integer 1..50 =10",
        "folder": "string",
        "tag": "string",
    },
    "get_links": {"path": "string*"},
    "set_properties": {"path": "string*", "properties": "object*{}"},
    "search_git_history": {
        "query": "string",
        "file_path": "string",
        "since": "string",
        "until": "string",
        "max_results": "integer 1..100 =10",
    },
    "view_file_history": {
        "file_path": "string*",
        "max_results": "integer 1..100 =5",
        "include_diff": "boolean =false",
    },
    "view_commit": {"commit_hash": "string*"},
    "send_message": {"message": "string* len 1..4000", "is_question": "boolean =false"},
    "end_conversation": {"reason": "string len ..500"},
    "get_conversation": {
        "conversation_id": "string len 1..100",
        "list_recent": "integer 1..50 =10",
        "query": "string len 1..500",
    },
}

# Keywords of JSON Schema that a tool's input_schema may use here; anything else (a `$ref`
# left behind, `anyOf` from an Optional, a generated `title`) is a leak of pydantic's output.
ALLOWED_KEYWORDS = {
    "type",
    "description",
    "properties",
    "required",
    "additionalProperties",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "enum",
}


def _field_shape(schema: dict[str, Any], required: bool) -> str:
    text = str(schema["type"]) + ("*" if required else "")
    if schema["type"] == "object":
        inner = ", ".join(
            f"{name}: {_field_shape(sub, name in schema.get('required', []))}"
            for name, sub in schema.get("properties", {}).items()
        )
        text += "{" + inner + "}"
    if "minimum" in schema or "maximum" in schema:
        text += f" {schema.get('minimum', '')}..{schema.get('maximum', '')}"
    if "minLength" in schema or "maxLength" in schema:
        text += f" len {schema.get('minLength', '')}..{schema.get('maxLength', '')}"
    if "default" in schema:
        text += f" ={json.dumps(schema['default'])}"
    return text


def shape(schema: dict[str, Any]) -> dict[str, str]:
    required = set(schema.get("required", []))
    return {name: _field_shape(sub, name in required) for name, sub in schema["properties"].items()}


def keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in `schema` (property names are not keywords)."""
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for name, value in schema.items():
        if name == "properties":
            for sub in value.values():
                found |= keywords(sub)
        elif isinstance(value, dict):
            found |= keywords(value)
    return found


def objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema] if schema.get("type") == "object" else []
    for sub in schema.get("properties", {}).values():
        found += objects(sub)
    return found


@pytest.fixture
def every_tool(tmp_path: Path) -> list[Tool]:
    """Every tool as the pipeline builds it: the real factories, bound to real things."""
    turn = cast(Any, None)  # the factories bind it; nothing here runs a conversation tool
    return [
        *vault_tools(Vault(tmp_path)),
        *git_tools(GitVault(tmp_path)),
        *conversation_tools(turn, bus=cast(Any, None), store=cast(Any, None), notifier=None),
    ]


class Recorder:
    """Every tool of the catalog, bound to a handler that records what it received."""

    def __init__(self) -> None:
        self.received: list[ToolArgs] = []
        self.registry = ToolRegistry([d.bind(self.handle) for d in catalog.ALL_TOOLS])

    async def handle(self, args: ToolArgs) -> str:
        self.received.append(args)
        return "ok"


def minimal(name: str) -> dict[str, Any]:
    """A valid input with only the required fields."""
    samples: dict[str, Any] = {"path": "a.md", "content": "x", "source": "a.md"}
    samples |= {"destination": "b.md"}
    samples |= {"pattern": "x", "file_path": "a.md", "commit_hash": "abc1234", "message": "hi"}
    samples |= {"query": "kitchen", "properties": {"status": "done"}}
    return {k: samples[k] for k in DEFINITIONS[name].input_schema.get("required", [])}


# -- the schema Claude receives -------------------------------------------------------------


def test_every_tool_has_the_shape_of_the_contract(every_tool: list[Tool]) -> None:
    assert {t.name: shape(t.input_schema) for t in every_tool} == SHAPES


def test_factories_bind_the_catalog_and_its_metadata(every_tool: list[Tool]) -> None:
    assert [t.name for t in every_tool] == [d.name for d in catalog.ALL_TOOLS]
    for tool in every_tool:
        definition = DEFINITIONS[tool.name]
        assert tool.description == definition.description
        assert tool.input_schema == definition.input_schema == tool_schema(tool.input_model)
        assert tool.input_model is definition.input_model
        assert tool.annotations == definition.annotations
        assert tool.writes_vault == definition.writes_vault


def test_schemas_are_plain_self_contained_json_schema(every_tool: list[Tool]) -> None:
    for tool in every_tool:
        schema = tool.input_schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object", tool.name
        assert keywords(schema) <= ALLOWED_KEYWORDS, (tool.name, keywords(schema))
        for obj in objects(schema):
            # A free-form map (set_properties' properties) declares no fields of its own.
            assert obj["additionalProperties"] is ("properties" not in obj), tool.name
        for name, field in schema["properties"].items():
            assert field.get("description"), f"{tool.name}.{name} has no description"
        for field in schema["properties"].values():
            assert field.get("default", "") is not None, tool.name  # null is refused


def test_schemas_pass_the_anthropic_api_rules(every_tool: list[Tool]) -> None:
    """The API's own checks: a name of [a-zA-Z0-9_-]{1,64}, an object input schema."""
    for tool in every_tool:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool.name)
        param = {
            "name": tool.name,
            "description": tool.description,
            "input_schema": tool.input_schema,
        }
        parsed = TOOL_PARAM.validate_python(param)
        assert parsed["input_schema"]["type"] == "object"
        assert len(tool.description) < 2000


async def test_claude_receives_exactly_these_schemas(
    anthropic_api: AnthropicStandIn, every_tool: list[Tool]
) -> None:
    anthropic_api.script(text_reply("Hello."))
    agent = AgentService(
        provider(anthropic_api, sleep=RecordingSleep()),
        system_prompt=lambda state: "You are a test agent.",
        tools=ToolRegistry(every_tool),
    )
    await agent.process("hello")
    sent = anthropic_api.requests[0].body["tools"]
    assert [{k: t[k] for k in ("name", "description", "input_schema")} for t in sent] == [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in every_tool
    ]


def test_a_schema_handed_out_cannot_change_another_tools(tmp_path: Path) -> None:
    first, second = vault_tools(Vault(tmp_path))[0], vault_tools(Vault(tmp_path))[0]
    first.input_schema["properties"]["path"]["description"] = "changed"
    assert second.input_schema["properties"]["path"]["description"] != "changed"
    assert catalog.READ_FILE.input_schema == second.input_schema


# -- strict validation, worded for the model ------------------------------------------------


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_unknown_fields_are_refused_and_named(name: str) -> None:
    recorder = Recorder()
    outcome = await recorder.registry.run(name, {**minimal(name), "bogus": 1})
    assert outcome.is_error
    assert outcome.content.startswith(f"Error: invalid input for {name} (bogus): unknown field;")
    assert recorder.received == []


@pytest.mark.parametrize(
    ("name", "tool_input", "expected"),
    [
        (
            "read_file",
            {"path": "a", "start_line": 0},
            "(start_line): 0 is less than the minimum of 1",
        ),
        (
            "list_files",
            {"max_results": 1001},
            "(max_results): 1001 is greater than the maximum of 1000",
        ),
        ("search_files", {"pattern": ""}, "(pattern): must not be empty"),
        (
            "search_files",
            {"pattern": "x", "context_lines": 21},
            "(context_lines): 21 is greater than the maximum of 20",
        ),
        (
            "edit_file",
            {"path": "a", "delete_lines": {"start": 0, "end": 2}},
            "(delete_lines/start): 0 is less than the minimum of 1",
        ),
        (
            "edit_file",
            {"path": "a", "delete_lines": {"start": 1}},
            "(delete_lines/end): this field is required",
        ),
        (
            "view_file_history",
            {"file_path": "a", "max_results": 101},
            "(max_results): 101 is greater than the maximum of 100",
        ),
        (
            "send_message",
            {"message": "x" * 4001},
            "(message): is 4,001 characters long; at most 4,000 are allowed",
        ),
        ("get_conversation", {"list_recent": 0}, "(list_recent): 0 is less than the minimum of 1"),
        ("write_file", {"path": "a"}, "(content): this field is required"),
        ("read_file", {"path": 42}, "(path): 42 is not of type 'string'"),
        (
            "read_file",
            {"path": "a", "start_line": "5"},
            "(start_line): \"5\" is not of type 'integer'",
        ),
        (
            "read_file",
            {"path": "a", "start_line": True},
            "(start_line): true is not of type 'integer'",
        ),
        ("search_files", {"pattern": "x", "max_results": 2.5}, "(max_results): 2.5 is not of type"),
        ("edit_file", {"path": "a", "replace_all": "yes"}, '(replace_all): "yes" is not of type'),
        (
            "edit_file",
            {"path": "a", "delete_lines": [1, 2]},
            "(delete_lines): [1, 2] is not of type",
        ),
        (
            "read_file",
            {"path": "a", "start_line": None},
            "(start_line): null is not allowed; leave the field out instead",
        ),
    ],
)
async def test_invalid_values_are_refused_with_the_field_and_the_problem(
    name: str, tool_input: dict[str, Any], expected: str
) -> None:
    recorder = Recorder()
    outcome = await recorder.registry.run(name, tool_input)
    assert outcome.is_error
    assert outcome.content.startswith(f"Error: invalid input for {name} {expected}"), (
        outcome.content
    )
    assert recorder.received == []


async def test_every_wrong_field_is_reported_at_once() -> None:
    outcome = await Recorder().registry.run("read_file", {"start_line": 0, "extra": 1})
    assert outcome.content == (
        "Error: invalid input for read_file (path): this field is required; "
        "(start_line): 0 is less than the minimum of 1; "
        "(extra): unknown field; read_file takes only these fields: path, start_line, end_line"
    )


async def test_a_long_wrong_value_is_not_echoed_whole() -> None:
    outcome = await Recorder().registry.run("read_file", {"path": ["x" * 5000]})
    assert outcome.is_error and len(outcome.content) < 200


async def test_tools_receive_the_validated_model_with_defaults() -> None:
    recorder = Recorder()
    outcome = await recorder.registry.run("search_files", {"pattern": "budget"})
    assert not outcome.is_error
    [args] = recorder.received
    assert isinstance(args, catalog.SearchFilesArgs)
    assert (args.pattern, args.file_pattern, args.context_lines, args.max_results) == (
        "budget",
        "*.md",
        2,
        10,
    )
    assert args.model_fields_set == {"pattern"}


async def test_execute_called_directly_validates_a_dict_too() -> None:
    received: list[ToolArgs] = []

    async def handle(args: catalog.ReadFileArgs) -> str:
        received.append(args)
        return args.path

    tool = catalog.READ_FILE.bind(handle)
    assert await tool.execute({"path": "a.md"}) == "a.md"
    with pytest.raises(ToolError, match=r"invalid input for read_file \(start_line\)"):
        await tool.execute({"path": "a.md", "start_line": 0})
    assert len(received) == 1


def _samples(schema: dict[str, Any]) -> list[Any]:
    """Values around the edges of one field's schema, valid and not."""
    kind = schema["type"]
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum")
        found: list[Any] = [low, low - 1, 7, "3", 2.0, True]
        return found + ([high, high + 1] if high is not None else [10**6])
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 30)
        return ["x" * low, "x" * max(low - 1, 0), "x" * high, "x" * (high + 1), 5]
    if kind == "boolean":
        return [True, False, 0, "true"]
    if kind == "object":
        return [{"start": 1, "end": 2}, {"start": 1}, {"start": 1, "end": 2, "x": 1}, [1, 2]]
    raise AssertionError(kind)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_validation_agrees_with_the_schema_claude_reads(name: str) -> None:
    """jsonschema on the sent schema and the model accept and refuse the same inputs.

    (Except integral floats such as 2.0, which JSON Schema counts as integers and the
    strict models refuse; Claude sends integers as integers.)
    """
    definition = DEFINITIONS[name]
    schema = definition.input_schema
    validator = jsonschema.Draft202012Validator(schema)
    base = minimal(name)
    cases = [base, {**base, "unknown": 1}]
    for field, sub in schema["properties"].items():
        cases += [{**base, field: value} for value in _samples(sub)]
        cases.append({**base, field: None})
    for case in cases:
        by_schema = validator.is_valid(case)
        if any(isinstance(v, float) and v.is_integer() for v in case.values()):
            by_schema = False
        try:
            definition.input_model.model_validate(case)
            by_model = True
        except ValueError:
            by_model = False
        assert by_schema == by_model, (name, case)


# -- metadata --------------------------------------------------------------------------------


def test_note_writing_tools_come_from_the_declarations() -> None:
    assert {"write_file", "edit_file", "move_file", "delete_file", "create_folder"} <= (
        catalog.NOTE_WRITING_TOOLS
    )
    assert {d.name for d in catalog.ALL_TOOLS if d.writes_vault} == catalog.NOTE_WRITING_TOOLS
    for definition in catalog.ALL_TOOLS:
        if definition.writes_vault:
            assert not definition.annotations.read_only, definition.name
    assert not catalog.NOTE_WRITING_TOOLS & catalog.READ_ONLY_TOOLS


def test_annotations_say_what_each_call_does() -> None:
    hints = {
        d.name: (d.annotations.read_only, d.annotations.destructive, d.annotations.idempotent)
        for d in catalog.ALL_TOOLS
    }
    reading = {
        "read_file",
        "search_files",
        "list_files",
        "get_file_info",
        "get_active_note",
        "search_notes",
        "get_links",
        "search_git_history",
        "view_file_history",
        "view_commit",
        "get_conversation",
    }
    assert {name for name, (ro, _, _) in hints.items() if ro} == reading == catalog.READ_ONLY_TOOLS
    assert hints["edit_file"] == (False, True, False)
    assert hints["write_file"] == (False, True, True)
    assert hints["create_folder"] == (False, False, True)
    assert hints["delete_file"] == (False, True, True)
    assert hints["move_file"] == (False, True, True)
    assert DEFINITIONS["send_message"].annotations.open_world


def test_dict_schema_tools_still_register_and_default_to_cautious_metadata() -> None:
    async def run(tool_input: dict[str, Any]) -> str:
        return "ok"

    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    tool = Tool("extra", "An extension tool.", schema, run)
    assert tool.input_model is None and not tool.writes_vault
    assert not tool.annotations.read_only and tool.annotations.destructive
    assert "extra" in ToolRegistry([tool])


def test_definitions_are_generic_over_their_model() -> None:
    definition: ToolDefinition[catalog.PathArgs] = catalog.GET_FILE_INFO
    assert definition.input_model is catalog.PathArgs
