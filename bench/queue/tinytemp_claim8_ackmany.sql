-- tinytemp worker protocol: claim up to 8 jobs in one transaction, then ack
-- them all with one tinytemp_ack_many call, as a worker with 8 slots
-- reports the jobs that finished since its last report.  One pgbench
-- transaction is 8 jobs and 2 commits.
\if :w = 0
SELECT tinytemp_register_worker('benchmany-' || :client_id::text, 1000000, 1000000000) AS w \gset
\endif
SELECT array_agg(id) AS ids FROM tinytemp_claim(:w, 8) \gset
SELECT tinytemp_ack_many(:ids::bigint[], :w);
