# Two commands on a fresh machine:
#   make bench   builds and runs the main job
#   make test    builds and runs every test
# CMake does the work; this file only names the steps.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON ?= $(shell command -v python3 2>/dev/null)
CMAKE_FLAGS ?=

PYTHON_FLAG = $(if $(PYTHON),-DPython3_EXECUTABLE=$(PYTHON))
# The Python tests' interpreter: a virtual environment under the build folder
# with tests/requirements.txt installed (tests/python_env.sh), or the plain
# python3 where that cannot be made; the file holds the one chosen.
VENV = $(abspath $(BUILD))/venv
PY_ENV_FILE = $(abspath $(BUILD))/python-env.path
TEST_PYTHON = py=$$(cat $(PY_ENV_FILE) 2>/dev/null); py=$${py:-$(PYTHON)}

.PHONY: all build python-env test test-sanitize test-tsan test-valgrind test-fuzz test-neon bench install clean

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(PYTHON_FLAG) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# numpy, gguf and the rest of tests/requirements.txt, without root: says
# what it could not set up (offline, no venv module) and goes on.
python-env:
	@mkdir -p $(BUILD)
	@sh tests/python_env.sh $(VENV) tests/requirements.txt "$(PYTHON)" $(PY_ENV_FILE)

# Every test, then again under each checker. Each checker builds in its own
# folder next to $(BUILD), so `make test BUILD=x` touches only x and x-*.
test: python-env build
	@$(TEST_PYTHON); if [ -n "$$py" ]; then \
	  cmake -S . -B $(BUILD) -DPython3_EXECUTABLE="$$py" >/dev/null; fi
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) test-sanitize
	$(MAKE) test-tsan
	$(MAKE) test-valgrind
	$(MAKE) test-neon
	$(MAKE) test-fuzz

# The whole suite again, built with AddressSanitizer (LeakSanitizer
# included) and UndefinedBehaviorSanitizer, stopping at the first report.
# The Python oracle tests load the sanitized libkquant.so into python3 (the
# test environment's: a venv's python is the same binary) with libasan preloaded (ASan must be the first library in the process); leak
# checking is off for that process only, because CPython keeps its own
# objects alive at exit and LeakSanitizer would report them (the library's
# leaks are caught by the C tests, which run the same code with it on).
# Left out: the install test, which builds a consumer project against an
# installed copy: it checks packaging, and a sanitized consumer would need
# the sanitizer flags threaded through find_package and pkg-config.
SAN_CC ?= $(CC)
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_PRELOAD = $(shell $(SAN_CC) -print-file-name=libasan.so 2>/dev/null)
test-sanitize:
	$(TEST_PYTHON); \
	cmake -S . -B $(BUILD)-san -DCMAKE_BUILD_TYPE=Debug -DKQ_CUDA=OFF -DCMAKE_C_COMPILER=$(SAN_CC) \
	  "-DCMAKE_C_FLAGS=$(SAN_FLAGS)" $${py:+-DPython3_EXECUTABLE=$$py} \
	  "-DKQ_PY_ENV=LD_PRELOAD=$(SAN_PRELOAD);ASAN_OPTIONS=detect_leaks=0"
	cmake --build $(BUILD)-san -j $(JOBS)
	ctest --test-dir $(BUILD)-san --output-on-failure -j $(JOBS) -E 'install'

# ThreadSanitizer over the tests that run threads: concurrent forwards and
# loads of shared objects (test_threads) and the threaded CPU backends under
# the layer tests. halt_on_error makes the first race fail the test. A probe
# first: where the kernel's address-space layout keeps TSan from starting,
# it runs without address randomization (setarch -R), else says SKIP.
TSAN_FLAGS = -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_TESTS = test_threads test_linear test_experts test_zero_copy test_cpu_backend
test-tsan:
	@mkdir -p $(BUILD)-tsan; printf 'int main(void) { return 0; }\n' >$(BUILD)-tsan/probe.c; \
	if ! $(CC) -fsanitize=thread $(BUILD)-tsan/probe.c -o $(BUILD)-tsan/probe 2>/dev/null; then \
	  echo "test-tsan: SKIP: $(CC) cannot link ThreadSanitizer programs (Debian: libtsan2)"; exit 0; fi; \
	run=""; if ! $(BUILD)-tsan/probe >/dev/null 2>&1; then run="setarch $$(uname -m) -R"; \
	  if ! $$run $(BUILD)-tsan/probe >/dev/null 2>&1; then \
	    echo "test-tsan: SKIP: ThreadSanitizer cannot start on this kernel"; exit 0; fi; fi; \
	set -e; \
	cmake -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=Debug -DKQ_CUDA=OFF "-DCMAKE_C_FLAGS=$(TSAN_FLAGS)"; \
	cmake --build $(BUILD)-tsan -j $(JOBS) --target $(TSAN_TESTS); \
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  $$run ctest --test-dir $(BUILD)-tsan --output-on-failure -j $(JOBS) \
	  -R '^(test_threads|test_linear|test_experts|test_zero_copy|test_cpu_backend)($$|\.)'

# valgrind's memcheck on the plain optimized build (no sanitizer runtime in
# the way): the argument and misuse catalogues, the GGUF reader tests (which
# walk every malformed-file error path), zero-copy lifetimes, and the fuzz
# corpus replayed through both harnesses. A few seconds each. Skipped,
# saying so, where valgrind is absent.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
VALGRIND_RUNS = test_args test_misuse test_gguf test_zero_copy \
  "fuzz_gguf_replay fuzz/corpus/gguf" "fuzz_load_replay fuzz/corpus/load"
