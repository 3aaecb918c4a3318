"""Interviews in Russian: Whisper base told the interview's language (through the Redis job
queue, partial and final passes), and the multilingual scorer on Russian answers against
Russian and English key points."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from assistant.by_language import ScorerByLanguage
from assistant.llm import LLMJudge
from assistant.local import LocalScorer
from assistant.multilingual import MultilingualScorer
from assistant.scorer import QuestionSpec, reference_text
from bus.pubsub import RedisBus
from jobs.streams import RedisJobs
from jobs.worker import StreamWorker
from pipeline.factories import make_speech_engine
from pipeline.work import Work
from rooms.bank import bundled_banks, bundled_banks_in
from service.settings import Settings, SettingsError
from tests.rtc import decode_to_pcm, festival_ru
from tests.test_scoring import chat_server
from tests.wer import wer
from transcription import models
from transcription.faster import FasterWhisperEngine

SAID = (
    "Глобальная блокировка интерпретатора не даёт двум потокам одновременно выполнять байткод "
    "питона, поэтому для вычислений лучше использовать процессы."
)


def cyrillic_share(text: str) -> float:
    letters = [c for c in text.lower() if c.isalpha()]
    return sum("а" <= c <= "я" or c == "ё" for c in letters) / max(1, len(letters))


def spec(slug: str, language: str = "ru") -> QuestionSpec:
    banks = bundled_banks() if slug.startswith(("py-", "fe-", "ds-")) else bundled_banks_in("ru")
    q = next(q for b in banks for q in b.questions if q.slug == slug)
    return QuestionSpec(q.text, q.expected_answer, q.key_points, q.misconceptions, language)


def test_whisper_base_is_joined_once_into_the_cache_folder(tmp_path: Path) -> None:
    folder = Path(models.base(tmp_path))
    model = folder / "model.bin"
    assert folder.parent == tmp_path and model.stat().st_size > 140_000_000
    assert {p.name for p in folder.iterdir()} == {"model.bin", *models.BASE_FILES}
    written = model.stat().st_mtime_ns
    assert models.base(tmp_path) == str(folder) and model.stat().st_mtime_ns == written


def test_final_passes_search_a_beam_of_5_in_english_and_1_in_other_languages() -> None:
    """Whisper base's beam search costs a Russian score half a second for no better text;
    WHISPER_BEAM sets another width for every language."""
    english = make_speech_engine(Settings.from_env({}), "en")
    russian = make_speech_engine(Settings.from_env({}), "ru")
    assert isinstance(english, FasterWhisperEngine) and isinstance(russian, FasterWhisperEngine)
    assert (english.beam_size, russian.beam_size) == (5, 1)
    chosen = make_speech_engine(Settings.from_env({"WHISPER_BEAM": "3"}), "ru")
    assert isinstance(chosen, FasterWhisperEngine) and chosen.beam_size == 3
    for bad in ("0", "11", "two", "²"):
        with pytest.raises(SettingsError, match="WHISPER_BEAM"):
            Settings.from_env({"WHISPER_BEAM": bad})


def test_an_english_only_model_refuses_russian() -> None:
    with pytest.raises(ValueError, match="English-only"):
        FasterWhisperEngine(models.tiny_en(), language="ru")


async def test_the_interviews_language_reaches_whisper_through_redis(
    redis_url: str, tmp_path: Path
) -> None:
    """A worker behind the Redis streams transcribes with the engine of the job's language:
    Russian speech comes back in Russian, in partial and final passes; a job without a language
    (queued by an older node) is English."""
    pcm = decode_to_pcm(festival_ru(tmp_path / "ru.wav", SAID))
    settings = Settings()
    loaded: list[str] = []

    def engine(language: str):  # type: ignore[no-untyped-def]
        loaded.append(language)
        return make_speech_engine(settings, language)

    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    work = Work(None, None, engine, MultilingualScorer())  # type: ignore[arg-type]
    jobs = RedisJobs(client, bus)
    await jobs.start()
    worker = StreamWorker(client, bus, work, name="ru")
    worker.start()
    try:
        final = await jobs.submit("transcribe", {"language": "ru"}, pcm, reply_within=60)
        partial = await jobs.submit(
            "transcribe", {"language": "ru", "partial": True}, pcm, reply_within=60
        )
        english = await jobs.submit("transcribe", {}, pcm, reply_within=60)
    finally:
        await worker.stop()
        await jobs.stop()
        work.close()
        await bus.close()
        await client.aclose()
    assert final is not None and partial is not None and english is not None
    print(f"\nfinal: {final['text']}\npartial: {partial['text']}\nen: {english['text']}")
    assert cyrillic_share(final["text"]) > 0.9 and wer(SAID, final["text"]) < 0.45
    assert cyrillic_share(partial["text"]) > 0.9 and wer(SAID, partial["text"]) < 0.6
    assert cyrillic_share(english["text"]) < 0.1  # tiny.en writes no Russian
    assert loaded == ["ru", "en"]  # one engine per language, each loaded once


STRONG = (
    "GIL — это глобальная блокировка интерпретатора в CPython: в одном процессе байткод питона "
    "в каждый момент выполняет только один поток. Поэтому вычисления на чистом питоне потоки "
    "не ускоряют. Во время ввода-вывода и в расширениях вроде NumPy блокировка отпускается, так "
    "что для сетевых запросов потоки помогают. Для вычислений на нескольких ядрах берут пул "
    "процессов, а блокировки в своём коде всё равно нужны: GIL не делает его потокобезопасным."
)
WRONG = (
    "GIL делает любой код потокобезопасным: все операции вроде count += 1 атомарны, поэтому "
    "блокировки в питоне не нужны. А для сетевых запросов потоки бесполезны, потому что GIL "
    "никогда не отпускается, и это часть самого языка, он есть во всех реализациях."
)
OFF_TOPIC = (
    "Для вёрстки я обычно беру flexbox: он раскладывает элементы в одну строку или колонку, а "
    "grid удобнее для двумерных сеток с явными областями и отступами между ними."
)


@pytest.fixture(scope="module")
def scorer() -> ScorerByLanguage:
    return ScorerByLanguage(LocalScorer(), MultilingualScorer())


def test_russian_answers_against_russian_key_points(scorer: ScorerByLanguage) -> None:
    gil = spec("ru-py-gil")
    strong, wrong, off = (scorer.score(gil, a) for a in (STRONG, WRONG, OFF_TOPIC))
    print(f"\nstrong {strong.score}, wrong {wrong.score}, off-topic {off.score}")
    assert strong.scorer == "multilingual"
    # One example each; the labelled set is the measure (bench/scoring.py --language ru: the
    # off-topic kind's mean error +0.6 on dev, this answer 2.8).
    assert strong.score >= 5 and strong.score >= wrong.score + 2 and strong.score >= off.score + 2
    assert off.score <= 3
    assert strong.covered and set(strong.covered) <= set(gil.key_points)
    assert cyrillic_share(strong.rationale) > 0.5 and cyrillic_share(off.rationale) > 0.5


# (key point, a paraphrase, a confident contradiction, an on-topic sentence that says neither) of
# Russian questions in the labelled set's dev and test splits: no Russian pair of theirs was
# learnt from (training/train_claims_e5.py leaves them out).
UNSEEN_PAIRS = [
    (
        "Генератор можно пройти только один раз.",
        "Если генератор уже перебрали в цикле, второй раз он ничего не выдаст, нужен новый.",
        "Генератор можно перебирать сколько угодно раз, он каждый раз начинает сначала.",
        "Генераторы я часто использую при чтении больших файлов построчно.",
    ),
    (
        "Генератор вычисляет значения лениво, только когда их запрашивают.",
        "Значения считаются по одному, в тот момент, когда цикл просит следующее.",
        "Генератор сразу при создании вычисляет все значения и держит их списком в памяти.",
        "В Python есть ещё генераторные выражения в круглых скобках.",
    ),
    (
        "CORS проверяется только браузером, другие клиенты его игнорируют.",
        "Curl или бэкенд-сервис спокойно получат ответ, заголовки CORS смотрит только браузер.",
        "CORS проверяет сам сервер и отклоняет запросы с чужих доменов от любых клиентов.",
        "С CORS я разбирался, когда подключал фронтенд к новому API.",
    ),
    (
        "Для непростых запросов браузер сначала отправляет preflight-запрос методом OPTIONS.",
        "Перед PUT с JSON браузер сначала шлёт OPTIONS и спрашивает, можно ли.",
        "Preflight отправляет сервер браузеру методом HEAD, когда основной запрос уже выполнен.",
        "Настройки CORS у нас хранились в конфиге nginx.",
    ),
    (
        "В PostgreSQL по умолчанию READ COMMITTED, и каждый оператор видит свой снимок данных.",
        "Постгрес из коробки работает на READ COMMITTED, каждый запрос видит данные на свой старт.",
        "В PostgreSQL по умолчанию уровень SERIALIZABLE, и вся транзакция видит один снимок.",
        "Мы используем PostgreSQL уже лет пять в основном сервисе.",
    ),
    (
        "Монотонная калибровка не меняет ранжирование и ROC AUC.",
        "Калибровка сохраняет порядок прогнозов, так что ROC AUC после неё остаётся тем же.",
        "После калибровки ROC AUC обычно заметно растёт, потому что порядок объектов меняется.",
        "Калибровку мы делали для модели оттока в прошлом году.",
    ),
]


def test_the_claim_head_reads_russian_pairs_of_questions_it_never_saw(
    scorer: ScorerByLanguage,
) -> None:
    """An on-topic sentence that says neither is read as neither, and a contradiction mostly
    as more contradicting than a paraphrase (the head is weak at both that and paraphrases:
    it is why confident wrong answers are still scored too high, see the README)."""
    multilingual = scorer.multilingual
    firmer = 0
    for claim, paraphrase, contradiction, neither in UNSEEN_PAIRS:
        vectors = multilingual.embedder.embed([claim, paraphrase, contradiction, neither])
        probs = multilingual.head.check(np.repeat(vectors[:1], 3, axis=0), vectors[1:])
        print(f"\n{np.round(probs, 2).tolist()}")
        assert int(np.argmax(probs[2])) == 2  # neither
        firmer += probs[1][1] > probs[0][1]
    assert firmer >= len(UNSEEN_PAIRS) - 2


def test_a_russian_answer_to_an_english_rubric(scorer: ScorerByLanguage) -> None:
    gil = spec("py-gil", "ru")
    strong, off = scorer.score(gil, STRONG), scorer.score(gil, OFF_TOPIC)
    print(f"\nagainst English key points: strong {strong.score}, off-topic {off.score}")
    assert strong.score >= 5 and off.score <= 2
    assert cyrillic_share(strong.rationale.split(":")[0]) > 0.5  # written in Russian


def test_silence_and_i_dont_know_in_russian_score_nothing(scorer: ScorerByLanguage) -> None:
    for said in [
        "",
        "Э-э, не знаю, честно говоря.",
        "Можете повторить вопрос, пожалуйста?",
        "Извините, связь прервалась, я не расслышал, что вы сказали. Повторите, пожалуйста.",
    ]:
        verdict = scorer.score(spec("ru-py-gil"), said)
        assert verdict.score == 0 and verdict.rationale.startswith("Оценивать нечего")


def test_a_question_prepared_while_it_is_answered_scores_the_same() -> None:
    """The rubric embedded when the question appears: the score after moving on embeds only
    the answer (the times are printed, not asserted), and is the same score."""
    import time

    for language, slug, said in (("ru", "ru-py-gil", STRONG), ("en", "py-gil", "")):
        question = spec(slug, language)
        answer = said or question.expected_answer
        cold, warm = (ScorerByLanguage(LocalScorer(), MultilingualScorer()) for _ in "ab")
        for scorer in (cold, warm):
            scorer.warm_up(language)
            scorer.prepare(answer, language)
        began = time.perf_counter()
        unprepared = cold.score(question, answer)
        cold_s = time.perf_counter() - began
        warm.prepare_question(question)
        began = time.perf_counter()
        prepared = warm.score(question, answer)
        warm_s = time.perf_counter() - began
        print(f"\n{language}: scored in {cold_s:.3f} s cold, {warm_s:.3f} s with the rubric ready")
        assert prepared.score == unprepared.score and prepared.covered == unprepared.covered
        embedder = (warm.english if language == "en" else warm.multilingual).embedder
        rubric = [*question.key_points, *question.misconceptions, reference_text(question)]
        assert all(text in embedder._cache for text in rubric)


def test_an_english_interview_keeps_the_english_scorer(scorer: ScorerByLanguage) -> None:
    gil = spec("py-gil", "en")
    assert scorer.score(gil, gil.expected_answer).scorer == "local"


async def test_the_llm_judge_writes_in_the_interviews_language(
    aiohttp_server, scorer: ScorerByLanguage
) -> None:
    """A judge made for the service (English by default) writes a Russian interview's verdict
    in Russian; when it fails, the multilingual scorer scores instead."""
    verdict_json = json.dumps(
        {
            "score": 8,
            "rationale": "Раскрыты почти все пункты.",
            "covered": [],
            "missing": [],
            "follow_up": "Что вы возьмёте для вычислений на нескольких ядрах?",
        }
    )
    replies = iter([(200, verdict_json), (500, "")])
    app, seen = chat_server(lambda body: next(replies))
    server = await aiohttp_server(app)
    judge = LLMJudge("m", fallback=scorer, base_url=str(server.make_url("/v1")), api_key="k")
    gil = spec("ru-py-gil")
    verdict = await asyncio.to_thread(judge.score, gil, STRONG)
    assert "in Russian" in seen[0]["messages"][0]["content"] and verdict.score == 8
    fallback = await asyncio.to_thread(judge.score, gil, STRONG)
    assert fallback.scorer == "multilingual" and fallback.note.startswith("Scored by the local")
