#!/bin/sh
# job.sh: the demo job of tinytemp's container handler, run inside the
# container by run-in-podman.  The job row arrives on stdin and in TINYTEMP_*
# variables; what the job prints on stdout is what the worker reads.
#
#   job.sh report     a progress line, a metrics line, a checkpoint line, then
#                     the result: what the container gave the job (its memory
#                     and cpu limits from /sys/fs/cgroup, its GPU variables,
#                     its network interfaces, what came on stdin)
#   job.sh exit N     says so on stderr and exits with status N
#   job.sh hog MB     holds MB MiB in the shell's memory (to meet the memory
#                     limit), then reports the length it got
#   job.sh sleep S    a checkpoint line each second for S seconds; SIGTERM
#                     makes it print a last checkpoint and exit 143
# (cgroup v1 and v2 are both read; a value that is not there is null.)

job=$(cat)

# read_value FILE: the first word of FILE as a JSON number, else null.
read_value() {
	v=$(head -n 1 "$1" 2>/dev/null | cut -d ' ' -f "${2:-1}")
	case $v in
	'' | *[!0-9]*) echo null ;;
	*) echo "$v" ;;
	esac
}

case ${1:-report} in
report)
	echo '{"stage": "started in a container"}'
	echo '{"metrics": {"container_step": 1}, "step": 1}'
	echo '{"checkpoint": {"stage": "reported"}}'
	if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
		mem=$(read_value /sys/fs/cgroup/memory/memory.limit_in_bytes)
		quota=$(read_value /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
		period=$(read_value /sys/fs/cgroup/cpu/cpu.cfs_period_us)
	else
		mem=$(read_value /sys/fs/cgroup/memory.max)
		quota=$(read_value /sys/fs/cgroup/cpu.max 1)
		period=$(read_value /sys/fs/cgroup/cpu.max 2)
	fi
	interfaces=$(ls /sys/class/net | tr '\n' ' ' | sed 's/ $//')
	case $job in
	*"\"id\":${TINYTEMP_JOB_ID:-none},"*) stdin_job=true ;;
	*) stdin_job=false ;;
	esac
	printf '{"job_id": "%s", "stdin_has_job": %s, "stdin_bytes": %s, "memory_limit_bytes": %s, ' \
		"$TINYTEMP_JOB_ID" "$stdin_job" "${#job}" "$mem"
	printf '"cpu_quota_us": %s, "cpu_period_us": %s, "interfaces": "%s", ' "$quota" "$period" "$interfaces"
	printf '"tinytemp_gpus": "%s", "cuda_visible_devices": "%s", "nvidia_visible_devices": "%s"}\n' \
		"$TINYTEMP_GPUS" "$CUDA_VISIBLE_DEVICES" "$NVIDIA_VISIBLE_DEVICES"
	;;
exit)
	echo "job.sh: exiting with status $2 as asked" >&2
	exit "$2"
	;;
hog)
	echo '{"stage": "allocating"}'
	x=$(head -c "$(($2 * 1048576))" /dev/zero | tr '\0' x)
	echo "{\"held_bytes\": ${#x}}"
	;;
sleep)
	trap 'echo "{\"checkpoint\": {\"stopped_at\": $i}}"; echo "job.sh: stopped by SIGTERM" >&2; exit 143' TERM
	i=0
	while [ "$i" -lt "$2" ]; do
		i=$((i + 1))
		echo "{\"checkpoint\": {\"second\": $i}}"
		sleep 1 &
		wait $!
	done
	echo '{"slept": true}'
	;;
*)
	echo "job.sh: unknown mode $1" >&2
	exit 2
	;;
esac
