# pqmtls: a thin wrapper over CMake. Every target installs and builds what it
# needs first (scripts/deps.sh is idempotent and quick once done).
#   make          build (build/)
#   make test     build and run the whole suite (ctest)
#   make asan     build (build-asan/) with ASan+UBSan and run the whole suite
#   make demo     build and run the demo
#   make bench    build and run the benchmarks under bench/
#   make install  install into PREFIX (default /usr/local)
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
WERROR     ?= ON
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build test asan demo bench install clean

all: build

deps:
	@mkdir -p $(BUILD)
	@bash scripts/deps.sh > $(BUILD)/.openssl-prefix.new
	@tail -n 1 $(BUILD)/.openssl-prefix.new > $(BUILD)/.openssl-prefix && rm -f $(BUILD)/.openssl-prefix.new

configure: deps
	@cmake -S . -B $(BUILD) -DPQMTLS_WERROR=$(WERROR) \
	  -DPQMTLS_OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" -DCMAKE_INSTALL_PREFIX=$(PREFIX) > $(BUILD)/.configure.log \
	  || { cat $(BUILD)/.configure.log; exit 1; }

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	@mkdir -p $(ASAN_BUILD)
	@cmake -S . -B $(ASAN_BUILD) -DPQMTLS_WERROR=$(WERROR) -DPQMTLS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	  -DPQMTLS_OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" > $(ASAN_BUILD)/.configure.log \
	  || { cat $(ASAN_BUILD)/.configure.log; exit 1; }
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

demo: build
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls bash scripts/demo.sh

bench: build
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" bash bench/issue

install: build
	@cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
