#!/usr/bin/env node
// evaluate: a model that train made, scored on a curated version (the one it
// was trained on, or a newer one).  The input's files are hashed again and
// compared with their registered checksum, as train does.
//
// params, the model from one of:
//   model_path     its model.json (or the directory holding it)
//   model_job      the id of the train job: its model under
//                  $TINYTEMP_DATA_DIR/models/*/job-ID-a*/ (the latest attempt)
//   model          the model object itself (train's result "model")
// and:
//   split          "holdout" (default: the rows train held out, by its
//                  holdout_every) or "all"
// The job's one input: a curated version.
//
// Prints one metrics line (accuracy, loss, precision, recall, f1) and the
// result: those, the rows scored, which model (path, checksum, the version
// it was trained on), whether that is the version evaluated, inputs_read.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checksum, dataDir, emit, fail, inputsOf, main, openDuckDB, readJob, verifyInput } from './lib.mjs';
import { encode, featureSpec, isHoldout, loadRows, score } from './model.mjs';

main(async () => {
	const job = readJob();
	const p = job.params;
	const root = dataDir();
	const input = inputsOf(job, 'curated', 1, 1)[0];
	const { model, uri, sum } = loadModel(root, p);
	const split = p.split ?? 'holdout';
	if (split !== 'holdout' && split !== 'all') fail('params.split must be "holdout" or "all"');

	const before = verifyInput(input);
	const db = await openDuckDB();
	const spec = featureSpec(model);
	const rows = await loadRows(db, input, model.label, spec.numeric, spec.categorical);
	const after = verifyInput(input);
	if (after.checksum !== before.checksum) fail(`input ${input.name}@${input.version} changed while it was read`);
	const scored = split === 'all' ? rows : rows.filter((_, i) => isHoldout(i, model.holdout_every));
	if (scored.length === 0) fail(`no rows to score in ${input.name}@${input.version} (split ${split})`);
	const s = score(model, encode(scored, model), scored.map((r) => r[model.label]));
	emit({ metrics: { accuracy: s.accuracy, loss: s.loss, precision: s.precision, recall: s.recall, f1: s.f1 } });
	const trainedOn = model.trained_on ?? null;
	emit({
		evaluation: { ...s, rows: scored.length, positives: scored.filter((r) => r[model.label] === 1).length, split },
		model: { uri, checksum: sum, trained_on: trainedOn },
		same_version_as_training: trainedOn !== null && trainedOn.name === input.name && trainedOn.version === input.version
			&& trainedOn.checksum === after.checksum,
		inputs_read: [after],
	});
});

function loadModel(root, p) {
	let path = null;
	if (p.model !== undefined) {
		checkModel(p.model, 'params.model');
		return { model: p.model, uri: null, sum: null };
	}
	if (typeof p.model_path === 'string' && p.model_path !== '') {
		path = p.model_path;
		if (existsSync(path) && statSync(path).isDirectory()) path = join(path, 'model.json');
	} else if (Number.isSafeInteger(p.model_job) && p.model_job > 0) {
		const models = join(root, 'models');
		const found = [];
		for (const name of existsSync(models) ? readdirSync(models) : []) {
			for (const dir of readdirSync(join(models, name))) {
				const m = /^job-(\d+)-a(\d+)$/.exec(dir);
				if (m && Number(m[1]) === p.model_job) found.push({ attempt: Number(m[2]), path: join(models, name, dir, 'model.json') });
			}
		}
		found.sort((a, b) => b.attempt - a.attempt);
		if (found.length === 0) fail(`no model of job ${p.model_job} under ${models} (has that train job succeeded?)`);
		path = found[0].path;
	} else {
		fail('the model: params.model_path, params.model_job (the train job\'s id) or params.model');
	}
	if (!existsSync(path)) fail(`no model at ${path}`);
	let model;
	try {
		model = JSON.parse(readFileSync(path, 'utf8'));
	} catch (e) {
		fail(`${path}: not a model: ${e.message}`);
	}
	checkModel(model, path);
	return { model, uri: path, sum: checksum(path).checksum };
}

function checkModel(m, where) {
	const ok = m && m.kind === 'logistic_regression' && typeof m.label === 'string' && Array.isArray(m.numeric)
		&& Array.isArray(m.mean) && Array.isArray(m.std) && m.categories && typeof m.categories === 'object'
		&& Array.isArray(m.weights) && typeof m.bias === 'number'
		&& m.weights.length === m.numeric.length + Object.values(m.categories).reduce((s, c) => s + c.length, 0);
	if (!ok) fail(`${where}: not a model made by train`);
}
