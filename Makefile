# Two set-up commands, both idempotent: `make demo` and `make test`.
# Each creates .venv, installs setlist with its Python dependencies and, where it can
# (root with apt), the system libVLC packages live playback needs and ffmpeg (benchmarks only).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setlist-installed

.PHONY: setup system-deps demo test lint bench schema clean

setup: system-deps $(STAMP)

system-deps:
	@PYTHON=$(PYTHON) sh scripts/system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: setup
	@echo "== the shipped arc templates"
	$(BIN)/setlist arcs list
	@echo
	@echo "== one arc as a timeline"
	$(BIN)/setlist arcs show ketamine-im-psychedelic
	@echo
	@echo "== a synthesised demo library (kept in demo/; re-runs reuse it)"
	$(BIN)/setlist demo-library demo/music
	@echo
	@echo "== scanned and analysed into its own index"
	$(BIN)/setlist library scan demo/music --db demo/library.sqlite
	@echo
	@echo "== a two-hour IM session planned from it, written to playlists/"
	$(BIN)/setlist build ketamine-im-psychedelic --db demo/library.sqlite --seed 1 --out demo-session
	@echo
	@echo "== a three-minute preview around the first crossfade, mixed offline"
	$(BIN)/setlist render playlists/demo-session.setlist.yaml -o demo/preview.flac --start 3:00 --end 6:00
	@echo
	@echo "To play the whole session live (needs a sound device; keys shown on screen):"
	@echo "  $(BIN)/setlist play playlists/demo-session.setlist.yaml --db demo/library.sqlite"
	@echo "and to drive it from a second terminal:  $(BIN)/setlist control skip"

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Benchmarks, each against a reference in the same run (several minutes; installs librosa).
bench: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/bench_arcs.py
	$(BIN)/python bench/bench_scan.py --files 10000
	$(BIN)/python bench/bench_analysis.py
	$(BIN)/python bench/bench_planner.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_live.py --minutes 10

# Regenerate arcs/schema.json after changing the arc format (a test checks it is current).
schema: setup
	$(BIN)/setlist arcs schema -o arcs/schema.json

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache build dist *.egg-info
