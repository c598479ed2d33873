/*
 * policy.c
 *	  The placement policy: which jobs a worker takes, and when a job that
 *	  cannot start yet is expected to.  No SQL here: claim.c and planner.c
 *	  read the state, call these functions, and write the decisions.
 *
 * Order (policy 'tinytemp').  Priority classes are strict.  Within a class
 * a job's score on worker w is
 *
 *		score = cost + est_w * (est_w / est) - est - aging_rate * wait
 *
 * where cost is its rank cost (see Attained service below), est its
 * estimated runtime on the cluster's typical worker (its
 * runtime_estimate_s, or the predictor's estimate for the GPU type it
 * asked for, the predictor's average over GPU types when it asked for
 * none), est_w its estimate on w's hardware, and wait all the seconds it
 * has waited.  Lowest first: lowest rank cost first, adjusted by how much
 * faster (or slower) w runs this job than the typical worker, so that a
 * worker prefers the jobs that gain most from its hardware; and each
 * second of waiting forgives aging_rate seconds, so no job waits forever.
 * The job's rank_key (cost + aging_rate * the epoch from which its waits
 * add up) orders the index that claims read, so that the aged order needs
 * no sort: rank_key - aging_rate * now is the score at est_w = est.
 *
 * Fairness.  Among the jobs of the best class that fit, a claim takes from
 * the tenant whose dominant share (the largest of its shares of the
 * cluster's cpus, memory and gpus held by its running jobs) is lowest,
 * then recomputes the shares with that job counted: progressive filling,
 * as in Dominant Resource Fairness (Ghodsi et al., NSDI 2011).
 *
 * Slow hardware.  A worker passes over a job that another worker with room
 * for it now would run over SLOW_FACTOR times faster: jobs should not land
 * on slow hardware while faster hardware idles (CPU work on a node twice
 * as fast, say).  It also passes over a job that would end over
 * SLOW_FACTOR times sooner, counted from when the job began to wait, by
 * waiting for the room such a worker is expected to free (its held jobs'
 * expected ends): a two-day job should not run ten days on a slow GPU
 * because a fast one frees in an hour.  Counting the wait bounds it: on
 * hardware twice as fast, a job never waits for it longer than half of
 * what it would run here.
 *
 * Reservations.  Resources reserved on a worker for a job may be used by a
 * job ranked after it only if that job is predicted to finish before the
 * reservation starts, and by none once the reservation is older than
 * tinytemp.reservation_horizon.
 *
 * Attained service.  A runtime is not known, only its distribution: the
 * predictor's median and the spread of its 10-90% interval, read as a
 * log-normal.  A job's rank cost is the inverse of the Gittins index of
 * that distribution given the seconds of service the job has already had
 * (tinytemp_rank_cost), that is the least expected time per unit of
 * probability of finishing, over every horizon it could be given.  With no
 * service it is about the median; a job that has run past most of its
 * predicted range costs more and more, since it has shown itself to be one
 * of the long ones (Gittins 1989; Tiresias, NSDI 2019).  Given a runtime
 * rather than a prediction it is the runtime left.  The planner preempts a
 * running job for a waiting one when the running job's cost now exceeds
 * SERVICE_GAIN times the waiting one's plus the work a restart loses
 * (tinytemp_service_preempt_pays), and, for a job of more than one GPU (or
 * CPU) that has waited longer than tinytemp.starvation_limit in all, a
 * running job that waited less (planner.c).
 */
#include "tinytemp.h"

#include <math.h>

/* How much slower than elsewhere a worker may run a job before it leaves it. */
#define SLOW_FACTOR 1.5

/* The standard normal's 90th percentile: a log-normal's 10-90% interval spans 2 of them. */
#define Z90 1.2815515655446004
/* Points of the horizon grid over which the Gittins index is maximized. */
#define GITTINS_POINTS 64
/* Spread under which a distribution counts as a point. */
#define MIN_SPREAD TINYTEMP_MIN_SPREAD
/*
 * How many times a waiting job's rank cost a running one's must be for the
 * planner to preempt it (2 preempted so often that the synthetic traces'
 * average JCT grew by a tenth).
 */
