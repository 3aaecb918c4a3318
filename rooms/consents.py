"""The consents each party gives, as the product shows them."""

from __future__ import annotations

import enum


class Party(enum.StrEnum):
    INTERVIEWER = "interviewer"
    CANDIDATE = "candidate"


class ConsentKind(enum.StrEnum):
    PERSONAL_DATA = "personal_data"
    AI_ANALYSIS = "ai_analysis"
    RECORDING = "recording"


# The exact checkbox labels, per party and kind (the interviewer's come from the guide).
LABELS: dict[Party, dict[ConsentKind, str]] = {
    Party.INTERVIEWER: {
        ConsentKind.PERSONAL_DATA: (
            "I agree to the processing of personal data according to the Privacy Policy"
        ),
        ConsentKind.AI_ANALYSIS: (
            "I agree to the analysis of answers by the artificial intelligence system"
        ),
    },
    Party.CANDIDATE: {
        ConsentKind.RECORDING: (
            "I agree to the recording of this interview's audio and the processing of my "
            "personal data according to the Privacy Policy"
        ),
        ConsentKind.AI_ANALYSIS: (
            "I agree to the analysis of my answers by the artificial intelligence system"
        ),
    },
}

REQUIRED: dict[Party, tuple[ConsentKind, ...]] = {
    party: tuple(labels) for party, labels in LABELS.items()
}
