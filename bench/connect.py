"""How fast a call comes up, directly and through TURN, and what an answer keeps on bad networks.

Run: .venv/bin/python bench/connect.py [--joins 20] [--profiles all] [--answers 3] [--views all]
     (--full: all of these; the default run is short: 3 joins, two profiles, no browser views)

1. Joins (loopback, real Chromium, coturn for the TURN rows): a candidate's page is opened into
   a running call again and again; for each join the time from opening the page to the first
   remote video frame it shows (requestVideoFrameCallback) and to the first audio packet the
   server records of it (the segment's first-sample time), p50/p95. `direct`: host candidates on
   127.0.0.1; `TURN`: ICE_TRANSPORT_POLICY=relay, every connection (both pages and the server's
   peer) through coturn over UDP.
2. Answers under netem profiles (root: network namespaces): the candidate, an aiortc peer
   sending a flite-spoken answer, behind an emulated link (tests/wire.py: `tc netem`'s loss,
   delay, jitter and rate, in user space on kernels without sch_netem); the server in its own
   namespace. For each profile: the share of the candidate's audio on the server's timeline,
   the transcript's WER (and the clean case's), and the delay from moving on to the score.
3. What the recruiter sees (root, --views): the candidate's Chromium behind the same link, the
   recruiter's Chromium on a clean one; over 20 s in the call: whether it stayed connected,
   the video and audio the recruiter receives, and what the quality indicator says.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from media.opus_fec import has_lbrr  # noqa: E402
from rooms.bank import bundled_banks  # noqa: E402
from rooms.models import Answer, Recording, Score  # noqa: E402
from tests import netns  # noqa: E402
from tests import turn as turn_server  # noqa: E402
from tests.browser import CHROMIUM, candidate_page, chromium_args, recruiter_page  # noqa: E402
from tests.network_calls import (  # noqa: E402
    NOTE_STATES,
    answer_question_1,
    browsers,
    meet,
    prepare_database,
    rows,
    start_service,
    start_turn_in,
    wait_for_row,
)
from tests.rtc import audio_kept, flite, opus_packets, wav_seconds  # noqa: E402
from tests.seed import seed_interview  # noqa: E402
from tests.wer import wer  # noqa: E402
from tests.wire import Profile  # noqa: E402

PROFILES = {
    "clean": Profile(),
    "loss2": Profile(loss=2),
    "loss10": Profile(loss=10),
    "rtt300": Profile(delay_ms=150),
    "jitter30": Profile(delay_ms=20, jitter_ms=30),
    "rate500": Profile(rate_kbit=500),
}
QUESTIONS = next(b for b in bundled_banks() if b.id == "python-backend").questions
FIRST_FRAME = """
const PageSocket = window.WebSocket;
window.WebSocket = class extends PageSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      if (!window.joinedAt && /"type":\\s*"joined"/.test(event.data)) {
        window.joinedAt = performance.timeOrigin + performance.now();
      }
    });
  }
};
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("remote-video");
  if (!video) return;
  const mark = () => { window.firstFrameAt = window.firstFrameAt || performance.timeOrigin + performance.now(); };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(mark);
  else video.addEventListener("loadeddata", mark);
});
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Local:
    url: str
    process: subprocess.Popen[bytes]


