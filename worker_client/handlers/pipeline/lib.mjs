// lib.mjs: what the pipeline handlers share: the job from stdin, the data
// directory, DuckDB opened without any network, output versions written to a
// temporary directory and renamed into place, checksums, and the check of
// every input against the checksum it was registered with.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync,
	readSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

export const HERE = dirname(fileURLToPath(import.meta.url));
// Relative source paths are taken from the sample data shipped with the handlers.
export const SAMPLE_DIR = join(HERE, 'data');

const cleanups = [];
// Scratch directories, removed when the worker stops the handler (SIGTERM:
// a cancel, a timeout, a preemption or a drain) as well as on a failure.
const scratchDirs = new Set();
process.on('SIGTERM', () => {
	for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
	process.exit(143);
});

export class Failure extends Error {}

// fail(message): stop the handler with exit status 1 and MESSAGE on stderr
// (the worker fails the attempt with the tail of stderr).
export function fail(message) {
	throw new Failure(message);
}

// main(fn): run the handler's async body; any error ends it with status 1.
export function main(fn) {
	fn().then(() => {
		runCleanups();
	}, (err) => {
		runCleanups();
		const name = process.argv[1] ? process.argv[1].replace(/.*\//, '').replace(/\.mjs$/, '') : 'handler';
		process.stderr.write(`${name}: ${err instanceof Failure ? err.message : (err && err.stack) || err}\n`);
		process.exitCode = 1;
	});
}

function runCleanups() {
	while (cleanups.length) {
		try {
			cleanups.pop()();
		} catch {
			// a scratch directory that cannot be removed is left behind
		}
	}
}

// The claimed job: the JSON object on stdin; the TINYTEMP_ variables fill in
// what it lacks.
export function readJob() {
	let text = '';
	try {
		text = readFileSync(0, 'utf8');
	} catch {
		text = '';
	}
	let job = {};
	if (text.trim() !== '') {
		try {
			job = JSON.parse(text);
		} catch (e) {
			fail(`the job on stdin is not JSON: ${e.message}`);
		}
	}
	if (job === null || typeof job !== 'object' || Array.isArray(job)) fail('the job on stdin is not a JSON object');
	if (job.id === undefined && process.env.TINYTEMP_JOB_ID) job.id = Number(process.env.TINYTEMP_JOB_ID);
	if (job.attempts === undefined && process.env.TINYTEMP_ATTEMPT) job.attempts = Number(process.env.TINYTEMP_ATTEMPT);
	if (job.params === undefined && process.env.TINYTEMP_PARAMS) job.params = JSON.parse(process.env.TINYTEMP_PARAMS);
	if ((job.inputs === undefined || job.inputs === null) && process.env.TINYTEMP_INPUTS) job.inputs = JSON.parse(process.env.TINYTEMP_INPUTS);
	if (typeof job.params === 'string') job.params = JSON.parse(job.params);
	if (typeof job.inputs === 'string') job.inputs = JSON.parse(job.inputs);
	job.params = job.params && typeof job.params === 'object' ? job.params : {};
	job.inputs = Array.isArray(job.inputs) ? job.inputs : [];
	if (!Number.isSafeInteger(Number(job.id)) || Number(job.id) <= 0) fail('the job has no id (stdin "id" or TINYTEMP_JOB_ID)');
	job.id = Number(job.id);
	const attempt = Number(process.env.TINYTEMP_ATTEMPT ?? job.attempts ?? 1);
	job.attempt = Number.isSafeInteger(attempt) && attempt > 0 ? attempt : 1;
	return job;
}

// The root of every dataset version: $TINYTEMP_DATA_DIR, made if missing.
export function dataDir() {
	const dir = process.env.TINYTEMP_DATA_DIR;
	if (!dir) fail('TINYTEMP_DATA_DIR is not set (an "env = TINYTEMP_DATA_DIR=..." line in the handler config sets it)');
	const abs = resolve(dir);
	mkdirSync(abs, { recursive: true });
	return abs;
}

// A name used as a path component and dataset name: letters, digits, . _ -
export function checkName(what, name) {
	if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name))
		fail(`${what} must be 1 to 128 letters, digits, '.', '_' or '-' (not starting with '.', '_' or '-'): ${JSON.stringify(name)}`);
	return name;
}

// A source file: absolute, or relative to the sample data directory.
export function sourcePath(p, what) {
	if (typeof p !== 'string' || p === '') fail(`params.${what} is required (a file path)`);
	const abs = isAbsolute(p) ? p : join(SAMPLE_DIR, p);
	if (!existsSync(abs) || !statSync(abs).isFile()) fail(`params.${what}: no such file: ${abs}`);
	return abs;
}

