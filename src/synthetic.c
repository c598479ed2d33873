/*
 * synthetic.c
 *	  A generator of synthetic ML jobs with their runtimes, to bootstrap the
 *	  runtime predictor before the cluster has measured anything, and to
 *	  benchmark it.
 *
 * The runtimes come from a simple cost model, not from measurements: each
 * model family has a cost per sample of a forward pass and a memory need,
 * training costs three forward passes, each accelerator has an effective
 * speed, and several GPUs, many cores and large batches help less than
 * linearly.  Too little memory slows a job down, every job pays a start-up
 * overhead, and lognormal noise stands for everything the model leaves out.
 * What matters for the predictor is that runtimes span seconds to days,
 * depend on their inputs through products and interactions, and that some
 * inputs are NULL the way they are in real submissions.
 *
 * The rows depend only on n and the seed: the generator draws from its own
 * pg_prng state, never from the backend's global one.
 */
#include "tinytemp.h"

#include <math.h>

#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(tinytemp_synthetic_jobs);

#define SYNTHETIC_MAX_JOBS 10000000
#define SYNTHETIC_NCOLUMNS 10

/* Longest job a user would submit; longer ones are scaled down and redrawn. */
#define SYNTHETIC_MAX_RUNTIME_S (4.0 * 24 * 3600)

/* Effective speed of one CPU core, in GFLOP/s. */
#define CPU_CORE_GFLOPS 40.0

typedef enum SyntheticJobType
{
	JOB_TRAINING,
	JOB_EVALUATION,
	JOB_INFERENCE,
	JOB_DATA_PROCESSING,
	NUM_JOB_TYPES
} SyntheticJobType;

static const char *const job_type_names[NUM_JOB_TYPES] = {
	"training", "evaluation", "inference", "data-processing"
};

/* How often each job type is submitted, in percent. */
static const int job_type_weights[NUM_JOB_TYPES] = {40, 20, 25, 15};

typedef enum ModelFamily
{
	FAMILY_VISION,
	FAMILY_LANGUAGE,
	FAMILY_TABULAR
} ModelFamily;

typedef struct SyntheticModel
{
	const char *name;
	ModelFamily family;
	double		gflop_per_sample;	/* one forward pass */
	double		memory_mb;		/* host memory to run without spilling */
	double		startup_s;		/* loading weights, building the graph */
	double		gpu_share;		/* share of the work a GPU accelerates */
	double		gpu_scaling;	/* exponent of the speed-up with more GPUs */
	double		min_samples;	/* training set sizes, drawn log-uniform */
	double		max_samples;
} SyntheticModel;

static const SyntheticModel models[] = {
	{"logreg", FAMILY_TABULAR, 2e-6, 1024, 1, 0.0, 0.0, 1e4, 5e7},
	{"xgboost", FAMILY_TABULAR, 5e-5, 4096, 2, 0.9, 0.5, 1e4, 2e7},
	{"efficientnet-b0", FAMILY_VISION, 0.39, 6144, 8, 0.998, 0.8, 1e4, 1.3e6},
	{"resnet18", FAMILY_VISION, 1.8, 6144, 8, 0.998, 0.85, 1e4, 1.3e6},
	{"resnet50", FAMILY_VISION, 4.1, 12288, 12, 0.998, 0.85, 1e4, 1.3e6},
	{"vit-base", FAMILY_VISION, 17.6, 16384, 18, 0.998, 0.9, 1e4, 1.3e6},
	{"bert-base", FAMILY_LANGUAGE, 11.0, 12288, 15, 0.998, 0.9, 1e4, 5e6},
	{"gpt2-small", FAMILY_LANGUAGE, 45.0, 16384, 20, 0.998, 0.9, 1e4, 2e6},
};

#define NUM_MODELS lengthof(models)

typedef struct SyntheticGpu
{
	const char *name;
	double		gflops;			/* effective, on a well-fed training loop */
	int			weight;			/* share of the fleet, in percent */
} SyntheticGpu;

static const SyntheticGpu gpu_types[] = {
	{"a100", 30000, 30},
	{"h100", 60000, 20},
	{"v100", 14000, 15},
	{"t4", 6000, 15},
	{"l4", 12000, 20},
};

#define NUM_GPU_TYPES lengthof(gpu_types)

/*
 * Per-row cost of data processing for each family: CPU seconds on one core
 * (decoding images, tokenizing text, parsing rows) and bytes read.
 */
