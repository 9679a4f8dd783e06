"""The chat page's HTTP and WebSocket API over real sockets, with the real pipeline behind it."""

from __future__ import annotations

import asyncio
import os
import stat
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from websockets.exceptions import ConnectionClosed

import smarthole_notes.web
import smarthole_notes.web.api
from smarthole_notes.credentials import credentials_path
from smarthole_notes.settings import SETTING_KEYS, settings_path, settings_schema
from smarthole_notes.tools.catalog import NOTE_WRITING_TOOLS
from smarthole_notes.web import UndoUnavailable
from smarthole_notes.web.openapi import openapi_document
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply, tool_reply
from tests.standins.smarthole_server import SmartHoleStandIn
from tests.web_harness import CLIENT_NAME, WebService, isolated_credentials, next_event


@pytest.fixture
async def service(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WebService]:
    isolated_credentials(monkeypatch, tmp_path / "config")
    async with WebService(vault, anthropic_api) as svc:
        yield svc


async def test_sent_message_streams_and_is_recorded_with_its_tools(
    service: WebService, anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        text_reply("Added eggs to Lists/Shopping.md.", chunk_size=5),
    )
    async with service.http() as http, service.websocket() as ws:
        hello = await next_event(ws, "hello")
        assert hello["processing"] is None and hello["api_key"] == "set"
        response = await http.post("/api/messages", json={"text": "add eggs"})
        assert response.status_code == 202
        message_id = response.json()["id"]
        received = await next_event(ws, "message_received")
        assert received["message_id"] == message_id
        assert (received["source"], received["input_method"]) == ("chat", "typed")
        started = await next_event(ws, "tool_started")
        assert started["tool"] == "write_file" and "Lists/Shopping.md" in started["input"]
        finished = await next_event(ws, "tool_finished")
        assert finished["is_error"] is False
        delta = await next_event(ws, "text_delta")
        assert delta["message_id"] == message_id and delta["text"] == "Added"
        answer = await next_event(ws, "response")
        assert answer["text"] == "Added eggs to Lists/Shopping.md."
        await service.idle()
        page = (await http.get("/api/conversations", params={"messages": "true"})).json()
    (conversation,) = page["conversations"]
    assert conversation["active"] is True and page["next_before"] is None
    user, reply = conversation["messages"]
    assert (user["role"], user["content"], user["message_id"]) == ("user", "add eggs", message_id)
    assert reply["reply_to_message_id"] == message_id
    assert reply["tools_used"][0]["name"] == "write_file"
    assert reply["tools_used"][0]["is_error"] is False
    assert (vault / "Lists" / "Shopping.md").read_text() == "- eggs\n"


