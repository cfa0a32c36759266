# Sigil — the two commands of the set-up contract, and their helpers.
#   make run   installs what is missing, initialises ./data if absent, serves https://127.0.0.1:8443
#   make test  installs what is missing, builds, runs every test
SHELL := /bin/bash
DATA ?= ./data
LISTEN ?= 127.0.0.1:8443
STAMP := node_modules/.sigil-installed

.PHONY: install build test run bench dist bundle clean typecheck allocator

install: $(STAMP)

# npm ci only when the lock changed: a second `make test` must not reinstall (sqlite3 compiles ~2 min).
$(STAMP): package.json package-lock.json
	@command -v openssl >/dev/null || (apt-get update -qq && apt-get install -y -qq openssl)
	npm ci --no-audit --no-fund
	@touch $(STAMP)

build: install
	npx tsc -p tsconfig.build.json

typecheck: install
	npx tsc -p tsconfig.json --noEmit

# nft checks the rendered firewall ruleset in test/hardening; as root, CI installs it like openssl.
test: build allocator
	@command -v nft >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq nftables >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq nftables >/dev/null 2>&1) || echo "nftables not installed: its check is skipped"
	npx tap

# jemalloc where the host has it, as hardening/apply renders the unit (SIGIL_ALLOCATOR=auto; the
# benches do the same, bench/lib/server-proc.ts): ~4 points more of the P-384 bound, ~15 MiB less idle RSS
# (bench/README.md, "Sixteenth session"). As root, run, test and bench install libjemalloc2 if missing.
JEMALLOC_CONF := dirty_decay_ms:1000,muzzy_decay_ms:0,oversize_threshold:33554432
SERVER_ENV = MALLOC_ARENA_MAX=8 UV_THREADPOOL_SIZE=$${UV_THREADPOOL_SIZE:-$$(( $$(nproc) + 1 ))} \
	$$(for f in /usr/lib/$$(uname -m)-linux-gnu/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do \
	     [ -f "$$f" ] && [ ! -L "$$f" ] && { echo "LD_PRELOAD=$$f MALLOC_CONF=$(JEMALLOC_CONF)"; break; }; done)

allocator:
	@ls /usr/lib/*/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 >/dev/null 2>&1 \
		|| [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || apt-get install -y -qq libjemalloc2 >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq libjemalloc2 >/dev/null 2>&1) || echo "libjemalloc2 not installed: glibc malloc"

run: build allocator
	@if [ ! -d "$(DATA)" ]; then node dist/server/main.js init --data "$(DATA)" --listen "$(LISTEN)"; \
	else echo "Demo appliance in $(DATA), initialised earlier. First security officer: envelope $(DATA)/officer/envelope.txt,"; \
	     echo "key $(DATA)/officer/officer.p12 (its password was printed by that first run; to start over: rm -rf $(DATA) && make run)"; fi
	env $(SERVER_ENV) node dist/server/main.js start --data "$(DATA)"

bench: build allocator
	@for b in dist/bench/*.js; do echo "== $$b"; node "$$b" || exit 1; done
	@echo "== dist/bench/messages.js, 16 messages per request"; BENCH_BATCH=16 node dist/bench/messages.js
	@echo "== dist/bench/messages.js, one send stream per client, 3 messages in flight"; BENCH_STREAM=3 node dist/bench/messages.js

# The workstation CLI as a self-contained archive (build/sigil-cli-VERSION.tar.gz) for a stock Node
# on Linux or Windows: no npm, no compiler, no native addon.
dist: build
	node client-cli/packaging/make-dist.mjs --out build

# The offline appliance bundle, signed by the administrator's key:
#   make bundle BUNDLE_KEY=/media/admin/bundle-signing.key.pem
# hand out build/sigil-bundle.install.sh.sha256 with the public key; check install.sh first (bundle/README.md).
BUNDLE_KEY ?= $(SIGIL_BUNDLE_KEY)
bundle: build
	@if [ -z "$(BUNDLE_KEY)" ]; then echo "make bundle: set BUNDLE_KEY=path/to/admin-signing-key.pem" >&2; exit 2; fi
	mkdir -p build
	bundle/make-bundle.sh --key "$(BUNDLE_KEY)" --out build/sigil-bundle.tar

clean:
	rm -rf dist build .tap
