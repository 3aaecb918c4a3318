"""Speech to text behind one engine interface (faster-whisper, openai-whisper, OpenAI API).

Not built yet (see the open live-transcription issue); this package is its place.
"""
