# Front door. Everything real is in CMake (CMakeLists.txt) and scripts/.
#   make run     set up, build, start h3q-server on https://127.0.0.1:4433
#   make test    set up, build, run every test (ctest)
#   make asan    the whole test suite under ASan+UBSan
#   make bench   h3q-server vs ngtcp2, tokio-quiche, quic-go and Bun (bench/README.md)
#   make bench-smoke  every bench peer builds and answers (about a minute once built)
#   make bench-workers  h3q-server with 1 vs 2 workers (req/s, goodput, ratio; bench/workers.py)
#   make fuzz    libFuzzer targets of tests/fuzz, FUZZ_SECONDS each (clang)
#   make fuzz-smoke  the same, FUZZ_SMOKE_SECONDS each (CI)
#   make interop the QUIC Interop Runner's cases with quic-go, ngtcp2 and aioquic
#                (tests/interop/run.py; INTEROP_ARGS="--cases a,b --clients x")
#   make soak    SOAK_SECONDS (600) of mixed load on the ASan build: RSS, fds flat, no leaks
#   make abuse-long  tests/integration/test_abuse.py at full size (1,000 slowloris,
#                10,000 idle connections, 20,000 Initials), server and attacker on
#                CPUs of their own (H3Q_ABUSE_PLACE=0: not); make test runs it smaller
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_TARGETS ?=
SOAK_SECONDS ?= 600
PREFIX ?= /usr/local
PORT ?= 4433
JOBS ?= $(shell nproc)
INTEROP_ARGS ?=
CMAKE_FLAGS ?=

.PHONY: all build setup run test asan bench bench-smoke bench-workers fuzz fuzz-smoke fuzz-build interop \
        install format format-check clean soak abuse-long

all: build

setup:
	@scripts/setup.sh build

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/gen-cert.sh .run
	$(BUILD)/h3q-server --port $(PORT) --cert .run/cert.pem --key .run/key.pem --root www --webtransport

test: build
	@scripts/setup.sh test
	cd $(BUILD) && ctest --output-on-failure --timeout 900

asan: setup
	@scripts/setup.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DH3Q_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && H3Q_SANITIZED=1 ctest --output-on-failure --timeout 1800

bench: build
	@scripts/setup.sh bench
	bench/run.sh $(BUILD)

# The fuzz build needs only clang and libFuzzer, not quiche or libev.
fuzz-build:
	@scripts/setup.sh fuzz
	@cmake -S . -B $(FUZZ_BUILD) -DH3Q_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# Prints the matrix and writes $(BUILD)/interop/matrix.txt; exits 1 when a
# cell fails.
interop: build
	@scripts/setup.sh test
	.venv/bin/python tests/interop/run.py --build $(BUILD) $(INTEROP_ARGS)
# Not part of make test (10 minutes); test_soak.py runs 25 s of it there.
soak: setup
	@scripts/setup.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DH3Q_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	.venv/bin/python scripts/soak.py --build $(ASAN_BUILD) --seconds $(SOAK_SECONDS)

# The abuse suite at the sizes the reliability goals name (about 15 minutes).
abuse-long: build
	@scripts/setup.sh test
	H3Q_ABUSE_LONG=1 H3Q_ABUSE_PLACE=$${H3Q_ABUSE_PLACE-1} H3Q_BUILD_DIR=$(abspath $(BUILD)) \
	  H3Q_SOURCE_DIR=$(CURDIR) .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/integration/test_abuse.py

bench-smoke: build
	@scripts/setup.sh bench
	bench/run.sh $(BUILD) --smoke

# Only h3q-server and h3q-bench: no peers to install.
bench-workers: build
	python3 bench/workers.py --build $(BUILD)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
