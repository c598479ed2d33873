-- datasets.sql: the dataset registry of 0.7.  Versions numbered per name,
-- immutable, one per location; tinytemp_register_dataset for a running
-- job's outputs (its worker) or a source (a submitter or an admin), every
-- element checked before any is stored; inputs on tinytemp_enqueue and
-- tinytemp_enqueue_many, resolved for the handler or waited for; tenants
-- see their own datasets and the shared ones; lineage both ways.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(74);

\ir scheduling_setup.psql
:reset
TRUNCATE tinytemp.datasets;
SET LOCAL tinytemp.clock = '2026-03-01 12:00:00+00';
SET LOCAL tinytemp.lease_timeout = '1d';

CREATE ROLE tt_ds_a NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_ds_b NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_ds_wrk NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_ds_wrk2 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_ds_adm NOLOGIN IN ROLE tinytemp_admin;
CREATE ROLE tt_ds_nobody NOLOGIN;

------------------------------------------------------------------------
-- SOURCES
------------------------------------------------------------------------
SET LOCAL ROLE tt_ds_adm;
SELECT is(tinytemp_register_dataset(NULL, NULL,
	'{"name": "events", "layer": "raw", "uri": "/d/events.csv", "format": "csv", "rows": 300, "bytes": 9000,
	  "checksum": "sha256:aa", "schema": {"columns": [{"name": "ts", "type": "TIMESTAMP"}]}, "meta": {"source": "s3"}}'),
	1, 'an admin registers a source: version 1');
SELECT is(tinytemp_register_dataset(NULL, NULL, '{"name": "events", "layer": "raw", "uri": "/d/events-2.csv"}'),
	2, 'the next one of that name is version 2');
RESET ROLE;
SELECT results_eq($$SELECT name, version, layer, uri, format, rows, bytes, checksum, tenant, created_by_job,
						  schema->'columns'->0->>'name', meta->>'source'
					FROM tinytemp.datasets ORDER BY version$$,
	$$VALUES ('events', 1, 'raw', '/d/events.csv', 'csv', 300::bigint, 9000::bigint, 'sha256:aa', NULL::text, NULL::bigint, 'ts', 's3'),
			 ('events', 2, 'raw', '/d/events-2.csv', 'parquet', NULL, NULL, NULL, NULL, NULL, NULL, NULL)$$,
	'stored as given; format defaults to parquet; an admin''s source is shared (no tenant)');
SET LOCAL ROLE tt_ds_a;
SELECT is(tinytemp_register_dataset(NULL, NULL, '{"name": "a-private", "layer": "raw", "uri": "/d/a.json"}'), 1,
	'a submitter registers a source of its own');
RESET ROLE;
SELECT is((SELECT tenant FROM tinytemp.datasets WHERE name = 'a-private'), 'tt_ds_a', 'its tenant is the submitter');

-- Bad input: a clear error, nothing stored.
CREATE TEMP TABLE ds_before AS SELECT count(*) AS n FROM tinytemp.datasets;
SET LOCAL ROLE tt_ds_adm;
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, NULL)$$, '22004', 'dataset must not be null', 'NULL: 22004');
SELECT throws_ok($$SELECT tinytemp_register_dataset(1, NULL, '{}')$$, '22023', 'job_id and worker_id go together',
	'a job without its worker: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '"x"')$$, '22023',
	'dataset must be a JSON object or an array of them', 'a scalar: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '[]')$$, '22023',
	'an array of datasets holds 1 to 100 of them', 'an empty array: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"layer": "raw", "uri": "/x"}')$$, '22023',
	'"name" of dataset 1 is required', 'no name: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "../etc", "layer": "raw", "uri": "/x"}')$$, '22023',
	'name "../etc" is not a dataset name', 'a name with a slash: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "-x", "layer": "raw", "uri": "/x"}')$$, '22023',
	'name "-x" is not a dataset name', 'a name starting with a dash: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": 5, "layer": "raw", "uri": "/x"}')$$, '22023',
	'"name" of dataset 1 must be a string', 'a name that is a number: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "gold", "uri": "/x"}')$$, '22023',
	'"layer" of dataset 1 must be "raw", "processed" or "curated"', 'an unknown layer: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "raw"}')$$, '22023',
	'"uri" of dataset 1 is required', 'no uri: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "raw", "uri": ""}')$$, '22023',
	'"uri" of dataset 1 must be 1 to 4096 bytes long', 'an empty uri: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "raw", "uri": "/x", "rows": -1}')$$, '22023',
	'"rows" of dataset 1 must be a non-negative integer', 'negative rows: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "raw", "uri": "/x", "bytes": 1.5}')$$, '22023',
	'"bytes" of dataset 1 must be a non-negative integer', 'fractional bytes: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "raw", "uri": "/x", "schema": [1]}')$$, '22023',
	'"schema" of dataset 1 must be a JSON object', 'a schema that is no object: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "x", "layer": "raw", "uri": "/x", "owner": "me"}')$$, '22023',
	'dataset 1 has an unknown key "owner"', 'an unknown key: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL,
	'[{"name": "ok1", "layer": "raw", "uri": "/ok1"}, {"name": "ok2", "layer": "bronze", "uri": "/ok2"}]')$$, '22023',
	'"layer" of dataset 2 must be "raw", "processed" or "curated"', 'an array with a bad second element: 22023');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "events", "layer": "raw", "uri": "/d/events.csv"}')$$, '23505',
	'uri "/d/events.csv" is registered already', 'a location registered already: 23505');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL,
	'[{"name": "ok3", "layer": "raw", "uri": "/ok3"}, {"name": "ok4", "layer": "raw", "uri": "/d/events.csv"}]')$$, '23505',
	NULL, 'an array whose second location is taken: 23505');
