#!/usr/bin/env node
// process: a raw version to a processed Parquet version.  In this order:
//   1. exact duplicate rows go (the first of equal rows stays);
//   2. bad rows go: a required field missing (NULL or blank), or a value of a
//      typed column that does not cast to its type;
//   3. the typed columns are cast (blank becomes NULL), the others kept;
//   4. with params.key, one row per key stays: the first in the input's
//      order, or the last with params.keep = "last".
// meta counts what each step removed.
//
// params:
//   types     {"column": "TYPE", ...}  DuckDB types: BIGINT, INTEGER, DOUBLE,
//             TIMESTAMP, DATE, BOOLEAN, VARCHAR, DECIMAL(10,2)...
//   required  ["column", ...]  (default: the key's columns)
//   key       "column" or ["column", ...]
//   keep      "first" (default) or "last"
//   output    the name to register (default: the input's name with -raw
//             replaced by -processed)
//   fail_after_write  true: fault injection: once the output is written to
//             its scratch directory and its dataset line printed, crash
//             (SIGKILL itself) before the rename.  Neither a version nor a
//             registration may come of it.
// The job's one input: a raw version.
import { join } from 'node:path';
import {
	checkName, checksum, dataDir, derivedName, emit, emitDataset, fail, inputsOf, main, newVersionDir, num, openDuckDB, readJob,
	readParquetSql, sqlIdent, sqlString, sqlType, verifyInput,
} from './lib.mjs';

const ROW = '__tinytemp_row';

main(async () => {
	const job = readJob();
	const p = job.params;
	const root = dataDir();
	const input = inputsOf(job, 'raw', 1, 1)[0];
	const name = checkName('params.output', p.output ?? derivedName(input.name, 'raw', 'processed'));
	const types = p.types ?? {};
	if (typeof types !== 'object' || Array.isArray(types)) fail('params.types must be an object {"column": "TYPE"}');
	const key = p.key === undefined ? [] : Array.isArray(p.key) ? p.key : [p.key];
	const required = p.required ?? key;
	if (!Array.isArray(required)) fail('params.required must be an array of column names');
	const keep = p.keep ?? 'first';
	if (keep !== 'first' && keep !== 'last') fail('params.keep must be "first" or "last"');

	const inputRead = verifyInput(input);
	const db = await openDuckDB();
	await db.run(`CREATE TEMP TABLE src AS SELECT *, row_number() OVER () AS ${ROW} FROM ${readParquetSql(input)}`);
	const columns = (await db.schema('SELECT * FROM src')).columns.filter((c) => c.name !== ROW);
	const names = new Set(columns.map((c) => c.name));
	for (const c of [...Object.keys(types), ...required, ...key]) {
		if (typeof c !== 'string' || !names.has(c))
			fail(`column ${JSON.stringify(c)} (in params) is not in ${input.name}@${input.version}, whose columns are ${[...names].join(', ')}`);
	}
	const typeOf = Object.fromEntries(Object.entries(types).map(([c, t]) => [c, sqlType(`params.types.${c}`, t)]));
	const rowsIn = num((await db.one('SELECT count(*) AS n FROM src')).n);

	// 1. exact duplicates
	const plain = columns.map((c) => sqlIdent(c.name)).join(', ');
	await db.run(`CREATE TEMP TABLE distinct_rows AS SELECT ${plain}, min(${ROW}) AS ${ROW} FROM src GROUP BY ALL`);
	const distinct = num((await db.one('SELECT count(*) AS n FROM distinct_rows')).n);

	// 2. bad rows
	const text = (c) => `trim(CAST(${sqlIdent(c)} AS VARCHAR))`;
	const missing = required.map((c) => `${sqlIdent(c)} IS NULL OR ${text(c)} = ''`);
	const unparseable = Object.entries(typeOf).map(([c, t]) =>
		`(${sqlIdent(c)} IS NOT NULL AND ${text(c)} <> '' AND TRY_CAST(${text(c)} AS ${t}) IS NULL)`);
	const why = `CASE WHEN ${missing.length ? missing.join(' OR ') : 'false'} THEN 'missing'
	                  WHEN ${unparseable.length ? unparseable.join(' OR ') : 'false'} THEN 'unparseable' END`;
	await db.run(`CREATE TEMP TABLE checked AS SELECT *, ${why} AS __tinytemp_bad FROM distinct_rows`);
	const bad = await db.one(`SELECT count(*) FILTER (WHERE __tinytemp_bad = 'missing') AS missing,
	                                 count(*) FILTER (WHERE __tinytemp_bad = 'unparseable') AS unparseable
	                          FROM checked`);

	// 3. types
	const cast = columns.map((c) => (typeOf[c.name]
		? `CAST(NULLIF(${text(c.name)}, '') AS ${typeOf[c.name]}) AS ${sqlIdent(c.name)}`
		: sqlIdent(c.name))).join(', ');
	await db.run(`CREATE TEMP TABLE typed AS SELECT ${cast}, ${ROW} FROM checked WHERE __tinytemp_bad IS NULL`);
	const good = num((await db.one('SELECT count(*) AS n FROM typed')).n);

	// 4. one row per key
	let final = 'typed';
	if (key.length) {
		await db.run(`CREATE TEMP TABLE keyed AS SELECT * FROM typed
		              QUALIFY row_number() OVER (PARTITION BY ${key.map(sqlIdent).join(', ')}
		                                         ORDER BY ${ROW} ${keep === 'first' ? 'ASC' : 'DESC'}) = 1`);
		final = 'keyed';
	}
	const rows = num((await db.one(`SELECT count(*) AS n FROM ${final}`)).n);

	const out = newVersionDir(root, 'processed', name, job);
	const file = join(out.tmp, 'part-0.parquet');
	await db.run(`COPY (SELECT ${plain} FROM ${final} ORDER BY ${ROW}) TO ${sqlString(file)} (FORMAT parquet)`);
	const schema = await db.schema(`SELECT * FROM read_parquet(${sqlString(file)})`);
	const sum = checksum(out.tmp);
	const meta = {
		input: `${input.name}@${input.version}`,
		rows_in: rowsIn,
		duplicates_removed: rowsIn - distinct,
		bad_rows_removed: distinct - good,
		bad_missing_required: num(bad.missing),
		bad_unparseable: num(bad.unparseable),
		key_duplicates_removed: good - rows,
		key: key.length ? key : null,
		keep: key.length ? keep : null,
		required,
		types: typeOf,
	};
	if (p.fail_after_write === true) {
		// Fault injection: the output written and declared, then a crash
		// before the rename: neither may be taken for a version.
		emitDataset({ name, layer: 'processed', uri: out.final, format: 'parquet', schema, rows, bytes: sum.bytes, checksum: sum.checksum, meta });
		process.stderr.write(`process: params.fail_after_write: crashing with ${file} written\n`);
		process.kill(process.pid, 'SIGKILL');
	}
	const uri = out.commit();
	emitDataset({ name, layer: 'processed', uri, format: 'parquet', schema, rows, bytes: sum.bytes, checksum: sum.checksum, meta });
	emit({ output: { name, layer: 'processed', uri, rows, checksum: sum.checksum }, removed: {
		duplicates: meta.duplicates_removed, bad_rows: meta.bad_rows_removed, key_duplicates: meta.key_duplicates_removed,
	}, inputs_read: [inputRead] });
});

