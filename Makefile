# Confab: the two commands are `make run` and `make test`.
#
#   make deps     install the Debian packages the build and the tests need (apt-get, as root or
#                 via sudo); does nothing when they are all present
#   make check    rustfmt check + clippy with -D warnings (what CI runs before the tests)
#   make test     deps + check + every test in the workspace + the packaging test (it also
#                 installs the pinned geckodriver for the Firefox interop test)
#   make run      build (release) and start Confab: the desktop app, or with no display the
#                 headless loopback call, which prints its measured report
#   make bench    benchmarks (release): signaling relay, media codecs
#   make package  the Linux packages (.deb and .rpm) into target/packages/, built with the
#                 `dist` profile; installs the pinned cargo-deb / cargo-generate-rpm if missing
#   make package-test  make package, then packaging/test-package.sh: checks both packages,
#                 installs the .deb on this machine (root or sudo), runs it, removes it

SHELL := /bin/bash
CARGO ?= cargo

# Build: C toolchain, cmake (libopus), nasm (openh264's fast paths), libclang (bindgen),
# ALSA headers (cpal), PipeWire headers (Wayland screen sharing, the `wayland` feature).
BUILD_PACKAGES := build-essential pkg-config cmake nasm libclang-dev libasound2-dev \
	libpipewire-0.3-dev
# Desktop app at run time (winit/wgpu load these), and a software GPU (Mesa llvmpipe/lavapipe)
# for machines without one: the UI tests render snapshots with it.
APP_PACKAGES := libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libx11-xcb1 \
	libvulkan1 mesa-vulkan-drivers libgl1-mesa-dri libegl1
# Tests: a virtual X display, screenshots, window lookup, a real audio server, the browsers
# for the interop tests (Chromium with its driver; Firefox, whose driver comes from crates.io),
# a TURN server for the relay-only call test (coturn; the test starts its own on 127.0.0.1),
# network namespaces with an nftables rate policer for the call check's bottleneck test, and a
# private desktop for Wayland screen sharing (a session bus, PipeWire with WirePlumber, and
# GStreamer's pipewiresink showing the test picture as a screen-cast node).
TEST_PACKAGES := xvfb xauth imagemagick xdotool pulseaudio pulseaudio-utils libasound2-plugins \
                 chromium chromium-driver firefox-esr coturn iproute2 nftables \
                 dbus-daemon pipewire pipewire-bin wireplumber gstreamer1.0-tools \
                 gstreamer1.0-pipewire gstreamer1.0-plugins-base gstreamer1.0-plugins-good
# Packaging: dependency scan (dpkg-shlibdeps), and what the packaging test checks with.
PACKAGE_PACKAGES := dpkg-dev desktop-file-utils appstream rpm jq
APT_PACKAGES := $(BUILD_PACKAGES) $(APP_PACKAGES) $(TEST_PACKAGES) $(PACKAGE_PACKAGES)

# Packaging tools, pinned; `cargo install`ed into ~/.cargo/bin only when missing or different.
CARGO_DEB_VERSION := 3.8.0
CARGO_GENERATE_RPM_VERSION := 0.21.1
# WebDriver for Firefox (Debian has no package; Mozilla publishes it on crates.io), pinned.
GECKODRIVER_VERSION := 0.37.1
DIST_DIR := target/dist
PACKAGES_DIR := target/packages

.PHONY: all deps check test run bench fmt package package-test package-tools test-tools

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
	$(MAKE) --no-print-directory test-tools
	$(CARGO) test --workspace --locked
	$(MAKE) --no-print-directory package-test

test-tools: deps
	@geckodriver --version 2>/dev/null | head -n1 | grep -Eq "^geckodriver $(GECKODRIVER_VERSION)( |$$)" || \
	  $(CARGO) install --locked geckodriver --version $(GECKODRIVER_VERSION)

run: deps
	$(CARGO) build --release --locked
	./target/release/confab

bench: deps
	$(CARGO) bench --workspace --locked

fmt:
	$(CARGO) fmt --all

package-tools: deps
	@$(CARGO) deb --version 2>/dev/null | grep -qx "cargo-deb $(CARGO_DEB_VERSION)" || \
	  $(CARGO) install --locked cargo-deb --version $(CARGO_DEB_VERSION)
	@$(CARGO) generate-rpm --version 2>/dev/null | grep -qx "cargo-generate-rpm $(CARGO_GENERATE_RPM_VERSION)" || \
	  $(CARGO) install --locked cargo-generate-rpm --version $(CARGO_GENERATE_RPM_VERSION)

# The man pages come from the binary being packaged, so they describe exactly its CLI.
package: package-tools
	$(CARGO) build --profile dist --locked
	rm -rf $(DIST_DIR)/man $(PACKAGES_DIR)
	$(DIST_DIR)/confab manpages $(DIST_DIR)/man >/dev/null
	gzip -9n $(DIST_DIR)/man/*.1
	mkdir -p $(PACKAGES_DIR)
	$(CARGO) deb --profile dist --no-build --output $(PACKAGES_DIR)/
	$(CARGO) generate-rpm --profile dist --output $(PACKAGES_DIR)/
	@ls -l $(DIST_DIR)/confab $(PACKAGES_DIR)

package-test: package
	packaging/test-package.sh