async def test_queue_state_follows_processing_and_waiting_messages(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.default_reply = text_reply("Done.", chunk_size=1, delay=0.02)
    async with service.http() as http, service.websocket() as ws:
        await next_event(ws, "hello")
        first = (await http.post("/api/messages", json={"text": "one"})).json()["id"]
        second = (await http.post("/api/messages", json={"text": "two"})).json()["id"]
        seen: list[tuple[str | None, list[str]]] = []
        async with asyncio.timeout(10):
            while not seen or seen[-1] != (None, []):
                event = await next_event(ws, "queue_state")
                seen.append((event["processing"], event["queued"]))
        status = (await http.get("/api/status")).json()
    assert (first, [second]) in seen
    assert (second, []) in seen
    assert status["processing"] is None and status["queued"] == []


async def test_cancel_stops_the_stream_within_a_second_without_an_error(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("word " * 200, chunk_size=5, delay=0.1))
    async with service.http() as http, service.websocket() as ws:
        message_id = (await http.post("/api/messages", json={"text": "write a lot"})).json()["id"]
        await next_event(ws, "text_delta")
        loop = asyncio.get_running_loop()
        pressed = loop.time()
        assert (await http.post("/api/cancel", json={})).json() == {"cancelled": True}
        cancelled = await next_event(ws, "cancelled", timeout=2)
        assert loop.time() - pressed < 1.0
        assert cancelled["message_id"] == message_id
        await service.idle()
        anthropic_api.wait_for_disconnect(0)
        history = (await http.get("/api/conversations", params={"messages": "true"})).json()
    assert service.of_type("error") == []
    kept = history["conversations"][0]["messages"]
    assert [(m["role"], m["content"]) for m in kept] == [("user", "write a lot")]
    assert service.inbox.pending() == []


async def test_cancel_with_nothing_running_cancels_nothing(service: WebService) -> None:
    async with service.http() as http:
        response = await http.post("/api/cancel", json={})
    assert response.json() == {"cancelled": False}


async def test_conversations_page_back_from_newest_with_titles(service: WebService) -> None:
    store = service.store
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    for number in range(5):
        at = start + timedelta(days=number)
        active, _ = store.begin_message(at, timedelta(minutes=30))
        store.add_message(active.id, "user", f"request {number}", source="chat", at=at)
        store.add_message(active.id, "assistant", f"answer {number}", source="chat", at=at)
        store.end_conversation(active.id, "explicit", at)
        store.set_summary(active.id, f"Title {number}", f"Summary {number}.")
    async with service.http() as http:
        first = (await http.get("/api/conversations", params={"limit": 2})).json()
        second = (
            await http.get(
                "/api/conversations",
                params={"limit": 2, "before": first["next_before"], "messages": "1"},
            )
        ).json()
        one = (await http.get(f"/api/conversations/{first['conversations'][0]['id']}")).json()
        missing = await http.get("/api/conversations/no-such-id")
        bad_limit = await http.get("/api/conversations", params={"limit": 0})
        bad_before = await http.get("/api/conversations", params={"before": "yesterday"})
    assert [c["title"] for c in first["conversations"]] == ["Title 4", "Title 3"]
    assert "messages" not in first["conversations"][0]
    assert [c["title"] for c in second["conversations"]] == ["Title 2", "Title 1"]
    assert second["conversations"][0]["messages"][0]["content"] == "request 2"
    assert [m["content"] for m in one["messages"]] == ["request 4", "answer 4"]
    assert one["active"] is False and one["ended_at"] is not None
    assert missing.status_code == 404
    assert bad_limit.status_code == 400 and bad_before.status_code == 400


async def test_editing_a_message_forks_the_conversation_and_sends_the_new_text(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    paid = {"input_tokens": 1000, "output_tokens": 10}
    anthropic_api.script(
        text_reply("First answer.", usage=paid),
        text_reply("Second answer.", usage=paid),
        text_reply("Edited answer.", usage={"input_tokens": 500, "output_tokens": 5}),
    )
    async with service.http() as http:
        first = (await http.post("/api/messages", json={"text": "first"})).json()["id"]
        await service.idle()
        await http.post("/api/messages", json={"text": "second"})
        await service.idle()
        unknown = await http.post("/api/messages/nope/fork", json={"text": "x"})
        forked = await http.post(f"/api/messages/{first}/fork", json={"text": "first, edited"})
        assert forked.status_code == 202
        await service.wait_for_event("response", message_id=forked.json()["id"])
        await service.idle()
        history = (await http.get("/api/conversations", params={"messages": "true"})).json()
    assert unknown.status_code == 404
    messages = history["conversations"][0]["messages"]
    assert [m["content"] for m in messages] == ["first, edited", "Edited answer."]
    archived = service.store.messages(messages[0]["conversation_id"], include_archived=True)
    assert len(archived) == 6
    # The replaced answers were paid for: kept apart, and in the conversation's total.
    conversation = history["conversations"][0]
    assert conversation["archived_usage"]["input_tokens"] == 2000
    assert conversation["usage_total"]["input_tokens"] == 2500
    assert conversation["usage_total"]["output_tokens"] == 25


async def test_editing_while_the_agent_works_is_refused(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply("One."), text_reply("slow " * 50, chunk_size=5, delay=0.05))
    async with service.http() as http:
        first = (await http.post("/api/messages", json={"text": "one"})).json()["id"]
        await service.idle()
        await http.post("/api/messages", json={"text": "two"})
        await service.wait_for_event("text_delta")
        refused = await http.post(f"/api/messages/{first}/fork", json={"text": "edited"})
        await http.post("/api/cancel", json={})
    assert refused.status_code == 409
    assert "wait" in refused.json()["error"]


async def test_settings_round_trip_to_the_file_and_invalid_values_are_refused(
    service: WebService, vault: Path
) -> None:
    async with service.http() as http:
        before = (await http.get("/api/settings")).json()
        saved = await http.put(
            "/api/settings",
            json={"conversation_idle_timeout_minutes": 45, "enable_git_version_control": True},
        )
        invalid = await http.put("/api/settings", json={"client_name": "1 bad name"})
        unknown = await http.put("/api/settings", json={"colour": "blue"})
        after = (await http.get("/api/settings")).json()
    assert before["settings"]["conversation_idle_timeout_minutes"] == 30
    assert saved.status_code == 200
    assert saved.json()["settings"]["enable_git_version_control"] is True
    assert invalid.status_code == 422 and invalid.json()["key"] == "client_name"
    assert unknown.status_code == 400
    assert after["settings"]["conversation_idle_timeout_minutes"] == 45
    assert after["settings"]["client_name"] == "Miss-Simone"
    on_disk = tomllib.loads(settings_path(vault).read_text())
    assert on_disk == {"conversation_idle_timeout_minutes": 45, "enable_git_version_control": True}
    assert set(after["settings"]) >= {"model", "routing_description", "stream_idle_timeout_seconds"}
    (applied_before, applied_after), *_ = service.applied
    assert applied_before.conversation_idle_timeout_minutes == 30
    assert applied_after.conversation_idle_timeout_minutes == 45


async def test_model_change_persists_and_applies_to_the_next_message(
    service: WebService, anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    async with service.http() as http:
        await http.put("/api/settings", json={"model": "claude-sonnet-4-6"})
        await http.post("/api/messages", json={"text": "hello"})
        await service.idle()
        models = (await http.get("/api/models")).json()
    assert anthropic_api.requests[-1].body["model"] == "claude-sonnet-4-6"
    assert models["current"] == "claude-sonnet-4-6"
    assert tomllib.loads(settings_path(vault).read_text())["model"] == "claude-sonnet-4-6"


async def test_a_choice_in_the_page_wins_over_a_start_up_flag(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    service.settings.overrides["model"] = "claude-opus-4-7"
    service.settings.reload()
    async with service.http() as http:
        before = (await http.get("/api/settings")).json()
        after = (await http.put("/api/settings", json={"model": "claude-sonnet-4-6"})).json()
    assert before["overridden"] == ["model"]
    assert before["settings"]["model"] == "claude-opus-4-7"
    assert after["overridden"] == [] and after["settings"]["model"] == "claude-sonnet-4-6"
    assert service.settings().model == "claude-sonnet-4-6"


async def test_api_key_is_write_only_stored_private_and_outside_the_vault(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config", key=None)
    secret = "fake-key-api03-very-secret-value-0123456789"
    async with WebService(vault, anthropic_api) as service, service.http() as http:
        before = (await http.get("/api/settings")).json()["api_key"]
        saved = await http.put("/api/settings", json={"api_key": secret})
        status = (await http.get("/api/status")).json()
        invalid = await http.put("/api/settings", json={"api_key": "has a space"})
        removed = await http.put("/api/settings", json={"api_key": None})
    assert before == {"status": "not set", "source": None}
    assert saved.json()["api_key"] == {"status": "set", "source": "file"}
    assert status["api_key"] == "set"
    assert invalid.status_code == 422 and "has a space" not in invalid.text
    assert removed.json()["api_key"]["status"] == "not set"
    for response in (saved, invalid, removed):
        assert secret not in response.text
    assert not credentials_path().exists()
    assert not any(secret in p.read_text(errors="ignore") for p in vault.rglob("*") if p.is_file())


async def test_saved_key_is_private_and_processes_the_messages_that_waited_for_it(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config", key=None)
    async with WebService(vault, anthropic_api) as service, service.http() as http:
        message_id = (await http.post("/api/messages", json={"text": "note this"})).json()["id"]
        waiting = await service.wait_for_event("error", message_id=message_id)
        inbox = (await http.get("/api/inbox")).json()["messages"]
        await http.put("/api/settings", json={"api_key": "fake-key-new-key"})
        await service.wait_for_event("response", message_id=message_id)
        path = credentials_path()
        mode = stat.S_IMODE(path.stat().st_mode)
    assert waiting["code"] == "no_api_key"
    assert [(m["id"], m["state"]) for m in inbox] == [(message_id, "waiting_for_key")]
    assert "API key" in inbox[0]["error"] and inbox[0]["next_attempt_at"] is None
    assert mode == 0o600 and not path.is_relative_to(vault)


async def test_models_come_from_the_api_with_the_builtin_list_as_fallback(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    async with service.http() as http:
        from_api = (await http.get("/api/models")).json()
    assert from_api["source"] == "api"
    assert "claude-opus-4-7" in [m["id"] for m in from_api["models"]]
    anthropic_api.models_failure = 500
    service.app.state.api.catalog._cached = None
    async with service.http() as http:
        fallback = (await http.get("/api/models")).json()
    assert fallback["source"] == "builtin"
    ids = [m["id"] for m in fallback["models"]]
    assert "claude-haiku-4-5" in ids and "claude-sonnet-4-6" in ids


async def test_failed_message_is_listed_in_the_inbox_and_can_be_processed_again(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(status_reply(400, message="bad request"), text_reply("Now it worked."))
    async with service.http() as http:
        message_id = (await http.post("/api/messages", json={"text": "try me"})).json()["id"]
        await service.wait_for_event("error", message_id=message_id)
        await service.idle()
        listed = (await http.get("/api/inbox")).json()["messages"]
        again = await http.post(f"/api/inbox/{message_id}/process", json={})
        await service.wait_for_event("response", message_id=message_id)
        await service.idle()
        missing = await http.post("/api/inbox/not-there/process", json={})
        after = (await http.get("/api/inbox")).json()["messages"]
    (failed,) = listed
    assert failed["id"] == message_id and failed["state"] == "failed"
    assert failed["last_error"] and failed["attempts"] == 1
    assert again.status_code == 202
    assert missing.status_code == 404
    assert after == []


async def test_routing_description_is_written_by_a_non_streaming_micro_agent(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    anthropic_api.script(text_reply('"Personal notes assistant for recipes. Send me recipes."'))
    async with service.http() as http:
        response = await http.post(
            "/api/settings/routing-description/generate",
            json={"information_architecture": "Recipes/ holds one note per recipe."},
        )
    assert response.json() == {
        "routing_description": "Personal notes assistant for recipes. Send me recipes."
    }
    request = anthropic_api.requests[-1]
    assert not request.body.get("stream") and "tools" not in request.body
    assert "Recipes/ holds one note per recipe." in str(request.body["messages"])


async def test_undo_is_a_hook_that_is_offered_only_when_available(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    undone: list[str] = []

    async def undo(message_id: str) -> str:
        if message_id == "nothing":
            raise UndoUnavailable("nothing to undo for that message")
        undone.append(message_id)
        return "Reverted 1 file"

    async with WebService(vault, anthropic_api) as plain, plain.http() as http:
        without_hook = await http.post("/api/messages/m1/undo", json={})
        assert (await http.get("/api/status")).json()["undo_available"] is False
    async with WebService(vault, anthropic_api, undo=undo) as service, service.http() as http:
        git_off = await http.post("/api/messages/m1/undo", json={})
        await http.put("/api/settings", json={"enable_git_version_control": True})
        available = (await http.get("/api/status")).json()["undo_available"]
        done = await http.post("/api/messages/m1/undo", json={})
        refused = await http.post("/api/messages/nothing/undo", json={})
    assert without_hook.status_code == 404
    assert git_off.status_code == 409
    assert available is True
    assert done.json() == {"ok": True, "detail": "Reverted 1 file"} and undone == ["m1"]
    assert (
        refused.status_code == 409 and refused.json()["error"] == "nothing to undo for that message"
    )


async def test_undo_reverts_the_changes_of_a_request_through_git(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        text_reply("Added eggs."),
        text_reply("vault(lists): add eggs\n\nAdded eggs."),
    )
    async with WebService(vault, anthropic_api, undo=True) as service, service.http() as http:
        await http.put("/api/settings", json={"enable_git_version_control": True})
        assert (await http.get("/api/status")).json()["undo_available"] is True
        message_id = (await http.post("/api/messages", json={"text": "add eggs"})).json()["id"]
        await service.wait_for_event("response", message_id=message_id)
        await service.idle()
        assert (vault / "Lists" / "Shopping.md").exists()
        undone = await http.post(f"/api/messages/{message_id}/undo", json={})
        again = await http.post(f"/api/messages/{message_id}/undo", json={})
    assert undone.status_code == 200, undone.text
    assert not (vault / "Lists" / "Shopping.md").exists()
    assert again.status_code == 409 and "already undone" in again.json()["error"]


async def test_retrospection_and_status_events_reach_the_websocket(service: WebService) -> None:
    async with service.websocket() as ws:
        await next_event(ws, "hello")
        service.bus.publish("retrospection", title="Shopping lists", text="Missing: a Lists index.")
        service.bus.publish("status", smarthole="connecting", detail=None)
        retrospection = await next_event(ws, "retrospection")
        status = await next_event(ws, "status")
    assert retrospection["title"] == "Shopping lists"
    assert status["smarthole"] == "connecting"


async def test_smarthole_message_appears_live_with_its_input_method(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    async with (
        SmartHoleStandIn() as hole,
        WebService(vault, anthropic_api, smarthole_url=hole.url) as service,
        service.websocket() as ws,
    ):
        hello = await next_event(ws, "hello")
        message_id = await hole.route(CLIENT_NAME, "remember the milk", input_method="voice")
        received = await next_event(ws, "message_received")
        await hole.wait_for_response(message_id, "notification", timeout=10)
    assert hello["smarthole"]["status"] == "connected"
    assert received["message_id"] == message_id
    assert (received["source"], received["input_method"]) == ("smarthole", "voice")


async def test_settings_changes_are_applied_at_runtime(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    async with (
        SmartHoleStandIn() as hole,
        WebService(vault, anthropic_api, smarthole_url=hole.url) as service,
        service.http() as http,
    ):
        await http.put("/api/settings", json={"client_name": "Notes-Two"})
        await hole.wait_for_client("Notes-Two")
        await http.put("/api/settings", json={"enable_smarthole_connection": False})
        status = (await http.get("/api/status")).json()
    assert status["smarthole"]["status"] == "disabled"


async def test_clearing_history_needs_confirmation(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    async with service.http() as http, service.websocket() as ws:
        await http.post("/api/messages", json={"text": "hello"})
        await service.idle()
        unconfirmed = await http.post("/api/conversations/clear", json={"confirm": False})
        kept = (await http.get("/api/conversations")).json()["conversations"]
        cleared = await http.post("/api/conversations/clear", json={"confirm": True})
        await next_event(ws, "history_cleared")
        left = (await http.get("/api/conversations")).json()["conversations"]
    assert unconfirmed.status_code == 400 and len(kept) == 1
    assert cleared.json() == {"ok": True} and left == []


async def test_invalid_bodies_are_refused_with_a_reason(service: WebService) -> None:
    async with service.http() as http:
        not_json = await http.post(
            "/api/messages", content=b"{nope", headers={"content-type": "application/json"}
        )
        empty = await http.post("/api/messages", json={"text": "   "})
        wrong_type = await http.post("/api/messages", json={"text": 5})
        extra = await http.post("/api/messages", json={"text": "a", "b": 1})
        surrogate = await http.post(
            "/api/messages",
            content=b'{"text": "\\ud800"}',
            headers={"content-type": "application/json"},
        )
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]
    assert empty.status_code == 400
    assert wrong_type.status_code == 400 and "string" in wrong_type.json()["error"]
    assert extra.status_code == 400
    assert surrogate.status_code == 400


async def test_plain_get_on_the_event_stream_explains_itself(service: WebService) -> None:
    async with service.http() as http:
        response = await http.get("/api/events")
    assert response.status_code == 426


async def test_openapi_document_covers_every_api_route(service: WebService) -> None:
    async with service.http() as http:
        served = (await http.get("/openapi.json")).json()
    assert served == openapi_document(service.ctx.version, service.port)
    routes = {
        getattr(r, "path", "").replace(":path}", "}")
        for r in service.app.routes
        if getattr(r, "path", "").startswith("/api/")
    }
    assert routes == set(served["paths"])


async def test_websocket_ends_cleanly_when_the_service_stops(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_credentials(monkeypatch, tmp_path / "config")
    service = WebService(vault, anthropic_api)
    await service.start()
    async with service.websocket() as ws:
        await next_event(ws, "hello")
        stopping = asyncio.create_task(service.stop())
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        await asyncio.wait_for(stopping, 10)
    assert os.path.exists(vault / ".smarthole")


def test_a_paging_time_outside_the_utc_range_is_a_clear_400() -> None:
    from smarthole_notes.web.api import ApiError, _query_time

    with pytest.raises(ApiError) as caught:
        _query_time("0001-01-01T01:00:00+03:00", "before")
    assert caught.value.status == 400


async def test_the_schema_carries_each_settings_bounds_title_and_help_as_validated(
    service: WebService,
) -> None:
    async with service.http() as http:
        served = (await http.get("/openapi.json")).json()
        too_long_idle = await http.put(
            "/api/settings", json={"conversation_idle_timeout_minutes": 10081}
        )
    schemas = served["components"]["schemas"]
    update, shown = schemas["SettingsUpdate"]["properties"], schemas["Settings"]["properties"]
    assert set(update) == {*SETTING_KEYS, "api_key"} and set(shown) == set(SETTING_KEYS)
    declared = settings_schema()["properties"]
    for key in SETTING_KEYS:
        for bound in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
            assert update[key].get(bound) == declared[key].get(bound) == shown[key].get(bound)
        assert update[key]["title"] == declared[key]["title"]
        assert update[key]["description"] == declared[key]["description"]
    idle = update["conversation_idle_timeout_minutes"]
    assert (idle["minimum"], idle["maximum"]) == (1, 10080)
    timeout = update["stream_idle_timeout_seconds"]
    assert (timeout["minimum"], timeout["maximum"]) == (5, 3600)
    assert too_long_idle.status_code == 422
    assert too_long_idle.json()["key"] == "conversation_idle_timeout_minutes"
    assert "at most 10080" in too_long_idle.json()["error"]
    assert "HTTPValidationError" not in str(served)


async def test_the_status_names_the_tools_that_change_notes(service: WebService) -> None:
    async with service.http() as http, service.websocket() as ws:
        status = (await http.get("/api/status")).json()
        hello = await next_event(ws, "hello")
    assert status["writing_tools"] == hello["writing_tools"] == sorted(NOTE_WRITING_TOOLS)


def test_the_page_keeps_no_copy_of_the_tool_catalog_or_the_settings() -> None:
    static = Path(smarthole_notes.web.__file__).parent / "static"
    scripts = "\n".join(p.read_text() for p in static.glob("*.js"))
    assert not any(f'"{name}"' in scripts for name in NOTE_WRITING_TOOLS)
    helps = [schema["description"] for schema in settings_schema()["properties"].values()]
    assert not any(help_text in scripts for help_text in helps)
    assert "Idle timeout (minutes)" not in scripts


async def test_spending_counts_this_months_answers_failed_attempts_and_side_jobs(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    store = service.store
    now = datetime.now(UTC)
    last_month = now - timedelta(days=40)
    cost = {"model": "claude-haiku-4-5", "input_tokens": 1000, "output_tokens": 10}
    active, _ = store.begin_message(last_month, timedelta(minutes=30))
    old = store.add_message(active.id, "user", "old", source="chat", at=last_month)
    store.add_message(active.id, "assistant", "old answer", source="chat", at=last_month,
                      usage={**cost, "cost_usd": 1.0})  # fmt: skip
    store.add_usage(old.row_id, {**cost, "cost_usd": 1.0}, at=last_month)
    store.end_conversation(active.id, "explicit", last_month)
    active, _ = store.begin_message(now, timedelta(minutes=30))
    asked = store.add_message(active.id, "user", "new", source="chat", at=now)
    store.add_message(active.id, "assistant", "answer", source="chat", at=now,
                      usage={**cost, "cost_usd": 0.25})  # fmt: skip
    store.add_usage(asked.row_id, {**cost, "cost_usd": 0.5}, at=now)  # an attempt that failed
    store.add_side_cost("summary", {**cost, "cost_usd": 0.125}, at=now, conversation_id=active.id)
    store.add_side_cost("routing_description", {**cost, "cost_usd": 0.125}, at=now)
    async with service.http() as http:
        spending = (await http.get("/api/spending")).json()
        conversation = (await http.get(f"/api/conversations/{active.id}")).json()
    since = datetime.fromisoformat(spending["since"])
    assert since.day == 1 and since.hour == 0 and since <= now
    assert spending["usage"]["cost_usd"] == 1.0  # 0.25 + 0.5 + 0.125 + 0.125, not last month
    assert spending["usage"]["input_tokens"] == 4000
    assert conversation["side_usage"]["cost_usd"] == 0.125
    assert conversation["usage_total"]["cost_usd"] == 0.875  # no routing description in it
    store.clear_all()  # the history goes; what was paid this month stays
    async with service.http() as http:
        assert (await http.get("/api/spending")).json()["usage"]["cost_usd"] == 1.0


async def test_spending_is_null_when_nothing_was_spent(service: WebService) -> None:
    async with service.http() as http:
        assert (await http.get("/api/spending")).json()["usage"] is None


async def test_spending_starts_at_local_midnight_on_the_first(
    service: WebService, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = ZoneInfo("America/New_York")
    monkeypatch.setattr(smarthole_notes.web.api, "local_zone", lambda: (zone, "America/New_York"))
    now = datetime.now(zone)
    since = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    cost = {"model": "claude-haiku-4-5", "input_tokens": 100, "output_tokens": 1}
    store = service.store
    # A minute before New York's month began (already this month in UTC): not counted.
    store.add_side_cost("routing_description", {**cost, "cost_usd": 1.0},
                        at=since - timedelta(minutes=1))  # fmt: skip
    store.add_side_cost("routing_description", {**cost, "cost_usd": 0.5},
                        at=since + timedelta(minutes=1))  # fmt: skip
    async with service.http() as http:
        spending = (await http.get("/api/spending")).json()
    assert datetime.fromisoformat(spending["since"]) == since
    assert spending["usage"]["cost_usd"] == 0.5