def serve_here(env: dict[str, str], log: Path) -> Local:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        env={**os.environ, "PORT": str(port), "PUBLIC_URL": url, "LOG_LEVEL": "INFO", **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Local(url, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the service did not start")


def poll(page: Any, expression: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.02)
    return None


def joins(mode: str, count: int, folder: Path) -> tuple[list[float], list[float], list[float]]:
    """Seconds from opening the candidate's page to its first remote frame and to the server's
    first recorded packet of it, and from its signaling join to that frame, for `count` joins
    into one running call."""
    from playwright.sync_api import expect, sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    relay = None
    env = {"DATA_DIR": str(folder / "var"), "SECRET_KEY": "bench"}
    database = prepare_database(folder / "db")
    env["DATABASE_URL"] = database
    if mode == "TURN":
        relay = turn_server.start_turn(folder / "turn")
        env.update(relay.env(["udp"]))
        env["ICE_TRANSPORT_POLICY"] = "relay"
    seeded = seed_interview(database)
    service = serve_here(env, folder / "service.log")
    wav = flite(folder / "hello.wav", "Hello, can you hear me?")
    frames: list[float] = []
    packets: list[float] = []
    failed: list[str] = []
    from_join: list[float] = []
    try:
        with sync_playwright() as playwright:
            args = chromium_args(wav) + (relay.chromium_args() if relay else [])
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            recruiter = recruiter_page(
                browser, service.url, seeded.email, seeded.password, seeded.interview_id
            )
            first = candidate_page(browser, service.url, seeded.token)
            recruiter.get_by_role("button", name="Start interview").click()
            expect(first.locator("#call-state")).to_have_text("Connected", timeout=30_000)
            first.context.close()
            for _ in range(count):
                expect(recruiter.locator("#call-state")).to_have_text(
                    "Candidate left", timeout=30_000
                )
                context = browser.new_context()
                context.add_init_script(FIRST_FRAME)
                page = context.new_page()
                opened = time.time()
                page.goto(f"{service.url}/i/{seeded.token}")
                frame_at = poll(page, "window.firstFrameAt", 30)
                try:
                    recorded = wait_for_row(
                        database,
                        Recording,
                        seeded.interview_id,
                        30,
                        lambda r, opened=opened: (
                            r.role == "candidate" and r.started_at.timestamp() >= opened
                        ),
                    )
                    packets.append(recorded.started_at.timestamp() - opened)
                except AssertionError:
                    failed.append("no recorded packet in 30 s")
                joined_at = page.evaluate("window.joinedAt") or 0
                if frame_at:
                    frames.append(frame_at / 1000 - opened)
                    if joined_at:
                        from_join.append((frame_at - joined_at) / 1000)
                else:
                    failed.append("no remote frame in 30 s")
                context.close()
            browser.close()
    finally:
        service.process.terminate()
        service.process.wait(timeout=20)
        if relay:
            relay.stop()
        if failed:
            print(f"  {mode}: {len(failed)} misses: {', '.join(sorted(set(failed)))}")
    return frames, packets, from_join


@dataclass
class Answered:
    kept: float
    error: float
    score_delay_s: float | None


def answers_under(name: str, profile: Profile, count: int, folder: Path) -> list[Answered]:
    """`count` answers to question 1, each its own interview, over a link with the profile."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = netns.Lab()
    results: list[Answered] = []
    try:
        server = lab.add_host("srv")
        cand = lab.add_host("cand", wire=lab.emulated(profile, folder / "wire.log"))
        database = prepare_database(folder / "db")
        service = start_service(lab, server, database, folder)
        spoken = " ".join(QUESTIONS[0].expected_answer.split(". ")[:2])
        wav = flite(folder / "answer.wav", spoken)
        for index in range(count):
            seeded = seed_interview(database, email=f"bench{index}@example.com")
            moved = answer_question_1(server, cand, service, seeded, wav)
            answer = wait_for_row(
                database, Answer, seeded.interview_id, 120, lambda a: a.position == 1 and a.engine
            )
            score_delay: float | None = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                scores = [s for s in rows(database, Score, seeded.interview_id) if s.position == 1]
                if scores:
                    score_delay = time.time() - moved
                    break
                if "answer job failed (try 3 of 3)" in service.log.read_text(errors="replace"):
                    break
                time.sleep(0.1)
            kept_s, timeline_s = 0.0, 0.0
            for segment in service.recordings(seeded.interview_id, "candidate"):
                real, total = audio_kept(segment)
                kept_s, timeline_s = kept_s + real, timeline_s + total
            # Against the answer's own length: a segment lost entirely counts as lost.
            expected = max(timeline_s, wav_seconds(wav))
            results.append(Answered(kept_s / expected, wer(spoken, answer.text), score_delay))
            print(
                f"  {name} #{index + 1}: kept {100 * kept_s / expected:.1f} %, "
                f"WER {results[-1].error:.2f}, score "
                + (f"{score_delay:.2f} s" if score_delay is not None else "did not arrive"),
                flush=True,
            )
    finally:
        lab.close()
    return results


VIEW_JS = """() => {
  const q = window.p2pQuality && window.p2pQuality.call.last;
  const box = document.getElementById("call-quality");
  return q ? { loss: q.loss, rtt: q.rttMs, level: box.dataset.level, text: box.textContent } : null;
}"""
TOTALS_JS = """async () => {
  const pc = window.p2pCall && window.p2pCall.pc;
  const t = { at: performance.now(), video: 0, extra: 0, frames: 0, freezes: 0, frozen: 0,
              height: 0, audio: 0, concealed: 0, samples: 0 };
  if (!pc) return t;
  (await pc.getStats()).forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video") {
      t.video += r.bytesReceived || 0;
      t.extra += (r.retransmittedBytesReceived || 0) + (r.fecBytesReceived || 0);
      t.frames += r.framesDecoded || 0;
      t.freezes += r.freezeCount || 0;
      t.frozen += r.totalFreezesDuration || 0;
      t.height = r.frameHeight || t.height;
    } else if (r.kind === "audio") {
      t.audio += r.bytesReceived || 0;
      t.concealed += r.concealedSamples || 0;
      t.samples += r.totalSamplesReceived || 0;
    }
  });
  return t;
}"""


def recruiter_view(name: str, profile: Profile, seconds: float, folder: Path) -> dict[str, Any]:
    """The recruiter's page over `seconds` of a call with a candidate behind the link (after
    10 s for the bandwidth estimate to settle)."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = netns.Lab()
    try:
        rec = lab.add_host("rec")
        cand = lab.add_host("cand", wire=lab.emulated(profile, folder / "wire.log"))
        srv = lab.add_host("srv")
        relay = start_turn_in(lab, srv, folder / "turn")
        database = prepare_database(folder / "db")
        seeded = seed_interview(database)
        service = start_service(lab, srv, database, folder, relay.env())
        wav = flite(folder / "hello.wav", "Hello, can you hear me? I am answering your question.")
        with browsers([rec, cand], wav, service, relay, folder) as launched:
            recruiter, _ = meet(service, seeded, launched, 90_000)
            recruiter.evaluate(NOTE_STATES)
            time.sleep(10)
            first = recruiter.evaluate(TOTALS_JS)
            samples = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(2)
                sample = recruiter.evaluate(VIEW_JS)
                if sample and sample["loss"] is not None:
                    samples.append(sample)
            last = recruiter.evaluate(TOTALS_JS)
            shown = recruiter.evaluate("() => window.shown")
        # What the server recorded of the candidate's Chromium over the whole call, and how many
        # of its packets carried an FEC copy of the frame before them.
        kept_s = timeline_s = 0.0
        packets = with_fec = 0
        for segment in service.recordings(seeded.interview_id, "candidate"):
            real, total = audio_kept(segment)
            kept_s, timeline_s = kept_s + real, timeline_s + total
            for packet in opus_packets(segment):
                packets += len(packet) > 1
                with_fec += has_lbrr(packet)

        def mean(key: str) -> float:
            values = [s[key] for s in samples if s.get(key) is not None]
            return statistics.fmean(values) if values else float("nan")

        span = max(0.001, (last["at"] - first["at"]) / 1000)
        repair = last["extra"] - first["extra"]
        received = last["samples"] - first["samples"]
        levels = [s["level"] for s in samples]
        return {
            "profile": name,
            "stayed up": not any(t.startswith(("The connection", "Still")) for t in shown),
            "video kbit/s": ((last["video"] - first["video"]) - repair) * 8 / span / 1000,
            "repair kbit/s": repair * 8 / span / 1000,
            "fps": (last["frames"] - first["frames"]) / span,
            "height": last["height"],
            "freezes": last["freezes"] - first["freezes"],
            "frozen s": last["frozen"] - first["frozen"],
            "audio kbit/s": (last["audio"] - first["audio"]) * 8 / span / 1000,
            "audio concealed %": 100 * (last["concealed"] - first["concealed"]) / max(1, received),
            "loss %": 100 * mean("loss"),
            "RTT ms": mean("rtt"),
            "indicator": max(set(levels), key=levels.count) if levels else "-",
            "server kept %": 100 * kept_s / max(timeline_s, 0.001),
            "packets with FEC %": 100 * with_fec / max(packets, 1),
            "example": samples[-1]["text"] if samples else "",
        }
    finally:
        lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=3, help="joins per mode (the README: 20)")
    parser.add_argument("--profiles", default="clean,loss2", help="netem profiles, or 'all'")
    parser.add_argument("--answers", type=int, default=1, help="answers per profile")
    parser.add_argument(
        "--views", default="", help="profiles for what the recruiter sees, or 'all'"
    )
    parser.add_argument("--view-seconds", type=float, default=30)
    parser.add_argument(
        "--full", action="store_true", help="--joins 20 --profiles all --answers 3 --views all"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the logs and recordings")
    args = parser.parse_args()
    if args.full:
        args.joins, args.profiles, args.answers, args.views = 20, "all", 3, "all"
    chosen = (
        list(PROFILES) if args.profiles == "all" else [p for p in args.profiles.split(",") if p]
    )
    views = list(PROFILES) if args.views == "all" else [p for p in args.views.split(",") if p]
    out: dict[str, Any] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    try:
        if args.joins:
            print(
                f"\n## Joins: page opened → first remote video frame, → first recorded audio packet ({args.joins} joins each)\n"
            )
            print(
                "| path | joins | page → first frame p50 | p95 | page → first recorded packet p50 "
                "| p95 | socket joined → first frame p50 | p95 |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for mode in ("direct", "TURN"):
                if mode == "TURN" and turn_server.missing():
                    print(f"| TURN | skipped: {turn_server.missing()} | | | | | | |")
                    continue
                frames, packets, from_join = joins(mode, args.joins, folder / f"joins-{mode}")
                out[f"joins {mode}"] = {
                    "frame_s": frames,
                    "packet_s": packets,
                    "join_frame_s": from_join,
                }
                print(
                    f"| {mode} | {min(len(frames), len(packets))}/{args.joins} "
                    f"| {percentile(frames, 50):.2f} s | {percentile(frames, 95):.2f} s "
                    f"| {percentile(packets, 50):.2f} s | {percentile(packets, 95):.2f} s "
                    f"| {percentile(from_join, 50):.2f} s | {percentile(from_join, 95):.2f} s |",
                    flush=True,
                )
        reason = netns.skip_reason()
        if chosen:
            print(
                f"\n## An answer under each profile ({args.answers} answer(s) each, flite voice, aiortc sender)\n"
            )
            if reason:
                print(f"skipped: {reason}")
            else:
                table = []
                for name in chosen:
                    results = answers_under(
                        name, PROFILES[name], args.answers, folder / f"netem-{name}"
                    )
                    table.append((name, results))
                    out[f"netem {name}"] = [r.__dict__ for r in results]
                clean = next((r for n, r in table if n == "clean"), None)
                clean_wer = statistics.fmean(r.error for r in clean) if clean else None
                print(
                    "\n| profile | audio kept on the server | transcript WER | WER vs clean | score after moving on |"
                )
                print("|---|---|---|---|---|")
                for name, results in table:
                    kept = statistics.fmean(r.kept for r in results)
                    error = statistics.fmean(r.error for r in results)
                    delays = [r.score_delay_s for r in results if r.score_delay_s is not None]
                    score = f"{statistics.fmean(delays):.2f} s" if delays else "did not arrive"
                    versus = f"{error - clean_wer:+.2f}" if clean_wer is not None else "-"
                    print(
                        f"| {PROFILES[name].describe()} | {100 * kept:.1f} % | {error:.2f} | {versus} | {score} |"
                    )
        if views:
            print(
                f"\n## What the recruiter sees ({args.view_seconds:g} s in the call, the candidate behind the link)\n"
            )
            if reason or turn_server.missing():
                print(f"skipped: {reason or turn_server.missing()}")
            else:
                seen = [
                    recruiter_view(n, PROFILES[n], args.view_seconds, folder / f"view-{n}")
                    for n in views
                ]
                out["views"] = seen
                print(
                    "| profile | call stayed up | video: height, fps, kbit/s (+ repair) | freezes "
                    "| audio kbit/s | audio concealed | loss seen | RTT | indicator "
                    "| candidate's audio kept on the server | its packets with FEC |"
                )
                print("|---|---|---|---|---|---|---|---|---|---|---|")
                for row in seen:
                    print(
                        f"| {PROFILES[row['profile']].describe()} "
                        f"| {'yes' if row['stayed up'] else 'no'} "
                        f"| {row['height']}p, {row['fps']:.0f} fps, {row['video kbit/s']:.0f} "
                        f"(+{row['repair kbit/s']:.0f}) | {row['freezes']} ({row['frozen s']:.1f} s) "
                        f"| {row['audio kbit/s']:.0f} | {row['audio concealed %']:.1f} % "
                        f"| {row['loss %']:.1f} % | {row['RTT ms']:.0f} ms | {row['indicator']} "
                        f"| {row['server kept %']:.1f} % | {row['packets with FEC %']:.0f} % |"
                    )
    finally:
        if args.keep:
            print(f"\nlogs and recordings: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
