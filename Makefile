# Synatra: `make up` runs the platform, `make test` runs every test,
# `make bench` prints benchmark figures. Each installs what is missing first.

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
WASM_TARGET := wasm32-wasip2
COMPONENTS := -p synatra-api -p synatra-agent-step -p synatra-gateway -p synatra-tool-js -p conformance-component -p hello-component -p tool-wit-component -p tool-wit-net-component -p hello-tool
EXCLUDE := --exclude synatra-db --exclude synatra-internal --exclude synatra-gateway --exclude synatra-tool-js --exclude synatra-api --exclude synatra-agent-step --exclude conformance-component --exclude hello-component --exclude tool-wit-component --exclude tool-wit-net-component --exclude hello-tool
LISTEN ?= 127.0.0.1:3000

.PHONY: up spin-up test bench prereqs components host lint clean

prereqs:
	@scripts/prereqs.sh

components: prereqs
	$(CARGO) build --release --target $(WASM_TARGET) $(COMPONENTS)

host: prereqs
	$(CARGO) build --release -p runtime-host

up: components host
	$(TARGET_DIR)/release/synatra up --listen $(LISTEN)

# The application under the released Spin CLI plus a ticker (needs DATABASE_URL).
spin-up: components
	scripts/spin-up.sh

test: components host
	$(CARGO) test --release --workspace $(EXCLUDE)

bench: components host
	$(CARGO) run --release -p synatra-bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace $(EXCLUDE) --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(WASM_TARGET) $(COMPONENTS) -p synatra-db -p synatra-internal -- -D warnings

clean:
	$(CARGO) clean
	rm -rf .synatra
