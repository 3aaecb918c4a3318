"""The printable PDF report of an interview's results (fpdf2, Roboto from the font-roboto wheel
so that any Latin, Cyrillic or Greek name prints)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fpdf import FPDF

from web.i18n import _, format_datetime, format_percent


def _font(name: str) -> Path:
    spec = importlib.util.find_spec("font_roboto")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the font-roboto package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "files" / name


def render_pdf(result: dict[str, Any]) -> bytes:
    """A few pages: facts, overall score, topics, each question with transcript and scores, notes;
    in the current language (the reader's)."""
    pdf = FPDF(format="A4")
    pdf.set_title(_("Interview results: %(name)s") % {"name": result["candidate"]["name"]})
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

    text(_("Interview results"), 18, "B", 3)
    duration = result.get("duration_s")
    facts = [
        (_("Candidate"), f"{result['candidate']['name']} ({result['candidate']['email']})"),
        (_("Interviewer"), f"{result['interviewer']['name']} ({result['interviewer']['email']})"),
        (_("Specialization"), result["specialization"]),
        (
            _("Date"),
            f"{format_datetime(result['started_at'])} UTC"
            if result.get("started_at")
            else _("not started"),
        ),
        (
            _("Duration"),
            _("%(min)s min %(s)s s") % {"min": int(duration // 60), "s": int(duration % 60)}
            if duration
            else "-",
        ),
        (
            _("Overall score"),
            f"{result['overall_score']}/10" if result.get("overall_score") is not None else "-",
        ),
    ]
    for label, value in facts:
        text(_("%(label)s: %(value)s") % {"label": label, "value": value}, 10, "", 0.5)
    pdf.ln(3)
    text(_("Topics covered"), 13, "B")
    covered = [topic["title"] for topic in result["topics"] if topic["covered"]]
    text(", ".join(covered) if covered else _("None marked."))
    pdf.ln(2)
    text(_("Technical questions"), 13, "B")
    for q in result["questions"]:
        if not q["asked"]:
            continue
        score = q.get("score")
        heading = _("Question %(position)s/%(total)s") % {
            "position": q["position"],
            "total": len(result["questions"]),
        }
        if score:
            heading += f"  -  {score['effective']}/10"
            if score.get("override") is not None:
                heading += " " + _("(yours; AI %(score)s/10)") % {"score": score["ai"]}
        text(heading, 11, "B", 0.5)
        text(q["text"])
        if q.get("pending"):
            text(_("Answer: (still being transcribed when this report was made)"))
        else:
            text(_("Answer: %(text)s") % {"text": q["transcript"] or _("(nothing was said)")})
        if score:
            text(_("AI: %(text)s") % {"text": score["rationale"]}, 9)
            if score.get("misconceptions"):
                text(
                    _("Misconceptions: %(list)s") % {"list": "; ".join(score["misconceptions"])}, 9
                )
            if score.get("check"):
                text(
                    _("Check this answer (confidence %(percent)s): %(doubt)s")
                    % {
                        "percent": format_percent(score["confidence"]),
                        "doubt": score["doubt"],
                    },
                    9,
                )
            if score.get("missing"):
                text(_("Missing: %(list)s") % {"list": "; ".join(score["missing"])}, 9)
        if q.get("code"):
            _code(q["code"], text)
        pdf.ln(2)
    scratch = result.get("scratch")
    if scratch:
        text(_("Scratch pad (%(language)s)") % {"language": scratch["language"]}, 13, "B")
        text(scratch["final"] or "-", 8)
    if result.get("verdict_label"):
        text(_("Final verdict"), 13, "B")
        text(
            _(result["verdict_label"])
            + (f": {result['verdict_note']}" if result.get("verdict_note") else "")
        )
    if result.get("notes"):
        text(_("Interview notes"), 13, "B")
        text(result["notes"])
    return bytes(pdf.output())


def _code(code: dict[str, Any], text: Any) -> None:
    """A coding question's tests and final code."""
    hidden = code.get("hidden")
    if hidden:
        line = _("Hidden tests: %(passed)s/%(total)s passed") % {
            "passed": hidden["passed"],
            "total": hidden["total"],
        }
        failing = [
            f"{code['function']}({f['args'][1:-1]}) -> {f['expected']}" for f in hidden["failing"]
        ]
        text(line + (f" ({'; '.join(failing)})" if failing else ""), 9, "B")
    else:
        text(_("Hidden tests not run."), 9)
    text(_("Final code (%(language)s):") % {"language": code["language"]}, 9)
    text(code["final"] or "-", 8)
