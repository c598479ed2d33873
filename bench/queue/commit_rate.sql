-- The machine's single-row commit rate: one INSERT of one row per transaction.
\set v random(1, 1000000)
INSERT INTO commit_probe (v) VALUES (:v);