export function sqlString(s) {
	return `'${String(s).replaceAll("'", "''")}'`;
}

export function sqlIdent(s) {
	return `"${String(s).replaceAll('"', '""')}"`;
}

// A DuckDB type given in params: a plain type name, optionally with a size
// or precision, such as BIGINT, DOUBLE, TIMESTAMP, VARCHAR, DECIMAL(10,2).
export function sqlType(what, t) {
	if (typeof t !== 'string' || !/^[A-Za-z][A-Za-z0-9_ ]{0,40}(\(\s*\d{1,3}\s*(,\s*\d{1,3}\s*)?\))?$/.test(t.trim()))
		fail(`${what}: not a type name: ${JSON.stringify(t)}`);
	return t.trim().toUpperCase();
}

// DuckDB, in memory, one thread (the bytes written do not depend on
// scheduling), with autoloading and autoinstalling of extensions off:
// parquet and json are built into the bindings, and nothing is fetched.
// Spills go to a scratch directory removed at the end.
export async function openDuckDB() {
	const scratch = mkdtempSync(join(tmpdir(), 'tinytemp-duckdb-'));
	scratchDirs.add(scratch);
	cleanups.push(() => {
		rmSync(scratch, { recursive: true, force: true });
		scratchDirs.delete(scratch);
	});
	const instance = await DuckDBInstance.create(':memory:', {
		threads: '1',
		autoinstall_known_extensions: 'false',
		autoload_known_extensions: 'false',
		allow_community_extensions: 'false',
		temp_directory: scratch,
		extension_directory: join(scratch, 'extensions'),
		memory_limit: process.env.TINYTEMP_PIPELINE_MEMORY || '1GB',
	});
	const conn = await instance.connect();
	cleanups.push(() => {
		conn.closeSync();
		instance.closeSync();
	});
	const db = {
		conn,
		scratch,
		run: (sql, values) => conn.run(sql, values),
		all: async (sql, values) => (await conn.runAndReadAll(sql, values)).getRowObjectsJS(),
		one: async (sql, values) => {
			const rows = (await conn.runAndReadAll(sql, values)).getRowObjectsJS();
			return rows[0];
		},
		// {"columns": [{"name", "type"}...]} of a query
		schema: async (query) => ({
			columns: (await db.all(`DESCRIBE ${query}`)).map((r) => ({ name: r.column_name, type: r.column_type })),
		}),
	};
	await db.run('SET lock_configuration = true');
	return db;
}

// Every file under DIR, as paths relative to it, sorted by their bytes.
export function listFiles(dir) {
	const out = [];
	const walk = (rel) => {
		for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
			const p = rel ? `${rel}/${e.name}` : e.name;
			if (e.isDirectory()) walk(p);
			else if (e.isFile()) out.push(p);
			else fail(`${join(dir, p)} is neither a file nor a directory`);
		}
	};
	walk('');
	return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

// "sha256:" + the hex SHA-256 of the bytes of every file under DIR (or of
// DIR itself when it is a file), one after the other in sorted path order;
// and the number of bytes and files.
export function checksum(dir) {
	const hash = createHash('sha256');
	const files = lstatSync(dir).isDirectory() ? listFiles(dir).map((f) => join(dir, f)) : [dir];
	const buf = Buffer.alloc(1 << 20);
	let bytes = 0;
	for (const f of files) {
		const fd = openSync(f, 'r');
		try {
			let n;
			while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
				hash.update(buf.subarray(0, n));
				bytes += n;
			}
		} finally {
			closeSync(fd);
		}
	}
	return { checksum: `sha256:${hash.digest('hex')}`, bytes, files: files.length };
}

// An output version: DATA/LAYER/NAME/job-ID-aATTEMPT, written first into a
// hidden sibling .tmp-job-ID-aATTEMPT-PID and renamed into place by commit().
// An existing version is never written over.  Scratch directories left by
// earlier attempts of the same job (a crash midway) are removed.
export function newVersionDir(root, layer, name, job) {
	const parent = join(root, layer, name);
	mkdirSync(parent, { recursive: true });
	const base = `job-${job.id}-a${job.attempt}`;
	const final = join(parent, base);
	if (existsSync(final)) fail(`${final} exists already: a version is never written over`);
	for (const e of readdirSync(parent)) {
		if (e.startsWith(`.tmp-job-${job.id}-a`)) rmSync(join(parent, e), { recursive: true, force: true });
	}
	const tmp = join(parent, `.tmp-${base}-${process.pid}`);
	mkdirSync(tmp);
	scratchDirs.add(tmp);
	let committed = false;
	cleanups.push(() => {
		if (!committed) rmSync(tmp, { recursive: true, force: true });
	});
	return {
		tmp,
		final,
		commit() {
			syncTree(tmp);
			renameSync(tmp, final);
			committed = true;
			scratchDirs.delete(tmp);
			fsyncDir(parent);
			return final;
		},
	};
}

