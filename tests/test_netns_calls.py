"""Calls on networks that get in the way, in real Chromium: the recruiter, the candidate and the
server (with coturn beside it) each in a network namespace of their own, behind one router.

- The router drops everything between the two browsers: the call comes up through the relay
  (getStats' selected pair), the server records both, the transcript and the score arrive.
- The candidate's network drops UDP (TURN over TCP), or lets through only TCP to the site and
  to port 443 (TURN over TLS); the connectivity check says so to both people.
- ICE_TRANSPORT_POLICY=relay: every connection is relayed, no page learns another's address.
- The candidate's network fails mid-call: an ICE restart brings the call back over what is
  left (TURN over TCP); when nothing is left, the pages say so, start a fresh connection, and
  the call is back once the network is.
- The candidate's network blocks everything the call needs: the check before Join says what
  to do, and the recruiter's waiting page says the call may not connect.

Every address is inside namespaces the test made (tests/netns.py). Needs root.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rooms.bank import bundled_banks
from rooms.models import Answer
from tests import netns, network_calls
from tests.browser import recruiter_page
from tests.netns import Host, Lab
from tests.network_calls import (
    RECORDING_PAIR,
    SELECTED_PAIR,
    SERVICE_PORT,
    TURN_TLS_PORT,
    Service,
    browsers,
    candidates_js,
    prepare_database,
    start_service,
    start_turn_in,
)
from tests.rtc import flite
from tests.seed import Seeded, seed_interview
from tests.test_browser_call import wait_for_media
from tests.turn import TurnServer
from tests.wer import words

_SKIP = netns.skip_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")]

FIRST = next(b for b in bundled_banks() if b.id == "python-backend").questions[0]
SPOKEN = " ".join(FIRST.expected_answer.split(". ")[:2])
CONNECT_MS = 45_000
"""Deadlines for media on a loaded two-core machine (four processes and two browsers here)."""


@dataclass
class Network:
    lab: Lab
    recruiter: Host
    candidate: Host
    server: Host
    turn: TurnServer
    service: Service
    seeded: Seeded
    folder: Path
    database: str


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.close()


def network(
    lab: Lab, tmp_path: Path, env: dict[str, str] | None = None, transports=None
) -> Network:  # type: ignore[no-untyped-def]
    recruiter, candidate, server = (lab.add_host(n) for n in ("rec", "cand", "srv"))
    turn = start_turn_in(lab, server, tmp_path / "turn")
    database = prepare_database(tmp_path / "db")
    seeded = seed_interview(database)
    turn_env = turn.env(transports or ("udp", "tcp", "tls"))
    service = start_service(lab, server, database, tmp_path, {**turn_env, **(env or {})})
    return Network(lab, recruiter, candidate, server, turn, service, seeded, tmp_path, database)


def meet(net: Network, launched: dict) -> tuple[Page, Page]:  # type: ignore[type-arg]
    """The recruiter waits, the candidate joins, the interview starts: both in the call."""
    return network_calls.meet(net.service, net.seeded, launched, CONNECT_MS)  # type: ignore[no-any-return]


def pair_of(page: Page) -> dict:  # type: ignore[type-arg]
    pair = page.evaluate(SELECTED_PAIR)
    assert pair, "no selected candidate pair"
    return pair


def note_states(page: Page) -> None:
    page.evaluate(network_calls.NOTE_STATES)


def shown(page: Page) -> list[str]:
    return list(page.evaluate("() => window.shown"))


def wait_shown(page: Page, text: str, timeout: float) -> None:
    """Until the page has shown a state or notice containing the text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in t for t in shown(page)):
            return
        time.sleep(0.2)
    raise AssertionError(f"{page.url} never showed {text!r} within {timeout} s: {shown(page)}")


