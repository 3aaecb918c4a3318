"""Speech to text: one engine interface (faster-whisper, OpenAI API) and live segmentation."""

import os

# faster-whisper's VAD loads onnxruntime, which phones home unless this is set first.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
