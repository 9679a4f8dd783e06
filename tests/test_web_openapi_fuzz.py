"""Schemathesis against the served OpenAPI document: no input makes the service fail (5xx)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from smarthole_notes import __version__
from smarthole_notes.web.openapi import openapi_document
from tests.standins.anthropic_api import AnthropicStandIn, text_reply
from tests.web_harness import TOKEN, ThreadedWebService, isolated_credentials

schema = schemathesis.openapi.from_dict(openapi_document(__version__))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedWebService]:
    root = tmp_path_factory.mktemp("fuzz")
    vault = root / "vault"
    vault.mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch, AnthropicStandIn() as api:
        isolated_credentials(monkeypatch, root / "config")
        api.default_reply = text_reply("Noted.")
        with ThreadedWebService(vault, api) as threaded:
            yield threaded


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    # Fixed examples in CI (a red build must mean a regression); SMARTHOLE_FUZZ_RANDOM=1
    # explores new ones, as it did when it found the out-of-range paging time.
    derandomize=os.environ.get("SMARTHOLE_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_makes_the_service_fail(
    case: schemathesis.Case[Any], live: ThreadedWebService
) -> None:
    response = case.call(
        base_url=live.service.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
