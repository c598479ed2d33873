#!/usr/bin/env node
// generate.mjs: writes the pipeline's sample data set (clicks.csv, clicks.json,
// clicks-stream.jsonl) next to this file, from a fixed seed, and prints how
// many rows of each kind every file has.  The files are committed; run this
// only to change them (and then update the counts in ../README.md and
// test/process/pipeline.sh).
//
// Each row is an ad impression: event_id, ts, user_id, device, position (the
// ad's slot, 1 = top), dwell_s (seconds on the page), price and clicked (the
// label, 0 or 1), drawn so that a logistic model can learn it.  Every file
// mixes in exact duplicate rows, rows that reuse an earlier event_id with
// other values (a resent event), and bad rows (a required field missing, a
// value that does not parse).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// A small deterministic PRNG (32-bit state, xorshift-multiply).
function rng(seed) {
	let s = seed >>> 0;
	return () => {
		s = (s + 0x6d2b79f5) >>> 0;
		let t = s;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const DEVICES = ['mobile', 'mobile', 'mobile', 'mobile', 'mobile', 'mobile', 'desktop', 'desktop', 'desktop', 'tablet'];

function pad(n) {
	return String(n).padStart(2, '0');
}

function timestamp(seconds) {
	const d = new Date(Date.UTC(2026, 2, 1) + seconds * 1000);
	return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
		`${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

function event(r, id, t) {
	const device = DEVICES[Math.floor(r() * DEVICES.length)];
	const position = 1 + Math.floor(r() * 10);
	const dwell = Math.round(-Math.log(1 - r()) * 20 * 100) / 100;
	const price = Math.round((5 + r() * 195) * 100) / 100;
	const z = 1.4 - 0.5 * position + 0.08 * dwell - 0.01 * price + (device === 'mobile' ? 0.3 : 0);
	const clicked = r() < 1 / (1 + Math.exp(-2 * z)) ? 1 : 0;
	return {
		event_id: id,
		ts: timestamp(t),
		user_id: 1 + Math.floor(r() * 60),
		device,
		position,
		dwell_s: dwell,
		price,
		clicked,
	};
}

const COLUMNS = ['event_id', 'ts', 'user_id', 'device', 'position', 'dwell_s', 'price', 'clicked'];

// spec: good (unique valid events), exact (exact copies of earlier good
// rows), resent (an earlier good event_id again, later and with another
// dwell_s), bad (a list of functions that spoil one fresh row each).
function build(seed, firstId, spec) {
	const r = rng(seed);
	const good = [];
	let t = 0;
	for (let i = 0; i < spec.good; i++) {
		t += 5 + Math.floor(r() * 60);
		good.push(event(r, firstId + i, t));
	}
	const rows = good.map((row) => ({ ...row }));
	const insertAt = (row) => {
		// after at least one row, never before the row it copies
		const pos = 1 + Math.floor(r() * rows.length);
		rows.splice(pos, 0, row);
	};
	const pick = (k) => good[Math.floor((k + 0.5) * good.length / spec.exact)];
	for (let k = 0; k < spec.exact; k++) {
		const src = pick(k);
		const at = rows.indexOf(rows.find((x) => x.event_id === src.event_id && x.ts === src.ts)) + 1;
		rows.splice(at + Math.floor(r() * (rows.length - at)), 0, { ...src });
	}
	for (let k = 0; k < spec.resent; k++) {
		const src = good[Math.floor((k + 0.25) * good.length / spec.resent)];
		const at = rows.findIndex((x) => x.event_id === src.event_id) + 1;
		const copy = { ...src, ts: timestamp(t + 100 + k), dwell_s: Math.round((src.dwell_s + 1.5) * 100) / 100 };
		rows.splice(at + Math.floor(r() * (rows.length - at)), 0, copy);
	}
	let nextId = firstId + spec.good;
	for (const spoil of spec.bad) {
		t += 7;
		const row = event(r, nextId++, t);
		spoil(row);
		insertAt(row);
	}
	return rows;
}

function csvField(v) {
	if (v === undefined || v === null) return '';
	const s = String(v);
	return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

const missing = (col) => (row) => { row[col] = null; };
const dropped = (col) => (row) => { delete row[col]; };
const text = (col, value) => (row) => { row[col] = value; };

const files = {
	'clicks.csv': {
		seed: 12,
		firstId: 1,
		spec: {
			good: 274, exact: 12, resent: 5,
			bad: [missing('user_id'), missing('user_id'), missing('user_id'), missing('clicked'), missing('clicked'),
				text('position', 'n/a'), text('dwell_s', 'abc'), text('price', '12,5'), text('ts', 'yesterday')],
		},
		write: (rows) => [COLUMNS.join(','), ...rows.map((row) => COLUMNS.map((c) => csvField(row[c])).join(','))].join('\n') + '\n',
	},
	'clicks.json': {
		seed: 34,
		firstId: 10001,
		spec: { good: 54, exact: 3, resent: 0, bad: [dropped('user_id'), missing('clicked'), text('price', 'cheap')] },
		write: (rows) => '[\n' + rows.map((row) => '  ' + JSON.stringify(row)).join(',\n') + '\n]\n',
	},
	'clicks-stream.jsonl': {
		seed: 56,
		firstId: 20001,
		spec: { good: 36, exact: 2, resent: 0, bad: [dropped('device'), text('position', 'third')] },
		write: (rows) => rows.map((row) => JSON.stringify(row)).join('\n') + '\n',
	},
};

for (const [name, f] of Object.entries(files)) {
	const rows = build(f.seed, f.firstId, f.spec);
	writeFileSync(join(here, name), f.write(rows));
	const clicked = rows.filter((row) => row.clicked === 1).length;
	console.log(`${name}: ${rows.length} rows = ${f.spec.good} unique valid events + ${f.spec.exact} exact duplicates` +
		` + ${f.spec.resent} resent event_ids + ${f.spec.bad.length} bad rows; ${clicked} with clicked = 1`);
}
