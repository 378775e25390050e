"""The process-wide HTTP clients: one per option set and process, never shared across a fork."""

from __future__ import annotations

import os

import pytest

from portal.core import http


@pytest.fixture(autouse=True)
def _fresh():
    http.close_shared_clients()
    yield
    http.close_shared_clients()


def test_the_same_options_give_the_same_client():
    first = http.shared_client(timeout=5.0)
    assert http.shared_client(timeout=5.0) is first
    assert http.shared_client(timeout=6.0) is not first
    assert http.shared_client(timeout=5.0, verify=False) is not first


def test_a_forked_process_builds_its_own(monkeypatch):
    parent = http.shared_client(timeout=5.0)
    monkeypatch.setattr(os, "getpid", lambda: -1)
    child = http.shared_client(timeout=5.0)
    assert child is not parent and not parent.is_closed


def test_closing_gives_new_clients_afterwards():
    first = http.shared_client(timeout=5.0)
    http.close_shared_clients()
    assert first.is_closed
    assert http.shared_client(timeout=5.0) is not first


def test_a_gateway_client_never_closes_the_borrowed_one(settings):
    from payments.gateway.config import gateway_client

    with gateway_client("898111111111111") as client:
        borrowed = client._http
    assert not borrowed.is_closed
    with gateway_client("898111111111111") as again:
        assert again._http is borrowed
