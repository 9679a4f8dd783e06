"""The SmartHole client's life: reconnects, backoff, pings, enable/disable, new settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from smarthole_notes.smarthole import ConnectionStatus, SmartHoleClient
from tests.smarthole_fixtures import DESCRIPTION, NAME, Harness, connected_client, running_client
from tests.standins.smarthole_server import SmartHoleStandIn

CONNECTED = ConnectionStatus.CONNECTED
DISCONNECTED = ConnectionStatus.DISCONNECTED
DISABLED = ConnectionStatus.DISABLED


@pytest.fixture
async def hole() -> AsyncIterator[SmartHoleStandIn]:
    async with SmartHoleStandIn(deadline=5.0) as hole:
        yield hole


async def assert_messages_work(hole: SmartHoleStandIn, harness: Harness) -> None:
    message_id = await hole.route(NAME, f"are you there? {time.monotonic()}")
    assert (await harness.next_message()).id == message_id
    await hole.wait_for_response(message_id, "ack")


# --------------------------------------------------------------------------- reconnects


async def test_comes_back_after_dropped_connections(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:
        for _ in range(3):
            before = hole.connection_of(NAME)
            await hole.drop_connections()
            await hole.wait_for_client(NAME)
            assert hole.connection_of(NAME) != before
            await harness.wait_for_status(CONNECTED)
            await assert_messages_work(hole, harness)
        assert len(hole.registrations) == 4


@pytest.mark.parametrize("abrupt", [False, True])
async def test_comes_back_after_a_router_restart(hole: SmartHoleStandIn, abrupt: bool) -> None:
    async with connected_client(hole.url) as harness:
        port = hole.port
        await hole.restart(abrupt=abrupt)
        assert hole.port == port
        await hole.wait_for_client(NAME)
        await harness.wait_for_status(CONNECTED)
        await assert_messages_work(hole, harness)


async def test_comes_back_after_the_router_was_away_for_a_while(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:
        await hole.stop()
        await harness.wait_for_status(DISCONNECTED, detail="cannot reach SmartHole")
        shown = await harness.wait_for_status(DISCONNECTED, detail="connection refused")
        assert shown is not None and "retrying in" in shown
        await asyncio.sleep(0.5)  # several failed attempts on the short schedule
        await hole.start()
        await hole.wait_for_client(NAME)
        await harness.wait_for_status(CONNECTED)
        await assert_messages_work(hole, harness)


async def test_starts_before_the_router_and_connects_when_it_appears() -> None:
    hole = SmartHoleStandIn(deadline=5.0)
    await hole.start()
    await hole.stop()  # a port that nobody listens on, for now
    try:
        async with running_client(hole.url) as harness:
            await harness.wait_for_status(DISCONNECTED, detail="connection refused")
            await hole.start()
            await harness.wait_for_status(CONNECTED)
            await assert_messages_work(hole, harness)
    finally:
        await hole.close()


async def test_backoff_is_1_2_4_8_16_then_30_and_resets_after_registering() -> None:
    hole = SmartHoleStandIn(deadline=5.0)
    await hole.start()
    await hole.stop()
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0.005)

    try:
        async with running_client(hole.url, backoff=(1, 2, 4, 8, 16, 30), sleep=record) as h:
            while len(delays) < 9:
                await asyncio.sleep(0.01)
            await hole.start()
            await h.wait_for_status(CONNECTED)
            assert delays[:9] == [1, 2, 4, 8, 16, 30, 30, 30, 30]
            assert set(delays[9:]) <= {30}
            registered_after = len(delays)
            await hole.drop_connections()
            await hole.wait_for_client(NAME)
            await h.wait_for_status(CONNECTED)
            assert delays[registered_after:] == [1]  # reset by the registration
            await hole.stop()
            while len(delays) < registered_after + 4:
                await asyncio.sleep(0.01)
            assert delays[registered_after : registered_after + 4] == [1, 1, 2, 4]
    finally:
        await hole.close()


async def test_the_default_backoff_is_the_protocol_schedule() -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0.005)

    hole = SmartHoleStandIn()
    await hole.start()
    await hole.close()
    client = SmartHoleClient(
        hole.url,
        name=NAME,
        description=DESCRIPTION,
        version="0.1.0",
        on_message=lambda message: asyncio.sleep(0),
        sleep=record,
    )
    await client.start()
    try:
        while len(delays) < 7:
            await asyncio.sleep(0.01)
    finally:
        await client.stop()
    assert delays[:7] == [1, 2, 4, 8, 16, 30, 30]


# --------------------------------------------------------------------------- pings


async def test_pings_are_answered_while_other_work_runs_on_the_loop() -> None:
    # The router runs in its own thread, so its ping timing does not depend on our loop.
    with SmartHoleStandIn.in_thread(ping_interval=0.05, ping_timeout=0.5) as hole:
        async with running_client(hole.url) as harness:
            await harness.wait_for_status(CONNECTED)
            connection = hole.connection_of(NAME)
            pongs_before = len(hole.snapshot(lambda h: h.pongs))

            async def busy_agent() -> int:
                """Slow work that plays fair: many short CPU bursts, yielding in between."""
                bursts = 0
                until = time.monotonic() + 1.0
                while time.monotonic() < until:
                    burst_end = time.monotonic() + 0.01
                    while time.monotonic() < burst_end:
                        pass
                    bursts += 1
                    await asyncio.sleep(0)
                return bursts

            bursts = await asyncio.create_task(busy_agent())
            assert bursts > 50
            pongs = hole.snapshot(lambda h: list(h.pongs))[pongs_before:]
            assert len(pongs) >= 5
            assert hole.ping_timeouts == []
            assert max(p.round_trip for p in pongs) < 0.5
            assert hole.connection_of(NAME) == connection
            assert harness.status_names == ["connecting", "connected"]
            message_id = await asyncio.to_thread(hole.route, NAME, "still there?")
            assert (await harness.next_message()).id == message_id
            await asyncio.to_thread(hole.wait_for_response, message_id)


async def test_a_blocked_loop_misses_pings_and_the_client_reconnects() -> None:
    """Why nothing may block the loop: the router drops a client that does not pong."""
    with SmartHoleStandIn.in_thread(ping_interval=0.05, ping_timeout=0.2) as hole:
        async with running_client(hole.url) as harness:
            await harness.wait_for_status(CONNECTED)
            connection = hole.connection_of(NAME)
            time.sleep(0.6)  # a blocking call on the event loop (the bug being shown)
            dropped = hole.wait_until(lambda h: h.ping_timeouts)
            assert [t.client for t in dropped] == [NAME]
            await harness.wait_for_status(DISCONNECTED)
            await harness.wait_for_status(CONNECTED)
            assert hole.connection_of(NAME) not in (None, connection)
            message_id = await asyncio.to_thread(hole.route, NAME, "back again")
            assert (await harness.next_message()).id == message_id
            ack = await asyncio.to_thread(hole.wait_for_response, message_id)
            assert ack.type == "ack"


# --------------------------------------------------------------------------- enable, disable


async def test_disable_and_enable_at_runtime_publish_statuses_in_order(
    hole: SmartHoleStandIn,
) -> None:
    async with connected_client(hole.url) as harness:
        client = harness.client
        await client.disable()
        assert client.status is DISABLED
        await hole.wait_until(lambda: hole.connection_count == 0)
        assert hole.client_names == []
        await asyncio.sleep(0.3)  # no reconnect while disabled
        assert hole.connections_opened == 1
        await client.disable()  # idempotent
        await client.enable()
        await harness.wait_for_status(CONNECTED)
        await client.enable()  # idempotent
        await assert_messages_work(hole, harness)
        assert harness.status_names == [
            "connecting",
            "connected",
            "disabled",
            "connecting",
            "connected",
        ]
        assert await client.send_ack("msg-x")
        await client.disable()
        assert await client.send_ack("msg-x") is False


async def test_disable_stops_the_reconnect_loop(hole: SmartHoleStandIn) -> None:
    await hole.stop()
    async with running_client(hole.url) as harness:
        await harness.wait_for_status(DISCONNECTED, detail="retrying")
        await harness.client.disable()
        await hole.start()
        await asyncio.sleep(0.3)
        assert hole.connections_opened == 0
        assert harness.client.status is DISABLED
        assert harness.statuses[-1] == (DISABLED, None)


async def test_a_client_created_disabled_never_connects(hole: SmartHoleStandIn) -> None:
    async with running_client(hole.url, enabled=False) as harness:
        await asyncio.sleep(0.2)
        assert hole.connections_opened == 0
        assert harness.status_names == ["disabled"]
        await harness.client.enable()
        await harness.wait_for_status(CONNECTED)
    assert harness.status_names == ["disabled", "connecting", "connected", "disconnected"]


async def test_new_settings_re_register_under_the_new_name(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:
        client = harness.client
        await client.update_registration(NAME, DESCRIPTION)  # unchanged: nothing happens
        assert hole.connections_opened == 1
        await client.update_registration("Notes-Bot", "Keeps notes")
        await harness.wait_for_status(CONNECTED)
        assert hole.client_names == ["Notes-Bot"]
        assert hole.registrations[-1].payload["description"] == "Keeps notes"
        assert harness.status_names == ["connecting", "connected", "connecting", "connected"]
        message_id = await hole.route("Notes-Bot", "hi")
        assert (await harness.next_message()).id == message_id
        await client.update_registration("9-invalid", "Keeps notes")
        shown = await harness.wait_for_status(DISCONNECTED, detail="client_name")
        assert shown is not None
        await hole.wait_until(lambda: hole.connection_count == 0)


async def test_settings_changed_while_disabled_apply_on_enable(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:
        await harness.client.disable()
        await harness.client.update_registration("Later-Name", DESCRIPTION)
        assert harness.client.status is DISABLED
        await harness.client.enable()
        await harness.wait_for_status(CONNECTED)
        assert hole.client_names == ["Later-Name"]


async def test_a_failing_status_listener_does_not_break_the_client(
    hole: SmartHoleStandIn,
) -> None:
    harness = Harness(hole.url)

    def broken(status: ConnectionStatus, detail: str | None) -> None:
        raise RuntimeError("listener bug")

    harness.client._on_status = broken
    await harness.client.start()
    try:
        await hole.wait_for_client(NAME)
        message_id = await hole.route(NAME, "hello")
        await hole.wait_for_response(message_id)
    finally:
        await harness.client.stop()


async def test_disabling_from_inside_the_handler_does_not_deadlock(hole: SmartHoleStandIn) -> None:
    harness: Harness

    async def disable_me(message: object) -> None:
        await harness.client.disable()

    async with connected_client(hole.url, handler=disable_me, ack=False) as harness:
        await hole.route(NAME, "turn yourself off")
        await harness.wait_for_status(DISABLED, timeout=2)
        await hole.wait_until(lambda: hole.connection_count == 0)
        await harness.client.enable()
        await harness.wait_for_status(CONNECTED)
