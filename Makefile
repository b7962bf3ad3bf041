# Two commands on a fresh machine:
#   make bench   builds and runs the main job
#   make test    builds and runs every test
# CMake does the work; this file only names the steps.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON ?= $(shell command -v python3 2>/dev/null)
CMAKE_FLAGS ?=

PYTHON_FLAG = $(if $(PYTHON),-DPython3_EXECUTABLE=$(PYTHON))

.PHONY: all build test bench install clean

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(PYTHON_FLAG) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The main job. Until `kq bench` lands (issue 3) it writes the built-in
# sample layer through the GGUF writer and reads it back with `kq info`.
bench: build
	$(BUILD)/kq sample $(BUILD)/sample.gguf
	$(BUILD)/kq info $(BUILD)/sample.gguf

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD)
