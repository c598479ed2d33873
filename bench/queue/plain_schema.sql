-- The plain-SQL SKIP LOCKED queue that tinytemp is measured against: one
-- table and a partial index on ready rows, claimed with FOR UPDATE SKIP
-- LOCKED, the way popular Postgres job queues (river, Oban, pgmq,
-- solid_queue) write it.  Also the table for the machine's single-row
-- commit rate.
CREATE TABLE plain_jobs (
	id			bigserial PRIMARY KEY,
	queue		text NOT NULL DEFAULT 'default',
	kind		text NOT NULL,
	payload		jsonb NOT NULL DEFAULT '{}',
	priority	int NOT NULL DEFAULT 0,
	state		text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'running', 'done', 'failed')),
	attempts	int NOT NULL DEFAULT 0,
	max_attempts int NOT NULL DEFAULT 5,
	run_at		timestamptz NOT NULL DEFAULT now(),
	locked_by	text,
	locked_at	timestamptz,
	created_at	timestamptz NOT NULL DEFAULT now(),
	finished_at	timestamptz,
	last_error	text
);
CREATE INDEX plain_jobs_ready_idx ON plain_jobs (priority DESC, id) WHERE state = 'pending';

CREATE TABLE commit_probe (
	id			bigserial PRIMARY KEY,
	v			int NOT NULL
);