test-valgrind: build
	@if ! command -v valgrind >/dev/null 2>&1; then \
	  echo "test-valgrind: SKIP: valgrind is not installed (apt-get install valgrind)"; exit 0; fi; \
	for run in $(VALGRIND_RUNS); do \
	  set -- $$run; t=$$1; shift; \
	  KQ_TEST_TMP=$(BUILD)/test-tmp TMPDIR=$(BUILD)/test-tmp KQ_GGUF_FUZZ_ITERS=300 \
	    $(VALGRIND) $(BUILD)/$$t "$$@" >$(BUILD)/valgrind-$$t.log 2>&1; rc=$$?; \
	  if [ $$rc -ne 0 ]; then cat $(BUILD)/valgrind-$$t.log; \
	    echo "test-valgrind: $$t failed (exit $$rc; 99: valgrind found errors or leaks)"; exit 1; fi; \
	  echo "test-valgrind: $$t: no errors, no leaks"; \
	done

# The ARM64 NEON kernels: the library and the CPU tests cross-compiled with
# Debian's aarch64 gcc (cmake/toolchain-aarch64.cmake) and run under
# qemu-aarch64 (ctest goes through it). On a CPU model with the dot-product
# extension (max: the sdot kernels) the kernel tests, the cpu backend's
# slices (each forces its path with KQ_CPU_ISA: neon, scalar) and the layer
# tests run; on an ARMv8.0 model (cortex-a57: the widening-multiply kernels)
# the kernel tests and the backend's neon slice. Only correctness: qemu's
# timings mean nothing. Probes first: without the cross compiler or qemu it
# says SKIP.
NEON_BUILD = $(BUILD)-aarch64
NEON_CC ?= aarch64-linux-gnu-gcc
NEON_QEMU ?= qemu-aarch64
NEON_DOTPROD_CPU = max
NEON_DOTPROD_TESTS = test_cpu_ukernels test_cpu_backend test_linear test_experts test_formats test_act_quant
NEON_V80_CPU = cortex-a57
NEON_V80_TESTS = test_cpu_ukernels test_cpu_backend.neon
NEON_TARGETS = $(filter $(basename $(NEON_DOTPROD_TESTS) $(NEON_V80_TESTS)),$(basename $(notdir $(wildcard tests/test_*.c))))
NEON_EMPTY :=
NEON_SPACE := $(NEON_EMPTY) $(NEON_EMPTY)
NEON_RE = ^($(subst $(NEON_SPACE),|,$(strip $(subst .,\.,$(1)))))($$|\.)
test-neon:
	@if ! command -v $(NEON_CC) >/dev/null 2>&1; then \
	  echo "test-neon: SKIP: no $(NEON_CC) (Debian: gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"; exit 0; fi; \
	if ! command -v $(NEON_QEMU) >/dev/null 2>&1; then \
	  echo "test-neon: SKIP: no $(NEON_QEMU) (Debian: qemu-user)"; exit 0; fi; \
	mkdir -p $(NEON_BUILD); printf 'int main(void) { return 0; }\n' >$(NEON_BUILD)/probe.c; \
	if ! $(NEON_CC) $(NEON_BUILD)/probe.c -o $(NEON_BUILD)/probe 2>/dev/null; then \
	  echo "test-neon: SKIP: $(NEON_CC) cannot link programs (Debian: libc6-dev-arm64-cross)"; exit 0; fi; \
	if ! $(NEON_QEMU) -L /usr/aarch64-linux-gnu $(NEON_BUILD)/probe >/dev/null 2>&1; then \
	  echo "test-neon: SKIP: $(NEON_QEMU) cannot run an ARM64 program here"; exit 0; fi; \
	set -e; \
	cmake -S . -B $(NEON_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake \
	  -DCMAKE_C_COMPILER=$(NEON_CC) "-DKQ_QEMU=$(NEON_QEMU)" -DCMAKE_BUILD_TYPE=Release \
	  -DKQ_CUDA=OFF -DKQ_BUILD_TESTS=ON; \
	cmake --build $(NEON_BUILD) -j $(JOBS) --target $(NEON_TARGETS); \
	echo "test-neon: qemu -cpu $(NEON_DOTPROD_CPU): $(NEON_DOTPROD_TESTS)"; \
	QEMU_CPU=$(NEON_DOTPROD_CPU) ctest --test-dir $(NEON_BUILD) --output-on-failure -j $(JOBS) \
	  -R '$(call NEON_RE,$(NEON_DOTPROD_TESTS))'; \
	echo "test-neon: qemu -cpu $(NEON_V80_CPU): $(NEON_V80_TESTS)"; \
	QEMU_CPU=$(NEON_V80_CPU) ctest --test-dir $(NEON_BUILD) --output-on-failure -j $(JOBS) \
	  -R '$(call NEON_RE,$(NEON_V80_TESTS))'

# Both libFuzzer harnesses (fuzz/README.md) for FUZZ_SECONDS each, at once,
# from a copy of the seed corpus; a crash, leak or broken invariant fails.
# Skipped, saying why, where clang or its fuzzer runtime is missing.
FUZZ_SECONDS ?= 60
test-fuzz:
	bash fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

# The main job: every linear of a Llama-3-8B layer and a Qwen3-30B-A3B MoE
# layer on each backend that opens here, timed beside the read-bandwidth and
# compute ceilings measured in the same run (see README.md, bench/RESULTS.md).
bench: build
	$(BUILD)/kq bench

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD) $(BUILD)-san $(BUILD)-tsan $(BUILD)-fuzz $(BUILD)-aarch64
