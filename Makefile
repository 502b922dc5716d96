# Confab: the two commands are `make run` and `make test`.
#
#   make deps     install the Debian packages the build and the tests need (apt-get, as root or
#                 via sudo); does nothing when they are all present
#   make check    rustfmt check + clippy with -D warnings (what CI runs before the tests)
#   make test     deps + check + every test in the workspace
#   make run      build (release) and start Confab: the desktop app, or with no display the
#                 headless loopback call, which prints its measured report
#   make bench    benchmarks (release): signaling relay, media codecs

SHELL := /bin/bash
CARGO ?= cargo

# Build: C toolchain, cmake (libopus), nasm (openh264's fast paths), libclang (bindgen),
# ALSA headers (cpal).
BUILD_PACKAGES := build-essential pkg-config cmake nasm libclang-dev libasound2-dev
# Desktop app at run time (winit/wgpu load these), and a software GPU (Mesa llvmpipe/lavapipe)
# for machines without one: the UI tests render snapshots with it.
APP_PACKAGES := libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libx11-xcb1 \
	libvulkan1 mesa-vulkan-drivers libgl1-mesa-dri libegl1
# Tests: a virtual X display, screenshots, window lookup.
TEST_PACKAGES := xvfb xauth imagemagick xdotool pulseaudio pulseaudio-utils libasound2-plugins \
                 chromium chromium-driver
APT_PACKAGES := $(BUILD_PACKAGES) $(APP_PACKAGES) $(TEST_PACKAGES)

.PHONY: all deps check test run bench fmt

all: test

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "make deps: cargo not found; install Rust 1.95 (rustup.rs)"; exit 1; }

check: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: check
	$(CARGO) test --workspace --locked

run: deps
	$(CARGO) build --release --locked
	./target/release/confab

bench: deps
	$(CARGO) bench --workspace --locked

fmt:
	$(CARGO) fmt --all
