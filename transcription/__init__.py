"""Speech to text: one engine interface (`engine`) with faster-whisper, openai-whisper and the
OpenAI API behind it, and live segmentation of a candidate's audio (`live`)."""

import os

# faster-whisper's VAD loads onnxruntime, which phones home unless this is set first.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
