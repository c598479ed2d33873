-- bench/claim_scale.sh: a random registered worker (ids lo..hi) claims one
-- job and acks it, as two transactions.
\set w random(:lo, :hi)
SELECT id FROM tinytemp_claim(:w, 1) \gset
SELECT tinytemp_ack(:id, :w);