#define SERVICE_GAIN 4.0

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

/*
 * When a held job started at started_at and predicted to end at end_at is
 * expected to end, seen at now: one past its predicted end was
 * underestimated and is expected to run as long again as it has run,
 * rather than to end now, or every wait for it would end at once.
 */
TimestampTz
tinytemp_expected_end(TimestampTz end_at, TimestampTz started_at, TimestampTz now)
{
	if (end_at > now)
		return end_at;
	return now + Max(now - started_at, USECS_PER_SEC);
}

/* qsort comparator for TinytempRunning by expected end. */
int
tinytemp_running_end_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const TinytempRunning *) a)->end_at;
	TimestampTz y = ((const TinytempRunning *) b)->end_at;

	return x < y ? -1 : (x > y);
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
 * the predictor's estimate (with its history of requests when the spec
 * says who submitted the job), on that GPU type for a GPU job, divided by
 * the speed for a CPU job; -1 when there is neither.
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

/*
 * tinytemp_estimate_on, from kinds when it holds this GPU type and speed
 * already (the gpu_type strings must outlive kinds), else computed and
 * kept there.
 */
double
tinytemp_estimate_on_kind(TinytempKindEstimates *kinds, const TinytempJobSpec *spec,
						  double runtime_estimate_s, const char *worker_gpu_type, double worker_speed)
{
	double		est;

	for (int k = 0; k < kinds->n; k++)
		if (kinds->speed[k] == worker_speed &&
			(kinds->gpu_type[k] == NULL ? worker_gpu_type == NULL :
			 worker_gpu_type != NULL && strcmp(kinds->gpu_type[k], worker_gpu_type) == 0))
			return kinds->est[k];
	if (spec->gpus == 0 && runtime_estimate_s < 0)
	{
		/* CPU work: the prediction at speed 1.0, once, stands as the estimate. */
		if (!kinds->cpu_predicted)
		{
			kinds->cpu_seconds = tinytemp_estimate_on(spec, -1, NULL, 1.0);
			kinds->cpu_predicted = true;
		}
		runtime_estimate_s = kinds->cpu_seconds;
	}
	est = tinytemp_estimate_on(spec, runtime_estimate_s, worker_gpu_type, worker_speed);
	if (kinds->n < TINYTEMP_ESTIMATE_KINDS)
	{
		kinds->gpu_type[kinds->n] = worker_gpu_type;
		kinds->speed[kinds->n] = worker_speed;
		kinds->est[kinds->n++] = est;
	}
	return est;
}

/*
 * The spread (standard deviation of the log) of the log-normal whose 10th
 * and 90th percentiles are p10 and p90; -1 when they are not an interval.
 */
double
tinytemp_spread_from_interval(double p10, double p90)
{
	if (!(p10 > 0) || !(p90 >= p10) || isinf(p90))
		return -1;
	return log(p90 / p10) / (2 * Z90);
}

/*
 * P(S > t) for a runtime S of median 1 and this spread: log-normal, but
 * for a share MISPREDICTED of jobs whose prediction was wrong, whose log
 * spreads over WIDE_SPREAD at least.  Without that share, a job that ran
 * far past a narrow interval would look ever closer to its end.
 */
#define MISPREDICTED TINYTEMP_MISPREDICTED
#define WIDE_SPREAD TINYTEMP_WIDE_SPREAD

static double
survival(double t, double spread)
{
	double		z;

	if (t <= 0)
		return 1;
	z = log(t) / M_SQRT2;
	return (1 - MISPREDICTED) * 0.5 * erfc(z / spread) +
		MISPREDICTED * 0.5 * erfc(z / Max(spread, WIDE_SPREAD));
}

