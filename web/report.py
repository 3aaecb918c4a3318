"""The printable PDF report of an interview's results (fpdf2, Roboto from the font-roboto wheel
so that any Latin, Cyrillic or Greek name prints)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fpdf import FPDF


def _font(name: str) -> Path:
    spec = importlib.util.find_spec("font_roboto")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the font-roboto package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "files" / name


def render_pdf(result: dict[str, Any]) -> bytes:
    """A few pages: facts, overall score, topics, each question with transcript and scores, notes."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Interview results: {result['candidate']['name']}")
    pdf.set_creator("p2p-interview")
    pdf.add_font("Roboto", "", str(_font("Roboto-Regular.ttf")))
    pdf.add_font("Roboto", "B", str(_font("Roboto-Bold.ttf")))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(value: str, size: float = 10, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font("Roboto", style, size)
        pdf.multi_cell(width, size * 0.5, value, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    text("Interview results", 18, "B", 3)
    duration = result.get("duration_s")
    facts = [
        ("Candidate", f"{result['candidate']['name']} ({result['candidate']['email']})"),
        ("Interviewer", f"{result['interviewer']['name']} ({result['interviewer']['email']})"),
        ("Specialization", result["specialization"]),
        ("Date", (result.get("started_at") or "not started")[:16].replace("T", " ") + " UTC"),
        ("Duration", f"{int(duration // 60)} min {int(duration % 60)} s" if duration else "-"),
        (
            "Overall score",
            f"{result['overall_score']}/10" if result.get("overall_score") is not None else "-",
        ),
    ]
    for label, value in facts:
        text(f"{label}: {value}", 10, "", 0.5)
    pdf.ln(3)
    text("Topics covered", 13, "B")
    covered = [t["title"] for t in result["topics"] if t["covered"]]
    text(", ".join(covered) if covered else "None marked.")
    pdf.ln(2)
    text("Technical questions", 13, "B")
    for q in result["questions"]:
        if not q["asked"]:
            continue
        score = q.get("score")
        heading = f"Question {q['position']}/{len(result['questions'])}"
        if score:
            heading += f"  -  {score['effective']}/10"
            if score.get("override") is not None:
                heading += f" (yours; AI {score['ai']}/10)"
        text(heading, 11, "B", 0.5)
        text(q["text"])
        if q.get("pending"):
            text("Answer: (still being transcribed when this report was made)")
        else:
            text("Answer: " + (q["transcript"] or "(nothing was said)"))
        if score:
            text("AI: " + score["rationale"], 9)
            if score.get("misconceptions"):
                text("Misconceptions: " + "; ".join(score["misconceptions"]), 9)
            if score.get("check"):
                text(
                    f"Check this answer (confidence {score['confidence']:.0%}): {score['doubt']}", 9
                )
            if score.get("missing"):
                text("Missing: " + "; ".join(score["missing"]), 9)
        pdf.ln(2)
    if result.get("verdict_label"):
        text("Final verdict", 13, "B")
        text(
            result["verdict_label"]
            + (f": {result['verdict_note']}" if result.get("verdict_note") else "")
        )
    if result.get("notes"):
        text("Interview notes", 13, "B")
        text(result["notes"])
    return bytes(pdf.output())
