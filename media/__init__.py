"""The server's aiortc peer (`peer`): each participant's audio recorded to its own Ogg Opus
files (`recorder`, `oggopus`, `storage`), and the candidate's audio as 16 kHz mono PCM for
transcription (`pcm`)."""
