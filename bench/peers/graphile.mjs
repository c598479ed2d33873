// bench/peers/graphile.mjs: one repetition of graphile-worker for bench/peers_bench.sh.
//   node graphile.mjs N default|batched
// Enqueues N no-op jobs with one addJobs call (timed), then starts a runner
// with concurrency 8 on the pre-filled queue and times from the first job's
// start to the moment the jobs table is seen empty (graphile-worker deletes a
// job once it is completed, and a batched completion commits later).
// Connection: PGHOST, PGPORT, PGUSER, PGDATABASE.  Prints "enqueue R" and
// "process R" (jobs per second).
import pg from 'pg';
import { run, makeWorkerUtils, Logger } from 'graphile-worker';

const N = Number(process.argv[2]);
const variant = process.argv[3] || 'default';
if (!(N > 0) || !['default', 'batched'].includes(variant)) {
	console.error('usage: node graphile.mjs N default|batched');
	process.exit(2);
}
const quiet = new Logger(() => (level, message) => {
	if (level === 'error') console.error(message);
});
const pool = new pg.Pool({ max: 12 });
pool.on('error', (err) => console.error(err.message));
pool.on('connect', (client) => client.on('error', (err) => console.error(err.message)));
const now = () => performance.now() / 1000;

const utils = await makeWorkerUtils({ pgPool: pool, logger: quiet });
await utils.migrate();
const specs = Array.from({ length: N }, () => ({ identifier: 'noop', payload: {} }));
let t = now();
await utils.addJobs(specs);
const enqueueRate = N / (now() - t);
await utils.release();

let done = 0, first = null, allRan;
const ran = new Promise((resolve) => { allRan = resolve; });
const worker = variant === 'batched'
	? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
	: {};
const runner = await run({
	pgPool: pool,
	logger: quiet,
	concurrency: 8,
	noHandleSignals: true,
	preset: { worker },
	taskList: {
		noop: async () => {
			if (first === null) first = now();
			if (++done === N) allRan();
		},
	},
});
await ran;
const client = await pool.connect();
for (;;) {
	const r = await client.query('SELECT count(*)::int AS n FROM graphile_worker._private_jobs');
	if (r.rows[0].n === 0) break;
	await new Promise((resolve) => setTimeout(resolve, 5));
}
const processRate = N / (now() - first);
client.release();
await runner.stop();
await pool.end();
console.log(`enqueue ${enqueueRate.toFixed(0)}`);
console.log(`process ${processRate.toFixed(0)}`);