def test_the_call_goes_through_the_relay_when_the_browsers_cannot_reach_each_other(
    lab: Lab, tmp_path: Path
) -> None:
    net = network(lab, tmp_path)
    lab.drop_between(net.recruiter, net.candidate)
    wav = flite(tmp_path / "answer.wav", SPOKEN)
    with browsers([net.recruiter, net.candidate], wav, net.service, net.turn, tmp_path) as launched:
        recruiter, candidate = meet(net, launched)
        for page in (recruiter, candidate):
            wait_for_media(page, timeout=CONNECT_MS / 1000)
            pair = pair_of(page)
            assert pair["relayed"], pair
        assert lab.dropped_packets() > 0, "the browsers never tried each other directly"
        # The server records both participants; the indicator reads the call's getStats.
        for page in (recruiter, candidate):
            expect(page.locator("#recording-indicator")).to_be_visible(timeout=CONNECT_MS)
            quality = page.locator("#call-quality")
            expect(quality).to_be_visible(timeout=10_000)
            expect(quality).to_contain_text(re.compile(r"Connection: (Good|Fair|Poor) · \d+ ms"))
            expect(quality).to_contain_text("via relay")

        recruiter.get_by_role("button", name="Start technical part").click()
        expect(candidate.locator("#question-counter")).to_have_text("Question: 1/10")
        asked = time.monotonic()
        expect(recruiter.locator("#live-transcript")).to_contain_text(
            "default", ignore_case=True, timeout=60_000
        )
        time.sleep(max(0.0, 12.0 - (time.monotonic() - asked)))
        recruiter.get_by_role("button", name="Next question").click()
        expect(candidate.locator("#question-counter")).to_have_text("Question: 2/10")
        # The fake microphone plays the answer in a loop, so the stored answer starts anywhere
        # in it: what counts is that its words came through the relay.
        answer = stored_answer(net, 1)
        said = {w for w in words(SPOKEN) if len(w) > 4}
        heard = set(words(answer.text))
        assert len(said & heard) >= 0.6 * len(said), answer.text
        for role in ("recruiter", "candidate"):
            files = net.service.recordings(net.seeded.interview_id, role)
            assert files and max(f.stat().st_size for f in files) > 10_000, (role, files)
        expect(recruiter.locator("#score-1")).to_contain_text("Q1:", timeout=60_000)


def stored_answer(net: Network, position: int, timeout: float = 60) -> Answer:
    """The answer the service stored for the question (its transcript), once it is there."""
    return network_calls.wait_for_row(  # type: ignore[no-any-return]
        net.database, Answer, net.seeded.interview_id, timeout,
        lambda a: a.position == position and a.engine,
    )  # fmt: skip


@pytest.mark.parametrize("blocked", ["udp", "all-but-443"])
def test_a_network_without_udp_gets_the_call_through_turn_over_tcp_or_tls(
    lab: Lab, tmp_path: Path, blocked: str
) -> None:
    """`udp`: the candidate's network drops all UDP. `all-but-443`: it lets through only TCP to
    the site's port and to 443, where coturn listens for TLS."""
    net = network(lab, tmp_path)
    cand = net.candidate
    lab.drop_udp(cand)
    if blocked == "all-but-443":
        lab.drop(f"ip saddr {cand.address} tcp dport != {{ {SERVICE_PORT}, {TURN_TLS_PORT} }}")
    wav = flite(tmp_path / "hello.wav", "Hello, can you hear me?")
    with browsers([net.recruiter, cand], wav, net.service, net.turn, tmp_path) as launched:
        recruiter, candidate = meet(net, launched)
        wait_for_media(candidate, timeout=CONNECT_MS / 1000)
        wait_for_media(recruiter, timeout=CONNECT_MS / 1000)
        pair = pair_of(candidate)
        assert pair["local"] == "relay", pair
        expected = {"tls"} if blocked == "all-but-443" else {"tcp", "tls"}
        assert pair["localTransport"] in expected, pair
        # The server records the candidate through the relay too.
        expect(candidate.locator("#recording-indicator")).to_be_visible(timeout=CONNECT_MS)
        recording = candidate.evaluate(RECORDING_PAIR)
        assert recording and recording["local"] == "relay", recording
        assert recording["localTransport"] in expected, recording
    log = net.turn.allocations()
    assert any("TCP" in line or "TLS" in line or "tcp" in line for line in log) or log


def test_the_network_check_says_when_turn_goes_over_tls_only(lab: Lab, tmp_path: Path) -> None:
    """Before Join: the candidate whose network allows only HTTPS reads that the call will go
    through the relay; the recruiter's waiting page says the same."""
    net = network(lab, tmp_path)
    cand = net.candidate
    lab.drop_udp(cand)
    lab.drop(f"ip saddr {cand.address} tcp dport != {{ {SERVICE_PORT}, {TURN_TLS_PORT} }}")
    wav = flite(tmp_path / "hello.wav", "Hello.")
    with browsers([net.recruiter, cand], wav, net.service, net.turn, tmp_path) as launched:
        seeded = net.seeded
        recruiter = recruiter_page(
            launched["rec"], net.service.url, seeded.email, seeded.password, seeded.interview_id
        )
        candidate = launched["cand"].new_context().new_page()
        candidate.goto(f"{net.service.url}/i/{seeded.token}")
        status = candidate.locator("#network-status")
        expect(status).to_contain_text("Your network is ready for the call", timeout=CONNECT_MS)
        expect(status).to_contain_text("go through our relay server")
        result = candidate.evaluate(
            "JSON.parse(document.getElementById('network-status').dataset.result)"
        )
        assert result["relay"] == "ok" and result["relay_via"] == "tls" and result["server"] == "ok"
        expect(recruiter.locator("#candidate-network")).to_contain_text(
            "through the relay over TLS", timeout=20_000
        )


