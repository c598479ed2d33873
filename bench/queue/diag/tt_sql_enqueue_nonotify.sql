-- Diagnostic: tt_sql_enqueue.sql without the NOTIFY.
WITH j AS (
	INSERT INTO tinytemp.jobs (job_type, model, params, priority, dataset_size, epochs,
		batch_size, cpus, memory_mb, gpus, gpu_type, gang_size, max_attempts, queue, tenant,
		run_after)
	VALUES ('train', NULL, '{"model": "resnet50", "lr": 0.01, "epochs": 3}', 0, NULL, NULL,
		NULL, 1, 1024, 0, NULL, 1, 5, 'default', NULL, now())
	RETURNING id, run_after
), h AS (
	INSERT INTO tinytemp.jobs_history (job_id, event, detail)
	SELECT id, 'enqueued',
		CASE WHEN run_after > now() THEN jsonb_build_object('run_after', run_after) END
	FROM j
) SELECT id FROM j;
