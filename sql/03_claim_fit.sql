-- A claim of several jobs packs them into what the worker has left, in
-- claim order, skipping a job that no longer fits for a later one that does.
SET client_min_messages = warning;
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers RESTART IDENTITY;
SELECT tinytemp_register_worker('box', 4, 16384, 2, 'a100');
SELECT tinytemp_enqueue('training', 'a', priority => 9, cpus => 3),
       tinytemp_enqueue('training', 'b', priority => 8, cpus => 3),
       tinytemp_enqueue('training', 'c', priority => 7, cpus => 1),
       tinytemp_enqueue('training', 'd', priority => 6, cpus => 1),
       tinytemp_enqueue('training', 'e', priority => 5, cpus => 1, gpus => 1, gpu_type => 'h100'),
       tinytemp_enqueue('training', 'f', priority => 4, cpus => 1, gpus => 1, gpu_type => 'a100');
-- 4 cpus: a (3) then c (1); b needs 3 and d comes after c.
SELECT id, model, cpus FROM tinytemp_claim(1, 10);
SELECT tinytemp_ack(1, 1);
-- 3 cpus free again: b (3) takes them all.
SELECT id, model, cpus FROM tinytemp_claim(1, 10);
SELECT tinytemp_ack(2, 1), tinytemp_ack(3, 1);
-- d, then f; e wants another GPU type.
SELECT id, model, gpus, gpu_type FROM tinytemp_claim(1, 10);
SELECT id, model, state FROM tinytemp.jobs WHERE state = 'pending';
-- max_jobs caps the batch even when more would fit.
SELECT tinytemp_enqueue('evaluation', 'g', cpus => 1), tinytemp_enqueue('evaluation', 'h', cpus => 1);
SELECT tinytemp_ack(4, 1), tinytemp_ack(6, 1);
SELECT count(*) FROM tinytemp_claim(1, 1);
SELECT free_cpus, jobs_held FROM tinytemp.worker_status;
