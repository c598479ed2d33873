/*
 * limits.c
 *	  CPU and memory limits for handlers, with cgroups: v2 when the unified
 *	  hierarchy offers the cpu and memory controllers, else v1 when its cpu
 *	  and memory hierarchies are mounted and writable, else none.
 *
 * At start the worker makes a parent cgroup of its own,
 * tinytemp-worker-NAME-PID, under its own cgroup (from /proc/self/cgroup
 * and /proc/self/mountinfo) in each hierarchy it uses.  Each job whose
 * handler runs gets a child of it, job-ID-aATTEMPT: a CPU quota of its
 * cpus (cfs_quota_us over cfs_period_us in v1, cpu.max in v2), a cpuset
 * of that many of the worker's CPUs, the least used first, when the cpuset
 * controller can be had, and a hard memory limit of its memory_mb with no
 * swap.  The handler joins it between vfork and execve (see runner.c).
 * Once the handler has ended the worker reads whether the kernel OOM-killed
 * in it, kills whatever is left in it (the handler's children may outlive
 * it, in any process group) and removes it.  At exit the parent goes too.
 *
 * Whatever cannot be had is said once at start, and jobs then run without
 * limits: the worker is not root, the hierarchies are read-only, the
 * controllers are not delegated to the worker's cgroup.
 */
#include "tinytemp_worker.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The CFS period given to job cgroups, in microseconds. */
#define CG_PERIOD_US 100000
/* Removing a job's cgroup: quick tries at once, then in the loop, then giving up. */
#define CG_QUICK_TRIES 20
#define CG_RETRY_MS 100
#define CG_GIVEUP_MS 30000
/* How long the worker's exit waits for its cgroups to empty. */
#define CG_EXIT_WAIT_MS 2000
/* The worker's parent cgroups are named CG_PREFIX "NAME-PID". */
#define CG_PREFIX "tinytemp-worker-"
/* The longest worker name kept in the parent cgroup's name. */
#define CG_NAME_MAX 64

/* One hierarchy the worker uses, and the controllers it carries that matter here. */
typedef struct Hierarchy
{
	char	   *own;			/* the worker's own cgroup in it */
	char	   *parent;			/* the parent of the job cgroups: own/tinytemp-worker-NAME-PID */
	bool		cpu;
	bool		memory;
	bool		cpuset;
	bool		cpuacct;
} Hierarchy;

/* A job cgroup that could not be removed yet: retried from the loop. */
typedef struct Leftover
{
	char	   *dirs[TT_CGROUP_HIERARCHIES];
	int64_t		giveup_ms;
} Leftover;

static LimitsMode mode = LIMITS_OFF;
static Hierarchy hier[TT_CGROUP_HIERARCHIES];
static int	nhier;
static bool use_cpuset;
static char *cpuset_mems;		/* v1: the parent's cpuset.mems, copied to each job */
static int *allowed_cpus;		/* the CPUs jobs may be pinned to */
static int	nallowed;
static int *cpu_jobs;			/* jobs pinned to each of them */
static Leftover *leftovers;
static int	nleftovers;

/* Read a small file whole (at most 64 KiB); NULL when it cannot be read. */
static char *
read_text(const char *path)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	StrBuf		sb;
	char		buf[4096];
	ssize_t		n;

	if (fd < 0)
		return NULL;
	sb_init(&sb);
	while ((n = read(fd, buf, sizeof(buf))) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			close(fd);
			sb_free(&sb);
			return NULL;
		}
		sb_append(&sb, buf, (size_t) n);
		if (sb.len > 65536)
			break;
	}
	close(fd);
	return sb_steal(&sb);
}

/* Write a value to a cgroup file; false with errno set on failure. */
static bool
write_text(const char *path, const char *value)
{
	int			fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t		len = strlen(value);
	ssize_t		n;
	int			saved;

	if (fd < 0)
		return false;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t) len;
}

/* write_text to dir/file. */
static bool
write_file(const char *dir, const char *file, const char *value)
{
	char	   *path = xasprintf("%s/%s", dir, file);
	bool		ok = write_text(path, value);
	int			saved = errno;

	free(path);
	errno = saved;
	return ok;
}

/* read_text of dir/file. */
static char *
read_file(const char *dir, const char *file)
{
	char	   *path = xasprintf("%s/%s", dir, file);
	char	   *text = read_text(path);

	free(path);
	return text;
}

/* Whether dir/file exists. */
static bool
file_exists(const char *dir, const char *file)
{
	char	   *path = xasprintf("%s/%s", dir, file);
	bool		ok = access(path, F_OK) == 0;

	free(path);
	return ok;
}

/* Whether the blank- or comma-separated list holds word. */
static bool
has_word(const char *list, const char *word)
{
	size_t		len = strlen(word);

	for (const char *p = list; p && *p;)
	{
		size_t		n;

		while (*p == ' ' || *p == ',' || *p == '\n')
			p++;
		n = strcspn(p, " ,\n");
		if (n == len && strncmp(p, word, len) == 0)
			return true;
		p += n;
	}
	return false;
}

