# auction-trader: the two commands of the README, and a few more.
#   make run    set up, build, and run the main job: the agent in sim mode (no keys, no network); Ctrl-C stops it
#   make demo   the offline research demo (12 h synthetic market -> features -> backtest)
#   make test   set up, build and run every test
SWIFT ?= swift

.PHONY: run demo test test-fast lint format build release bench bench-scale soak chaos setup clean install uninstall \
	systemd-e2e cluster-e2e storage-e2e

setup:
	bash scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

# The agent against its built-in simulator; `atctl status` in another shell (control socket run/sim/control.sock),
# the dashboard at http://127.0.0.1:9464/ (agent.http_listen).
run: release
	@echo "dashboard: http://127.0.0.1:9464/   metrics: http://127.0.0.1:9464/metrics   control: atctl --env sim status"
	.build/release/auction-agent run --env sim

demo: release
	bash scripts/demo

test: lint
	bash scripts/setup --tests
	$(SWIFT) build --build-tests
	$(SWIFT) test --disable-xctest

# The unit tests only (suites tagged .unit; docs/DESIGN.md, "Tests"): seconds, not minutes.
test-fast:
	SWIFT=$(SWIFT) bash scripts/test-fast

# The code as the repository's .swift-format writes it (CI fails on any difference); `make format` rewrites it.
lint:
	$(SWIFT) format lint --strict --recursive --configuration .swift-format Sources Tests Package.swift

format:
	$(SWIFT) format format --in-place --recursive --configuration .swift-format Sources Tests Package.swift

bench: setup
	$(SWIFT) build -c release --product bench
	.build/release/bench

# Whole-process features, backtest, streamed grid and streamed walk-forward over 1, 7 and 30 generated days of daily
# .csv.gz: events/s and peak RSS (docs/BENCHMARKS.md; about 15 minutes, the first run also generates the days into
# /tmp/auction-bench-scale)
bench-scale: release
	bash scripts/bench-scale

# bench plus the loopback soak (10,000 orders, 1,000 WebSocket reconnects)
soak: setup
	$(SWIFT) build -c release --product bench
	BENCH_SOAK=1 .build/release/bench

# The chaos soak (not in `make test`): live against the simulated venue for 24 market hours at 120x (about 15
# minutes) with private-stream cuts, partial fills, lost replies, 429 storms, an ADL and ten crashes; the report
# goes to .build/chaos-report.md (docs/RELIABILITY.md keeps the last one). AUCTION_CHAOS_HOURS, _SPEED, _SEED vary it.
chaos: setup
	$(SWIFT) build --build-tests
	AUCTION_CHAOS=1 $(SWIFT) test --disable-xctest --skip-build --filter ChaosSoakTests

# Binaries, units, sysusers/tmpfiles, example configs and EnvironmentFile (DESTDIR=/some/root to stage). Build
# first (make release); BUILD_DIR names another build (the systemd end-to-end test uses a static one).
BUILD_DIR ?= .build/release
install:
	DESTDIR="$(DESTDIR)" BUILD_DIR="$(BUILD_DIR)" bash scripts/install

uninstall:
	DESTDIR="$(DESTDIR)" bash scripts/install --uninstall

# The units under a real systemd in a systemd-nspawn container (root; debootstrap cached in .cache/nspawn).
systemd-e2e: setup
	bash scripts/systemd-e2e

# The grid on a single-node Slurm from Debian's packages (root; munged, slurmctld, slurmd on loopback): the job array
# and merge of deploy/slurm/ against a single-machine grid, byte for byte (runbooks/research-cluster.md).
cluster-e2e: setup
	bash scripts/cluster-e2e

# Storage faults on a real filesystem (root; a loop device under device-mapper): a full disk, then a device that
# fails and an ext4 that remounts itself read-only, under the sim agent (runbooks/storage-full.md).
storage-e2e: setup
	bash scripts/storage-e2e

clean:
	rm -rf .build .build-static data/demo state/sim run/sim
