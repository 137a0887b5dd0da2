// lance_filter.mjs - the LanceDB side of bench/filter-peers.sh (issue 8):
// filtered search on the rows, field, queries and exact filtered ground
// truth that bench/filter wrote (--gt-out DIR).
//
//   node lance_filter.mjs --rows N --nq Q --gt DIR --dir LANCEDIR
//        [--sel "1000 500 100 10 1"] [--nlist 1024] [--nprobes "16 32 64"]
//        [--M 32] [--efc 40] [--ef "32 64 128"] [--indexes "exact ivf hnsw"]
//        [--scalar btree|none] [--reps R] BASE.fvecs QUERY.fvecs
//
// Embedded LanceDB (@lancedb/lancedb, bench/peers/package-lock.json): a
// table of the first N base rows (id int32 = row, f int32 = DIR/f.i32,
// vector fixed_size_list<float32>[dim]); with --scalar btree (default) a
// BTREE index on f, which LanceDB advises for prefiltering.  Then for
// "exact" (bypassVectorIndex: a flat scan), "ivf" (IVF_FLAT, numPartitions
// nlist, cosine; each nprobes, minimum and maximum alike) and "hnsw"
// (IVF_HNSW_SQ with one partition, m M, efConstruction EFC, cosine: its
// HNSW stores scalar-quantised vectors, LanceDB has no HNSW over raw
// floats; each ef): for each bound B of --sel, the first Q queries one
// by one (query().nearestTo(q)...toArray(), awaited) with where("f < B")
// (1000: no filter), prefiltered (LanceDB's default: the filter restricts
// the rows before the search picks its candidates), limit 10, best of R
// (default 2) passes, timed with process.hrtime; recall@10 against
// DIR/gt-B.ivecs.  Output: a
// Markdown table like bench/filter's (index, param, filter, matching
// rows, recall@10, QPS, QPS / unfiltered), then "# key<TAB>value" lines
// (version, build seconds).  Threads: LANCE_CPU_THREADS,
// TOKIO_WORKER_THREADS, RAYON_NUM_THREADS (set by the caller).
import * as fs from "node:fs";
import * as lancedb from "@lancedb/lancedb";
import { createRequire } from "node:module";
// LanceDB loads apache-arrow as CommonJS: the same instance for its
// instanceof checks.
const arrow = createRequire(import.meta.url)("apache-arrow");

function die(msg) {
	process.stderr.write(`lance_filter: ${msg}\n`);
	process.exit(1);
}

const opt = {
	rows: 200000, nq: 1000, gt: "", dir: "", sel: "1000 500 100 10 1",
	nlist: 1024, nprobes: "16 32 64", M: 32, efc: 40, ef: "32 64 128",
	indexes: "exact ivf hnsw", scalar: "btree", reps: 2,
};
const pos = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
	if (argv[i].startsWith("--")) {
		const key = argv[i].slice(2);
		if (!(key in opt) || i + 1 >= argv.length) die(`bad option ${argv[i]}`);
		opt[key] = argv[++i];
	} else pos.push(argv[i]);
}
if (pos.length !== 2 || !opt.gt || !opt.dir) die("usage: see the head of lance_filter.mjs");
const K = 10;
const list = (s) => String(s).trim().split(/\s+/).map(Number);

// fvecs / ivecs: per row an int32 dim, then dim values; the first max rows.
function readVecs(file, Kind, max) {
	const buf = fs.readFileSync(file);
	const dim = buf.readInt32LE(0);
	const n = Math.min(max, buf.length / (4 + 4 * dim));
	const out = new Kind(n * dim);
	const src = new Kind(buf.buffer, buf.byteOffset, buf.length / 4);
	for (let r = 0; r < n; r++) out.set(src.subarray(r * (dim + 1) + 1, (r + 1) * (dim + 1)), r * dim);
	return { n, dim, data: out };
}

const base = readVecs(pos[0], Float32Array, Number(opt.rows));
const query = readVecs(pos[1], Float32Array, Number(opt.nq));
const dim = base.dim;
const nq = query.n;
const fbuf = fs.readFileSync(`${opt.gt}/f.i32`);
if (fbuf.length / 4 < base.n) die(`${opt.gt}/f.i32 has fewer rows than ${base.n}`);
const fcol = new Int32Array(fbuf.buffer.slice(fbuf.byteOffset, fbuf.byteOffset + base.n * 4));
const sels = list(opt.sel);
const gts = new Map();
const nmatch = new Map();
for (const b of sels) {
	const g = readVecs(`${opt.gt}/gt-${b}.ivecs`, Int32Array, nq);
	if (g.n !== nq || g.dim !== K) die(`gt-${b}.ivecs: want ${nq} rows of ${K}`);
	gts.set(b, g);
	let m = 0;
	for (let i = 0; i < base.n; i++) if (fcol[i] < b) m++;
	nmatch.set(b, m);
}