/* The value of "KEY N" in a flat-keyed file's text (memory.events, cpu.stat...), or -1. */
static long long
keyed_value(const char *text, const char *key)
{
	size_t		len = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, len) == 0 && p[len] == ' ')
			return strtoll(p + len + 1, NULL, 10);
	return -1;
}

/* mountinfo escapes blanks and backslashes as \ooo; undo that in place. */
static void
unescape_octal(char *s)
{
	char	   *out = s;

	for (char *p = s; *p; p++)
	{
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' &&
			p[3] >= '0' && p[3] <= '7')
		{
			*out++ = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		}
		else
			*out++ = *p;
	}
	*out = '\0';
}

/*
 * Our cgroup's path in the hierarchy of a v1 controller (ctrl, such as
 * "memory"), or in the unified hierarchy (ctrl NULL), from
 * /proc/self/cgroup; NULL when there is none.
 */
static char *
self_cgroup_path(const char *ctrl)
{
	char	   *text = read_text("/proc/self/cgroup");
	char	   *found = NULL;
	char	   *save = NULL;

	if (text == NULL)
		return NULL;
	for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save))
	{
		char	   *c1 = strchr(line, ':');
		char	   *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL)
			continue;
		*c2 = '\0';
		if (ctrl == NULL ? (strcmp(line, "0") == 0 && c1[1] == '\0') : has_word(c1 + 1, ctrl))
			found = xstrdup(c2 + 1);
	}
	free(text);
	return found;
}

/*
 * Where our cgroup of a hierarchy is, given a mount of it: the mount point
 * plus our path below the mount's root.  NULL when our cgroup is not below
 * that root (the mount shows another part of the hierarchy).
 */
static char *
cgroup_dir(const char *root, const char *point, const char *path)
{
	size_t		rlen = strlen(root);

	if (strcmp(root, "/") == 0)
		return strcmp(path, "/") == 0 ? xstrdup(point) : xasprintf("%s%s", point, path);
	if (strncmp(path, root, rlen) != 0 || (path[rlen] != '\0' && path[rlen] != '/'))
		return NULL;
	return xasprintf("%s%s", point, path + rlen);
}

/*
 * Find our cgroups from /proc/self/mountinfo: the unified one (*v2, when a
 * cgroup2 file system is mounted) and the v1 hierarchies carrying cpu,
 * memory, cpuset or cpuacct (into hier[], own set, one entry per
 * hierarchy).
 */
static void
find_cgroups(char **v2)
{
	FILE	   *f = fopen("/proc/self/mountinfo", "re");
	char	   *line = NULL;
	size_t		cap = 0;
	char	   *v2path = self_cgroup_path(NULL);

	*v2 = NULL;
	nhier = 0;
	if (f == NULL)
	{
		free(v2path);
		return;
	}
	while (getline(&line, &cap, f) >= 0)
	{
		char	   *fields[6];
		char	   *save = NULL;
		char	   *dash = strstr(line, " - ");
		char	   *fstype;
		char	   *options;
		int			n = 0;

		if (dash == NULL)
			continue;
		*dash = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
			fields[n++] = t;
		save = NULL;
		fstype = strtok_r(dash + 3, " ", &save);
		(void) strtok_r(NULL, " ", &save);	/* the source */
		options = strtok_r(NULL, " \n", &save);
		if (n < 5 || fstype == NULL || options == NULL)
			continue;
		unescape_octal(fields[3]);
		unescape_octal(fields[4]);
		if (strcmp(fstype, "cgroup2") == 0 && *v2 == NULL && v2path)
			*v2 = cgroup_dir(fields[3], fields[4], v2path);
		else if (strcmp(fstype, "cgroup") == 0 && nhier < TT_CGROUP_HIERARCHIES)
		{
			static const char *const ctrls[] = {"cpu", "memory", "cpuset", "cpuacct"};
			Hierarchy	h;
			char	   *path = NULL;
			bool		seen = false;

			memset(&h, 0, sizeof(h));
			h.cpu = has_word(options, "cpu");
			h.memory = has_word(options, "memory");
			h.cpuset = has_word(options, "cpuset");
			h.cpuacct = has_word(options, "cpuacct");
			for (int i = 0; i < nhier; i++)
				if ((h.cpu && hier[i].cpu) || (h.memory && hier[i].memory) ||
					(h.cpuset && hier[i].cpuset) || (h.cpuacct && hier[i].cpuacct))
					seen = true;	/* another mount of a hierarchy already found */
			for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]) && path == NULL && !seen; i++)
				if (has_word(options, ctrls[i]))
					path = self_cgroup_path(ctrls[i]);
			if (path)
			{
				h.own = cgroup_dir(fields[3], fields[4], path);
				if (h.own)
					hier[nhier++] = h;
			}
			free(path);
		}
	}
	free(line);
	fclose(f);
	free(v2path);
}

