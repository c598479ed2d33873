/*
 * hw.c
 *	  What this machine offers a worker: CPUs (the affinity mask and the
 *	  cgroup quota), memory (/proc/meminfo and the cgroup limit) and NVIDIA
 *	  GPUs (nvidia-smi, when it is installed), and the pool of GPU indices
 *	  that the worker hands out to its jobs.
 */
#include "tinytemp_worker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
 * Run nvidia-smi with --query-gpu=QUERY --format=csv,noheader and collect
 * its stdout in *out; false when it is missing, fails or times out (which
 * *why then says).
 */
static bool
run_nvidia_smi(const char *query, StrBuf *out, const char **why)
{
	char	   *path = NULL;
	char	   *arg = xasprintf("--query-gpu=%s", query);
	char	   *const argv[] = {"nvidia-smi", arg, "--format=csv,noheader", NULL};
	extern char **environ;
	int			fds[2];
	pid_t		pid;
	int64_t		deadline;
	int			status;
	bool		timed_out = false;

	*why = "is not installed";
	if (!runner_find_executable("nvidia-smi", &path))
	{
		free(arg);
		return false;
	}
	*why = "failed";
	if (pipe2(fds, O_CLOEXEC) != 0)
	{
		free(arg);
		free(path);
		return false;
	}
	pid = fork();
	if (pid < 0)
	{
		close(fds[0]);
		close(fds[1]);
		free(arg);
		free(path);
		return false;
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
	free(arg);

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
		if (n <= 0 || out->len > 65536)
			break;
		sb_append(out, buf, (size_t) n);
	}
	close(fds[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		*why = "timed out";
	return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The next non-blank line of nvidia-smi's output, trimmed; NULL at the end. */
static char *
next_line(char **save, char *text)
{
	char	   *line;

	while ((line = strtok_r(text, "\n", save)) != NULL)
	{
		size_t		len = strlen(line);

		text = NULL;
		while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = '\0';
		if (len > 0)
			return line;
	}
	return NULL;
}

/*
 * Ask nvidia-smi for each GPU's index and name; the first GPU's name gives
 * the type.  An nvidia-smi that does not answer the index query is asked
 * for the names alone, and the GPUs are taken as 0..N-1.  Leaves hw
 * untouched when nvidia-smi is missing or fails.
 */
static void
detect_gpus(Hardware *hw)
{
	StrBuf		out;
	const char *why;
	char	   *save = NULL;
	int		   *indices = NULL;
	int			count = 0;
	bool		with_index = true;

	sb_init(&out);
	if (!run_nvidia_smi("index,name", &out, &why))
	{
		if (strcmp(why, "is not installed") == 0)
		{
			sb_free(&out);
			return;
		}
		sb_reset(&out);
		with_index = false;
		if (!run_nvidia_smi("name", &out, &why))
		{
			log_event(NO_JOB, "hardware", "nvidia-smi %s; assuming no GPUs", why);
			sb_free(&out);
			return;
		}
	}
	indices = xmalloc(TT_MAX_GPUS * sizeof(int));
	for (char *line = next_line(&save, out.data); line && count < TT_MAX_GPUS; line = next_line(&save, NULL))
	{
		const char *name = line;
		long long	index = count;

		if (with_index)
		{
			char	   *comma = strchr(line, ',');

			if (comma == NULL)
				continue;
			*comma = '\0';
			if (!parse_int(line, 0, INT_MAX, &index))
			{
				log_event(NO_JOB, "hardware", "nvidia-smi gave the GPU index \"%s\"; ignoring that GPU", line);
				continue;
			}
			name = comma + 1;
			while (*name == ' ')
				name++;
		}
		if (count == 0)
			hw->gpu_name = xstrdup(name);
		indices[count++] = (int) index;
	}
	hw_set_gpu_indices(hw, indices, count);
	free(indices);
	if (hw->gpu_name)
		hw->gpu_type = short_gpu_type(hw->gpu_name);
	if (!with_index && count > 0)
		log_event(NO_JOB, "hardware", "nvidia-smi does not give the GPUs' indices; taking them as 0 to %d",
				  count - 1);
	sb_free(&out);
}

/*
 * The worker's GPUs: these indices (a copy), or 0..n-1 when indices is NULL.
 * hw->gpus becomes n.
 */
void
hw_set_gpu_indices(Hardware *hw, const int *indices, int n)
{
	free(hw->gpu_indices);
	hw->gpu_indices = NULL;
	hw->gpus = n;
	if (n <= 0)
		return;
	hw->gpu_indices = xmalloc((size_t) n * sizeof(int));
	for (int i = 0; i < n; i++)
		hw->gpu_indices[i] = indices ? indices[i] : i;
}

/* "0,2,5": GPU indices joined by sep ("" for none). */
char *
gpu_list_text(const int *indices, int n, const char *sep)
{
	StrBuf		sb;

	sb_init(&sb);
	for (int i = 0; i < n; i++)
		sb_appendf(&sb, "%s%d", i > 0 ? sep : "", indices[i]);
	return sb_steal(&sb);
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
	free(hw->gpu_indices);
	hw->gpu_type = hw->gpu_name = NULL;
	hw->gpu_indices = NULL;
}

/*
 * The GPU pool: the worker's GPU indices, in ascending order, and which
 * are held by a job.  A job takes the lowest free ones and holds them until
 * its handler has ended.
 */
static int *pool_index;
static bool *pool_busy;
static int	pool_n;

static int
compare_ints(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* Set up the pool with hw's GPUs, all free. */
void
gpu_pool_init(const Hardware *hw)
{
	gpu_pool_free();
	pool_n = hw->gpu_indices ? hw->gpus : 0;
	if (pool_n == 0)
		return;
	pool_index = xmalloc((size_t) pool_n * sizeof(int));
	pool_busy = xmalloc((size_t) pool_n * sizeof(bool));
	memcpy(pool_index, hw->gpu_indices, (size_t) pool_n * sizeof(int));
	qsort(pool_index, (size_t) pool_n, sizeof(int), compare_ints);
	memset(pool_busy, 0, (size_t) pool_n * sizeof(bool));
}

/* GPUs no job holds. */
int
gpu_pool_free_count(void)
{
	int			n = 0;

	for (int i = 0; i < pool_n; i++)
		if (!pool_busy[i])
			n++;
	return n;
}

/*
 * Take the n lowest free GPUs (n > 0) into a new array *indices; false,
 * taking none, when fewer than n are free.
 */
bool
gpu_pool_take(int n, int **indices)
{
	int			got = 0;

	*indices = NULL;
	if (n <= 0 || gpu_pool_free_count() < n)
		return false;
	*indices = xmalloc((size_t) n * sizeof(int));
	for (int i = 0; i < pool_n && got < n; i++)
	{
		if (pool_busy[i])
			continue;
		pool_busy[i] = true;
		(*indices)[got++] = pool_index[i];
	}
	return true;
}

/* Give back GPUs taken with gpu_pool_take, and free the array. */
void
gpu_pool_release(int *indices, int n)
{
	for (int k = 0; k < n; k++)
		for (int i = 0; i < pool_n; i++)
			if (pool_index[i] == indices[k] && pool_busy[i])
			{
				pool_busy[i] = false;
				break;
			}
	free(indices);
}

/* Release the pool's memory. */
void
gpu_pool_free(void)
{
	free(pool_index);
	free(pool_busy);
	pool_index = NULL;
	pool_busy = NULL;
	pool_n = 0;
}
