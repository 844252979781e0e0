# pqmtls: a thin wrapper over CMake. Every target installs and builds what it
# needs first (scripts/deps.sh is idempotent and quick once done).
#   make          build (build/)
#   make test     build and run the whole suite (ctest)
#   make asan     build (build-asan/) with ASan+UBSan and run the whole suite
#   make fuzz     build the libFuzzer targets (build-fuzz/, clang) and run each briefly
#   make demo     build and run the demo
#   make bench    build and run the benchmarks under bench/
#   make install  install into PREFIX (default /usr/local)
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
PREFIX     ?= /usr/local
WERROR     ?= ON
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build test asan fuzz demo bench install clean

all: build

deps:
	@mkdir -p $(BUILD)
	@bash scripts/deps.sh > $(BUILD)/.openssl-prefix.new
	@sed -n 's/^llhttp=//p' $(BUILD)/.openssl-prefix.new > $(BUILD)/.llhttp-prefix
	@tail -n 1 $(BUILD)/.openssl-prefix.new > $(BUILD)/.openssl-prefix && rm -f $(BUILD)/.openssl-prefix.new

configure: deps
	@cmake -S . -B $(BUILD) -DPQMTLS_WERROR=$(WERROR) \
	  -DPQMTLS_OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" -DPQMTLS_LLHTTP_PREFIX="$$(cat $(BUILD)/.llhttp-prefix)" -DCMAKE_INSTALL_PREFIX=$(PREFIX) > $(BUILD)/.configure.log \
	  || { cat $(BUILD)/.configure.log; exit 1; }

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	@mkdir -p $(ASAN_BUILD)
	@cmake -S . -B $(ASAN_BUILD) -DPQMTLS_WERROR=$(WERROR) -DPQMTLS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	  -DPQMTLS_OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" -DPQMTLS_LLHTTP_PREFIX="$$(cat $(BUILD)/.llhttp-prefix)" > $(ASAN_BUILD)/.configure.log \
	  || { cat $(ASAN_BUILD)/.configure.log; exit 1; }
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@mkdir -p $(FUZZ_BUILD)
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DPQMTLS_FUZZ=ON -DPQMTLS_TESTS=OFF \
	  -DPQMTLS_WERROR=$(WERROR) -DCMAKE_BUILD_TYPE=Debug -DPQMTLS_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  -DPQMTLS_OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" -DPQMTLS_LLHTTP_PREFIX="$$(cat $(BUILD)/.llhttp-prefix)" > $(FUZZ_BUILD)/.configure.log \
	  || { cat $(FUZZ_BUILD)/.configure.log; exit 1; }
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz -j $(JOBS)

demo: build
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls bash scripts/demo.sh

bench: build
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" bash bench/issue
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" bash bench/gateway
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" bash bench/crl
	@PQMTLS_BIN=$(CURDIR)/$(BUILD)/pqmtls OPENSSL_PREFIX="$$(cat $(BUILD)/.openssl-prefix)" bash bench/ocsp

install: build
	@cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
