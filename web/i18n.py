"""The interface's languages: gettext catalogues (Babel), the reader's language, dates.

The catalogues are `web/locale/<code>/LC_MESSAGES/messages.po`, read at start-up (no compiled
`.mo` to keep in step). English is the source language: its texts are the msgids. Python code,
templates (Jinja2's i18n extension) and the JS modules share one catalogue; the entries found in
`web/static/js/` go to the page as JSON for `web/static/js/i18n.js`.

A request's language lives in a context variable set by `language_middleware`, so `_()` works
in handlers, templates and error pages alike; `use()` sets it for an email or a report written
in another person's language.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import babel.dates
import babel.numbers
import jinja2
from aiohttp import web
from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from rooms.errors import InvalidInput
from rooms.states import ACTIONS, IllegalTransition, InterviewState

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
"""Every language of the interface, each named in itself (as the switcher shows it)."""
COOKIE = "p2pi_lang"
"""The cookie that remembers the language a person chose with the switcher."""
COOKIE_MAX_AGE = 365 * 24 * 3600
REQUEST_KEY = "p2pi.language"


@dataclass(frozen=True)
class Language:
    """One language of the interface: its translations and the JS texts of its catalogue."""

    code: str
    translations: NullTranslations
    js_messages: dict[str, str] = field(default_factory=dict)

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.code)


def catalogue_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"


def load_language(code: str) -> Language:
    """A language from its `.po` file (English, the source, needs none)."""
    if code == DEFAULT_LANGUAGE:
        return Language(code, NullTranslations())
    with catalogue_path(code).open("rb") as file:
        catalog = read_po(file, locale=code)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    js = {
        str(message.id): str(message.string)
        for message in catalog
        if message.id
        and isinstance(message.id, str)
        and message.string
        and not message.fuzzy
        and any(path.endswith(".js") for path, _ in message.locations)
    }
    return Language(code, Translations(compiled), js)


LANGUAGES: dict[str, Language] = {code: load_language(code) for code in LANGUAGE_NAMES}
_current: ContextVar[Language] = ContextVar("language", default=LANGUAGES[DEFAULT_LANGUAGE])


def language(code: str | None) -> Language:
    """The language for a code such as "ru"; anything unknown is the default."""
    return LANGUAGES.get(code or "", LANGUAGES[DEFAULT_LANGUAGE])


def current() -> str:
    """The code of the language this request (or email, or report) is written in."""
    return _current.get().code


def activate(code: str | None) -> None:
    """Write the rest of this request in `code` (the candidate's pages: the interview's)."""
    _current.set(language(code))


@contextlib.contextmanager
def use(code: str | None) -> Iterator[None]:
    """Write what happens inside in `code`, e.g. an email to a candidate."""
    token = _current.set(language(code))
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """`message` (an English catalogue text) in the current language."""
    return _current.get().translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get().translations.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` in the current language, where the same English words need another
    translation in this `context`."""
    return str(_current.get().translations.pgettext(context, message))


_ = gettext


def message_of(error: InvalidInput) -> str:
    """A domain error's text in the current language, its values filled in."""
    text = gettext(error.template)
    if not error.params:
        return text
    params = dict(error.params)
    if error.template == "Cannot %(action)s in the %(stage)s stage.":
        params["action"] = pgettext("action", str(params["action"]))
        params["stage"] = state_name(str(params["stage"]))
    return text % params


def transition_text(error: IllegalTransition) -> str:
    """The state machine's refusal in the current language (rooms.states words it in English)."""
    action = pgettext("action", ACTIONS.get(error.target, error.target.value))
    if error.current is InterviewState.COMPLETED:
        reason = gettext("the interview has already ended")
    elif error.current is error.target:
        reason = gettext("the interview is already in the %(stage)s stage") % {
            "stage": state_name(error.current.value)
        }
    else:
        reason = gettext("the interview is in the %(stage)s stage") % {
            "stage": state_name(error.current.value)
        }
    return gettext("Cannot %(action)s: %(reason)s.") % {"action": action, "reason": reason}


