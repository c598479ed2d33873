// model.mjs: the logistic regression that train fits and evaluate scores:
// numeric features standardized with the training rows' mean and standard
// deviation, categorical ones one-hot encoded over the categories seen in
// training, a weight per column and a bias, fitted by full-batch gradient
// descent on the log loss (with an optional L2 penalty).
import { fail, readParquetSql, sqlIdent } from './lib.mjs';

// The rows of a curated version as plain objects, in a fixed order (by
// every column), so that the holdout split does not depend on the files'
// layout.  Numeric features and the label come as DOUBLE.
export async function loadRows(db, input, label, numeric, categorical) {
	const cols = [
		...numeric.map((c) => `CAST(${sqlIdent(c)} AS DOUBLE) AS ${sqlIdent(c)}`),
		...categorical.map((c) => `CAST(${sqlIdent(c)} AS VARCHAR) AS ${sqlIdent(c)}`),
		`CAST(${sqlIdent(label)} AS DOUBLE) AS ${sqlIdent(label)}`,
	];
	let rows;
	try {
		rows = await db.all(`SELECT ${cols.join(', ')} FROM (SELECT * FROM ${readParquetSql(input)} ORDER BY ALL)`);
	} catch (e) {
		fail(`cannot read the features ${[...numeric, ...categorical].join(', ')} and label ${label} from ` +
			`${input.name}@${input.version}: ${e.message}`);
	}
	for (const [i, r] of rows.entries()) {
		if (r[label] !== 0 && r[label] !== 1) fail(`row ${i + 1}: the label ${label} is ${r[label]}, not 0 or 1`);
		for (const c of numeric) if (r[c] === null || !Number.isFinite(r[c])) fail(`row ${i + 1}: feature ${c} is ${r[c]}`);
	}
	return rows;
}

// Which rows are held out: every EVERY-th (1-based) of the ordered rows.
export function isHoldout(index, every) {
	return every > 0 && (index + 1) % every === 0;
}

export function featureSpec(model) {
	return { numeric: model.numeric, categorical: Object.keys(model.categories) };
}

// The design matrix of ROWS for MODEL (mean, std, categories known).
export function encode(rows, model) {
	return rows.map((r) => {
		const x = model.numeric.map((c, j) => (r[c] - model.mean[j]) / model.std[j]);
		for (const [c, cats] of Object.entries(model.categories)) for (const v of cats) x.push(r[c] === v ? 1 : 0);
		return x;
	});
}

const sigmoid = (z) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

export function predict(model, x) {
	let z = model.bias;
	for (let j = 0; j < x.length; j++) z += model.weights[j] * x[j];
	return sigmoid(z);
}

// Log loss, accuracy, precision, recall and F1 of MODEL on X, Y.
export function score(model, X, y) {
	let loss = 0;
	let tp = 0;
	let fp = 0;
	let tn = 0;
	let fn = 0;
	for (let i = 0; i < X.length; i++) {
		const p = Math.min(Math.max(predict(model, X[i]), 1e-12), 1 - 1e-12);
		loss -= y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p);
		const hit = p >= 0.5 ? 1 : 0;
		if (hit && y[i]) tp++;
		else if (hit) fp++;
		else if (y[i]) fn++;
		else tn++;
	}
	const n = X.length || 1;
	const precision = tp + fp ? tp / (tp + fp) : 0;
	const recall = tp + fn ? tp / (tp + fn) : 0;
	return {
		loss: loss / n,
		accuracy: (tp + tn) / n,
		precision,
		recall,
		f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
	};
}

// Fit on the training rows; calls onEpoch(epoch, model) after each epoch,
// and lets the event loop turn between epochs (a SIGTERM is handled there).
export async function fit(rows, spec, opts, onEpoch) {
	const { label, numeric, categorical } = spec;
	const mean = numeric.map((c) => rows.reduce((s, r) => s + r[c], 0) / rows.length);
	const std = numeric.map((c, j) => {
		const v = rows.reduce((s, r) => s + (r[c] - mean[j]) ** 2, 0) / rows.length;
		return v > 0 ? Math.sqrt(v) : 1;
	});
	const categories = Object.fromEntries(categorical.map((c) => [c, [...new Set(rows.map((r) => r[c]))].sort()]));
	const model = { numeric, mean, std, categories, weights: [], bias: 0 };
	const X = encode(rows, model);
	const y = rows.map((r) => r[label]);
	const d = X[0]?.length ?? 0;
	model.weights = new Array(d).fill(0);
	for (let epoch = 1; epoch <= opts.epochs; epoch++) {
		const grad = new Array(d).fill(0);
		let gb = 0;
		for (let i = 0; i < X.length; i++) {
			const err = predict(model, X[i]) - y[i];
			for (let j = 0; j < d; j++) grad[j] += err * X[i][j];
			gb += err;
		}
		for (let j = 0; j < d; j++) model.weights[j] -= opts.learning_rate * (grad[j] / X.length + opts.l2 * model.weights[j]);
		model.bias -= opts.learning_rate * (gb / X.length);
		onEpoch(epoch, model);
		await new Promise((resolve) => setImmediate(resolve));
	}
	return model;
}