static const double prep_cpu_s[] = {2e-3, 3e-4, 1e-5};
static const double prep_bytes[] = {110e3, 2e3, 200};

/* Storage bandwidth of a data-processing job, bytes per second. */
#define PREP_IO_BYTES_S 200e6

/* One synthetic job; NULL inputs are negative numbers or a NULL pointer. */
typedef struct SyntheticJob
{
	SyntheticJobType job_type;
	int			model;			/* index into models, -1 for none */
	int64		dataset_size;
	int			epochs;
	int			batch_size;
	int			cpus;
	int			gpus;
	int			gpu_type;		/* index into gpu_types, -1 for none */
	int64		memory_mb;
	double		runtime_s;
} SyntheticJob;

/* A uniform draw in [lo, hi) whose logarithm is uniform. */
static double
log_uniform(pg_prng_state *rng, double lo, double hi)
{
	return exp(log(lo) + pg_prng_double(rng) * (log(hi) - log(lo)));
}

/* A standard normal draw (Box-Muller); PostgreSQL 15's pg_prng has none. */
static double
standard_normal(pg_prng_state *rng)
{
	double		u1 = 1.0 - pg_prng_double(rng);	/* (0, 1]: log(0) is not finite */
	double		u2 = pg_prng_double(rng);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* True with probability percent / 100. */
static bool
chance(pg_prng_state *rng, int percent)
{
	return pg_prng_uint64_range(rng, 0, 99) < (uint64) percent;
}

/* An index drawn with the given integer weights, which sum to total. */
static int
pick_weighted(pg_prng_state *rng, const int *weights, int n, int total)
{
	int			r = (int) pg_prng_uint64_range(rng, 0, total - 1);

	for (int i = 0; i < n; i++)
	{
		if (r < weights[i])
			return i;
		r -= weights[i];
	}
	return n - 1;
}

/* A value drawn uniformly from a small array of choices. */
static int
pick_int(pg_prng_state *rng, const int *choices, int n)
{
	return choices[pg_prng_uint64_range(rng, 0, n - 1)];
}

/*
 * Draw the resources of job: accelerators first, because users size cores
 * and memory after the GPUs they ask for.
 */
static void
draw_resources(pg_prng_state *rng, SyntheticJob *job)
{
	static const int gpu_counts_training[] = {1, 1, 1, 2, 2, 4, 4, 8};
	static const int gpu_counts_serving[] = {1, 1, 1, 1, 1, 1, 2, 2, 4};
	static const int cpus_per_gpu[] = {2, 4, 4, 8, 8, 16};
	static const int cpu_counts[] = {1, 2, 4, 4, 8, 8, 16, 16, 32, 48, 64};
	static const int mb_per_cpu[] = {1024, 2048, 4096, 4096, 8192};
	int			gpu_percent;
	int			gpu_weights[NUM_GPU_TYPES];
	int			total = 0;
	double		memory;

	if (job->job_type == JOB_DATA_PROCESSING)
		gpu_percent = 5;
	else if (job->model < 0 || models[job->model].gpu_share == 0.0)
		gpu_percent = 15;
	else if (models[job->model].family == FAMILY_TABULAR)
		gpu_percent = 40;
	else if (job->job_type == JOB_TRAINING)
		gpu_percent = 90;
	else
		gpu_percent = 65;

	job->gpus = 0;
	job->gpu_type = -1;
	if (chance(rng, gpu_percent))
	{
		for (int i = 0; i < (int) NUM_GPU_TYPES; i++)
		{
			gpu_weights[i] = gpu_types[i].weight;
			total += gpu_weights[i];
		}
		job->gpu_type = pick_weighted(rng, gpu_weights, NUM_GPU_TYPES, total);
		if (job->job_type == JOB_TRAINING)
			job->gpus = pick_int(rng, gpu_counts_training, lengthof(gpu_counts_training));
		else
			job->gpus = pick_int(rng, gpu_counts_serving, lengthof(gpu_counts_serving));
		job->cpus = job->gpus * pick_int(rng, cpus_per_gpu, lengthof(cpus_per_gpu));
		job->cpus = Min(job->cpus, 64);
	}
	else
		job->cpus = pick_int(rng, cpu_counts, lengthof(cpu_counts));

	/* Memory follows the cores, loosely: some ask for too little, some for too much. */
	memory = job->cpus * (double) pick_int(rng, mb_per_cpu, lengthof(mb_per_cpu)) *
		log_uniform(rng, 0.5, 2.0);
	job->memory_mb = (int64) Max(1024.0, Min(524288.0, round(memory / 1024.0) * 1024.0));
}

/*
 * Draw what the job does (sizes, epochs, batch) for its model and type.  A
 * NULL epochs or batch_size is what users leave out: one pass for
 * evaluation, inference and data processing; no batches for boosted trees;
 * online (one request at a time) inference; a framework default.
 */
static void
draw_workload(pg_prng_state *rng, SyntheticJob *job)
{
	const SyntheticModel *m = job->model >= 0 ? &models[job->model] : NULL;
	double		lo = m ? m->min_samples : 1e4;
	double		hi = m ? m->max_samples : 5e7;
	bool		batched = m && m->family != FAMILY_TABULAR;

	job->epochs = -1;
	job->batch_size = -1;
	switch (job->job_type)
	{
		case JOB_TRAINING:
			job->dataset_size = (int64) log_uniform(rng, lo, hi);
			if (m && strcmp(m->name, "xgboost") == 0)
				job->epochs = (int) round(log_uniform(rng, 10, 1000));
			else
				job->epochs = (int) round(log_uniform(rng, 1, 100));
			if (chance(rng, 5))
				job->epochs = -1;
			if (batched && !chance(rng, 8))
				job->batch_size = 1 << pg_prng_uint64_range(rng, 3, 9);
			break;
		case JOB_EVALUATION:
			job->dataset_size = (int64) log_uniform(rng, Max(100.0, lo / 10), hi / 10);
			if (batched && !chance(rng, 10))
				job->batch_size = 1 << pg_prng_uint64_range(rng, 4, 10);
			break;
		case JOB_INFERENCE:
			job->dataset_size = (int64) log_uniform(rng, 100, hi);
			if (batched && chance(rng, 50))
				job->batch_size = 1 << pg_prng_uint64_range(rng, 0, 9);
			break;
		case JOB_DATA_PROCESSING:
			job->dataset_size = (int64) log_uniform(rng, 1e4, 1e8);
			break;
		case NUM_JOB_TYPES:
			elog(ERROR, "unexpected synthetic job type %d", (int) job->job_type);
	}
}

/*
 * Host memory the job needs to run without spilling or swapping: the
 * model's (more for training, which keeps optimizer state and prefetches)
 * or, for data processing, a share of the data held for shuffles and joins.
 */
static double
memory_need_mb(const SyntheticJob *job)
{
	const SyntheticModel *m = job->model >= 0 ? &models[job->model] : NULL;

	if (job->job_type == JOB_DATA_PROCESSING)
	{
		double		bytes = prep_bytes[m ? m->family : FAMILY_TABULAR];

		return 1024.0 + 0.05 * job->dataset_size * bytes / (1024.0 * 1024.0);
	}
	if (m->family == FAMILY_TABULAR)
		return m->memory_mb + 3.0 * job->dataset_size * 100.0 / (1024.0 * 1024.0);
	return m->memory_mb * (job->job_type == JOB_TRAINING ? 1.5 : 0.75);
}

/*
 * The job's runtime in seconds without noise.  Work is split Amdahl-style
 * between the part GPUs accelerate and the part that stays on the cores,
 * each with a sub-linear speed-up; small batches leave a GPU idle.
 */
static double
expected_runtime_s(const SyntheticJob *job)
{
	const SyntheticModel *m = job->model >= 0 ? &models[job->model] : NULL;
	double		cpu_rate = CPU_CORE_GFLOPS * pow(job->cpus, 0.8);
	double		compute_s;
	double		startup_s = 5.0;
	double		need_mb = memory_need_mb(job);
	double		slowdown = 1.0;

	if (job->job_type == JOB_DATA_PROCESSING)
	{
		int			family = m ? m->family : FAMILY_TABULAR;

		compute_s = job->dataset_size * prep_cpu_s[family] / pow(job->cpus, 0.9) +
			job->dataset_size * prep_bytes[family] / PREP_IO_BYTES_S;
	}
	else
	{
		/* Unspecified epochs and batches take the frameworks' defaults. */
		int			epochs = job->epochs > 0 ? job->epochs : 10;
		int			batch = job->batch_size > 0 ? job->batch_size :
			(job->job_type == JOB_INFERENCE ? 1 : 32);
		double		passes = job->job_type == JOB_TRAINING ? 3.0 * epochs : 1.0;
		double		work = job->dataset_size * m->gflop_per_sample * passes;

		if (m->family != FAMILY_TABULAR)
		{
			/* Per-device batch: the part of a step that hides fixed costs. */
			double		per_device = (double) batch / Max(job->gpus, 1);

			if (job->gpus > 0)
				work /= per_device / (per_device + 12.0);
			else
				work /= per_device / (per_device + 1.0);
		}

		if (job->gpus > 0 && m->gpu_share > 0.0)
		{
			double		gpu_rate = gpu_types[job->gpu_type].gflops *
				pow(job->gpus, m->gpu_scaling);

			compute_s = work * ((1.0 - m->gpu_share) / cpu_rate + m->gpu_share / gpu_rate);
		}
		else
			compute_s = work / cpu_rate;

		startup_s += m->startup_s;
		if (job->gpus > 0)
			startup_s += 4.0 + job->gpus;
	}

	/* Short of memory, a job spills to disk or swaps: superlinear, bounded. */
	if (job->memory_mb < need_mb)
		slowdown = Min(20.0, pow(need_mb / job->memory_mb, 1.5));

	return startup_s + compute_s * slowdown;
}

/*
 * Draw one job.  Users do not submit jobs that would run for weeks: such a
 * draw is discarded and the job drawn again.
 */
static void
draw_job(pg_prng_state *rng, SyntheticJob *job)
{
	for (;;)
	{
		job->job_type = pick_weighted(rng, job_type_weights, NUM_JOB_TYPES, 100);
		job->model = (int) pg_prng_uint64_range(rng, 0, NUM_MODELS - 1);
		if (job->job_type == JOB_DATA_PROCESSING && chance(rng, 25))
			job->model = -1;	/* generic ETL, for no model in particular */
		draw_workload(rng, job);
		draw_resources(rng, job);
		job->runtime_s = expected_runtime_s(job);
		if (job->runtime_s <= SYNTHETIC_MAX_RUNTIME_S)
			break;
	}
	job->runtime_s *= exp(0.15 * standard_normal(rng));
}

/*
 * tinytemp_synthetic_jobs(n, seed): n simulated jobs with their runtimes,
 * the same rows for the same n and seed.
 */
Datum
tinytemp_synthetic_jobs(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	int32		seed = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pg_prng_state rng;
	Datum		job_type_text[NUM_JOB_TYPES];
	Datum		model_text[NUM_MODELS];
	Datum		gpu_type_text[NUM_GPU_TYPES];

	if (n <= 0 || n > SYNTHETIC_MAX_JOBS)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("number of synthetic jobs must be between 1 and %d",
					   SYNTHETIC_MAX_JOBS),
				errdetail("The value given was %d.", n));

	InitMaterializedSRF(fcinfo, 0);

	/* Every row shares these; the tuplestore copies them into each tuple. */
	for (int i = 0; i < NUM_JOB_TYPES; i++)
		job_type_text[i] = CStringGetTextDatum(job_type_names[i]);
	for (int i = 0; i < (int) NUM_MODELS; i++)
		model_text[i] = CStringGetTextDatum(models[i].name);
	for (int i = 0; i < (int) NUM_GPU_TYPES; i++)
		gpu_type_text[i] = CStringGetTextDatum(gpu_types[i].name);

	pg_prng_seed(&rng, (uint64) (int64) seed);
	for (int32 row = 0; row < n; row++)
	{
		SyntheticJob job;
		Datum		values[SYNTHETIC_NCOLUMNS];
		bool		nulls[SYNTHETIC_NCOLUMNS] = {0};

		CHECK_FOR_INTERRUPTS();
		draw_job(&rng, &job);

		values[0] = job_type_text[job.job_type];
		values[1] = job.model >= 0 ? model_text[job.model] : (Datum) 0;
		nulls[1] = job.model < 0;
		values[2] = Int64GetDatum(job.dataset_size);
		values[3] = Int32GetDatum(job.epochs);
		nulls[3] = job.epochs < 0;
		values[4] = Int32GetDatum(job.batch_size);
		nulls[4] = job.batch_size < 0;
		values[5] = Int32GetDatum(job.cpus);
		values[6] = Int32GetDatum(job.gpus);
		values[7] = job.gpu_type >= 0 ? gpu_type_text[job.gpu_type] : (Datum) 0;
		nulls[7] = job.gpu_type < 0;
		values[8] = Int64GetDatum(job.memory_mb);
		values[9] = Float8GetDatum(job.runtime_s);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