/* The worker's name as it may appear in a cgroup's name: [A-Za-z0-9_.-], at most CG_NAME_MAX. */
static char *
safe_name(const char *name)
{
	char	   *s = xstrndup(name, strnlen(name, CG_NAME_MAX));

	for (char *p = s; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '.' && *p != '-')
			*p = '_';
	return s;
}

/* Kill every process in a cgroup: cgroup.kill (v2, Linux 5.14) when there, else one by one. */
static void
kill_cgroup(const char *dir)
{
	char	   *procs;

	if (mode == LIMITS_CGROUP_V2 && write_file(dir, "cgroup.kill", "1"))
		return;
	procs = read_file(dir, "cgroup.procs");
	if (procs == NULL)
		return;
	for (char *p = procs; *p;)
	{
		char	   *end;
		long		pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 0 && pid != (long) getpid())
			kill((pid_t) pid, SIGKILL);
		p = end;
		while (*p == '\n')
			p++;
	}
	free(procs);
}

/* Kill what is in a cgroup and remove it; false when it is still there (busy). */
static bool
remove_cgroup(const char *dir)
{
	if (rmdir(dir) == 0 || errno == ENOENT)
		return true;
	kill_cgroup(dir);
	return rmdir(dir) == 0 || errno == ENOENT;
}

/* remove_cgroup with quick retries, for the processes just killed to exit. */
static bool
remove_cgroup_soon(const char *dir, int tries)
{
	for (int i = 0; i < tries; i++)
	{
		if (remove_cgroup(dir))
			return true;
		usleep(1000);
	}
	return false;
}

/* Remove a cgroup and the cgroups below it (a parent left by a dead worker). */
static void
remove_tree(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d)
	{
		while ((e = readdir(d)) != NULL)
		{
			char	   *sub;
			struct stat st;

			if (e->d_name[0] == '.')
				continue;
			sub = xasprintf("%s/%s", dir, e->d_name);
			if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(sub);
			free(sub);
		}
		closedir(d);
	}
	remove_cgroup_soon(dir, CG_QUICK_TRIES);
}

/*
 * Remove the parent cgroups that earlier workers left under our cgroup
 * (killed with -9: their handlers died with them, their cgroups did not),
 * with what still runs in them: any tinytemp-worker-NAME-PID whose PID is
 * gone.  Workers that share our cgroup share our PID namespace (a
 * container has a cgroup of its own), so a PID that is gone is theirs.
 */
static void
sweep_stale(const char *own)
{
	DIR		   *d = opendir(own);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		const char *dash = strrchr(e->d_name, '-');
		long long	pid;
		char	   *dir;

		if (strncmp(e->d_name, CG_PREFIX, strlen(CG_PREFIX)) != 0 || dash == NULL ||
			!parse_int(dash + 1, 1, INT32_MAX, &pid) ||
			(pid_t) pid == getpid() || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
			continue;
		dir = xasprintf("%s/%s", own, e->d_name);
		remove_tree(dir);
		if (access(dir, F_OK) != 0)
			log_event(NO_JOB, "limits", "removed the cgroup %s of an earlier worker (pid %lld, gone)",
					  dir, pid);
		free(dir);
	}
	closedir(d);
}

/* Parse a cpuset list such as "0-3,8,10-11" into the CPUs also in `mask`; returns how many. */
static int
parse_cpu_list(const char *list, const cpu_set_t *mask, int *cpus, int max)
{
	int			n = 0;
	const char *p = list;

	while (p && *p && *p != '\n')
	{
		char	   *end;
		long		lo = strtol(p, &end, 10);
		long		hi = lo;

		if (end == p)
			break;
		p = end;
		if (*p == '-')
		{
			hi = strtol(p + 1, &end, 10);
			p = end;
		}
		for (long c = lo; c <= hi && n < max; c++)
			if (c >= 0 && c < CPU_SETSIZE && (mask == NULL || CPU_ISSET((int) c, mask)))
				cpus[n++] = (int) c;
		if (*p == ',')
			p++;
	}
	return n;
}

/*
 * The CPUs jobs may be pinned to: those of the worker's affinity mask that
 * its cpuset has (the effective list of `dir`, the worker's cgroup in the
 * cpuset hierarchy).
 */
static bool
load_allowed_cpus(const char *dir)
{
	cpu_set_t	mask;
	char	   *list = read_file(dir, mode == LIMITS_CGROUP_V2 ? "cpuset.cpus.effective" : "cpuset.effective_cpus");

	if (list == NULL)
		list = read_file(dir, "cpuset.cpus");
	if (list == NULL || sched_getaffinity(0, sizeof(mask), &mask) != 0)
	{
		free(list);
		return false;
	}
	allowed_cpus = xmalloc(CPU_SETSIZE * sizeof(int));
	nallowed = parse_cpu_list(list, &mask, allowed_cpus, CPU_SETSIZE);
	free(list);
	if (nallowed == 0)
		return false;
	cpu_jobs = xmalloc((size_t) nallowed * sizeof(int));
	memset(cpu_jobs, 0, (size_t) nallowed * sizeof(int));
	return true;
}

