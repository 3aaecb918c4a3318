"""The domain: recruiters, interviews, the question bank and the interview's state machine.

Nothing here imports aiohttp; the web and signaling layers call into it.
"""