def N_(message: str) -> str:
    """Mark a text for the catalogue where it is defined; it is translated where it is shown."""
    return message


def js_messages() -> dict[str, str]:
    """The current language's translations of the JS modules' texts (empty in English)."""
    return _current.get().js_messages


def from_accept_language(header: str) -> str | None:
    """The best language of the interface for an Accept-Language header, or None."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = tag.strip().lower().replace("_", "-").split("-")[0]
        if code in LANGUAGES and quality > 0:
            choices.append((-quality, index, code))
    return min(choices)[2] if choices else None


def chosen(request: web.Request) -> str | None:
    """The language this browser chose with the switcher, if it did."""
    code = request.cookies.get(COOKIE)
    return code if code in LANGUAGES else None


def for_request(request: web.Request, interview_language: str | None = None) -> str:
    """The reader's language: the switcher's choice, else the interview's (a candidate's pages),
    else the browser's Accept-Language, else English."""
    if (code := chosen(request)) is not None:
        return code
    if interview_language in LANGUAGES:
        return str(interview_language)
    return from_accept_language(request.headers.get("Accept-Language", "")) or DEFAULT_LANGUAGE


@web.middleware
async def language_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Set the request's language before anything (error pages included) writes a word."""
    activate(for_request(request))
    response = await handler(request)
    if response.prepared or request.path.startswith("/static/"):
        return response  # already sent (a WebSocket), or the same file in every language
    response.headers.setdefault("Content-Language", current())
    vary = response.headers.get("Vary", "")
    if "accept-language" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
    return response


def install(environment: jinja2.Environment) -> None:
    """Give templates `_()`, `ngettext()` and `{% trans %}` in the current language."""
    if "jinja2.ext.InternationalizationExtension" not in environment.extensions:
        environment.add_extension("jinja2.ext.i18n")
    environment.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext
    )
    # Functions, not values: a handler may change the language after the context processors
    # ran (a candidate's page takes its interview's).
    environment.globals["current_language"] = current
    environment.globals["js_messages"] = js_messages
    environment.globals["language_names"] = LANGUAGE_NAMES
    environment.globals["state_name"] = state_name
    environment.filters["datetime"] = format_datetime
    environment.filters["date"] = format_date


def _moment(moment: datetime | str, zone: str) -> tuple[datetime, ZoneInfo]:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    return moment, tz


def format_datetime(moment: datetime | str | None, zone: str = "UTC") -> str:
    """A date and time in the reader's language and the given time zone, 24-hour: "Wed, Dec 2,
    2026, 14:30" in English, "ср, 2 дек. 2026 г., 14:30" in Russian."""
    if moment is None or moment == "":
        return ""
    when, tz = _moment(moment, zone)
    locale = _current.get().locale
    local = when.astimezone(tz)
    day = babel.dates.format_skeleton("yMMMEd", local, locale=locale)
    return f"{day}, {babel.dates.format_time(local, 'HH:mm', locale=locale)}"


def format_date(moment: datetime | str | None, zone: str = "UTC") -> str:
    """A date alone, e.g. "Dec 2, 2026" or "2 дек. 2026 г."."""
    if moment is None or moment == "":
        return ""
    when, tz = _moment(moment, zone)
    return babel.dates.format_date(when.astimezone(tz), "medium", locale=_current.get().locale)


def format_percent(value: float) -> str:
    """A share as a percentage in the reader's language: "85%" or "85 %"."""
    return babel.numbers.format_percent(value, locale=_current.get().locale)


_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,2000}")


def local_path(value: str) -> str:
    """A path of this site to go back to after switching, as sent (percent-encoded, no query):
    anything else, a `//host` or a tab that a browser would drop included, is the Welcome page."""
    return value if _LOCAL_PATH.fullmatch(value) else "/"


def state_name(state: str) -> str:
    """An interview's stage as the list and the results page name it."""
    known = state in InterviewState._value2member_map_
    return pgettext("interview state", state) if known else state


def switcher_context(request: web.Request) -> dict[str, object]:
    """What base.html's switcher needs (the page to come back to)."""
    return {"here": local_path(urlsplit(request.raw_path).path)}
