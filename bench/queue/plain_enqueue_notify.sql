-- Reference only: the plain enqueue plus the NOTIFY that tinytemp_enqueue
-- sends (same channel, queue name as payload), in the same transaction, to
-- show what the notification alone costs.
WITH j AS (
	INSERT INTO plain_jobs (kind, payload)
	VALUES ('train', '{"model": "resnet50", "lr": 0.01, "epochs": 3}') RETURNING id
)
SELECT id, pg_notify('tinytemp_jobs', 'default') FROM j;
