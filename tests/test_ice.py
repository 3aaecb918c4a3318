"""TURN credentials as coturn's REST API checks them; the ICE transport policy setting."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from service.settings import Settings, SettingsError
from signaling.ice import TURN_CREDENTIAL_TTL_S, ice_servers_for, turn_credentials


def test_turn_credentials_are_hmac_sha1_of_expiry_and_user() -> None:
    username, credential = turn_credentials("s3cret", "peer1", now=1_000_000)
    assert username == f"{1_000_000 + TURN_CREDENTIAL_TTL_S}:peer1"
    expected = base64.b64encode(
        hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    ).decode()
    assert credential == expected


def test_only_turn_entries_without_username_get_credentials() -> None:
    servers = [
        {"urls": "stun:turn.example.com:3478"},
        {"urls": ["turn:turn.example.com:3478?transport=udp"]},
        {"urls": "turn:other.example.com", "username": "fixed", "credential": "pw"},
    ]
    result = ice_servers_for(servers, "s3cret", "peer1", now=0)
    assert result[0] == {"urls": "stun:turn.example.com:3478"}
    assert result[1]["username"].endswith(":peer1") and result[1]["credential"]
    assert result[2]["username"] == "fixed"
    assert ice_servers_for(servers, "", "peer1")[1] == servers[1]  # no secret: left as configured


def test_relay_only_needs_a_turn_server() -> None:
    with pytest.raises(SettingsError, match="needs a TURN server"):
        Settings.from_env({"ICE_TRANSPORT_POLICY": "relay"})
    with pytest.raises(SettingsError, match="use all or relay"):
        Settings.from_env({"ICE_TRANSPORT_POLICY": "none"})
    relayed = Settings.from_env(
        {"ICE_TRANSPORT_POLICY": "Relay", "ICE_SERVERS": '[{"urls": "turns:turn.example.com:443"}]'}
    )
    assert relayed.ice_transport_policy == "relay"
    assert Settings.from_env({}).ice_transport_policy == "all"