/* Make the worker's parent cgroup in hierarchy h; false with *why set. */
static bool
make_parent(Hierarchy *h, const char *leaf, char **why)
{
	h->parent = xasprintf("%s/%s", h->own, leaf);
	if (mkdir(h->parent, 0755) != 0 && errno != EEXIST)
	{
		*why = xasprintf("cannot create the cgroup %s: %s", h->parent, strerror(errno));
		free(h->parent);
		h->parent = NULL;
		return false;
	}
	return true;
}

/* v1: give the cpuset parent the worker's CPUs and memory nodes (a new cpuset has none). */
static bool
setup_v1_cpuset(Hierarchy *h, char **why)
{
	char	   *cpus = read_file(h->own, "cpuset.cpus");
	char	   *mems = read_file(h->own, "cpuset.mems");
	bool		ok = false;

	if (cpus == NULL || mems == NULL)
		*why = xasprintf("cannot read the cpuset of %s", h->own);
	else if (!write_file(h->parent, "cpuset.mems", mems) || !write_file(h->parent, "cpuset.cpus", cpus))
		*why = xasprintf("cannot set up the cpuset of %s: %s", h->parent, strerror(errno));
	else if (!load_allowed_cpus(h->parent))
		*why = xasprintf("no CPU of the worker's is in the cpuset of %s", h->parent);
	else
	{
		cpuset_mems = mems;
		mems = NULL;
		ok = true;
	}
	free(cpus);
	free(mems);
	return ok;
}

/* Forget the hierarchies, removing the parents made so far. */
static void
drop_hierarchies(void)
{
	for (int i = 0; i < nhier; i++)
	{
		if (hier[i].parent)
			remove_cgroup_soon(hier[i].parent, CG_QUICK_TRIES);
		free(hier[i].own);
		free(hier[i].parent);
	}
	memset(hier, 0, sizeof(hier));
	nhier = 0;
	free(allowed_cpus);
	free(cpu_jobs);
	free(cpuset_mems);
	allowed_cpus = cpu_jobs = NULL;
	cpuset_mems = NULL;
	nallowed = 0;
	use_cpuset = false;
}

/*
 * cgroup v2: our cgroup must offer cpu and memory to its children
 * (cgroup.subtree_control, which we try to set when it lacks them: that
 * fails while our cgroup holds processes, as the worker itself, unless it
 * is the root).  The parent passes them on to the job cgroups, and cpuset
 * too when it can.
 */
static bool
setup_v2(const char *own, const char *leaf, char **why, char **note)
{
	char	   *controllers = read_file(own, "cgroup.controllers");
	char	   *subtree = read_file(own, "cgroup.subtree_control");
	Hierarchy  *h = &hier[0];
	bool		ok = false;

	memset(h, 0, sizeof(*h));
	nhier = 1;
	h->own = xstrdup(own);
	h->cpu = h->memory = h->cpuacct = true;
	if (controllers == NULL || subtree == NULL)
		*why = xasprintf("cannot read the cgroup v2 files of %s", own);
	else if (!has_word(controllers, "cpu") || !has_word(controllers, "memory"))
		*why = xasprintf("the cgroup %s is not given the cpu and memory controllers (it has \"%.*s\")",
						 own, (int) strcspn(controllers, "\n"), controllers);
	else if ((!has_word(subtree, "cpu") || !has_word(subtree, "memory")) &&
			 !write_file(own, "cgroup.subtree_control", "+cpu +memory"))
		*why = xasprintf("the cgroup %s does not pass cpu and memory on to its children"
						 " (cgroup.subtree_control) and cannot be made to: %s%s", own, strerror(errno),
						 errno == EBUSY ? " (it holds processes: run the worker in a cgroup that"
						 " delegates cpu and memory, e.g. a systemd unit with Delegate=yes)" : "");
	else if (!make_parent(h, leaf, why))
		;
	else if (!write_file(h->parent, "cgroup.subtree_control", "+cpu +memory"))
		*why = xasprintf("cannot enable cpu and memory in %s/cgroup.subtree_control: %s",
						 h->parent, strerror(errno));
	else
		ok = true;
	if (ok)
	{
		/* cpuset is a bonus: pinning where it can be had. */
		if (!has_word(controllers, "cpuset"))
			*note = xstrdup("the cgroup has no cpuset controller");
		else if ((!has_word(subtree, "cpuset") && !write_file(own, "cgroup.subtree_control", "+cpuset")) ||
				 !write_file(h->parent, "cgroup.subtree_control", "+cpuset"))
			*note = xasprintf("cannot enable cpuset below %s: %s", own, strerror(errno));
		else if (!load_allowed_cpus(own))
			*note = xasprintf("cannot read the CPUs of %s", own);
		else
			use_cpuset = h->cpuset = true;
	}
	free(controllers);
	free(subtree);
	return ok;
}

