#!/usr/bin/env node
// train: a logistic regression on a curated version (model.mjs), in plain
// JavaScript.  Before and after reading, the input's files are hashed again
// and compared with the checksum they were registered with; a difference
// fails the job.  Every holdout_every-th row (of the rows ordered by every
// column) is held out for validation.
//
// params:
//   label          the 0/1 column to predict (required)
//   features       numeric columns (required, at least one)
//   categorical    columns one-hot encoded (default none)
//   epochs         default 60; learning_rate default 0.5; l2 default 0
//   holdout_every  default 5 (0: no holdout)
//   model_name     default: the input's name with -curated replaced by -model
// The job's one input: a curated version.
//
// Prints a metrics line per epoch ({"metrics": {"loss", "accuracy",
// "val_loss", "val_accuracy"}, "step": EPOCH}); writes the model to
// $TINYTEMP_DATA_DIR/models/MODEL_NAME/job-ID-aATTEMPT/model.json (a model
// is no dataset layer: it is not registered); the result line has the
// model, its path and checksum, and inputs_read.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
	checkName, checksum, dataDir, derivedName, emit, fail, inputsOf, main, newVersionDir, openDuckDB, readJob, verifyInput,
} from './lib.mjs';
import { encode, fit, isHoldout, loadRows, score } from './model.mjs';

main(async () => {
	const job = readJob();
	const p = job.params;
	const root = dataDir();
	const input = inputsOf(job, 'curated', 1, 1)[0];
	const label = p.label;
	const numeric = p.features;
	const categorical = p.categorical ?? [];
	if (typeof label !== 'string' || label === '') fail('params.label is required (the 0/1 column to predict)');
	if (!Array.isArray(numeric) || numeric.length === 0 || !numeric.every((c) => typeof c === 'string'))
		fail('params.features is required: an array of numeric column names');
	if (!Array.isArray(categorical) || !categorical.every((c) => typeof c === 'string'))
		fail('params.categorical must be an array of column names');
	const opts = {
		epochs: intParam(p.epochs, 'epochs', 60, 1, 100000),
		learning_rate: numParam(p.learning_rate, 'learning_rate', 0.5),
		l2: numParam(p.l2, 'l2', 0),
	};
	const every = intParam(p.holdout_every, 'holdout_every', 5, 0, 1000000);
	const modelName = checkName('params.model_name', p.model_name ?? derivedName(input.name, 'curated', 'model'));

	const before = verifyInput(input);
	const db = await openDuckDB();
	const rows = await loadRows(db, input, label, numeric, categorical);
	const after = verifyInput(input);
	if (after.checksum !== before.checksum) fail(`input ${input.name}@${input.version} changed while it was read`);
	const train = rows.filter((_, i) => !isHoldout(i, every));
	const holdout = rows.filter((_, i) => isHoldout(i, every));
	if (train.length === 0) fail(`input ${input.name}@${input.version} has no training rows`);

	const yTrain = train.map((r) => r[label]);
	const yHold = holdout.map((r) => r[label]);
	let Xhold = null;
	let Xtrain = null;
	let last = null;
	const model = await fit(train, { label, numeric, categorical }, opts, (epoch, m) => {
		if (Xtrain === null) {
			Xtrain = encode(train, m);
			Xhold = encode(holdout, m);
		}
		const t = score(m, Xtrain, yTrain);
		const metrics = { loss: t.loss, accuracy: t.accuracy };
		if (holdout.length) {
			const v = score(m, Xhold, yHold);
			metrics.val_loss = v.loss;
			metrics.val_accuracy = v.accuracy;
		}
		last = metrics;
		emit({ metrics, step: epoch });
	});
	const artifact = {
		kind: 'logistic_regression',
		label,
		...model,
		holdout_every: every,
		trained_on: { name: input.name, version: input.version, checksum: after.checksum, rows: train.length },
		trained_by: { job_id: job.id, attempt: job.attempt },
		options: opts,
	};
	const out = newVersionDir(root, 'models', modelName, job);
	writeFileSync(join(out.tmp, 'model.json'), `${JSON.stringify(artifact, null, 1)}\n`);
	const sum = checksum(out.tmp);
	const uri = out.commit();
	emit({
		model_uri: join(uri, 'model.json'),
		model_checksum: sum.checksum,
		model: artifact,
		final: last,
		rows: { train: train.length, holdout: holdout.length },
		inputs_read: [after],
	});
});

function intParam(v, name, dflt, min, max) {
	if (v === undefined || v === null) return dflt;
	if (!Number.isSafeInteger(v) || v < min || v > max) fail(`params.${name} must be an integer from ${min} to ${max}`);
	return v;
}

function numParam(v, name, dflt) {
	if (v === undefined || v === null) return dflt;
	if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`params.${name} must be a number >= 0`);
	return v;
}