/*
 * The rank cost of a job of median runtime 1 and this spread that has had
 * `attained` of service: the least, over horizons q, of the service it is
 * expected to use in the next q, E[min(S - a, q) | S > a], divided by its
 * chance to finish within q, P(S <= a + q | S > a).  The horizons are a
 * log-spaced grid wide enough for the spread; the expectation is the
 * integral of the conditional survival, by trapezoids.
 */
static double
gittins_cost(double attained, double spread)
{
	double		lo = log(0.01) - 6 * spread;
	double		hi = log(Max(attained, 1.0)) + 6 * Max(spread, WIDE_SPREAD) + log(4.0);
	double		s_a = survival(attained, spread);
	double		prev_t = attained;
	double		prev_s = 1;
	double		integral = 0;
	double		best = exp(hi);

	if (!(s_a > 1e-300))
		return best;			/* so far in the tail that no horizon ends it */
	for (int k = 0; k < GITTINS_POINTS; k++)
	{
		double		t = attained + exp(lo + (hi - lo) * k / (GITTINS_POINTS - 1));
		double		s = survival(t, spread) / s_a;

		integral += (t - prev_t) * (prev_s + s) / 2;
		if (1 - s > 1e-12)
			best = Min(best, integral / (1 - s));
		prev_t = t;
		prev_s = s;
	}
	return best;
}

/*
 * A job's rank cost in seconds (see the head of this file): its median
 * runtime, the spread of the log of its runtime (negative: none known, the
 * median taken as the runtime) and the seconds of service it has had.  0
 * for a job with no estimate at all, as before any model exists.  With no
 * service, the cost is the median times a factor of the spread alone,
 * which a small cache keeps, since the predictor gives few spreads.
 */
double
tinytemp_rank_cost(double median, double spread, double attained)
{
	static struct
	{
		double		spread;
		double		factor;
	}			cache[16];
	static int	ncached = 0;
	static int	next_slot = 0;
	double		factor;

	if (!(median > 0))
		return 0;
	attained = Max(attained, 0);
	if (!(spread >= MIN_SPREAD))
		return Max(median - attained, 0);
	spread = Min(spread, TINYTEMP_MAX_SPREAD);
	if (attained > 0)
		return median * gittins_cost(attained / median, spread);
	for (int i = 0; i < ncached; i++)
		if (cache[i].spread == spread)
			return median * cache[i].factor;
	factor = gittins_cost(0, spread);
	cache[next_slot].spread = spread;
	cache[next_slot].factor = factor;
	next_slot = (next_slot + 1) % lengthof(cache);
	if (ncached < (int) lengthof(cache))
		ncached++;
	return median * factor;
}

/*
 * The rank cost of a gang's member: gangs are never preempted, so the
 * Gittins index, which stops a job at the horizon that pays best, does not
 * apply to them, and the cost is what starting one commits the cluster to,
 * its expected runtime: the mean of the same distribution as
 * tinytemp_rank_cost's, or the runtime given (a negative spread).
 * TINYTEMP_JOB_COST_SQL (tinytemp.h) computes the same in SQL.
 */
double
tinytemp_gang_cost(double median, double spread)
{
	double		wide;

	if (!(median > 0))
		return 0;
	if (!(spread >= MIN_SPREAD))
		return median;
	spread = Min(spread, TINYTEMP_MAX_SPREAD);
	wide = Max(spread, WIDE_SPREAD);
	return median * ((1 - MISPREDICTED) * exp(spread * spread / 2) +
					 MISPREDICTED * exp(wide * wide / 2));
}

/*
 * Whether a running job of rank cost victim_cost (at the service it has
 * had by now) should make way for a waiting job of rank cost `cost`: when
 * it costs over SERVICE_GAIN times as much, the work a restart loses
 * counted against stopping it.  Aging plays no part: it orders the waiting jobs,
 * and a job that waits too long preempts by tinytemp.starvation_limit.
 */
bool
tinytemp_service_preempt_pays(double victim_cost, double cost, double restart_cost_s)
{
	return victim_cost > SERVICE_GAIN * cost + restart_cost_s;
}