/*
 * cgroup v1: a parent in each of the cpu and memory hierarchies (which may
 * be one), and in cpuset's and cpuacct's when they can be had.
 */
static bool
setup_v1(const char *leaf, char **why, char **note)
{
	int			need = 0;

	for (int i = 0; i < nhier; i++)
		need |= (hier[i].cpu ? 1 : 0) | (hier[i].memory ? 2 : 0);
	if (need != 3)
	{
		*why = xstrdup(nhier == 0 && need == 0 ? "no cgroup hierarchy offers the cpu and memory controllers" :
					   (need & 1) ? "no cgroup v1 memory hierarchy is mounted" :
					   "no cgroup v1 cpu hierarchy is mounted");
		return false;
	}
	for (int i = 0; i < nhier; i++)
	{
		Hierarchy  *h = &hier[i];
		bool		required = h->cpu || h->memory;
		char	   *fail = NULL;

		if (make_parent(h, leaf, &fail) && (!h->cpuset || setup_v1_cpuset(h, &fail)))
		{
			use_cpuset = use_cpuset || h->cpuset;
			continue;
		}
		if (required)
		{
			*why = fail;
			return false;
		}
		/* An optional hierarchy (cpuset, cpuacct alone) that cannot be had is left out. */
		if (h->cpuset && *note == NULL)
			*note = xstrdup(fail);
		free(fail);
		if (h->parent)
			remove_cgroup_soon(h->parent, CG_QUICK_TRIES);
		free(h->own);
		free(h->parent);
		hier[i] = hier[--nhier];
		memset(&hier[nhier], 0, sizeof(Hierarchy));
		i--;
	}
	if (!use_cpuset && *note == NULL)
		*note = xstrdup("no cgroup v1 cpuset hierarchy is mounted");
	return true;
}

/*
 * Find the cgroups and make the worker's parents in them.  Logs once how
 * jobs will be limited, or why they will not be.  Returns the mode.
 */
LimitsMode
limits_init(const char *worker_name, bool enabled)
{
	char	   *v2 = NULL;
	char	   *why = NULL;
	char	   *note = NULL;
	char	   *name = safe_name(worker_name);
	char	   *leaf = xasprintf(CG_PREFIX "%s-%d", name, (int) getpid());
	char	   *controllers = NULL;
	bool		v1_any = false;
	bool		ok;

	mode = LIMITS_OFF;
	if (!enabled)
	{
		log_event(NO_JOB, "limits", "off (--no-limits): jobs run without CPU and memory limits");
		goto done;
	}
	find_cgroups(&v2);
	if (v2)
		controllers = read_file(v2, "cgroup.controllers");
	for (int i = 0; i < nhier; i++)
		v1_any = v1_any || hier[i].cpu || hier[i].memory;
	/* v2 when it offers cpu and memory, or when v1 does not have them either (to say why). */
	if (v2 && (!v1_any || (controllers && has_word(controllers, "cpu") && has_word(controllers, "memory"))))
	{
		for (int i = 0; i < nhier; i++)
			free(hier[i].own);
		memset(hier, 0, sizeof(hier));
		mode = LIMITS_CGROUP_V2;
		sweep_stale(v2);
		ok = setup_v2(v2, leaf, &why, &note);
	}
	else
	{
		mode = LIMITS_CGROUP_V1;
		for (int i = 0; i < nhier; i++)
			sweep_stale(hier[i].own);
		ok = setup_v1(leaf, &why, &note);
	}
	if (!ok)
	{
		drop_hierarchies();
		mode = LIMITS_OFF;
		log_event(NO_JOB, "warning", "running jobs without CPU and memory limits: %s", why);
		goto done;
	}
	log_event(NO_JOB, "limits", "%s: each job gets a cgroup under %s with a CPU quota of its cpus"
			  " and a memory limit of its memory_mb; %s%s", limits_mode_name(), hier[0].parent,
			  use_cpuset ? "CPUs pinned with cpuset" : "no cpuset: ", use_cpuset ? "" : note);

done:
	free(v2);
	free(controllers);
	free(why);
	free(note);
	free(name);
	free(leaf);
	return mode;
}

/* "cgroup-v1", "cgroup-v2" or "off", for the log. */
const char *
limits_mode_name(void)
{
	return mode == LIMITS_CGROUP_V1 ? "cgroup-v1" : mode == LIMITS_CGROUP_V2 ? "cgroup-v2" : "off";
}

/* The job cgroup's directory in hierarchy i. */
static char *
job_dir(const JobCgroup *cg, int i)
{
	return xasprintf("%s/%s", hier[i].parent, cg->name);
}

