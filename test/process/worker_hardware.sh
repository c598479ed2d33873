#!/usr/bin/env bash
# Registration: the hardware a worker finds (CPUs and memory from /proc and
# the cgroup limits, GPUs from nvidia-smi) and the flags that override it.
# A stand-in nvidia-smi on PATH plays a machine with two H100s.
source "$(dirname "$0")/common.bash"
reset_db

mkdir -p "$TMP/bin"
cat > "$TMP/bin/nvidia-smi" <<'SH'
#!/bin/sh
[ "$1" = "--query-gpu=name" ] && [ "$2" = "--format=csv,noheader" ] || exit 9
echo "NVIDIA H100 80GB HBM3"
echo "NVIDIA H100 80GB HBM3"
SH
chmod +x "$TMP/bin/nvidia-smi"

# Found: nproc CPUs at most, some memory, the two stand-in GPUs.
PATH="$TMP/bin:$PATH" start_worker found --name hw-found --handler 'sim=simulate' --label rack=r7
w=$LAST_PID
wait_log found " ready " 10
tap $? "the worker registered"
is "$(q -c "SELECT cpus BETWEEN 1 AND $(nproc) AND memory_mb > 0 FROM tinytemp.workers WHERE name = 'hw-found'")" t \
	"CPUs and memory come from the machine"
is "$(q -c "SELECT gpus || ' ' || gpu_type || ' ' || (labels->>'gpu_name') || ' ' || (labels->>'rack')
            FROM tinytemp.workers WHERE name = 'hw-found'")" "2 H100 NVIDIA H100 80GB HBM3 r7" \
	"two GPUs of type H100 from nvidia-smi, and the labels"
is "$(q -c "SELECT labels->>'slots' FROM tinytemp.workers WHERE name = 'hw-found'")" 1 \
	"its slots (1 by default) are a label, for the other workers' claims"
kill -TERM "$w"
wait_exit "$w" 10

# Overridden.
PATH="$TMP/bin:$PATH" start_worker forced --name hw-forced --handler 'sim=simulate' \
	--cpus 48 --memory-mb 123456 --gpus 8 --gpu-type A100 --slots 3
w=$LAST_PID
wait_log forced " ready " 10
is "$(q -c "SELECT cpus || ' ' || memory_mb || ' ' || gpus || ' ' || gpu_type || ' ' || (labels->>'slots') FROM tinytemp.workers WHERE name = 'hw-forced'")" \
	"48 123456 8 A100 3" "the flags override what is found, --slots the label"
# Jobs that fit the registered GPUs run.
job=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}', gpus => 4, gpu_type => 'A100')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 10
tap $? "a 4-GPU A100 job ran on it"
kill -TERM "$w"
wait_exit "$w" 10
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

# Without nvidia-smi: no GPUs.
PATH=/usr/bin:/bin start_worker plain --name hw-plain --handler 'sim=simulate' --slots 4 --label slots=2
w=$LAST_PID
wait_log plain " ready " 10
is "$(q -c "SELECT gpus || ' ' || coalesce(gpu_type, '-') FROM tinytemp.workers WHERE name = 'hw-plain'")" "0 -" \
	"no nvidia-smi, no GPUs"
is "$(q -c "SELECT labels->>'slots' FROM tinytemp.workers WHERE name = 'hw-plain'")" 2 \
	"a --label slots=N stands instead of --slots"
kill -TERM "$w"
wait_exit "$w" 10

done_testing
