# vmm: build, demo and test entry points. `make demo` and `make test` do all
# set-up a fresh Debian 12 machine needs (Debian packages, Go modules).

GO      ?= go
BIN     := bin
VMM     := $(BIN)/vmm
OUT     := out
# Debian packages the build and the tests need: gcc/binutils build the
# micro-guests, qemu-system-x86 is the reference tier, cpio reads initramfs
# archives back in tests; flex, bison, bc, libelf-dev, xz-utils and lz4
# build the minimal test kernel from Debian's linux-source-6.1; acpica-tools
# (iasl) checks the ACPI tables.
DEB_PKGS := gcc binutils libc6-dev qemu-system-x86 cpio make flex bison bc libelf-dev xz-utils lz4 acpica-tools e2fsprogs iproute2
FUZZTIME ?= 20s
# Long inputs make the minimizer pause the fuzzer for a while; keep it short.
FUZZFLAGS ?= -fuzzminimizetime=100x

.PHONY: all build build-pprof deps demo test check fuzz bench clean

all: build

# vmm is static (no cgo: nothing needs libc, and it saves 1.3 MiB of
# resident memory per VM). vmm-images, the image side (registries, layers,
# ext4), goes beside it so the VM process links none of that; so do
# vmm-lab (`vmm lab`: the lab file's parser and the VMs' supervisor) and
# guestinit: `vmm run` puts it in the guest's initramfs.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/vmm ./cmd/vmm-images ./cmd/vmm-lab
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' -o $(BIN)/guestinit ./guestinit/cmd/guestinit

# build-pprof is build with the CPU profiler in vmm: VMM_CPUPROFILE=FILE
# then writes a pprof profile. It is left out of the normal build because
# it costs every VM about 0.3 MiB of resident memory.
build-pprof: build
	CGO_ENABLED=0 $(GO) build -tags vmm_pprof -o $(BIN)/ ./cmd/vmm

# deps installs what is missing, once; it is a no-op on a prepared machine.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@[ -n "$$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get update -qq; }
	$(GO) mod download

# demo is the main job: check the host, boot a micro-guest that greets on
# the serial console, then build a small image locally (Debian's
# busybox-static, no registry needed) and run it as its own micro-VM with
# `vmm run`. Where the doctor says Linux guests cannot run (a software-only
# KVM), vmm run prepares everything, then stops with the doctor's reason:
# that status (125) is accepted only there.
DEMO_IMAGE := oci-layout:$(OUT)/busybox:latest
demo: deps build
	-$(VMM) doctor
	@mkdir -p $(OUT)
	$(GO) run ./internal/microguest/mkguest -o $(OUT)/hello.bzImage hello
	$(VMM) boot --kernel $(OUT)/hello.bzImage --memory 64M
	$(GO) run ./images/busybox/mkbusybox -o $(OUT)/busybox
	$(VMM) run --hostname demo $(DEMO_IMAGE) sh -c 'echo "hello from $$(hostname), a $$(uname -m) micro-VM running $$(uname -sr)"' || { \
		st=$$?; $(VMM) doctor --json | grep -q '"linux_guests": false' && [ $$st = 125 ] || exit $$st; }

# check is the static part of the test run.
check:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$fmt" ] || { echo "gofmt needed: $$fmt"; exit 1; }
	$(GO) vet ./...
	@bad=$$(git grep -l '"unsafe"' -- '*.go' | grep -v '_unsafe\(_test\)\?\.go$$' || true); \
	[ -z "$$bad" ] || { echo "\"unsafe\" outside *_unsafe.go: $$bad"; exit 1; }

# The e2e tests run verbosely so every skip prints its reason.
test: deps check
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v /e2e$$)
	$(GO) test -count=1 -timeout 25m -v ./e2e

# fuzz runs every fuzz target for FUZZTIME each (not part of `make test`).
# It runs compiled test binaries from each package's directory (so the
# committed corpora in testdata/fuzz are found; -fuzz=. at build time keeps
# the coverage guidance): `go test -fuzz` itself was
# seen to stall on this project's 2-core machines.
fuzz:
	@mkdir -p $(OUT)/fuzz
	@for dir in $$($(GO) list -f '{{.Dir}}' ./...); do \
		targets=$$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); \
		[ -n "$$targets" ] || continue; \
		bin=$(CURDIR)/$(OUT)/fuzz/$$(basename $$dir).test; \
		(cd $$dir && $(GO) test -c -fuzz=. -o $$bin .) || exit 1; \
		for f in $$targets; do \
			echo "== $$dir $$f"; \
			log=$(CURDIR)/$(OUT)/fuzz/$$f.log; \
			(cd $$dir && $$bin -test.run='^$$' -test.fuzz="^$$f$$" -test.fuzztime=$(FUZZTIME) $(FUZZFLAGS:-%=-test.%) \
				-test.fuzzcachedir=$(CURDIR)/$(OUT)/fuzz/cache) >$$log 2>&1; st=$$?; \
			grep -v '^fuzz: elapsed' $$log; grep '^fuzz: elapsed' $$log | tail -1; \
			if [ $$st != 0 ]; then \
				if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
					echo "(the engine's own race at the deadline, no failing input: not a finding)"; \
				else exit 1; fi; \
			fi; \
		done; \
	done

# bench measures vmm side by side with QEMU (start-up, memory, launch burst,
# exits, virtio) and writes the table and plot docs/benchmarks.md shows.
# Not part of `make test`. BENCHFLAGS adds flags, e.g. BENCHFLAGS='-runs 10
# -only start-up'; `go run ./bench -h` lists them.
BENCHFLAGS ?=
# bench measures vmm and QEMU side by side (docs/benchmarks.md): the table
# goes to out/bench/table.md, the plot to docs/benchmarks.png.
bench: deps build
	@mkdir -p $(OUT)/bench
	$(GO) run ./bench -vmm $(VMM) -markdown out/bench/table.md -plot docs/benchmarks.png $(BENCHFLAGS)

clean:
	rm -rf $(BIN) $(OUT)
