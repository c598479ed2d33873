/*
 * hw.c
 *	  What this machine offers a worker: CPUs (the affinity mask and the
 *	  cgroup quota), memory (/proc/meminfo and the cgroup limit) and NVIDIA
 *	  GPUs (nvidia-smi, when it is installed).
 */
#include "tinytemp_worker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long nvidia-smi may take before we give up on it. */
#define NVIDIA_SMI_TIMEOUT_MS 10000

/* Read a small file whole; NULL when it cannot be read. */
static char *
read_small_file(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		buf[4096];
	size_t		n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(buf);
}

/* CPUs we may run on, lowered to the cgroup v2 quota when there is one. */
static int
detect_cpus(void)
{
	cpu_set_t	set;
	int			cpus = 0;
	char	   *max;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		cpus = CPU_COUNT(&set);
	if (cpus <= 0)
		cpus = (int) sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus <= 0)
		cpus = 1;

	/* "max 100000" means no quota; "200000 100000" means two CPUs. */
	max = read_small_file("/sys/fs/cgroup/cpu.max");
	if (max)
	{
		long long	quota;
		long long	period;

		if (sscanf(max, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0)
		{
			int			limit = (int) ceil((double) quota / (double) period);

			if (limit >= 1 && limit < cpus)
				cpus = limit;
		}
		free(max);
	}
	return cpus;
}

/* Memory in MB: MemTotal, lowered to the cgroup v2 limit when there is one. */
static long long
detect_memory_mb(void)
{
	FILE	   *f = fopen("/proc/meminfo", "r");
	char		line[256];
	long long	kb = 0;
	long long	mb;
	char	   *max;

	if (f)
	{
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
				break;
		fclose(f);
	}
	mb = kb / 1024;
	max = read_small_file("/sys/fs/cgroup/memory.max");
	if (max)
	{
		long long	bytes;

		if (isdigit((unsigned char) max[0]) && sscanf(max, "%lld", &bytes) == 1)
		{
			long long	limit = bytes / (1024 * 1024);

			if (limit > 0 && (mb == 0 || limit < mb))
				mb = limit;
		}
		free(max);
	}
	return mb > 0 ? mb : 1;
}

/*
 * A short GPU type from nvidia-smi's name, to match jobs' gpu_type: the
 * first word with a digit, cut at '-' ("NVIDIA H100 80GB HBM3" -> "H100",
 * "Tesla V100-SXM2-16GB" -> "V100", "NVIDIA A100-SXM4-40GB" -> "A100").
 */
static char *
short_gpu_type(const char *name)
{
	const char *p = name;

	while (*p)
	{
		const char *start;
		size_t		len;
		bool		digit = false;

		while (*p == ' ')
			p++;
		start = p;
		while (*p && *p != ' ')
		{
			if (isdigit((unsigned char) *p))
				digit = true;
			p++;
		}
		len = (size_t) (p - start);
		if (digit && len > 0)
		{
			const char *dash = memchr(start, '-', len);

			if (dash && dash > start)
				len = (size_t) (dash - start);
			return xstrndup(start, len);
		}
	}
	return xstrdup(name);
}

/*
 * Run nvidia-smi and count the GPUs; the first GPU's name gives the type.
 * Leaves hw untouched when nvidia-smi is missing or fails.
 */
static void
detect_gpus(Hardware *hw)
{
	char	   *path = NULL;
	char	   *const argv[] = {"nvidia-smi", "--query-gpu=name", "--format=csv,noheader", NULL};
	extern char **environ;
	int			fds[2];
	pid_t		pid;
	StrBuf		out;
	int64_t		deadline;
	int			status;
	bool		timed_out = false;

	if (!runner_find_executable("nvidia-smi", &path))
		return;
	if (pipe2(fds, O_CLOEXEC) != 0)
	{
		free(path);
		return;
	}
	pid = fork();
	if (pid < 0)
	{
		close(fds[0]);
		close(fds[1]);
		free(path);
		return;
	}
	if (pid == 0)
	{
		int			devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0)
		{
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		dup2(fds[1], STDOUT_FILENO);
		execve(path, argv, environ);
		_exit(127);
	}
	close(fds[1]);
	free(path);

	sb_init(&out);
	deadline = now_ms() + NVIDIA_SMI_TIMEOUT_MS;
	for (;;)
	{
		struct pollfd pfd = {fds[0], POLLIN, 0};
		int64_t		left = deadline - now_ms();
		char		buf[1024];
		ssize_t		n;

		if (left <= 0)
		{
			timed_out = true;
			break;
		}
		if (poll(&pfd, 1, (int) left) < 0 && errno != EINTR)
			break;
		if (pfd.revents == 0)
			continue;
		n = read(fds[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || out.len > 65536)
			break;
		sb_append(&out, buf, (size_t) n);
	}
	close(fds[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;

	if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0)
	{
		int			count = 0;
		char	   *save = NULL;

		for (char *line = strtok_r(out.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		{
			size_t		len = strlen(line);

			while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
				line[--len] = '\0';
			if (len == 0)
				continue;
			if (count++ == 0)
				hw->gpu_name = xstrdup(line);
		}
		hw->gpus = count;
		if (hw->gpu_name)
			hw->gpu_type = short_gpu_type(hw->gpu_name);
	}
	else
		log_event(NO_JOB, "hardware", "nvidia-smi %s; assuming no GPUs",
				  timed_out ? "timed out" : "failed");
	sb_free(&out);
}

/* Fill hw with what is asked for; what is not asked for stays as the caller set it. */
void
hw_detect(Hardware *hw, bool want_cpus, bool want_memory, bool want_gpus)
{
	if (want_cpus)
		hw->cpus = detect_cpus();
	if (want_memory)
		hw->memory_mb = detect_memory_mb();
	if (want_gpus)
	{
		hw->gpus = 0;
		detect_gpus(hw);
	}
}

/* Release the strings of hw. */
void
hw_free(Hardware *hw)
{
	free(hw->gpu_type);
	free(hw->gpu_name);
	hw->gpu_type = hw->gpu_name = NULL;
}