/* Pin the job to its cpus CPUs, the least used first; false with errno when the kernel refuses. */
static bool
job_cpuset(JobCgroup *cg, const char *dir, int cpus)
{
	int			n = cpus < nallowed ? cpus : nallowed;
	char	   *list;
	bool		ok;

	cg->cpus = xmalloc((size_t) n * sizeof(int));
	for (cg->ncpus = 0; cg->ncpus < n; cg->ncpus++)
	{
		int			best = -1;

		for (int c = 0; c < nallowed; c++)
		{
			bool		taken = false;

			for (int k = 0; k < cg->ncpus; k++)
				taken = taken || cg->cpus[k] == c;
			if (!taken && (best < 0 || cpu_jobs[c] < cpu_jobs[best]))
				best = c;
		}
		cg->cpus[cg->ncpus] = best;
		cpu_jobs[best]++;
	}
	/* In CPU order, for the list. */
	for (int i = 1; i < cg->ncpus; i++)
		for (int k = i; k > 0 && cg->cpus[k - 1] > cg->cpus[k]; k--)
		{
			int			t = cg->cpus[k];

			cg->cpus[k] = cg->cpus[k - 1];
			cg->cpus[k - 1] = t;
		}
	list = limits_job_cpuset(cg);
	ok = (mode == LIMITS_CGROUP_V2 || write_file(dir, "cpuset.mems", cpuset_mems)) &&
		write_file(dir, "cpuset.cpus", list);
	free(list);
	return ok;
}

/* The CPUs the job is pinned to, such as "0,3", or NULL when it is not pinned. */
char *
limits_job_cpuset(const JobCgroup *cg)
{
	int		   *ids;
	char	   *list;

	if (cg->ncpus == 0)
		return NULL;
	ids = xmalloc((size_t) cg->ncpus * sizeof(int));
	for (int i = 0; i < cg->ncpus; i++)
		ids[i] = allowed_cpus[cg->cpus[i]];
	list = gpu_list_text(ids, cg->ncpus, ",");
	free(ids);
	return list;
}

/* Give back the job's CPUs. */
static void
release_cpus(JobCgroup *cg)
{
	for (int i = 0; i < cg->ncpus; i++)
		cpu_jobs[cg->cpus[i]]--;
	free(cg->cpus);
	cg->cpus = NULL;
	cg->ncpus = 0;
}

/* Set the job's CPU quota and memory limit in dir (one hierarchy's cgroup, or v2's). */
static bool
job_limits(const Hierarchy *h, const char *dir, int cpus, long long memory_mb, char **error)
{
	long long	bytes = memory_mb * 1024 * 1024;
	char		value[64];

	if (h->cpu)
	{
		long long	quota = (long long) cpus * CG_PERIOD_US;
		bool		ok;

		if (mode == LIMITS_CGROUP_V2)
		{
			snprintf(value, sizeof(value), "%lld %d", quota, CG_PERIOD_US);
			ok = write_file(dir, "cpu.max", value);
		}
		else
		{
			snprintf(value, sizeof(value), "%d", CG_PERIOD_US);
			ok = write_file(dir, "cpu.cfs_period_us", value);
			snprintf(value, sizeof(value), "%lld", quota);
			ok = ok && write_file(dir, "cpu.cfs_quota_us", value);
			/*
			 * v1 refuses a quota above an ancestor's (a container's CPU
			 * limit): that one binds the job already, below what it asked.
			 */
			if (!ok && errno == EINVAL)
				ok = write_file(dir, "cpu.cfs_quota_us", "-1");
		}
		if (!ok)
		{
			*error = xasprintf("cannot set the CPU quota of %d CPUs in %s: %s", cpus, dir, strerror(errno));
			return false;
		}
	}
	if (h->memory && memory_mb > 0)
	{
		bool		ok;

		snprintf(value, sizeof(value), "%lld", bytes);
		if (mode == LIMITS_CGROUP_V2)
		{
			ok = write_file(dir, "memory.max", value);
			/* No swap, and an OOM kill takes the whole job, not one of its processes. */
			if (ok && file_exists(dir, "memory.swap.max"))
				ok = write_file(dir, "memory.swap.max", "0");
			if (ok && file_exists(dir, "memory.oom.group"))
				ok = write_file(dir, "memory.oom.group", "1");
		}
		else
		{
			/* memsw (memory plus swap) may not be below the memory limit: that goes first. */
			ok = write_file(dir, "memory.limit_in_bytes", value);
			if (ok && file_exists(dir, "memory.memsw.limit_in_bytes"))
				ok = write_file(dir, "memory.memsw.limit_in_bytes", value);
		}
		if (!ok)
		{
			*error = xasprintf("cannot set the memory limit of %lld MB in %s: %s", memory_mb, dir,
							   strerror(errno));
			return false;
		}
	}
	return true;
}

/*
 * Make the job's cgroup, job-ID-aATTEMPT (with a suffix when a cgroup of
 * that name is still being removed), with its limits.  Nothing to do when
 * limits are off.  On failure returns false with *error set and nothing
 * left behind.
 */
