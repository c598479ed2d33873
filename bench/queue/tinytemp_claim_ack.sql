-- tinytemp claim+ack: claim one job, then ack it, as two transactions, the
-- way tinytemp-worker does.  Each client registers its own worker on its
-- first pass (the runner starts every client with w = 0).
\if :w = 0
SELECT tinytemp_register_worker('bench-' || :client_id::text, 1000000, 1000000000) AS w \gset
\endif
SELECT id, params FROM tinytemp_claim(:w) \gset
SELECT tinytemp_ack(:id, :w);
