#!/usr/bin/env node
// curate: a processed version to a curated one that meets a declared schema,
// partitioned by a column (a directory COLUMN=VALUE of Parquet files per
// value, hive style) and compressed with zstd.
//
// params:
//   schema        {"columns": [{"name": "event_id", "type": "BIGINT",
//                 "nullable": false}, ...]}: the curated columns, in this
//                 order; the input's other columns are dropped.  The job
//                 fails, saying which column and value, when a column is
//                 missing, a value does not cast to its type (or would lose
//                 its fraction in an integer type), or a column that is not
//                 nullable has NULLs.
//   partition_by  a column of the schema (no NULLs in it); none: one file
//   output        the name to register (default: the input's name with
//                 -processed replaced by -curated)
// The job's one input: a processed version.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
	checkName, checksum, dataDir, derivedName, emit, emitDataset, fail, inputsOf, listFiles, main, newVersionDir, num,
	openDuckDB, readJob, readParquetSql, sqlIdent, sqlString, sqlType, verifyInput,
} from './lib.mjs';

const INTEGER = /^(U?(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT)|INT[1248]|LONG|SHORT)$/;
const FRACTIONAL = /^(DOUBLE|FLOAT|REAL|FLOAT[48]|DECIMAL|NUMERIC)/;

main(async () => {
	const job = readJob();
	const p = job.params;
	const root = dataDir();
	const input = inputsOf(job, 'processed', 1, 1)[0];
	const name = checkName('params.output', p.output ?? derivedName(input.name, 'processed', 'curated'));
	const declared = Array.isArray(p.schema) ? p.schema : p.schema?.columns;
	if (!Array.isArray(declared) || declared.length === 0)
		fail('params.schema must be {"columns": [{"name": ..., "type": ...}, ...]} with at least one column');
	const seen = new Set();
	const wanted = declared.map((c, i) => {
		if (!c || typeof c.name !== 'string' || c.name === '') fail(`params.schema.columns[${i}] has no name`);
		if (seen.has(c.name)) fail(`params.schema names column ${c.name} twice`);
		seen.add(c.name);
		return { name: c.name, type: sqlType(`params.schema column ${c.name}`, c.type), nullable: c.nullable !== false };
	});
	const partition = p.partition_by ?? null;
	if (partition !== null && !seen.has(partition))
		fail(`params.partition_by ${JSON.stringify(partition)} is not a column of params.schema`);

	const inputRead = verifyInput(input);
	const db = await openDuckDB();
	await db.run(`CREATE TEMP TABLE src AS SELECT * FROM ${readParquetSql(input)}`);
	const have = Object.fromEntries((await db.schema('SELECT * FROM src')).columns.map((c) => [c.name, c.type]));
	const problems = [];
	for (const c of wanted) {
		const col = sqlIdent(c.name);
		if (!(c.name in have)) {
			problems.push(`column ${c.name} is missing (the input has ${Object.keys(have).join(', ')})`);
			continue;
		}
		const lossy = INTEGER.test(c.type) && FRACTIONAL.test(have[c.name]) ? ` OR ${col} <> trunc(${col})` : '';
		const bad = await db.one(`SELECT count(*) AS n, min(CAST(${col} AS VARCHAR)) AS example FROM src
		                          WHERE ${col} IS NOT NULL AND (TRY_CAST(${col} AS ${c.type}) IS NULL${lossy})`);
		if (num(bad.n) > 0)
			problems.push(`column ${c.name}: ${num(bad.n)} value(s) of type ${have[c.name]} cannot be ${c.type}, e.g. ${JSON.stringify(bad.example)}`);
		if (!c.nullable || c.name === partition) {
			const nulls = num((await db.one(`SELECT count(*) AS n FROM src WHERE ${col} IS NULL`)).n);
			if (nulls > 0) problems.push(`column ${c.name}: ${nulls} NULL value(s) in a column that ${c.name === partition ? 'partitions the data' : 'is not nullable'}`);
		}
	}
	if (problems.length) fail(`${input.name}@${input.version} does not meet the schema: ${problems.join('; ')}`);

	const select = `SELECT ${wanted.map((c) => `CAST(${sqlIdent(c.name)} AS ${c.type}) AS ${sqlIdent(c.name)}`).join(', ')} FROM src`;
	const schema = await db.schema(select);
	const rowsIn = num((await db.one('SELECT count(*) AS n FROM src')).n);
	const out = newVersionDir(root, 'curated', name, job);
	if (partition !== null) {
		await db.run(`COPY (${select}) TO ${sqlString(out.tmp)}
		              (FORMAT parquet, PARTITION_BY (${sqlIdent(partition)}), COMPRESSION zstd, OVERWRITE_OR_IGNORE true)`);
	} else {
		await db.run(`COPY (${select}) TO ${sqlString(join(out.tmp, 'part-0.parquet'))} (FORMAT parquet, COMPRESSION zstd)`);
	}
	const meta = {
		input: `${input.name}@${input.version}`,
		compression: 'zstd',
		partition_by: partition !== null ? [partition] : null,
		partition_types: partition !== null ? { [partition]: wanted.find((c) => c.name === partition).type } : null,
		partitions: partition !== null ? readdirSync(out.tmp).length : null,
		files: listFiles(out.tmp).length,
		dropped_columns: Object.keys(have).filter((c) => !seen.has(c)),
	};
	const rows = num((await db.one(`SELECT count(*) AS n FROM ${readParquetSql({ uri: out.tmp, meta })}`)).n);
	if (rows !== rowsIn) fail(`wrote ${rows} rows of ${rowsIn}`);
	const sum = checksum(out.tmp);
	const uri = out.commit();
	emitDataset({ name, layer: 'curated', uri, format: 'parquet', schema, rows, bytes: sum.bytes, checksum: sum.checksum, meta });
	emit({ output: { name, layer: 'curated', uri, rows, checksum: sum.checksum, partitions: meta.partitions }, inputs_read: [inputRead] });
});
