# Two commands on a fresh machine:
#   make bench   builds and runs the main job
#   make test    builds and runs every test
# CMake does the work; this file only names the steps.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON ?= $(shell command -v python3 2>/dev/null)
CMAKE_FLAGS ?=

PYTHON_FLAG = $(if $(PYTHON),-DPython3_EXECUTABLE=$(PYTHON))

.PHONY: all build test test-sanitize bench install clean

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(PYTHON_FLAG) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) test-sanitize

# The C and CLI tests again, built with AddressSanitizer (LeakSanitizer
# included) and UndefinedBehaviorSanitizer, stopping at the first report.
# The Python oracle tests and the install test run in the plain build only.
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test-sanitize:
	cmake -S . -B $(BUILD)-san -DCMAKE_BUILD_TYPE=Debug -DKQ_CUDA=OFF \
	  "-DCMAKE_C_FLAGS=$(SAN_FLAGS)" $(PYTHON_FLAG)
	cmake --build $(BUILD)-san -j $(JOBS)
	ctest --test-dir $(BUILD)-san --output-on-failure -j $(JOBS) -E '^py_|install'

# The main job. Until `kq bench` lands (issue 3) it writes the built-in
# sample layer through the GGUF writer and reads it back with `kq info`.
bench: build
	$(BUILD)/kq sample $(BUILD)/sample.gguf
	$(BUILD)/kq info $(BUILD)/sample.gguf

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD) $(BUILD)-san
