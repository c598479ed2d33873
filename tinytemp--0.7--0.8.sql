/* tinytemp--0.7--0.8.sql: scheduling under uncertainty.  A job's rank
 * follows the Gittins index of its predicted runtime distribution given the
 * service it has had, and the planner preempts a job of the same class for
 * one that ranks far ahead of it or has starved */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.8'" to load this file. \quit

-- attained_s: seconds a job ran in its earlier runs that ended in a
-- preemption (its checkpoint kept the work).  predicted_spread: the
-- standard deviation of the log of its runtime, from the predictor's
-- 10-90% interval (NULL: no interval).  The jobs_validate trigger checks
-- both (a CHECK constraint would be rebuilt for every statement).
ALTER TABLE tinytemp.jobs
	ADD COLUMN attained_s float8 NOT NULL DEFAULT 0,
	ADD COLUMN predicted_spread float8;

-- A job's rank cost in seconds: the inverse of the Gittins index of a
-- log-normal runtime of this median and spread (NULL: the median is the
-- runtime) given the seconds of service it has had.
CREATE FUNCTION tinytemp.rank_cost(median float8, spread float8, attained float8)
RETURNS float8
AS 'MODULE_PATHNAME', 'tinytemp_rank_cost_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION tinytemp.rank_cost(float8, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp.rank_cost(float8, float8, float8)
	TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;
