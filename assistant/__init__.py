"""The AI assistant that scores answers: a local embedding scorer and an LLM judge."""

import os

# onnxruntime 1.29+ sends telemetry unless this is set before it is first imported; a service
# holding candidates' data must never phone home, so it is forced here, not left to the operator.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
