"""Languages: the reader's language (switcher cookie, interview, Accept-Language), the Russian
catalogue complete, and every page rendered in Russian without an English catalogue text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

from aiohttp.test_utils import TestClient, make_mocked_request
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from rooms.bank import bundled_banks_in, import_banks
from rooms.consents import LABELS
from rooms.db import make_engine, make_sessionmaker
from rooms.errors import InvalidInput
from rooms.models import Interview
from rooms.results import VERDICTS
from rooms.states import IllegalTransition, InterviewState
from service.settings import Settings
from tests.conftest import ROOT, Mailbox, csrf_of
from tests.helpers import fill_candidate, fill_details, register
from web import i18n
from web.domain_texts import DOMAIN_TEXTS
from web.keys import SESSIONS


def test_accept_language_picks_the_best_language_offered() -> None:
    assert i18n.from_accept_language("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7") == "ru"
    assert i18n.from_accept_language("en-US,en;q=0.9,ru;q=0.5") == "en"
    assert i18n.from_accept_language("de-DE,ru;q=0.3") == "ru"
    assert i18n.from_accept_language("de-DE, fr") is None
    assert i18n.from_accept_language("ru;q=0, en;q=0.1") == "en"
    assert i18n.from_accept_language("ru;q=oops") is None


def test_the_switchers_cookie_beats_the_interview_and_the_browser() -> None:
    russian_browser = {"Accept-Language": "ru-RU,ru"}
    request = make_mocked_request("GET", "/", headers=russian_browser)
    assert i18n.for_request(request) == "ru"
    assert i18n.for_request(request, interview_language="en") == "en"
    chosen = make_mocked_request("GET", "/", headers={**russian_browser, "Cookie": "p2pi_lang=en"})
    assert i18n.for_request(chosen, interview_language="ru") == "en"
    unknown = make_mocked_request("GET", "/", headers={"Cookie": "p2pi_lang=xx"})
    assert i18n.for_request(unknown) == "en"


async def test_the_switcher_remembers_the_choice_and_goes_back_only_to_this_site(
    client: TestClient,
) -> None:
    for next_page, back_to in [
        ("/privacy", "/privacy"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
    ]:
        token = await csrf_of(client, "/")
        response = await client.post(
            "/language",
            data={"language": "ru", "next": next_page, "csrf_token": token},
            allow_redirects=False,
        )
        assert response.status == 303 and response.headers["Location"] == back_to
        assert "p2pi_lang=ru" in response.headers["Set-Cookie"]
    assert '<html lang="ru">' in await (await client.get("/")).text()
    token = await csrf_of(client, "/")
    refused = await client.post("/language", data={"language": "xx", "csrf_token": token})
    assert refused.status == 400
    assert "Выберите один из предложенных языков." in await refused.text()


def test_the_domains_refusals_read_the_same_in_english_and_naturally_in_russian() -> None:
    for current in InterviewState:
        for target in InterviewState:
            refusal = IllegalTransition(current, target)
            assert i18n.transition_text(refusal) == str(refusal)
    late = IllegalTransition(InterviewState.WAITING, InterviewState.TECHNICAL)
    busy = InvalidInput(
        "state", "Cannot %(action)s in the %(stage)s stage.", action="change the plan", stage="plan"
    )
    assert i18n.message_of(busy) == busy.message
    with i18n.use("ru"):
        assert i18n.transition_text(late) == (
            "Нельзя начать техническую часть: интервью сейчас на этапе «ожидание»."
        )
        assert i18n.message_of(busy) == "Нельзя изменить план на этапе «план интервью»."
        too_long = InvalidInput("password", "Use at most %(count)s characters.", count=200)
        assert i18n.message_of(too_long) == "Не больше 200 символов."


def test_the_russian_catalogue_translates_every_entry() -> None:
    with i18n.catalogue_path("ru").open("rb") as file:
        catalogue = read_po(file, locale="ru")
    empty = [
        message.id
        for message in catalogue
        if message.id
        and (
            not message.string
            or (isinstance(message.string, tuple) and not all(message.string))
            or message.fuzzy
        )
    ]
    assert not empty
    domain = set(DOMAIN_TEXTS)
    for labels in LABELS.values():
        assert set(labels.values()) <= domain
    assert set(VERDICTS.values()) <= domain


def test_every_text_of_the_sources_is_in_the_russian_catalogue() -> None:
    """What `make messages` would extract (babel.cfg) is all in the catalogue, translated: a
    new text without its translation fails here, not on a Russian reader's screen."""
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {
        **DEFAULT_KEYWORDS,
        "N_": None,
        "NP_": ((1, "c"), 2),
        "t": None,
        "InvalidInput": (2,),
        "SetupLinkError": None,
    }
    with i18n.catalogue_path("ru").open("rb") as file:
        catalogue = read_po(file, locale="ru")
    missing = []
    for path, line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        entry = catalogue.get(msgid, context)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{path}:{line}: {msgid}")
    assert not missing, "run `make messages` and translate:\n" + "\n".join(missing)


