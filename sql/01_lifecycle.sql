-- The job lifecycle end to end: enqueue, claim, heartbeat, ack, with history.
CREATE EXTENSION IF NOT EXISTS tinytemp;
SET client_min_messages = warning;
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

SELECT tinytemp_register_worker('gpu-box-1', 16, 65536, 2, 'a100') AS w1 \gset
SELECT tinytemp_register_worker('cpu-box-1', 4, 8192) AS w2 \gset

SELECT tinytemp_enqueue('training', 'resnet50', '{"lr": 0.1}', priority => 5,
                        dataset_size => 50000, epochs => 10, batch_size => 128,
                        gpus => 1, gpu_type => 'a100', tenant => 'vision') AS j1 \gset
SELECT tinytemp_enqueue('inference', 'bert-base', cpus => 2, memory_mb => 4096) AS j2 \gset
SELECT tinytemp_enqueue('evaluation', 'bert-base', priority => 1) AS j3 \gset
SELECT tinytemp_enqueue('training', 'gpt2', run_after => now() + interval '1 hour') AS j4 \gset

SELECT id = :j1 AS is_j1, job_type, state, attempts, cpus, gpus, gpu_type
FROM tinytemp.jobs ORDER BY id;

-- The CPU-only worker cannot take the GPU job; it gets the highest priority job it fits.
SELECT id = :j3 AS is_j3, state, attempts, worker_id = :w2 AS on_w2
FROM tinytemp_claim(:w2);
-- The next claim by the same worker: j2 fits in what is left (4 - 1 cpus).
SELECT id = :j2 AS is_j2 FROM tinytemp_claim(:w2, 5);
-- Nothing left that fits: the GPU job needs a GPU, j4 is delayed.
SELECT count(*) FROM tinytemp_claim(:w2, 5);
-- The GPU worker gets the GPU job.
SELECT id = :j1 AS is_j1, lease_until > now() AS leased FROM tinytemp_claim(:w1);

SELECT tinytemp_heartbeat(:j1, :w1, '{"epoch": 3}');
SELECT progress FROM tinytemp.jobs WHERE id = :j1;
SELECT tinytemp_ack(:j1, :w1, '{"accuracy": 0.91}');
SELECT tinytemp_ack(:j3, :w2);
SELECT tinytemp_ack(:j2, :w2, '{"rows": 10}');

SELECT id = :j1 AS is_j1, state, result, lease_until IS NULL AS lease_released,
       finished_at IS NOT NULL AS finished
FROM tinytemp.jobs ORDER BY id;

SELECT job_id = :j1 AS is_j1, event, worker_id = :w1 AS by_w1, detail->'attempt' AS attempt
FROM tinytemp.jobs_history WHERE job_id = :j1 ORDER BY id;

-- What the CPU worker holds now.
SELECT id = :w2 AS is_w2, free_cpus, free_memory_mb, free_gpus, jobs_held
FROM tinytemp.worker_status WHERE name = 'cpu-box-1';

SELECT queue, state, jobs, delayed FROM tinytemp.queue_summary ORDER BY state;

-- Cancel: a pending job never runs; a running job hears 'cancel' at its heartbeat.
SELECT tinytemp_cancel(:j4);
SELECT count(*) FROM tinytemp_claim(:w2);
SELECT tinytemp_enqueue('training', 'vit') AS j5 \gset
SELECT id = :j5 AS is_j5 FROM tinytemp_claim(:w2);
SELECT tinytemp_cancel(:j5);
SELECT tinytemp_heartbeat(:j5, :w2);
SELECT tinytemp_fail(:j5, :w2, 'killed after cancel');
SELECT tinytemp_cancel(:j5) AS cancelled_again;
SELECT state FROM tinytemp.jobs WHERE id = :j5;
SELECT event FROM tinytemp.jobs_history WHERE job_id = :j5 ORDER BY id;
