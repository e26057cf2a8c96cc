# edge-otp: the two commands are `make dev` (run the Worker and demo on 127.0.0.1:$PORT) and
# `make test` (every test). Each installs what it needs through scripts/setup.sh.
.PHONY: setup build dev test bench fmt clean

setup:
	bash scripts/setup.sh

build: setup
	bash scripts/build.sh release
	bash scripts/build.sh dev

dev:
	bash scripts/dev.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

fmt:
	cargo fmt --all

clean:
	rm -rf build target/wasm32-unknown-unknown .wrangler .wrangler.local.toml .wrangler.test.toml
