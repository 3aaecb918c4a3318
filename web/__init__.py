"""The aiohttp application: pages, forms, sessions, CSRF, email, and the composition root."""
