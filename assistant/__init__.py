"""The AI assistant that scores answers: a local embedding scorer and an LLM judge.

Not built yet (see the open live-transcription and scoring issue); this package is its place.
"""
