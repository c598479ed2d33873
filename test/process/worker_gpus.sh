#!/usr/bin/env bash
# GPU assignment: each job gets as many of the worker's GPU indices as it
# asked for, the lowest free ones, distinct from those of the jobs running
# beside it, in CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES and
# TINYTEMP_GPUS, held until its handler ends and recorded on the job
# (tinytemp.jobs.gpu_indices).  The GPUs come from a stand-in nvidia-smi
# (test/process/handlers/nvidia-smi, four of them), from --gpus 4, and from
# --gpu-indices.
source "$(dirname "$0")/common.bash"
reset_db
OUT=$TMP/out
mkdir -p "$OUT"
STANDIN=$TT_REPO/test/process/handlers

# The handler writes what it was given, and when it ran, to $OUT/JOB_ID.env.
cat > "$TMP/gpu.sh" <<'SH'
#!/bin/sh
cat >/dev/null
f=$OUT/$TINYTEMP_JOB_ID.env
{
	printf 'CUDA=%s\n' "${CUDA_VISIBLE_DEVICES-unset}"
	printf 'NVIDIA=%s\n' "${NVIDIA_VISIBLE_DEVICES-unset}"
	printf 'TT=%s\n' "${TINYTEMP_GPUS-unset}"
	printf 'ORDER=%s\n' "${CUDA_DEVICE_ORDER-unset}"
	printf 'START=%s\n' "$(date +%s.%N)"
} > "$f.tmp"
sleep "${GPU_JOB_SECONDS:-2}"
printf 'END=%s\n' "$(date +%s.%N)" >> "$f.tmp"
mv "$f.tmp" "$f"
SH
# Deaf to SIGTERM: its GPUs stay held until SIGKILL comes after the grace period.
cat > "$TMP/stubborn.sh" <<'SH'
#!/bin/sh
cat >/dev/null
trap '' TERM
sleep 60
SH
chmod +x "$TMP"/*.sh
cat > "$TMP/handlers.conf" <<CONF
[gpu]
command = ./gpu.sh
env = OUT=$OUT

[stubborn]
command = ./stubborn.sh
kill_grace = 3
CONF

# field JOB NAME: a value the job's handler wrote.
field() {
	sed -n "s/^$2=//p" "$OUT/$1.env" 2>/dev/null
}

# enqueue N GPUS [ARGS]: enqueue N gpu jobs of GPUS GPUs each; prints their ids.
enqueue() {
	q -c "SELECT tinytemp_enqueue('gpu', gpus => $2, cpus => 1, memory_mb => 64 ${3:-}) FROM generate_series(1, $1)"
}

# done_ok IDS SECONDS: wait until the jobs have succeeded.
done_ok() {
	wait_sql "SELECT count(*) = $(wc -w <<<"$1") FROM tinytemp.jobs WHERE id IN ($(tr ' \n' ',,' <<<"$1" | sed 's/,*$//')) AND state = 'succeeded'" "$2"
}

# sorted_cuda IDS: the indices the jobs saw, one list per job, sorted.
sorted_cuda() {
	local id
	for id in $1; do field "$id" CUDA; echo; done | sed '/^$/d' | tr ',' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//'
}

# same_env IDS: for each job, NVIDIA_VISIBLE_DEVICES and TINYTEMP_GPUS equal CUDA_VISIBLE_DEVICES.
same_env() {
	local id
	for id in $1; do
		[ "$(field "$id" NVIDIA)" = "$(field "$id" CUDA)" ] && [ "$(field "$id" TT)" = "$(field "$id" CUDA)" ] || return 1
	done
}

# overlapped IDS: every job ran while every other one did (the latest start before the earliest end).
overlapped() {
	local id starts="" ends=""
	for id in $1; do
		starts+="$(field "$id" START) "
		ends+="$(field "$id" END) "
	done
	python3 -c 'import sys; s, e = [list(map(float, a.split())) for a in sys.argv[1:3]]; sys.exit(0 if max(s) < min(e) else 1)' \
		"$starts" "$ends"
}

has_set_gpus=$(q -c "SELECT count(*) > 0 FROM pg_proc WHERE proname = 'tinytemp_set_gpus'")

# ---- GPUs from nvidia-smi (the stand-in: four H100s, indices 0 to 3).
PATH="$STANDIN:$PATH" PGOPTIONS='-c tinytemp.lease_timeout=1500ms -c tinytemp.retry_backoff_base=1s' \
	start_worker smi --name gpu-smi --config "$TMP/handlers.conf" --slots 6 --cpus 8 --poll-interval 0.5
w=$LAST_PID
wait_log smi " ready " 15
tap $? "the worker with the stand-in nvidia-smi is ready"
bail_out
grep -qE " starting .* gpus=0,1,2,3$" "$TMP/smi.log"
tap $? "it takes the four GPU indices nvidia-smi gives"
is "$(q -c "SELECT gpus || ' ' || gpu_type FROM tinytemp.workers WHERE name = 'gpu-smi'")" "4 H100" \
	"it registers four H100s"

ones=$(enqueue 4 1)
done_ok "$ones" 30
tap $? "four one-GPU jobs succeeded"
is "$(sorted_cuda "$ones")" "0 1 2 3" "the four jobs saw four distinct CUDA_VISIBLE_DEVICES, one GPU each"
overlapped "$ones"
tap $? "the four jobs ran at the same time"
same_env "$ones"
tap $? "NVIDIA_VISIBLE_DEVICES and TINYTEMP_GPUS equal CUDA_VISIBLE_DEVICES"
is "$(field "$(head -1 <<<"$ones")" ORDER)" "PCI_BUS_ID" "CUDA_DEVICE_ORDER makes CUDA number the GPUs as nvidia-smi does"
if [ "$has_set_gpus" = t ]; then
	recorded=$(for id in $ones; do q -c "SELECT array_to_string(gpu_indices, ',') FROM tinytemp.jobs WHERE id = $id"; done | tr '\n' ' ')
	seen=$(for id in $ones; do field "$id" CUDA; done | tr '\n' ' ')
	is "$recorded" "$seen" "tinytemp.jobs.gpu_indices records what each handler was given"
else
	grep -q "the server cannot record the jobs' GPUs" "$TMP/smi.log"
	tap $? "the server lacks tinytemp_set_gpus: the worker says so # SKIP gpu_indices not on this server"
fi

# The four GPUs are free again: two two-GPU jobs at once share them out.
twos=$(enqueue 2 2)
done_ok "$twos" 30
tap $? "two two-GPU jobs succeeded"
pairs=0
for id in $twos; do
	cuda=$(field "$id" CUDA)
	[[ "$cuda" =~ ^[0-9]+,[0-9]+$ ]] && [ "${cuda%,*}" != "${cuda#*,}" ] && pairs=$((pairs + 1))
done
is "$pairs" 2 "each two-GPU job saw two distinct indices"
is "$(sorted_cuda "$twos")" "0 1 2 3" "the two jobs saw all four GPUs between them"
overlapped "$twos"
tap $? "the two-GPU jobs ran at the same time, after the one-GPU jobs had freed the GPUs"
same_env "$twos"
tap $? "their NVIDIA_VISIBLE_DEVICES equals CUDA_VISIBLE_DEVICES too"

four=$(enqueue 1 4)
none=$(enqueue 1 0)
done_ok "$four $none" 30
tap $? "a four-GPU job and a job without GPUs succeeded"
is "$(field "$four" CUDA)/$(field "$four" NVIDIA)" "0,1,2,3/0,1,2,3" "the four-GPU job saw every GPU"
is "$(field "$none" CUDA)|$(field "$none" NVIDIA)|$(field "$none" TT)" "|void|" \
	"the job without GPUs saw CUDA_VISIBLE_DEVICES empty, NVIDIA_VISIBLE_DEVICES=void, TINYTEMP_GPUS empty"
if [ "$has_set_gpus" = t ]; then
	is "$(q -c "SELECT array_to_string(gpu_indices, ',') FROM tinytemp.jobs WHERE id = $four")" "0,1,2,3" \
		"the four-GPU job's gpu_indices"
fi

# A cancelled job no longer counts on the server, but its handler holds its
# GPUs until it has gone: a job handed out meanwhile fails that attempt
# (retryable) rather than share a GPU, then runs once they are free.
stubborn=$(q -c "SELECT tinytemp_enqueue('stubborn', gpus => 4, cpus => 1, memory_mb => 64, max_attempts => 1)")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $stubborn" 15
q -c "SELECT tinytemp_cancel($stubborn)" >/dev/null
late=$(enqueue 1 1 ", max_attempts => 10")
wait_log smi " job=$late gpus-busy " 10
tap $? "a job handed out while the cancelled handler still held every GPU found none free"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $late" 40
tap $? "it succeeded at a later attempt"
is "$(q -c "SELECT detail->>'error' || ' retryable=' || (detail->>'retryable') FROM tinytemp.jobs_history
            WHERE job_id = $late AND event = 'failed' ORDER BY id LIMIT 1")" \
	'not enough free GPUs on worker "gpu-smi": the job needs 1, 0 of its 4 are free retryable=true' \
	"its failed attempt says that the GPUs were not free, and was retryable"
grep -qE " job=$late started pid=[0-9]+ .*gpus=0$" "$TMP/smi.log"
tap $? "once the stubborn handler was killed, its GPUs were free again"

kill -TERM "$w"
wait_exit "$w" 20
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

# ---- --gpus 4, no nvidia-smi: indices 0 to 3.
rm -f "$OUT"/*.env
OUT=$OUT PATH=/usr/bin:/bin start_worker flag --name gpu-flag --handler "gpu=$TMP/gpu.sh" --slots 4 --cpus 8 \
	--gpus 4 --no-limits --poll-interval 0.5
w=$LAST_PID
wait_log flag " ready " 15
tap $? "the worker with --gpus 4 is ready"
grep -qE " starting .* limits=off gpus=0,1,2,3$" "$TMP/flag.log"
tap $? "--gpus 4 gives the indices 0 to 3"
ones=$(enqueue 4 1)
done_ok "$ones" 30
tap $? "four one-GPU jobs succeeded"
is "$(sorted_cuda "$ones")" "0 1 2 3" "the four jobs saw four distinct GPUs"
overlapped "$ones"
tap $? "the four jobs ran at the same time"
kill -TERM "$w"
wait_exit "$w" 20

# ---- --gpu-indices names them.
OUT=$OUT start_worker named --name gpu-named --handler "gpu=$TMP/gpu.sh" --slots 2 --cpus 8 \
	--gpu-indices 5,2 --no-limits --poll-interval 0.5
w=$LAST_PID
wait_log named " ready " 15
is "$(q -c "SELECT gpus FROM tinytemp.workers WHERE name = 'gpu-named'")" 2 "--gpu-indices 5,2 registers two GPUs"
two=$(enqueue 1 2)
done_ok "$two" 30
tap $? "a two-GPU job succeeded"
is "$(field "$two" CUDA)" "2,5" "it saw the named indices, lowest first"
kill -TERM "$w"
wait_exit "$w" 20

"$WORKER" --gpus 3 --gpu-indices 0,1 --handler x=simulate 2>/dev/null
is "$?" 2 "--gpus and --gpu-indices that disagree are refused"
"$WORKER" --gpu-indices 0,0 --handler x=simulate 2>/dev/null
is "$?" 2 "a GPU named twice is refused"

done_testing