bool
limits_job_create(JobCgroup *cg, int64_t job_id, int attempt, int cpus, long long memory_mb,
				  char **error)
{
	static bool cpuset_warned = false;

	memset(cg, 0, sizeof(*cg));
	if (mode == LIMITS_OFF)
		return true;
	if (cpus < 1)
		cpus = 1;
	for (int suffix = 1; cg->name == NULL && suffix <= 10; suffix++)
	{
		bool		exists = false;

		cg->name = suffix == 1 ? xasprintf("job-%lld-a%d", (long long) job_id, attempt) :
			xasprintf("job-%lld-a%d-%d", (long long) job_id, attempt, suffix);
		for (int i = 0; i < nhier && !exists; i++)
		{
			char	   *dir = job_dir(cg, i);

			if (mkdir(dir, 0755) == 0)
				cg->made[i] = true;
			else if (errno == EEXIST)
				exists = true;
			else
			{
				*error = xasprintf("cannot create the job's cgroup %s: %s", dir, strerror(errno));
				free(dir);
				limits_job_remove(cg);
				return false;
			}
			free(dir);
		}
		if (exists)
		{
			limits_job_remove(cg);
			memset(cg, 0, sizeof(*cg));
		}
	}
	if (cg->name == NULL)
	{
		*error = xasprintf("cannot create a cgroup for job %lld: its names are taken", (long long) job_id);
		return false;
	}
	for (int i = 0; i < nhier; i++)
	{
		char	   *dir = job_dir(cg, i);
		bool		ok = true;

		if (use_cpuset && hier[i].cpuset && !job_cpuset(cg, dir, cpus))
		{
			int			err = errno;

			release_cpus(cg);
			if (mode == LIMITS_CGROUP_V1 && (hier[i].cpu || hier[i].memory))
			{
				/* A v1 cpuset without CPUs takes no process, and this one carries the limits. */
				*error = xasprintf("cannot set the cpuset of %s: %s", dir, strerror(err));
				ok = false;
			}
			else
			{
				/* The job runs unpinned rather than not at all; its quota still holds. */
				if (!cpuset_warned)
					log_event(job_id, "limits", "cannot pin the job to CPUs in %s: %s; running jobs"
							  " unpinned when that happens", dir, strerror(err));
				cpuset_warned = true;
				if (mode == LIMITS_CGROUP_V1)
				{
					/* A v1 cpuset without CPUs takes no process: leave that hierarchy out. */
					rmdir(dir);
					cg->made[i] = false;
				}
			}
		}
		if (!ok || !job_limits(&hier[i], dir, cpus, memory_mb, error))
		{
			free(dir);
			limits_job_remove(cg);
			return false;
		}
		free(dir);
	}
	return true;
}

/*
 * Open the cgroup.procs file of each of the job's cgroups, write-only and
 * close-on-exec, into fds; the handler's child process writes "0" (itself)
 * to each before execve.  Returns how many (0 when the job has no cgroup),
 * or -1 with *error set and none left open.
 */
int
limits_job_open_procs(const JobCgroup *cg, int *fds, int max, char **error)
{
	int			n = 0;

	if (cg->name == NULL)
		return 0;
	for (int i = 0; i < nhier && n < max; i++)
	{
		char	   *path;

		if (!cg->made[i])
			continue;
		path = xasprintf("%s/%s/cgroup.procs", hier[i].parent, cg->name);
		fds[n] = open(path, O_WRONLY | O_CLOEXEC);
		if (fds[n] < 0)
		{
			*error = xasprintf("cannot open %s: %s", path, strerror(errno));
			free(path);
			while (n > 0)
				close(fds[--n]);
			return -1;
		}
		free(path);
		n++;
	}
	return n;
}

/* The job's cgroup directory in the hierarchy carrying ctrl ("memory", "cpuacct"), or NULL. */
static char *
job_dir_with(const JobCgroup *cg, const char *ctrl)
{
	for (int i = 0; i < nhier; i++)
	{
		bool		has = strcmp(ctrl, "memory") == 0 ? hier[i].memory :
			strcmp(ctrl, "cpuacct") == 0 ? hier[i].cpuacct : hier[i].cpu;

		if (has && cg->made[i])
			return job_dir(cg, i);
	}
	return NULL;
}

/*
 * Whether the kernel's OOM killer killed in the job's cgroup: v2's
 * memory.events oom_kill, v1's memory.oom_control oom_kill (Linux 4.13),
 * else v1's memory.failcnt with the handler killed by SIGKILL.
 */
bool
limits_job_oom_killed(const JobCgroup *cg, bool sigkilled)
{
	char	   *dir = cg->name ? job_dir_with(cg, "memory") : NULL;
	char	   *text;
	long long	n = -1;

	if (dir == NULL)
		return false;
	text = read_file(dir, mode == LIMITS_CGROUP_V2 ? "memory.events" : "memory.oom_control");
	if (text)
		n = keyed_value(text, "oom_kill");
	free(text);
	if (n < 0 && mode == LIMITS_CGROUP_V1 && sigkilled)
	{
		text = read_file(dir, "memory.failcnt");
		n = text && atoll(text) > 0 ? 1 : 0;
		free(text);
	}
	free(dir);
	return n > 0;
}

