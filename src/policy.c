/*
 * policy.c
 *	  The placement policy: which jobs a worker takes, and when a job that
 *	  cannot start yet is expected to.  No SQL here: claim.c and planner.c
 *	  read the state, call these functions, and write the decisions.
 *
 * Order (policy 'tinytemp').  Priority classes are strict.  Within a class
 * a job's score on worker w is
 *
 *		score = est_w * (est_w / est) - aging_rate * wait
 *
 * where est is the job's estimated runtime on the cluster's typical worker
 * (its runtime_estimate_s, or the predictor's estimate for the GPU type it
 * asked for, the predictor's average over GPU types when it asked for
 * none), est_w its estimate on w's hardware, and wait the seconds since it
 * became ready.  Lowest first: shortest predicted runtime first, scaled by
 * how much faster (or slower) w runs this job than the typical worker, so
 * that a worker prefers the jobs that gain most from its hardware; and
 * each second of waiting forgives aging_rate seconds, so no job waits
 * forever.  The job's rank_key (est + aging_rate * the epoch at which it
 * became ready) orders the index that claims read, so that the aged order
 * needs no sort: rank_key - aging_rate * now is the score at est_w = est.
 *
 * Fairness.  Among the jobs of the best class that fit, a claim takes from
 * the tenant whose dominant share (the largest of its shares of the
 * cluster's cpus, memory and gpus held by its running jobs) is lowest,
 * then recomputes the shares with that job counted: progressive filling,
 * as in Dominant Resource Fairness (Ghodsi et al., NSDI 2011).
 *
 * Slow hardware.  A worker passes over a job that another worker with room
 * for it now would run over SLOW_FACTOR times faster: long jobs should not
 * land on slow hardware while fast hardware idles.
 *
 * Reservations.  Resources reserved on a worker for a job may be used by a
 * job ranked after it only if that job is predicted to finish before the
 * reservation starts, and by none once the reservation is older than
 * tinytemp.reservation_horizon.
 */
#include "tinytemp.h"

#include <math.h>

/* How much slower than elsewhere a worker may run a job before it leaves it. */
#define SLOW_FACTOR 2.0

/* Whether req fits in avail. */
bool
tinytemp_fits(const TinytempResources *req, const TinytempResources *avail)
{
	return req->cpus <= avail->cpus && req->memory_mb <= avail->memory_mb &&
		req->gpus <= avail->gpus;
}

/* Whether a job asking for gpu_type (NULL: any) may run on a worker of worker_gpu_type. */
bool
tinytemp_gpu_type_matches(int64 gpus, const char *gpu_type, const char *worker_gpu_type)
{
	return gpus == 0 || gpu_type == NULL ||
		(worker_gpu_type != NULL && strcmp(gpu_type, worker_gpu_type) == 0);
}

/* What a job asks of a worker. */
TinytempResources
tinytemp_spec_request(const TinytempJobSpec *spec)
{
	TinytempResources r = {(int64) spec->cpus, (int64) spec->memory_mb, (int64) spec->gpus};

	return r;
}

/* a - b, and a + b, resource by resource */
void
tinytemp_resources_sub(TinytempResources *a, const TinytempResources *b)
{
	a->cpus -= b->cpus;
	a->memory_mb -= b->memory_mb;
	a->gpus -= b->gpus;
}

void
tinytemp_resources_add(TinytempResources *a, const TinytempResources *b)
{
	a->cpus += b->cpus;
	a->memory_mb += b->memory_mb;
	a->gpus += b->gpus;
}

/* Whether rank a goes before rank b in the policy's order. */
static bool
outranks(TinytempRank a, TinytempRank b)
{
	if (a.priority != b.priority)
		return a.priority > b.priority;
	return a.rank_key < b.rank_key;
}

/*
 * Whether job_id, of this rank, may take req out of `avail` on a worker
 * with these reservations, given its estimated runtime there (negative:
 * unknown).  A reservation binds only the jobs ranked after the job it is
 * for: the planner reserves for the highest-ranked job that cannot start,
 * counting every job ranked before it as started.
 */
bool
tinytemp_reservations_allow(int64 job_id, TinytempRank rank,
							const TinytempResources *req, double est_here,
							const TinytempResources *avail,
							const TinytempReservation *res, int nres, TimestampTz now)
{
	TinytempResources unreserved = *avail;
	bool		any = false;

	for (int i = 0; i < nres; i++)
		if (res[i].job_id != job_id && !outranks(rank, res[i].rank))
		{
			tinytemp_resources_sub(&unreserved, &res[i].held);
			any = true;
		}
	if (!any || tinytemp_fits(req, &unreserved))
		return true;
	if (!tinytemp_fits(req, avail) || est_here < 0)
		return false;
	for (int i = 0; i < nres; i++)
	{
		if (res[i].job_id == job_id || outranks(rank, res[i].rank))
			continue;
		if (now + (TimestampTz) (est_here * USECS_PER_SEC) > res[i].start_at)
			return false;
		if (now > res[i].since + (TimestampTz) tinytemp_reservation_horizon_ms * 1000)
			return false;
	}
	return true;
}

