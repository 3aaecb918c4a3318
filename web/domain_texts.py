"""Texts the interface shows that are written outside `web/` (consent labels, verdicts,
stages, HTTP reasons), marked here for the catalogue; they are translated where shown.

tests/test_i18n.py checks that this list keeps up with the domain's texts.
"""

from __future__ import annotations

from web.i18n import N_


def NP_(context: str, message: str) -> str:
    """Mark a text that has a context (pgettext) for the catalogue."""
    return message


DOMAIN_TEXTS = (
    # rooms/consents.py LABELS
    N_("I agree to the processing of personal data according to the Privacy Policy"),
    N_("I agree to the analysis of answers by the artificial intelligence system"),
    N_(
        "I agree to the recording of this interview's audio and the processing of my "
        "personal data according to the Privacy Policy"
    ),
    N_("I agree to the analysis of my answers by the artificial intelligence system"),
    NP_("consent label", "Privacy Policy"),
    # rooms/results.py VERDICTS
    N_("Hire"),
    N_("Maybe: another interview"),
    N_("No hire"),
    # rooms/errors.py
    N_("The email or password is incorrect."),
    # rooms/states.py InterviewState, as the list and the results page name them
    NP_("interview state", "scheduled"),
    NP_("interview state", "waiting"),
    NP_("interview state", "plan"),
    NP_("interview state", "technical"),
    NP_("interview state", "finishing"),
    NP_("interview state", "completed"),
    # rooms/states.py IllegalTransition and rooms/conduct.py's actions
    NP_("action", "open the waiting room"),
    NP_("action", "start the interview"),
    NP_("action", "start the technical part"),
    NP_("action", "move to the Finish interview stage"),
    NP_("action", "end the interview"),
    NP_("action", "change the plan"),
    NP_("action", "change the question"),
    NP_("action", "finish the technical part"),
    NP_("action", "use the scratch pad"),
    # signaling/protocol.py RUN_STATUS: how a run of the code ended (the results page)
    NP_("run status", "passed"),
    NP_("run status", "failed"),
    NP_("run status", "error"),
    NP_("run status", "timeout"),
    NP_("run status", "memory"),
    NP_("run status", "ran"),
    N_("the interview has already ended"),
    N_("the interview is already in the %(stage)s stage"),
    N_("the interview is in the %(stage)s stage"),
    N_("Cannot %(action)s: %(reason)s."),
    # HTTP reasons, the title of an error page
    N_("Bad Request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Conflict"),
    N_("Gone"),
    N_("Request Entity Too Large"),
    N_("Unprocessable Entity"),
    N_("Too Many Requests"),
    N_("Internal Server Error"),
    N_("Service Unavailable"),
)
