"""The server's aiortc peer: per-participant audio recording and the candidate's PCM stream.

Recording is not built yet (see the open recording issue); this package is its place.
"""
