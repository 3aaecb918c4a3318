"""The aiohttp application: the composition root (`app`), pages, forms, JSON APIs, sessions,
CSRF, rate limits and email. Nothing outside it imports it but the entry point (service.cli)."""