RESET ROLE;
SELECT is((SELECT count(*) FROM tinytemp.datasets), (SELECT n FROM ds_before),
	'the refused registrations stored nothing, not even the good first element of an array');

-- Immutable.
SELECT throws_ok($$UPDATE tinytemp.datasets SET rows = 1 WHERE name = 'events'$$, '55000',
	'dataset versions are immutable', 'UPDATE of a version: 55000, even for the owner');
SET LOCAL ROLE tt_ds_a;
SELECT throws_ok($$DELETE FROM tinytemp.datasets$$, '42501', NULL, 'a submitter may not delete versions');
RESET ROLE;

------------------------------------------------------------------------
-- INPUTS ON ENQUEUE
------------------------------------------------------------------------
SET LOCAL ROLE tt_ds_a;
SELECT tinytemp_enqueue('pipeline-process', inputs => ARRAY['events@1', 'a-private']) AS j_ready \gset
SELECT tinytemp_enqueue('pipeline-process', inputs => ARRAY['events']) AS j_latest \gset
SELECT tinytemp_enqueue('pipeline-curate', inputs => ARRAY['events-clean@1', 'events@2']) AS j_wait \gset
SELECT tinytemp_enqueue('pipeline-train', inputs => ARRAY['events-curated'],
						run_after => '2026-03-01 13:00:00+00') AS j_later \gset
RESET ROLE;
SELECT results_eq(format($$SELECT inputs->0->>'name', (inputs->0->>'version')::int, inputs->0->>'uri',
								  inputs->0->>'checksum', (inputs->0->>'rows')::bigint,
								  inputs->1->>'name', (inputs->1->>'version')::int, awaits_data, run_after
						   FROM tinytemp.jobs WHERE id = %s$$, :j_ready),
	$$VALUES ('events', 1, '/d/events.csv', 'sha256:aa', 300::bigint, 'a-private', 1, NULL::text[],
			  '2026-03-01 12:00:00+00'::timestamptz)$$,
	'existing inputs are resolved at enqueue, in order, with location and checksum; the job is due');
SELECT is((SELECT (inputs->0->>'version')::int FROM tinytemp.jobs WHERE id = :j_latest), 2,
	'a name alone is its latest version');
SELECT results_eq(format($$SELECT awaits_data, run_after, rank_key, inputs->0 FROM tinytemp.jobs WHERE id = %s$$, :j_wait),
	$$VALUES (ARRAY['events-clean@1'], 'infinity'::timestamptz, 'infinity'::float8, '{"name": "events-clean", "version": 1}'::jsonb)$$,
	'a missing version: the job awaits it and is not due');
SELECT is((SELECT awaits_data FROM tinytemp.jobs WHERE id = :j_later), ARRAY['events-curated@1'],
	'a name with no version yet awaits version 1');