/*
 * A candidate's score on this worker (see the head of this file), leaving
 * out the aging term of now, which is the same for every candidate.
 */
double
tinytemp_score(double rank_key, double est, double est_here)
{
	if (!(est > 0) || est_here < 0)
		return rank_key;
	return rank_key - est + est_here * (est_here / est);
}

/* Whether a run of est_there seconds beats one of est_here by over SLOW_FACTOR. */
bool
tinytemp_much_faster(double est_there, double est_here)
{
	return est_there >= 0 && est_here >= 0 && est_there * SLOW_FACTOR < est_here;
}

/* A tenant's dominant share of the cluster's resources. */
double
tinytemp_dominant_share(const TinytempResources *used, const TinytempResources *total)
{
	double		share = 0;

	if (total->cpus > 0)
		share = Max(share, (double) used->cpus / total->cpus);
	if (total->memory_mb > 0)
		share = Max(share, (double) used->memory_mb / total->memory_mb);
	if (total->gpus > 0)
		share = Max(share, (double) used->gpus / total->gpus);
	return share;
}

/* Whether candidate a goes before candidate b, tenants' shares given. */
static bool
better(const TinytempCandidate *a, double share_a, const TinytempCandidate *b, double share_b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (share_a != share_b)
		return share_a < share_b;
	if (a->score != b->score)
		return a->score < b->score;
	return a->id < b->id;
}

/*
 * Choose up to max_jobs of the candidates for a worker with `avail` free
 * and these reservations: the best of the highest class that fits, from
 * the tenant of lowest dominant share, one at a time.  Each choice must
 * also be taken with take(), which fails when another claim has the job:
 * then it is passed over and the next best chosen.  Marks the candidates
 * taken, updates the tenants' usage, and returns how many were taken.
 */
int
tinytemp_select(TinytempCandidate *cands, int ncands, TinytempResources avail,
				const TinytempReservation *res, int nres,
				TinytempTenant *tenants, const TinytempResources *total,
				int max_jobs, TimestampTz now,
				bool (*take) (const TinytempCandidate *cand))
{
	int			chosen = 0;

	while (chosen < max_jobs)
	{
		int			best = -1;
		double		best_share = 0;

		for (int i = 0; i < ncands; i++)
		{
			TinytempCandidate *c = &cands[i];
			double		share;

			if (c->taken || c->declined || !tinytemp_fits(&c->req, &avail) ||
				!tinytemp_reservations_allow(c->id, (TinytempRank) {c->priority, c->rank_key},
											 &c->req, c->est_here, &avail, res, nres, now))
				continue;
			share = tinytemp_dominant_share(&tenants[c->tenant].used, total);
			if (best < 0 || better(c, share, &cands[best], best_share))
			{
				best = i;
				best_share = share;
			}
		}
		if (best < 0)
			break;
		if (!take(&cands[best]))
		{
			cands[best].declined = true;
			continue;
		}
		cands[best].taken = true;
		tinytemp_resources_sub(&avail, &cands[best].req);
		tinytemp_resources_add(&tenants[cands[best].tenant].used, &cands[best].req);
		chosen++;
	}
	return chosen;
}

/*
 * When a worker is expected to have req free: now if it fits `avail`
 * already, else the predicted end of the running job after which enough
 * has been released, the jobs ending in the order of their predicted ends
 * (sorted by the caller, none before now).  DT_NOEND when the worker could
 * never fit req.
 */
TimestampTz
tinytemp_earliest_fit(const TinytempResources *req, TinytempResources avail,
					  const TinytempRunning *running, int nrunning, TimestampTz now)
{
	if (tinytemp_fits(req, &avail))
		return now;
	for (int i = 0; i < nrunning; i++)
	{
		tinytemp_resources_add(&avail, &running[i].held);
		if (tinytemp_fits(req, &avail))
			return Max(now, running[i].end_at);
	}
	return DT_NOEND;
}

/*
 * A job's estimated runtime in seconds on a worker with this GPU type and
 * speed: its runtime_estimate_s (given for a worker of speed 1.0) divided
 * by the speed when the submitter gave one (a negative value: none), else
 * the predictor's estimate, on that GPU type for a GPU job, divided by the
 * speed for a CPU job; -1 when there is neither.
 */
double
tinytemp_estimate_on(const TinytempJobSpec *spec, double runtime_estimate_s,
					 const char *worker_gpu_type, double worker_speed)
{
	TinytempJobSpec here = *spec;
	double		seconds;

	if (worker_speed <= 0)
		worker_speed = 1.0;
	if (runtime_estimate_s >= 0)
		return runtime_estimate_s / worker_speed;
	if (here.gpus > 0)
	{
		/* The GPU type is the predictor's own measure of a GPU job's hardware. */
		if (worker_gpu_type != NULL)
			here.gpu_type = worker_gpu_type;
		return tinytemp_predict_spec(&here, &seconds) ? seconds : -1;
	}
	/* For CPU work the predictor knows no hardware: the worker's speed tells. */
	return tinytemp_predict_spec(&here, &seconds) ? seconds / worker_speed : -1;
}