def _english_segments() -> list[str]:
    """The catalogue's English texts, cut at their placeholders, that are long enough to be
    recognised on a page (two words or more)."""
    with i18n.catalogue_path("ru").open("rb") as file:
        catalogue = read_po(file, locale="ru")
    segments = set()
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        for text in ids:
            for part in re.split(r"%\(\w+\)[sr]|\{\w+\}|<[^>]+>", str(text)):
                part = part.strip(" .,:;()“”")
                if len(part.split()) >= 2 and len(part) >= 10:
                    segments.add(part)
    return sorted(segments)


def _visible_text(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return " ".join(html.replace("&#39;", "'").replace("&quot;", '"').split())


async def _russian_page(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, path
    assert response.headers["Content-Language"] == "ru"
    body = await response.text()
    assert '<html lang="ru">' in body
    text = _visible_text(body)
    left = [segment for segment in _english_segments() if segment in text]
    assert not left, f"English on {path}: {left}"
    return text


async def _load_russian_banks(settings: Settings) -> None:
    engine = make_engine(settings.effective_database_url)
    async with make_sessionmaker(engine).begin() as session:
        await import_banks(session, bundled_banks_in("ru"))
    await engine.dispose()


async def _interview_in_russian(client: TestClient) -> tuple[int, str]:
    """The setup's steps in Russian, a Russian bank chosen (tests.helpers expects English)."""
    steps = [
        ("/start", {"specialization": "ru-python-backend", "interview_language": "ru"}),
        (
            "/setup/details",
            {
                "interviewer_name": "Руслан",
                "interviewer_email": "ruslan@example.com",
                "consent_personal_data": "yes",
                "consent_ai_analysis": "yes",
            },
        ),
        (
            "/setup/candidate",
            {"candidate_name": "Анна Смирнова", "candidate_email": "a@example.com"},
        ),
        ("/setup/mode", {"mode": "now"}),
    ]
    for path, data in steps:
        await _russian_page(client, path)
        token = await csrf_of(client, path)
        response = await client.post(path, data={**data, "csrf_token": token})
        assert response.status == 200, await response.text()
    interview_id = int(str(response.url).rsplit("/", 1)[1])
    found = re.search(
        r'id="candidate-link" type="text" readonly value="[^"]*(/i/[^"]+)"', await response.text()
    )
    assert found
    return interview_id, found.group(1)


async def test_every_page_reads_in_russian(
    client: TestClient, mailbox: Mailbox, settings: Settings
) -> None:
    """A recruiter who chose Русский: every page, the emails and the PDF are in Russian."""
    await _load_russian_banks(settings)
    token = await csrf_of(client, "/")
    response = await client.post(
        "/language", data={"language": "ru", "next": "/privacy", "csrf_token": token}
    )
    assert response.status == 200 and str(response.url).endswith("/privacy")
    for path in ("/", "/privacy", "/signin", "/register", "/start"):
        await _russian_page(client, path)
    await _russian_page(client, "/no-such-page", 404)
    await _russian_page(client, "/setup-password/not-a-token", 410)

    await register(client, mailbox, "ruslan@example.com")
    setup_email = mailbox.wait_for("ruslan@example.com")
    subject = str(make_header(decode_header(str(setup_email["Subject"]))))
    assert subject == "Доступ к вашему тестовому интервью на p2p-interview"
    interview_id, link = await _interview_in_russian(client)
    text = await _russian_page(client, f"/interviews/{interview_id}")
    assert "Кандидат Анна Смирнова ещё не присоединился" in text
    for path in ("/interviews", "/account", "/setup/details"):
        await _russian_page(client, path)
    await _russian_page(client, link)

    token = await csrf_of(client, link)
    joined = await client.post(
        f"{link}/join",
        json={"consents": ["recording", "ai_analysis"]},
        headers={"X-CSRF-Token": token},
    )
    assert joined.status == 200, await joined.text()
    token = await csrf_of(client, f"/interviews/{interview_id}")
    started = await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    assert started.status == 200
    text = await _russian_page(client, f"/interviews/{interview_id}")
    assert "Интервью завершено. Спасибо за уделённое время." in text
    ended = await client.post(f"/interviews/{interview_id}/end", headers={"X-CSRF-Token": token})
    assert ended.status == 200
    await _russian_page(client, f"/interviews/{interview_id}/results")
    pdf = await client.get(f"/interviews/{interview_id}/report.pdf")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")


async def test_a_russian_interview_speaks_russian_to_its_candidate(
    client: TestClient,
    make_client,  # type: ignore[no-untyped-def]
    mailbox: Mailbox,
    settings: Settings,
) -> None:
    """The recruiter works in English and picks Russian for the interview: its bank, the
    invitation, the calendar event and the candidate's page are Russian; the recruiter's stay
    English."""
    await _load_russian_banks(settings)
    await register(client, mailbox, "erin@example.com")
    page = await (await client.get("/start?language=ru")).text()
    assert "Python-бэкенд" in page and "Python backend" not in page
    token = await csrf_of(client, "/start")
    refused = await client.post(  # no language given: English, and this bank is not English
        "/start", data={"specialization": "ru-python-backend", "csrf_token": token}
    )
    assert refused.status == 422 and "Python backend" in await refused.text()
    await client.post(
        "/start",
        data={
            "specialization": "ru-python-backend",
            "interview_language": "ru",
            "csrf_token": token,
        },
    )
    await fill_details(client)
    await fill_candidate(client, name="Анна", email="anna@example.com")
    token = await csrf_of(client, "/setup/mode")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    response = await client.post(
        "/setup/mode",
        data={
            "mode": "later",
            "scheduled_date": tomorrow,
            "scheduled_time": "10:00",
            "time_zone": "Europe/Moscow",
            "send_invitation": "yes",
            "csrf_token": token,
        },
    )
    waiting = await response.text()
    assert response.status == 200 and "Candidate Анна has not joined yet" in waiting
    interview_id = int(str(response.url).rsplit("/", 1)[1])
    app = client.server.app
    assert app is not None
    async with app[SESSIONS]() as session:
        interview = await session.get(Interview, interview_id)
        assert interview is not None
        assert (interview.language, interview.specialization_id) == ("ru", "ru-python-backend")
        link = f"/i/{interview.candidate_token}"

    invitation = mailbox.wait_for("anna@example.com")
    subject = str(make_header(decode_header(str(invitation["Subject"]))))
    assert subject == "Ваше интервью по специализации «Python-бэкенд» на p2p-interview"
    body, ics = (
        part.get_payload(decode=True).decode()
        for part in invitation.walk()
        if part.get_content_type() in ("text/plain", "text/calendar")
    )
    assert body.startswith("Здравствуйте, Анна!") and "10:00 (Europe/Moscow)" in body
    assert "SUMMARY;LANGUAGE=ru:Интервью «Python-бэкенд»" in ics

    candidate = await make_client()
    page = await (await candidate.get(link)).text()
    assert '<html lang="ru">' in page and "Проверка оборудования" in page
    english = await (await candidate.get(link, headers={"Cookie": "p2pi_lang=en"})).text()
    assert "Equipment check" in english
