#!/usr/bin/env bash
# setup.sh: install what the pipeline handlers need, only what is missing.
#
#   1. Node.js 18 or later and npm: Debian's packages nodejs and npm, with
#      apt-get, when there is no node or no npm (a node of another origin,
#      such as NodeSource's, which brings its own npm, is kept);
#   2. the npm modules of package-lock.json (@duckdb/node-api and the DuckDB
#      build for this platform, which has the parquet and json extensions
#      built in) with npm ci --ignore-scripts: nothing else is downloaded, at
#      install or at run time.
#
# A second run finds both in place and takes well under a second: node_modules
# is reinstalled only when package-lock.json changed since the last npm ci (a
# stamp in node_modules) or DuckDB does not load.  Exits non-zero, saying why,
# when something cannot be installed.  Run as root, or as a user with sudo
# when Debian packages are missing.
set -eu -o pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
STAMP=$DIR/node_modules/.tinytemp-lock.sha256

say() { printf 'pipeline setup: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		say "\"$*\" needs root: run this as root, or install sudo"
		return 1
	fi
}

node_major() {
	node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing=()
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
	say "installing ${missing[*]} (apt-get)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	hash -r
fi
major=$(node_major)
if [ "$major" -lt 18 ]; then
	say "node $(node --version 2>/dev/null) is too old: the handlers need Node.js 18 or later"
	exit 1
fi

lock_sum=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
loads() {
	(cd "$DIR" && node -e 'import("@duckdb/node-api").then(() => process.exit(0), () => process.exit(1))') 2>/dev/null
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sum" ] && loads; then
	exit 0
fi
say "installing the npm modules of package-lock.json (npm ci)"
(cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
if ! loads; then
	say "@duckdb/node-api was installed but does not load with node $(node --version)"
	exit 1
fi
echo "$lock_sum" > "$STAMP"
say "ready: node $(node --version), @duckdb/node-api $(cd "$DIR" && node -p 'require("@duckdb/node-api/package.json").version')"
