# p2p-interview: `make run` serves with embedded defaults, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests also cover the optional openai-whisper engine (torch, CPU build).
WHISPER := $(VENV)/.whisper-installed

.PHONY: run test lint bench migrate clean messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(WHISPER): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,whisper]'
	touch $(WHISPER)

migrate: $(STAMP)
	$(BIN)/p2p-interview migrate

run: migrate
	$(BIN)/p2p-interview serve

test: $(STAMP) $(WHISPER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v node >/dev/null; then for f in web/static/js/*.js; do node --input-type=module --check < $$f || { echo "syntax error in $$f"; exit 1; }; done; fi
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -ra $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Small sizes; see each script's --help for the full runs whose numbers are in the README.
bench: $(STAMP)
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/signaling_load.py --rooms 10,100 --seconds 5 --idle 500
	$(BIN)/python bench/media_load.py --streams 1,10 --seconds 5
	HF_HUB_OFFLINE=1 $(BIN)/python bench/live.py --answers 4 --speed 4 --webrtc 1
	$(BIN)/python bench/job_queue.py --jobs 50
	HF_HUB_OFFLINE=1 $(BIN)/python bench/connect.py --joins 3 --profiles clean,loss2

# Extract the texts of the pages, emails and JS into web/locale/messages.pot and merge them
# into each language's .po (translators then fill the new, empty entries).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-wrap --sort-by-file --project=p2p-interview \
	  -k N_ -k NP_:1c,2 -k t -k InvalidInput:2 -k SetupLinkError -o web/locale/messages.pot .
	$(BIN)/pybabel update -i web/locale/messages.pot -d web/locale --no-wrap --ignore-obsolete

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
