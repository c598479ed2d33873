-- tinytemp batch variant: claim up to 8 jobs in one transaction, then ack
-- each in its own transaction.  One pgbench transaction is 8 jobs.
\if :w = 0
SELECT tinytemp_register_worker('bench8-' || :client_id::text, 1000000, 1000000000) AS w \gset
\endif
SELECT a[1] AS id1, a[2] AS id2, a[3] AS id3, a[4] AS id4,
	   a[5] AS id5, a[6] AS id6, a[7] AS id7, a[8] AS id8
FROM (SELECT array_agg(id) AS a FROM tinytemp_claim(:w, 8)) c \gset
SELECT tinytemp_ack(:id1, :w);
SELECT tinytemp_ack(:id2, :w);
SELECT tinytemp_ack(:id3, :w);
SELECT tinytemp_ack(:id4, :w);
SELECT tinytemp_ack(:id5, :w);
SELECT tinytemp_ack(:id6, :w);
SELECT tinytemp_ack(:id7, :w);
SELECT tinytemp_ack(:id8, :w);