// recall@10 as bench/filter counts it: hits among the true ids (-1: none).
function recall(labels, gt) {
	let hits = 0, want = 0;
	for (let q = 0; q < nq; q++) {
		const got = new Set(labels[q]);
		for (let j = 0; j < K; j++) {
			const id = gt.data[q * K + j];
			if (id < 0) continue;
			want++;
			if (got.has(id)) hits++;
		}
	}
	return want ? hits / want : 1;
}

const schema = new arrow.Schema([
	new arrow.Field("id", new arrow.Int32(), false),
	new arrow.Field("f", new arrow.Int32(), false),
	new arrow.Field("vector", new arrow.FixedSizeList(dim, new arrow.Field("item", new arrow.Float32(), true)), false),
]);
const ids = new Int32Array(base.n);
for (let i = 0; i < base.n; i++) ids[i] = i;
const struct = arrow.makeData({
	type: new arrow.Struct(schema.fields),
	length: base.n,
	children: [
		arrow.makeData({ type: new arrow.Int32(), length: base.n, data: ids }),
		arrow.makeData({ type: new arrow.Int32(), length: base.n, data: fcol }),
		arrow.makeData({
			type: schema.fields[2].type, length: base.n,
			child: arrow.makeData({ type: new arrow.Float32(), length: base.n * dim, data: base.data }),
		}),
	],
});
const now = () => Number(process.hrtime.bigint()) / 1e9;
const db = await lancedb.connect(opt.dir);
const tbl = await db.createTable("fbench", new arrow.Table([new arrow.RecordBatch(schema, struct)]), { mode: "overwrite" });
if ((await tbl.countRows()) !== base.n) die("row count differs after createTable");
const info = [];
if (opt.scalar === "btree") {
	const t0 = now();
	await tbl.createIndex("f", { config: lancedb.Index.btree() });
	info.push(["btree_build_s", (now() - t0).toFixed(3)]);
}
const qv = (q) => Array.from(query.data.subarray(q * dim, (q + 1) * dim));

// The nq queries one at a time, each awaited (a multi-vector query of
// many, addQueryVector, took 15 GB on 200,000 rows without an index):
// the ids per query.
async function search(kind, v, b) {
	const labels = new Array(nq);
	for (let q = 0; q < nq; q++) {
		let s = tbl.query().nearestTo(qv(q)).distanceType("cosine").limit(K).select(["id", "_distance"]);
		if (b < 1000) s = s.where(`f < ${b}`);
		if (kind === "exact") s = s.bypassVectorIndex();
		else if (kind === "ivf") s = s.nprobes(v);
		else s = s.nprobes(1).ef(v);
		labels[q] = (await s.toArray()).map((r) => r.id);
	}
	return labels;
}

console.log("| index | param | filter | matching rows | recall@10 | QPS | QPS / unfiltered |");
console.log("|---|---|---|---|---|---|---|");
for (const kind of opt.indexes.trim().split(/\s+/)) {
	let params = [0];
	if (kind === "ivf" || kind === "hnsw") {
		const t0 = now();
		const config = kind === "ivf"
			? lancedb.Index.ivfFlat({ numPartitions: Number(opt.nlist), distanceType: "cosine" })
			: lancedb.Index.hnswSq({ numPartitions: 1, m: Number(opt.M), efConstruction: Number(opt.efc), distanceType: "cosine" });
		await tbl.createIndex("vector", { config, replace: true });
		info.push([`${kind}_build_s`, (now() - t0).toFixed(3)]);
		params = list(kind === "ivf" ? opt.nprobes : opt.ef);
	} else if (kind !== "exact") die(`unknown index ${kind}`);
	const label = kind === "exact" ? "exact" : kind === "ivf" ? `IVF_FLAT ${opt.nlist}` : `IVF_HNSW_SQ M${opt.M}`;
	for (const v of params) {
		await search(kind, v, 1000);	// warm the caches (and the JIT)
		let baseQps = 0;
		for (const b of sels) {
			let best = 1e30, labels = null;
			for (let rep = 0; rep < Number(opt.reps); rep++) {
				const t0 = now();
				labels = await search(kind, v, b);
				best = Math.min(best, now() - t0);
			}
			const qps = nq / best;
			if (b === 1000) baseQps = qps;
			const p = kind === "exact" ? "-" : `${kind === "ivf" ? "nprobes" : "ef"}=${v}`;
			console.log(`| ${label} | ${p} | ${b < 1000 ? `f < ${b}` : "none"} | ${nmatch.get(b)} | ` +
				`${recall(labels, gts.get(b)).toFixed(4)} | ${qps.toFixed(qps < 10 ? 2 : 0)} | ` +
				`${baseQps ? (qps / baseQps).toFixed(2) : "-"} |`);
		}
	}
}
const ver = JSON.parse(fs.readFileSync(new URL("./node_modules/@lancedb/lancedb/package.json", import.meta.url))).version;
console.log(`# lancedb\t${ver}`);
for (const [k, v] of info) console.log(`# ${k}\t${v}`);