def test_the_network_check_tells_a_blocked_candidate_what_to_do(lab: Lab, tmp_path: Path) -> None:
    """Only UDP TURN is offered and the candidate's network drops UDP: neither the relay nor the
    server's peer can be reached. The candidate reads what to do, the recruiter that the call
    may not connect."""
    net = network(lab, tmp_path, transports=("udp",))
    lab.drop_udp(net.candidate)
    wav = flite(tmp_path / "hello.wav", "Hello.")
    with browsers([net.recruiter, net.candidate], wav, net.service, net.turn, tmp_path) as launched:
        seeded = net.seeded
        recruiter = recruiter_page(
            launched["rec"], net.service.url, seeded.email, seeded.password, seeded.interview_id
        )
        candidate = launched["cand"].new_context().new_page()
        candidate.goto(f"{net.service.url}/i/{seeded.token}")
        status = candidate.locator("#network-status")
        expect(status).to_contain_text("Your network blocks the call", timeout=CONNECT_MS)
        expect(status).to_contain_text("turn off your VPN")
        expect(candidate.get_by_role("button", name="Check again")).to_be_visible()
        expect(recruiter.locator("#candidate-network")).to_contain_text(
            "Carl Candidate's network blocks the call", timeout=20_000
        )


def test_relay_only_policy_hides_every_address(lab: Lab, tmp_path: Path) -> None:
    net = network(lab, tmp_path, {"ICE_TRANSPORT_POLICY": "relay"})
    wav = flite(tmp_path / "hello.wav", "Hello, can you hear me?")
    with browsers([net.recruiter, net.candidate], wav, net.service, net.turn, tmp_path) as launched:
        recruiter, candidate = meet(net, launched)
        for page, other in ((recruiter, net.candidate), (candidate, net.recruiter)):
            wait_for_media(page, timeout=CONNECT_MS / 1000)
            pair = pair_of(page)
            assert pair["local"] == "relay" and pair["remote"] == "relay", pair
            seen = page.evaluate(candidates_js("call"))
            assert seen and all(kind == "relay" for kind, _ in seen), seen
            assert all(address != other.address for _, address in seen), seen
        expect(candidate.locator("#recording-indicator")).to_be_visible(timeout=CONNECT_MS)
        recording = candidate.evaluate(RECORDING_PAIR)
        assert recording and recording["local"] == "relay" and recording["remote"] == "relay"
        seen = candidate.evaluate(candidates_js("recording"))
        assert seen and all(kind == "relay" for kind, _ in seen), seen


def test_the_call_recovers_when_the_candidates_network_fails(lab: Lab, tmp_path: Path) -> None:
    net = network(lab, tmp_path)
    cand, srv = net.candidate, net.server
    lab.drop_between(net.recruiter, cand)
    # Everything between the candidate and the server but the signaling socket.
    media = (
        f"ip saddr {cand.address} ip daddr {srv.address} tcp dport != {SERVICE_PORT}",
        f"ip saddr {srv.address} ip daddr {cand.address} tcp sport != {SERVICE_PORT}",
        f"ip saddr {cand.address} meta l4proto udp",
        f"ip daddr {cand.address} meta l4proto udp",
    )
    wav = flite(tmp_path / "hello.wav", "Hello, can you hear me? I am still here.")
    with browsers([net.recruiter, cand], wav, net.service, net.turn, tmp_path) as launched:
        recruiter, candidate = meet(net, launched)
        wait_for_media(recruiter, timeout=CONNECT_MS / 1000)
        for page in (recruiter, candidate):
            note_states(page)

        # 1. A few seconds without the network: the pages say so and restart ICE; once the
        # network is back, so is the call.
        lab.outage(*media)
        for page in (recruiter, candidate):
            wait_shown(page, "Restoring it (try 1 of 2)", 40)
        lab.end_outage()
        for page in (recruiter, candidate):
            expect(page.locator("#call-state")).to_have_text("Connected", timeout=CONNECT_MS)
        wait_for_media(recruiter, timeout=CONNECT_MS / 1000)
        assert any(t.startswith("The connection is interrupted") for t in shown(recruiter))

        # 2. Longer: the restarts do not help, the pages start a fresh connection and say so;
        # the recruiter reads that it is the candidate's network, the candidate that it is theirs.
        lab.outage(*media)
        for page in (recruiter, candidate):
            wait_shown(page, "Still no connection. Starting a new one", 60)
        expect(recruiter.locator("#network-notice")).to_contain_text(
            "Carl Candidate's network is unstable", timeout=20_000
        )
        expect(candidate.locator("#network-notice")).to_contain_text("Your network is unstable")
        lab.end_outage()
        for page in (recruiter, candidate):
            expect(page.locator("#call-state")).to_have_text("Connected", timeout=CONNECT_MS)
        wait_for_media(recruiter, timeout=CONNECT_MS / 1000)
        wait_for_media(candidate, timeout=CONNECT_MS / 1000)
        assert pair_of(candidate)["relayed"]
        expect(recruiter.locator("#network-notice")).to_be_empty(timeout=20_000)