/*
 * What the job's cgroup used: CPU seconds (v2 cpu.stat usage_usec, v1
 * cpuacct.usage) and the peak memory in MB (v2 memory.peak, v1
 * memory.max_usage_in_bytes); -1 for what is not known.
 */
void
limits_job_usage(const JobCgroup *cg, double *cpu_s, long long *peak_mb)
{
	char	   *dir;
	char	   *text;

	*cpu_s = -1;
	*peak_mb = -1;
	if (cg->name == NULL)
		return;
	dir = job_dir_with(cg, mode == LIMITS_CGROUP_V2 ? "cpu" : "cpuacct");
	if (dir)
	{
		if (mode == LIMITS_CGROUP_V2)
		{
			long long	usec = -1;

			text = read_file(dir, "cpu.stat");
			if (text)
				usec = keyed_value(text, "usage_usec");
			if (usec >= 0)
				*cpu_s = (double) usec / 1e6;
		}
		else
		{
			text = read_file(dir, "cpuacct.usage");
			if (text && isdigit((unsigned char) text[0]))
				*cpu_s = (double) atoll(text) / 1e9;
		}
		free(text);
		free(dir);
	}
	dir = job_dir_with(cg, "memory");
	if (dir)
	{
		text = read_file(dir, mode == LIMITS_CGROUP_V2 ? "memory.peak" : "memory.max_usage_in_bytes");
		if (text && isdigit((unsigned char) text[0]))
			*peak_mb = (atoll(text) + 1024 * 1024 - 1) / (1024 * 1024);
		free(text);
		free(dir);
	}
}

/*
 * Remove the job's cgroup, killing what is left in it first (its handler
 * has ended; its children may not have), and give back its CPUs.  What
 * cannot be removed at once (processes still dying) is retried from the
 * loop (limits_tick).
 */
void
limits_job_remove(JobCgroup *cg)
{
	Leftover	left;
	bool		any = false;

	if (cg->name == NULL)
		return;
	memset(&left, 0, sizeof(left));
	for (int i = 0; i < nhier; i++)
	{
		char	   *dir;

		if (!cg->made[i])
			continue;
		dir = job_dir(cg, i);
		if (remove_cgroup_soon(dir, CG_QUICK_TRIES))
			free(dir);
		else
		{
			left.dirs[i] = dir;
			any = true;
		}
		cg->made[i] = false;
	}
	if (any)
	{
		left.giveup_ms = now_ms() + CG_GIVEUP_MS;
		leftovers = xrealloc(leftovers, (size_t) (nleftovers + 1) * sizeof(Leftover));
		leftovers[nleftovers++] = left;
	}
	release_cpus(cg);
	free(cg->name);
	cg->name = NULL;
}

/* Retry removing the job cgroups still there; give up on them after a while. */
void
limits_tick(int64_t now)
{
	for (int k = 0; k < nleftovers; k++)
	{
		Leftover   *l = &leftovers[k];
		bool		any = false;

		for (int i = 0; i < TT_CGROUP_HIERARCHIES; i++)
		{
			if (l->dirs[i] == NULL)
				continue;
			if (remove_cgroup(l->dirs[i]) || now >= l->giveup_ms)
			{
				if (now >= l->giveup_ms && access(l->dirs[i], F_OK) == 0)
					log_event(NO_JOB, "limits", "cannot remove the cgroup %s: %s; leaving it",
							  l->dirs[i], strerror(errno));
				free(l->dirs[i]);
				l->dirs[i] = NULL;
			}
			else
				any = true;
		}
		if (!any)
		{
			leftovers[k--] = leftovers[--nleftovers];
		}
	}
	if (nleftovers == 0)
	{
		free(leftovers);
		leftovers = NULL;
	}
}

/* When limits_tick has work: soon while a cgroup waits for removal, else 0. */
int64_t
limits_next_timer(void)
{
	return nleftovers > 0 ? now_ms() + CG_RETRY_MS : 0;
}

/*
 * At exit: remove what is left of job cgroups, then the worker's parents,
 * waiting a little for killed processes to go.
 */
void
limits_shutdown(void)
{
	int64_t		until = now_ms() + CG_EXIT_WAIT_MS;

	while (nleftovers > 0 && now_ms() < until)
	{
		limits_tick(now_ms());
		if (nleftovers > 0)
			usleep(10000);
	}
	for (int k = 0; k < nleftovers; k++)
		for (int i = 0; i < TT_CGROUP_HIERARCHIES; i++)
			free(leftovers[k].dirs[i]);
	free(leftovers);
	leftovers = NULL;
	nleftovers = 0;
	for (int i = 0; i < nhier; i++)
	{
		if (hier[i].parent == NULL)
			continue;
		remove_tree(hier[i].parent);
		if (access(hier[i].parent, F_OK) == 0)
			log_event(NO_JOB, "limits", "cannot remove the cgroup %s: %s", hier[i].parent, strerror(errno));
	}
	drop_hierarchies();
	mode = LIMITS_OFF;
}