SELECT is((SELECT reason FROM tinytemp.pending_reasons_all WHERE job_id = :j_wait), 'waiting on a dataset',
	'pending_reasons says why');
SELECT is((SELECT count(*)::int FROM tinytemp_claim(tinytemp_register_worker('ds-probe', 64, 65536)) c
		   WHERE c.id IN (:j_wait, :j_later)), 0, 'no claim takes a job that awaits data');
UPDATE tinytemp.jobs SET state = 'pending', worker_id = NULL, lease_until = NULL, attempts = 0
	WHERE state = 'running';

SET LOCAL ROLE tt_ds_a;
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['bad name'])$$, '22023',
	'input "bad name" is not a dataset name', 'enqueue: a bad name: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['events@0'])$$, '22023',
	'input "events@0" names no version', 'enqueue: version 0: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['events@latest'])$$, '22023',
	'input "events@latest" names no version', 'enqueue: a version that is no number: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['events@1', 'events@2'])$$, '22023',
	'input "events" is declared twice', 'enqueue: a name twice: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['events', NULL])$$, '22004',
	'inputs must not contain nulls', 'enqueue: a null input: 22004');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => (SELECT array_agg('d' || i) FROM generate_series(1, 101) i))$$,
	'22023', 'a job may declare at most 100 inputs', 'enqueue: 101 inputs: 22023');
RESET ROLE;
SET LOCAL ROLE tt_ds_b;
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['a-private@1'])$$, '42501',
	'permission denied to read dataset "a-private@1"', 'another tenant''s dataset: 42501');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['a-private'])$$, '42501',
	'permission denied to read dataset "a-private"', 'another tenant''s dataset, by name: 42501');
SELECT is((SELECT count(*)::int FROM tinytemp.jobs), 0, 'tt_ds_b sees no job (and made none: the refusals rolled back)');
SELECT is((SELECT string_agg(name || '@' || version, ',' ORDER BY name, version) FROM tinytemp.datasets),
	'events@1,events@2', 'tt_ds_b sees the shared datasets, not tt_ds_a''s');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tinytemp.jobs WHERE job_type = 'x'), 0, 'no refused enqueue left a job');

-- enqueue_many takes inputs too.
SET LOCAL ROLE tt_ds_a;
SELECT array_agg(id ORDER BY ord) AS many FROM tinytemp_enqueue_many(
	'[{"job_type": "m1", "inputs": ["events@2"]}, {"job_type": "m2"}, {"job_type": "m3", "inputs": ["events-curated@2"]}]')
	WITH ORDINALITY t(id, ord) \gset
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "m4", "inputs": ["no good"]}]')$$, '22023',
	'input "no good" is not a dataset name', 'enqueue_many: a bad input: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "m4", "inputs": "events"}]')$$, '22P02',
	NULL, 'enqueue_many: inputs that are no array: 22P02');
RESET ROLE;
SELECT results_eq(format($$SELECT job_type, inputs->0->>'uri', awaits_data FROM tinytemp.jobs WHERE id = ANY ('%s') ORDER BY id$$, :'many'),
	$$VALUES ('m1', '/d/events-2.csv', NULL::text[]), ('m2', NULL, NULL), ('m3', NULL, ARRAY['events-curated@2'])$$,
	'enqueue_many resolves or awaits each job''s inputs');

------------------------------------------------------------------------
-- A JOB'S OUTPUTS, AND THE JOBS THEY WAKE
------------------------------------------------------------------------
SET LOCAL ROLE tt_ds_wrk;
SELECT tinytemp_register_worker('ds-w', 64, 65536) AS w \gset
SELECT is((SELECT id FROM tinytemp_claim(:w, 1)), :'j_ready'::bigint, 'the ready job is claimed');
SELECT is(tinytemp_register_dataset(:j_ready, :w,
	'{"name": "events-clean", "layer": "processed", "uri": "/d/p/job-1", "rows": 250, "checksum": "sha256:bb"}'),
	1, 'its worker registers what it made: events-clean version 1');
RESET ROLE;
SELECT results_eq(format($$SELECT tenant, created_by_job, created_attempt FROM tinytemp.datasets WHERE name = 'events-clean'$$),
	format($$VALUES ('tt_ds_a'::text, %s::bigint, 1)$$, :j_ready),
	'the output belongs to the job''s tenant, with the job and attempt that made it');
