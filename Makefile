# auction-trader: the two commands of the README, and a few more.
#   make run    set up, build, and run the main job (sim market -> features, no keys, no network)
#   make test   set up, build and run every test
SWIFT ?= swift

.PHONY: run test build release bench soak setup clean

setup:
	bash scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

run: release
	bash scripts/demo

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --disable-xctest

bench: setup
	$(SWIFT) build -c release --product bench
	.build/release/bench

# bench plus the loopback soak (10,000 orders, 1,000 WebSocket reconnects)
soak: setup
	$(SWIFT) build -c release --product bench
	BENCH_SOAK=1 .build/release/bench

clean:
	rm -rf .build data/demo