function syncTree(dir) {
	for (const f of listFiles(dir)) {
		const fd = openSync(join(dir, f), 'r');
		try {
			fsyncSync(fd);
		} finally {
			closeSync(fd);
		}
	}
	fsyncDir(dir);
}

function fsyncDir(dir) {
	const fd = openSync(dir, 'r');
	try {
		fsyncSync(fd);
	} catch {
		// some file systems refuse fsync on a directory
	} finally {
		closeSync(fd);
	}
}

// The job's inputs of LAYER (all of them when LAYER is null); fails unless
// there are between MIN and MAX of them, each resolved (with a uri).
export function inputsOf(job, layer, min = 1, max = 1) {
	const list = job.inputs.filter((i) => i && (layer === null || i.layer === layer));
	if (list.length < min || list.length > max) {
		const want = min === max ? `${min}` : `${min} to ${max}`;
		fail(`this handler reads ${want} ${layer ?? ''} input(s) (declared with tinytemp_enqueue(..., inputs => ...)); ` +
			`the job has ${list.length}: ${JSON.stringify(job.inputs.map((i) => i && `${i.name}@${i.version} (${i.layer})`))}`);
	}
	for (const i of list) {
		if (typeof i.uri !== 'string' || i.uri === '') fail(`input ${i.name}@${i.version} has no uri (not registered yet?)`);
	}
	return list;
}

// Recompute the checksum of an input's files and compare it with the one
// it was registered with; fails on a difference.  Returns the entry for the
// result's inputs_read.
export function verifyInput(input) {
	if (!existsSync(input.uri)) fail(`input ${input.name}@${input.version}: ${input.uri} does not exist`);
	const got = checksum(input.uri);
	const entry = {
		name: input.name,
		version: input.version,
		layer: input.layer,
		uri: input.uri,
		checksum: got.checksum,
		checksum_verified: typeof input.checksum === 'string' && input.checksum === got.checksum,
	};
	if (typeof input.checksum !== 'string' || input.checksum === '')
		fail(`input ${input.name}@${input.version} has no registered checksum to verify against`);
	if (!entry.checksum_verified)
		fail(`input ${input.name}@${input.version} at ${input.uri}: its files hash to ${got.checksum}, ` +
			`not the registered ${input.checksum}: the data changed since it was registered`);
	return entry;
}

// The files of a Parquet dataset version, for read_parquet (hive partitions included).
export function parquetGlob(uri) {
	return join(uri, '**', '*.parquet');
}

// read_parquet over a registered version: hive partition columns (meta.partition_by)
// typed as its meta.partition_types says.
export function readParquetSql(input) {
	const meta = input.meta || {};
	const parts = Array.isArray(meta.partition_by) ? meta.partition_by : meta.partition_by ? [meta.partition_by] : [];
	let opts;
	if (parts.length) {
		const types = meta.partition_types || {};
		const entries = parts.map((p) => `${sqlString(p)}: ${sqlString(sqlType(`partition column ${p}`, types[p] || 'VARCHAR'))}`);
		opts = `, hive_partitioning = true, hive_types = {${entries.join(', ')}}`;
	} else {
		opts = ', hive_partitioning = false';
	}
	return `read_parquet(${sqlString(parquetGlob(input.uri))}${opts})`;
}

// Print one JSON line on stdout.
export function emit(obj) {
	process.stdout.write(`${JSON.stringify(obj)}\n`);
}

// The dataset line the worker registers once the handler exits 0.
export function emitDataset(d) {
	emit({ dataset: d });
}

// Numbers from DuckDB (BigInt for BIGINT) as JSON numbers.
export function num(v) {
	return typeof v === 'bigint' ? Number(v) : v;
}

// clicks-raw -> clicks-processed; other names get the suffix.
export function derivedName(inputName, from, to) {
	return inputName.endsWith(`-${from}`) ? `${inputName.slice(0, -from.length)}${to}` : `${inputName}-${to}`;
}