SELECT is((SELECT detail->>'dataset' FROM tinytemp.jobs_history WHERE job_id = :j_ready AND event = 'dataset_registered'),
	'events-clean', 'the job''s history records it');
SELECT results_eq(format($$SELECT awaits_data, run_after, inputs->0->>'uri', (inputs->0->>'id') IS NOT NULL,
								  inputs->1->>'uri' FROM tinytemp.jobs WHERE id = %s$$, :j_wait),
	$$VALUES (NULL::text[], '2026-03-01 12:00:00+00'::timestamptz, '/d/p/job-1', true, '/d/events-2.csv')$$,
	'the waiting job''s input is resolved in place, its other input kept; it is due now');
SELECT is((SELECT reason FROM tinytemp.pending_reasons_all WHERE job_id = :j_later), 'waiting on a dataset',
	'the job that waits for another dataset still waits');

SET LOCAL ROLE tt_ds_wrk2;
SELECT throws_ok(format($$SELECT tinytemp_register_dataset(%s, %s, '{"name": "z", "layer": "raw", "uri": "/z"}')$$, :j_ready, :w),
	'42501', NULL, 'another worker role registering for worker ds-w: 42501');
RESET ROLE;
SET LOCAL ROLE tt_ds_wrk;
SELECT throws_ok(format($$SELECT tinytemp_register_dataset(%s, %s, '{"name": "z", "layer": "raw", "uri": "/z"}')$$, :j_latest, :w),
	'TT003', NULL, 'a job the worker does not hold: TT003');
RESET ROLE;
SET LOCAL ROLE tt_ds_nobody;
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "z", "layer": "raw", "uri": "/z"}')$$,
	'42501', NULL, 'a role with none of tinytemp''s roles may not register');
SELECT throws_ok($$SELECT * FROM tinytemp.datasets$$, '42501', NULL, 'nor read the registry');
RESET ROLE;

------------------------------------------------------------------------
-- A PIPELINE, AND ITS LINEAGE
------------------------------------------------------------------------
:reset
TRUNCATE tinytemp.datasets;
SELECT tinytemp_register_dataset(NULL, NULL, '{"name": "clicks-src", "layer": "raw", "uri": "/s/clicks.csv", "format": "csv"}');
SELECT tinytemp_register_worker('ds-line', 64, 65536) AS w \gset
SELECT tinytemp_enqueue('ingest', inputs => ARRAY['clicks-src@1']) AS ingest \gset
SELECT tinytemp_enqueue('process', inputs => ARRAY['clicks-raw@1']) AS process \gset
SELECT tinytemp_enqueue('curate', inputs => ARRAY['clicks-processed@1']) AS curate \gset
SELECT tinytemp_enqueue('train', inputs => ARRAY['clicks-curated@1']) AS train \gset
SELECT tinytemp_enqueue('evaluate', inputs => ARRAY['clicks-curated@1']) AS evaluate \gset
SELECT is((SELECT string_agg(id::text, ',') FROM tinytemp_claim(:w, 5)), :'ingest', 'only the ingest is due');
SELECT tinytemp_register_dataset(:ingest, :w, '{"name": "clicks-raw", "layer": "raw", "uri": "/r/1"}');
SELECT tinytemp_ack(:ingest, :w);
SELECT is((SELECT string_agg(id::text, ',') FROM tinytemp_claim(:w, 5)), :'process', 'then the process step');
SELECT tinytemp_register_dataset(:process, :w, '{"name": "clicks-processed", "layer": "processed", "uri": "/p/1"}');
SELECT tinytemp_ack(:process, :w);
SELECT is((SELECT string_agg(id::text, ',') FROM tinytemp_claim(:w, 5)), :'curate', 'then curate');
SELECT tinytemp_register_dataset(:curate, :w, '{"name": "clicks-curated", "layer": "curated", "uri": "/c/1"}');
SELECT tinytemp_ack(:curate, :w);
SELECT is((SELECT string_agg(id::text, ',' ORDER BY id) FROM tinytemp_claim(:w, 5)), :'train' || ',' || :'evaluate',
	'then train and evaluate, both on the curated version');
SELECT results_eq(format($$SELECT name, version, layer, depth FROM tinytemp.lineage WHERE job_id = %s ORDER BY depth$$, :evaluate),
	$$VALUES ('clicks-curated', 1, 'curated', 1), ('clicks-processed', 1, 'processed', 2),
			 ('clicks-raw', 1, 'raw', 3), ('clicks-src', 1, 'raw', 4)$$,
	'lineage: the evaluation job reaches the raw data and its source');
