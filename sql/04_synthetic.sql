-- tinytemp_synthetic_jobs: the same rows for the same seed, plausible values,
-- NULLs where real submissions leave them out, and a bounded n.
-- Same seed, same rows, in the same order; another seed, other rows.
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY i)) FROM tinytemp_synthetic_jobs(500, 7) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i))
     = (SELECT md5(string_agg(t::text, ',' ORDER BY i)) FROM tinytemp_synthetic_jobs(500, 7) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i))
       AS same_seed_same_rows,
       (SELECT md5(string_agg(t::text, ',' ORDER BY i)) FROM tinytemp_synthetic_jobs(500, 7) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i))
     = (SELECT md5(string_agg(t::text, ',' ORDER BY i)) FROM tinytemp_synthetic_jobs(500, 8) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i))
       AS other_seed_same_rows,
       (SELECT md5(string_agg(t::text, ',' ORDER BY i)) FROM tinytemp_synthetic_jobs(500) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i))
     = (SELECT md5(string_agg(t::text, ',' ORDER BY i)) FROM tinytemp_synthetic_jobs(500, 1) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i))
       AS default_seed_is_1;
-- A prefix of a longer run is the shorter run.
SELECT count(*) AS differing_rows
FROM (SELECT t, i FROM tinytemp_synthetic_jobs(100, 3) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i)) x
FULL JOIN (SELECT t, i FROM tinytemp_synthetic_jobs(1000, 3) WITH ORDINALITY t(a, b, c, d, e, f, g, h, k, l, i) WHERE i <= 100) y
  USING (i)
WHERE x.t::text IS DISTINCT FROM y.t::text;
-- The first rows of seed 1, for a reader to see what they look like.
SELECT job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type, memory_mb,
       round(runtime_s::numeric, 1) AS runtime_s
FROM tinytemp_synthetic_jobs(5, 1);
-- Row count and value ranges over 20,000 rows.
SELECT count(*) AS jobs,
       count(*) FILTER (WHERE runtime_s IS NULL OR runtime_s <= 0) AS bad_runtime,
       min(runtime_s) < 60 AS some_under_a_minute,
       max(runtime_s) > 86400 AS some_over_a_day,
       min(gpus) >= 0 AND max(gpus) <= 8 AS gpus_in_0_8,
       count(*) FILTER (WHERE (gpu_type IS NULL) <> (gpus = 0)) AS gpu_type_null_unless_no_gpus,
       min(cpus) >= 1 AND max(cpus) <= 64 AS cpus_in_1_64,
       min(memory_mb) > 0 AND min(dataset_size) > 0 AS sizes_positive,
       count(*) FILTER (WHERE epochs <= 0 OR batch_size <= 0) AS nonpositive_epochs_or_batch,
       count(*) FILTER (WHERE job_type IS NULL) AS null_job_type
FROM tinytemp_synthetic_jobs(20000, 1);
-- Every job type occurs.  Evaluation, inference and data processing are one
-- pass (NULL epochs); some training jobs leave epochs or the batch size out.
SELECT job_type,
       count(*) > 0 AS occurs,
       bool_or(epochs IS NULL) AS some_null_epochs,
       bool_or(batch_size IS NULL) AS some_null_batch,
       bool_and(epochs IS NULL) AS all_null_epochs
FROM tinytemp_synthetic_jobs(20000, 1)
GROUP BY job_type
ORDER BY job_type;
-- Only known GPU types.
SELECT DISTINCT gpu_type FROM tinytemp_synthetic_jobs(20000, 1) ORDER BY gpu_type;
-- n out of range: 22023, whatever the seed.
SELECT count(*) FROM tinytemp_synthetic_jobs(0);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tinytemp_synthetic_jobs(-5, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tinytemp_synthetic_jobs(10000001);
\echo :LAST_ERROR_SQLSTATE
-- The smallest n.
SELECT count(*) FROM tinytemp_synthetic_jobs(1);
-- STRICT: a NULL argument gives no rows.
SELECT count(*) FROM tinytemp_synthetic_jobs(NULL);
SELECT count(*) FROM tinytemp_synthetic_jobs(10, NULL);
-- Admins and submitters may call it; PUBLIC and workers may not.
SELECT r, has_function_privilege(r, 'tinytemp_synthetic_jobs(int, int)', 'EXECUTE')
FROM unnest(ARRAY['tinytemp_admin', 'tinytemp_submitter', 'tinytemp_worker']) r
ORDER BY r;
SELECT has_function_privilege('public', 'tinytemp_synthetic_jobs(int, int)', 'EXECUTE') AS public_may_execute;
