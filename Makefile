# edge-otp: the two commands are `make dev` (run the Worker and demo on 127.0.0.1:$PORT) and
# `make test` (every test). Each installs what it needs through scripts/setup.sh. `make deploy`
# deploys to your Cloudflare account (docs/deploy.md; ARGS="--dry-run" to try it offline).
.PHONY: setup build dev test bench fuzz soak deploy fmt clean

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

# Not part of `make test`: schemathesis against every documented operation (docs/security.md).
fuzz:
	bash scripts/fuzz.sh

# Not part of `make test`: a few minutes of mixed traffic with faults and a restart (SOAK_SECONDS).
soak:
	bash scripts/soak.sh

deploy:
	bash scripts/deploy.sh $(ARGS)

fmt:
	cargo fmt --all

clean:
	rm -rf build target/wasm32-unknown-unknown .wrangler .wrangler.local.toml .wrangler.test.toml
