# The two commands of the README, and the tools behind them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test install catalogs bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "coassess needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)
	$(BIN)/python -m locales compile

demo: install
	$(BIN)/coassess demo

test: install
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# Extract every msgid into the template, merge it into each language's catalog, compile.
# Needs only an installed environment: it never reinstalls one that is already there.
catalogs: | $(BIN)/pybabel
	$(BIN)/pybabel extract -F babel.cfg -o locales/coassess.pot --no-location --sort-output \
		--omit-header --project coassess --msgid-bugs-address none bot dialogs
	$(BIN)/pybabel extract -F locales/web-babel.cfg -k _ -k N_ -k ngettext:1,2 -o locales/web.pot \
		--no-location --sort-output --omit-header --project coassess --msgid-bugs-address none web
	$(BIN)/pybabel update -D web -i locales/web.pot -d locales --no-wrap --ignore-obsolete
	$(BIN)/python -m locales update
	$(BIN)/python -m locales compile

$(BIN)/pybabel:
	$(MAKE) install

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
