#!/usr/bin/env bash
# What a handler receives and gives back.  Job params full of shell
# metacharacters reach it verbatim (stdin, environment) and are never
# interpreted; configured arguments are passed as written; JSON stdout lines
# become progress and the result; large outputs and inputs do not block.
source "$(dirname "$0")/common.bash"
reset_db
OUT=$TMP/out
mkdir -p "$OUT"
PWNED=$TMP/pwned

cat > "$TMP/io.sh" <<'SH'
#!/bin/sh
cat > "$OUT/stdin.json"
printf '%s' "$TINYTEMP_PARAMS" > "$OUT/env_params.txt"
printf '%s\n' "$TINYTEMP_JOB_ID" "$TINYTEMP_ATTEMPT" "$TINYTEMP_MAX_ATTEMPTS" "$TINYTEMP_JOB_TYPE" \
	"$TINYTEMP_MODEL" "$TINYTEMP_WORKER_NAME" "${PGPASSWORD-unset}" > "$OUT/env_vars.txt"
printf '%s\n' "$@" > "$OUT/args.txt"
echo '{"epoch": 1, "loss": 0.25}'
sleep 1.5
printf '%s\n' "$TINYTEMP_PARAMS"
SH
cat > "$TMP/big.sh" <<'SH'
#!/bin/sh
head -c 3000000 /dev/zero | tr '\0' x
echo
head -c 300000 /dev/zero | tr '\0' y >&2
echo '{"ok": true}'
SH
cat > "$TMP/plain.sh" <<'SH'
#!/bin/sh
echo '{"looks": "like json"}'
echo 'all done, not json'
SH
cat > "$TMP/nul.sh" <<'SH'
#!/bin/sh
printf '%s\n' '{"a": "\u0000"}'
SH
cat > "$TMP/deaf.sh" <<'SH'
#!/bin/sh
printf '%s' "${TINYTEMP_PARAMS+set}" > "$OUT/large_env.txt"
exit 0
SH
chmod +x "$TMP"/*.sh
cat > "$TMP/handlers.conf" <<CONF
# The arguments below contain what a shell would act on: they must arrive as written.
[io]
command = ./io.sh 'a b' "c\\"d" '\$HOME' ; '|' * '\$(touch $PWNED)'
env = OUT=$OUT

[big]
command = ./big.sh
timeout = 30

[plain]
command = ./plain.sh

[nul]
command = ./nul.sh

[deaf]
command = ./deaf.sh
env = OUT=$OUT
CONF

PGPASSWORD=secret PGOPTIONS='-c tinytemp.lease_timeout=1500ms' start_worker w --name io-w \
	--config "$TMP/handlers.conf" --slots 2 --poll-interval 0.5
w=$LAST_PID

params=$(cat <<JSON
{"cmd": "\$(touch $PWNED) \`touch $PWNED\` ; touch $PWNED && echo x > $PWNED | cat",
 "quotes": "'\"\\\\' \"", "newline": "a\nb\r\tc", "unicode": "héllo ✓ 日本",
 "glob": "* ?", "vars": "\$HOME \${PATH} %s %n", "redir": "> $PWNED < /etc/passwd 2>&1",
 "nested": {"list": [1, 2.5, null, true, "\`id\`"]}}
JSON
)
job=$(qv p "$params" "SELECT tinytemp_enqueue('io', model => 'resnet; rm -rf /', params => :'p'::jsonb)")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 20
tap $? "the job with shell metacharacters succeeded"
[ ! -e "$PWNED" ]
tap $? "nothing in the params was executed"
is "$(qv p "$(cat "$OUT/env_params.txt")" "SELECT :'p' = params::text FROM tinytemp.jobs WHERE id = $job")" t \
	"TINYTEMP_PARAMS is the params, byte for byte"
is "$(qv s "$(cat "$OUT/stdin.json")" "SELECT (:'s'::jsonb)->'params' = params AND (:'s'::jsonb)->>'id' = id::text
                                        AND (:'s'::jsonb)->>'model' = model FROM tinytemp.jobs WHERE id = $job")" t \
	"stdin holds the job as JSON, params verbatim"
is "$(q -c "SELECT result = params FROM tinytemp.jobs WHERE id = $job")" t \
	"the handler's last stdout line (the params) became the result verbatim"
is "$(q -c "SELECT progress FROM tinytemp.jobs WHERE id = $job")" '{"loss": 0.25, "epoch": 1}' \
	"an earlier JSON line was sent as progress with a heartbeat"
is "$(tr '\n' '|' < "$OUT/env_vars.txt")" "$job|1|5|io|resnet; rm -rf /|io-w|unset|" \
	"the job's id, attempt, type and model are in the environment, PGPASSWORD is not"
expected_args=$(printf '%s\n' 'a b' 'c"d' '$HOME' ';' '|' '*' "\$(touch $PWNED)")
is "$(cat "$OUT/args.txt")" "$expected_args" "configured arguments arrive as written"

big=$(q -c "SELECT tinytemp_enqueue('big')")
plain=$(q -c "SELECT tinytemp_enqueue('plain')")
nul=$(q -c "SELECT tinytemp_enqueue('nul')")
large=$(q -c "SELECT tinytemp_enqueue('deaf', params => jsonb_build_object('blob', repeat('z', 200000)))")
wait_sql "SELECT count(*) = 4 FROM tinytemp.jobs WHERE id IN ($big, $plain, $nul, $large) AND state = 'succeeded'" 30
tap $? "jobs with large output, plain output, a jsonb-invalid line and large input all succeeded"
is "$(q -c "SELECT state || ' ' || result FROM tinytemp.jobs WHERE id = $big")" 'succeeded {"ok": true}' \
	"3 MB of stdout and 300 kB of stderr did not block the handler; the result is its last line"
is "$(q -c "SELECT state = 'succeeded' AND result IS NULL FROM tinytemp.jobs WHERE id = $plain")" t "a last line that is not JSON gives no result"
is "$(q -c "SELECT state = 'succeeded' AND result IS NULL FROM tinytemp.jobs WHERE id = $nul")" t "a last line jsonb would refuse gives no result"
is "$(cat "$OUT/large_env.txt" 2>/dev/null)" "" "params too large for the environment come on stdin only"

kill -TERM "$w"
wait_exit "$w" 10
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

done_testing
