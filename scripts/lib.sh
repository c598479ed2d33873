# scripts/lib.sh: set-up shared by the demo, the tests and the benchmarks.
# Sourced, not run.  Installs what is missing, builds and installs tinytemp,
# and runs throwaway clusters under .tinytemp/ owned by an unprivileged user.

TT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TT_STATE=$TT_REPO/.tinytemp
TT_PGBIN=/usr/lib/postgresql/15/bin
TT_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl libpq-dev make gcc pkg-config
	bc procps python3 valgrind clang libclang-rt-14-dev sqlsmith
	curl prometheus prometheus-postgres-exporter python3-yaml strace
	podman runc catatonit busybox-static"
# The unprivileged owner of the clusters when we run as root (initdb refuses root).
TT_OS_USER=${TINYTEMP_OS_USER:-tinytemp}

tt_log() { printf '\n== %s\n' "$*"; }

# Run a command as root: directly, or through sudo for a normal user.
tt_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "tinytemp: \"$*\" needs root: run this as root, or install sudo" >&2
		return 1
	fi
}

# Run a command as the cluster's owner.
tt_as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u "$TT_OS_USER" -- "$@"; else "$@"; fi
}

# tt_ensure_packages [PACKAGE...]: apt-get install whatever of the packages
# (by default TT_PACKAGES) is missing.
tt_ensure_packages() {
	local missing=() p
	for p in ${*:-$TT_PACKAGES}; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		tt_log "installing ${missing[*]}"
		tt_root apt-get update -qq
		tt_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

# Build the extension and the worker program, and install them into PostgreSQL.
tt_build_install() {
	tt_log "building and installing tinytemp"
	make -C "$TT_REPO" -s -j2 PG_CONFIG=$TT_PGBIN/pg_config || return 1
	tt_root make -C "$TT_REPO" -s install PG_CONFIG=$TT_PGBIN/pg_config
}

# Make sure the unprivileged owner exists when we are root.
tt_ensure_owner() {
	if [ "$(id -u)" = 0 ] && ! id -u "$TT_OS_USER" >/dev/null 2>&1; then
		useradd --system --create-home --shell /bin/bash "$TT_OS_USER"
	fi
}

# The data directory of cluster NAME, through the link when it lives in /tmp:
# the owner may not be able to pass through the checkout's own path.
tt_datadir() {
	readlink -f "$TT_STATE/$1"
}

# tt_cluster_dirs NAME: an empty data directory for cluster NAME in
# .tinytemp/NAME (stopping and removing the one there), and a private
# socket directory, both owned by the clusters' owner.  Sets TT_DIR and
# TT_SOCK.
tt_cluster_dirs() {
	local name=$1 dir
	tt_ensure_owner
	mkdir -p "$TT_STATE"
	dir=$TT_STATE/$name
	tt_cluster_stop "$name"
	[ -L "$dir" ] && rm -rf "$(tt_datadir "$name")"
	rm -rf "$dir" "$TT_STATE/$name.sock"
	if [ "$(id -u)" = 0 ] && ! runuser -u "$TT_OS_USER" -- test -x "$TT_STATE" 2>/dev/null; then
		# The checkout sits where the owner cannot reach (under /root, say):
		# keep the data in /tmp and point to it from the checkout.
		ln -s "$(mktemp -d /tmp/tinytemp-$name.XXXXXX)" "$dir"
	else
		mkdir -p "$dir"
	fi
	TT_SOCK=$(mktemp -d /tmp/tinytemp-sock.XXXXXX)
	echo "$TT_SOCK" > "$TT_STATE/$name.sock"
	TT_DIR=$(tt_datadir "$name")
	chmod 700 "$TT_DIR"
	if [ "$(id -u)" = 0 ]; then chown "$TT_OS_USER" "$TT_DIR" "$TT_SOCK"; fi
	chmod 755 "$TT_SOCK"
}

# tt_cluster_start NAME PORT [EXTRA_CONF_LINES]: a fresh cluster in
# .tinytemp/NAME, listening only on a private Unix socket.  Exports PGHOST,
# PGPORT, PGUSER for the rest of the script.
tt_cluster_start() {
	local name=$1 port=$2 extra=${3:-} dir sock
	tt_cluster_dirs "$name"
	dir=$TT_DIR
	sock=$TT_SOCK

	tt_as_owner $TT_PGBIN/initdb -D "$dir" -U postgres -A trust -E UTF8 --no-locale >"$TT_STATE/$name.initdb.log" 2>&1 \
		|| { cat "$TT_STATE/$name.initdb.log"; return 1; }
	tt_as_owner tee -a "$dir/postgresql.conf" >/dev/null <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$sock'
shared_preload_libraries = 'tinytemp, pg_cron'
max_connections = 100
log_line_prefix = '%m [%p] %q%a '
$extra
CONF
	tt_as_owner $TT_PGBIN/pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null \
		|| { cat "$dir/server.log"; return 1; }
	export PGHOST=$sock PGPORT=$port PGUSER=postgres
}

# Restart a cluster, e.g. once the database its background worker serves exists.
tt_cluster_restart() {
	local dir
	dir=$(tt_datadir "$1")
	tt_as_owner $TT_PGBIN/pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 restart -m fast >/dev/null
}

# tt_served_cluster NAME PORT DB [EXTRA_CONF_LINES]: a throwaway cluster (as
# tt_cluster_start) whose background worker serves database DB, created with
# the extension in it; exports PGDATABASE=DB as well.
tt_served_cluster() {
	local name=$1 port=$2 db=$3 extra=${4:-}
	tt_cluster_start "$name" "$port" "tinytemp.database = '$db'
$extra" || return 1
	export PGDATABASE=$db
	$TT_PGBIN/createdb "$db" || return 1
	tt_cluster_restart "$name" || return 1	# so the background worker starts in DB
	$TT_PGBIN/psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION tinytemp'
}

# Stop a cluster if it runs; never fails.
tt_cluster_stop() {
	local dir
	dir=$(tt_datadir "$1")
	if [ -n "$dir" ] && [ -f "$dir/postmaster.pid" ]; then
		tt_as_owner $TT_PGBIN/pg_ctl -D "$dir" -w -t 60 stop -m fast >/dev/null 2>&1 \
			|| tt_as_owner $TT_PGBIN/pg_ctl -D "$dir" stop -m immediate >/dev/null 2>&1 || true
	fi
}
