#!/usr/bin/env bash
# chromium.sh: make sure a headless Chromium is installed for the browser tests (the status
# page test drives it with chromedp) and print its path. It installs Debian's `chromium`
# package with apt-get when no Chromium is on the PATH; CI runs as root, so that works as is.
# `make test` runs it before the suite. FLEETSTREAM_CHROMIUM, when set, names the binary to use.
set -euo pipefail

find_chromium() {
	local c
	if [ -n "${FLEETSTREAM_CHROMIUM:-}" ]; then
		command -v "$FLEETSTREAM_CHROMIUM" && return 0
	fi
	for c in chromium chromium-browser google-chrome-stable google-chrome headless-shell; do
		command -v "$c" && return 0
	done
	return 1
}

if find_chromium; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "chromium.sh: no Chromium on the PATH and no apt-get to install it; install Chromium and set FLEETSTREAM_CHROMIUM" >&2
	exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "chromium.sh: installing Chromium needs root (or sudo)" >&2; exit 1; }
	sudo=(sudo)
fi
echo "chromium.sh: installing Debian's chromium package (apt-get) for the browser tests ..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
find_chromium || { echo "chromium.sh: chromium installed but not found on the PATH" >&2; exit 1; }
