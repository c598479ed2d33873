// bench/peers/pgboss.mjs: one repetition of pg-boss for bench/peers_bench.sh.
//   node pgboss.mjs N
// Enqueues N no-op jobs with one insert call (timed), then starts one work()
// with batchSize 100 on the pre-filled queue; the rate is N over the span from
// the first job's started_on to the last job's completed_on (server clock).
// burstWhenBatchFull: a worker whose fetch came back full fetches again at once
// instead of waiting for the next poll (2 s by default).
// Connection: PGHOST, PGPORT, PGUSER, PGDATABASE.  Prints "enqueue R" and
// "process R" (jobs per second).
import { PgBoss } from 'pg-boss';

const N = Number(process.argv[2]);
if (!(N > 0)) {
	console.error('usage: node pgboss.mjs N');
	process.exit(2);
}
const Q = 'noop';
const boss = new PgBoss({
	host: process.env.PGHOST,
	port: Number(process.env.PGPORT),
	user: process.env.PGUSER,
	database: process.env.PGDATABASE,
	max: 12,
});
boss.on('error', (err) => console.error(err));
await boss.start();
if (!(await boss.getQueue(Q))) await boss.createQueue(Q);
await boss.deleteAllJobs(Q);
const now = () => performance.now() / 1000;

const jobs = Array.from({ length: N }, () => ({ data: {} }));
const t = now();
await boss.insert(Q, jobs);
const enqueueRate = N / (now() - t);

let done = 0, allRan;
const ran = new Promise((resolve) => { allRan = resolve; });
await boss.work(Q, { batchSize: 100, burstWhenBatchFull: true }, async (batch) => {
	done += batch.length;
	if (done >= N) allRan();
});
await ran;
const db = boss.getDb();
let span;
for (;;) {
	const r = await db.executeSql(
		`SELECT count(*) FILTER (WHERE state <> 'completed')::int AS left,
		        extract(epoch FROM max(completed_on) - min(started_on))::float8 AS span
		 FROM pgboss.job WHERE name = $1`, [Q]);
	if (r.rows[0].left === 0) { span = r.rows[0].span; break; }
	await new Promise((resolve) => setTimeout(resolve, 5));
}
await boss.stop({ graceful: true, wait: true });
console.log(`enqueue ${enqueueRate.toFixed(0)}`);
console.log(`process ${(N / span).toFixed(0)}`);
