"""The pages' module preloads: every module a call page imports is fetched at once, and the code
editor, loaded after the call is up, is not among them."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.seed import seed_interview
from web.scripts import STATIC, module_preloads

PRELOAD = re.compile(r'<link rel="modulepreload" href="([^"]+)">')


def test_the_preloads_follow_every_static_import_and_leave_the_editor_for_later() -> None:
    candidate = module_preloads("candidate.js")
    # call.js imports quality.js and recording.js: a second level, found without fetching it
    assert {"/static/js/call.js", "/static/js/quality.js", "/static/js/recording.js"} <= set(
        candidate
    )
    assert "/static/js/code-later.js" in candidate
    # code.js and CodeMirror come by import() once the other person's video shows
    assert "/static/js/code.js" not in candidate and "/static/vendor/editor.js" not in candidate
    assert "/static/js/candidate.js" not in candidate  # the page names it in its own tag
    assert len(candidate) == len(set(candidate))
    # a multi-line `import { … } from "/static/vendor/editor.js"` (code.js) is an import too
    assert "/static/vendor/editor.js" in module_preloads("replay.js")
    assert set(module_preloads("copy.js", "waiting.js")) == set(module_preloads("waiting.js"))
    for url in candidate:
        assert (STATIC / url.removeprefix("/static/")).is_file(), url


async def test_the_candidates_page_preloads_its_modules_and_each_is_served(
    client: TestClient, db: str
) -> None:
    seeded = seed_interview(db)
    page = await (await client.get(f"/i/{seeded.token}")).text()
    head = page.split("</head>", 1)[0]
    assert '<script type="module" src="/static/js/candidate.js"></script>' in head
    assert PRELOAD.findall(head) == list(module_preloads("candidate.js"))
    for url in PRELOAD.findall(head):
        response = await client.get(url)
        assert response.status == 200 and "javascript" in response.content_type, url
