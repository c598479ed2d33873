#!/usr/bin/env node
// ingest: a source file, or what is new in a growing JSONL stream, to a raw
// Parquet dataset version.  Raw keeps every row as read: every column as
// text (VARCHAR), duplicates and bad rows included.
//
// params:
//   name      the data set's name; the version is registered as NAME-raw
//             (params.output overrides the whole name)
//   source    a CSV, JSON (array or one object a line) or JSONL file;
//             relative paths are taken from the handlers' data/ directory
//   format    "csv" or "json" (default: from the file's extension)
// or, for a stream:
//   stream    a JSONL file that grows.  Only complete lines are read, from
//             the byte offset where the previous ingest of the stream
//             stopped: the previous raw version, declared as the job's one
//             input, says where in meta.stream_offset (no input: from 0).
import { closeSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
	checkName, checksum, dataDir, emit, emitDataset, fail, inputsOf, main, newVersionDir, num, openDuckDB,
	readJob, sourcePath, sqlIdent, sqlString, verifyInput,
} from './lib.mjs';

main(async () => {
	const job = readJob();
	const p = job.params;
	const root = dataDir();
	const base = checkName('params.name', p.name);
	const name = checkName('params.output', p.output ?? `${base}-raw`);
	const db = await openDuckDB();
	const out = newVersionDir(root, 'raw', name, job);
	const file = join(out.tmp, 'part-0.parquet');
	const meta = {};
	const inputsRead = [];
	let select;

	if (p.stream !== undefined) {
		if (p.source !== undefined) fail('params.source and params.stream exclude each other');
		const stream = sourcePath(p.stream, 'stream');
		const prev = inputsOf(job, 'raw', 0, 1)[0];
		let start = 0;
		if (prev) {
			inputsRead.push(verifyInput(prev));
			const m = prev.meta || {};
			if (m.source !== stream)
				fail(`input ${prev.name}@${prev.version} was ingested from ${JSON.stringify(m.source)}, not from the stream ${stream}`);
			start = m.stream_offset;
			if (!Number.isSafeInteger(start) || start < 0)
				fail(`input ${prev.name}@${prev.version} has no meta.stream_offset to start from`);
		}
		const { chunk, size } = readComplete(stream, start);
		const lines = countLines(chunk);
		Object.assign(meta, {
			source: stream, format: 'jsonl', stream_start: start, stream_offset: start + chunk.length, lines,
			stream_size: size, previous: prev ? `${prev.name}@${prev.version}` : null,
		});
		if (lines === 0) {
			// Nothing new: an empty version with the previous one's columns,
			// so that jobs waiting for this version still run.
			if (!prev) fail(`the stream ${stream} has no complete line from offset ${start}`);
			const cols = (await db.schema(`SELECT * FROM read_parquet(${sqlString(join(prev.uri, '**', '*.parquet'))})`)).columns;
			select = `SELECT ${cols.map((c) => `NULL::VARCHAR AS ${sqlIdent(c.name)}`).join(', ')} LIMIT 0`;
		} else {
			const scratch = join(db.scratch, 'chunk.jsonl');
			writeFileSync(scratch, chunk);
			await db.run(`CREATE TEMP TABLE chunk AS ${await jsonSelect(db, scratch, 'newline_delimited')}`);
			rmSync(scratch);
			select = 'SELECT * FROM chunk';
		}
	} else {
		const src = sourcePath(p.source, 'source');
		const format = p.format ?? (/\.csv$/i.test(src) ? 'csv' : /\.jsonl?$|\.ndjson$/i.test(src) ? 'json' : null);
		if (format === 'csv') {
			select = `SELECT * FROM read_csv(${sqlString(src)}, header = true, all_varchar = true)`;
		} else if (format === 'json') {
			select = await jsonSelect(db, src, 'auto');
		} else {
			fail(`params.format must be "csv" or "json" (got ${JSON.stringify(p.format)} for ${src})`);
		}
		const sum = checksum(src);
		Object.assign(meta, { source: src, format, source_bytes: sum.bytes, source_checksum: sum.checksum });
	}

	await db.run(`COPY (${select}) TO ${sqlString(file)} (FORMAT parquet)`);
	const read = `SELECT * FROM read_parquet(${sqlString(file)})`;
	const rows = num((await db.one(`SELECT count(*) AS n FROM read_parquet(${sqlString(file)})`)).n);
	const schema = await db.schema(read);
	const sum = checksum(out.tmp);
	const uri = out.commit();
	emitDataset({ name, layer: 'raw', uri, format: 'parquet', schema, rows, bytes: sum.bytes, checksum: sum.checksum, meta });
	emit({ output: { name, layer: 'raw', uri, rows, checksum: sum.checksum }, inputs_read: inputsRead });
});

// SELECT reading a JSON file with every key it has (in any record) as VARCHAR.
async function jsonSelect(db, file, format) {
	const keys = (await db.schema(`SELECT * FROM read_json(${sqlString(file)}, format = ${sqlString(format)}, sample_size = -1)`)).columns;
	if (keys.length === 0) fail(`${file}: no fields found`);
	const cols = keys.map((c) => `${sqlString(c.name)}: 'VARCHAR'`).join(', ');
	return `SELECT * FROM read_json(${sqlString(file)}, format = ${sqlString(format)}, columns = {${cols}})`;
}

// The bytes of FILE from START up to and including its last newline.
function readComplete(file, start) {
	const size = statSync(file).size;
	if (size < start) fail(`the stream ${file} has ${size} bytes, fewer than the offset ${start} already read: was it truncated or replaced?`);
	const fd = openSync(file, 'r');
	try {
		const buf = Buffer.alloc(size - start);
		let got = 0;
		while (got < buf.length) {
			const n = readSync(fd, buf, got, buf.length - got, start + got);
			if (n === 0) break;
			got += n;
		}
		const end = buf.subarray(0, got).lastIndexOf(0x0a);
		return { chunk: buf.subarray(0, end + 1), size };
	} finally {
		closeSync(fd);
	}
}

// Non-blank lines of a chunk.
function countLines(buf) {
	return buf.toString('utf8').split('\n').filter((l) => l.trim() !== '').length;
}