SELECT is((SELECT array_agg(job_id ORDER BY job_id) FROM tinytemp.lineage WHERE name = 'clicks-raw'),
	ARRAY[:process, :curate, :train, :evaluate]::bigint[], 'the other way: every run that came from the raw data');
SELECT results_eq($$SELECT name, source_name, depth FROM tinytemp.dataset_lineage WHERE name = 'clicks-curated' ORDER BY depth$$,
	$$VALUES ('clicks-curated', 'clicks-processed', 1), ('clicks-curated', 'clicks-raw', 2), ('clicks-curated', 'clicks-src', 3)$$,
	'dataset lineage: what the curated data was made from');
SELECT is((SELECT array_agg(name ORDER BY name) FROM tinytemp.dataset_versions WHERE latest), 
	ARRAY['clicks-curated', 'clicks-processed', 'clicks-raw', 'clicks-src'], 'dataset_versions marks the latest');

-- A second ingest is version 2; version 1 is kept; a job pinned to 1 reads 1.
SELECT tinytemp_enqueue('ingest', inputs => ARRAY['clicks-src@1']) AS ingest2 \gset
SELECT count(*) FROM tinytemp_claim(:w, 1);
SELECT is(tinytemp_register_dataset(:ingest2, :w, '{"name": "clicks-raw", "layer": "raw", "uri": "/r/2"}'), 2,
	'a second ingest makes version 2');
SELECT is((SELECT string_agg(uri, ',' ORDER BY version) FROM tinytemp.datasets WHERE name = 'clicks-raw'), '/r/1,/r/2',
	'and version 1 is still there, unchanged');
SELECT tinytemp_enqueue('process', inputs => ARRAY['clicks-raw@1']) AS pinned \gset
SELECT tinytemp_enqueue('process', inputs => ARRAY['clicks-raw']) AS latest \gset
SELECT is((SELECT inputs->0->>'uri' FROM tinytemp.jobs WHERE id = :pinned), '/r/1', 'a job pinned to version 1 reads version 1');
SELECT is((SELECT inputs->0->>'uri' FROM tinytemp.jobs WHERE id = :latest), '/r/2', 'one naming the dataset alone reads the latest');

-- A registration that fails leaves nothing: the job's array is all or nothing.
SELECT throws_ok(format($$SELECT tinytemp_register_dataset(%s, %s,
	'[{"name": "half-a", "layer": "raw", "uri": "/h/a"}, {"name": "half-b", "layer": "raw", "uri": "/r/1"}]')$$, :ingest2, :w),
	'23505', NULL, 'a job''s second output at a taken location: 23505');
SELECT is((SELECT count(*)::int FROM tinytemp.datasets WHERE name LIKE 'half-%'), 0, 'and its first output is not registered');

-- Who sees what: a tenant's outputs stay its own.
SELECT tinytemp_enqueue('ingest', tenant => 'tt_ds_b', inputs => ARRAY['clicks-src@1']) AS b_ingest \gset
SELECT tinytemp_enqueue('process', tenant => 'tt_ds_a', inputs => ARRAY['b-raw@1']) AS a_waits \gset
SELECT count(*) FROM tinytemp_claim(:w, 1);
SELECT tinytemp_register_dataset(:b_ingest, :w, '{"name": "b-raw", "layer": "raw", "uri": "/b/1"}');
SELECT is((SELECT awaits_data FROM tinytemp.jobs WHERE id = :a_waits), ARRAY['b-raw@1'],
	'tenant b''s output does not resolve tenant a''s job that waits for that name');
SET LOCAL ROLE tt_ds_a;
SELECT is((SELECT count(*)::int FROM tinytemp.datasets WHERE name = 'b-raw'), 0, 'nor does tenant a see it');
SELECT is((SELECT count(*)::int FROM tinytemp.lineage WHERE name = 'b-raw'), 0, 'nor its lineage');
RESET ROLE;

SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname IN ('tinytemp_register_dataset', 'tinytemp_enqueue') AND prosecdef), 0,
	'the functions are not SECURITY DEFINER');

SELECT * FROM finish();
ROLLBACK;
