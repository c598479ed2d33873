#!/usr/bin/env bash
# scripts/dev-cluster.sh NAME PORT | stop NAME
# Start a throwaway cluster .tinytemp/NAME with the installed tinytemp (no
# build) and a database "tinytemp" where the extension and pgTAP exist and the
# background worker runs; print the environment to reach it.  For development.
set -eu
source "$(dirname "$0")/lib.sh"
if [ "$1" = stop ]; then tt_cluster_stop "$2"; exit 0; fi
name=$1 port=$2
tt_cluster_start "$name" "$port" "tinytemp.database = 'tinytemp'
tinytemp.naptime = '200ms'" >/dev/null
$TT_PGBIN/createdb tinytemp
tt_cluster_restart "$name"
$TT_PGBIN/psql -qX -d tinytemp -c 'CREATE EXTENSION tinytemp' -c 'CREATE EXTENSION pgtap'
echo "export PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres PGDATABASE=tinytemp"
