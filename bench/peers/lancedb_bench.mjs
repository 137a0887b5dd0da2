// lancedb_bench.mjs - the LanceDB side of bench/peers.sh (issue 9).
//
//   node lancedb_bench.mjs --metric l2|cosine --index ivf|hnsw --nlist N
//        --M M --efc EFC --sweep "V1 V2 ..." [--batch B] --dir DIR
//        BASE.fvecs QUERY.fvecs GT.ivecs
//
// Embedded LanceDB (@lancedb/lancedb, bench/peers/package-lock.json):
// connect(DIR), createTable from an Arrow table (id int32 = base row,
// vector fixed_size_list<float32>[dim]), then an fsync of every file the
// table wrote (LanceDB itself does not promise it): ingest_s.  createIndex
// on "vector": ivf = Index.ivfFlat({numPartitions: N}), hnsw =
// Index.hnswSq({numPartitions: 1, m: M, efConstruction: EFC}) (LanceDB's
// HNSW stores scalar-quantised vectors; it has no HNSW over raw floats),
// both with the benchmark's distanceType: build_s.  Bytes on disk: the
// whole table directory.  For each sweep value (nprobes for ivf, ef for
// hnsw): "batch", the queries in multi-vector queries of B vectors
// (addQueryVector), and single queries, one awaited call each
// (query().nearestTo(q).limit(k)...toArray()), timed with
// process.hrtime.  Threads: LANCE_CPU_THREADS, TOKIO_WORKER_THREADS,
// RAYON_NUM_THREADS (set by bench/peers.sh).  Output as bench/faiss_index:
// "# key<TAB>value" lines, then param value recall qps_batch median_us
// p90_us p99_us qps_single recall_single per sweep value.
import * as fs from "node:fs";
import * as path from "node:path";
import * as lancedb from "@lancedb/lancedb";
import { createRequire } from "node:module";
// LanceDB loads apache-arrow as CommonJS: take the same instance, so that
// its instanceof checks accept our table.
const arrow = createRequire(import.meta.url)("apache-arrow");

function die(msg) {
	process.stderr.write(`lancedb_bench: ${msg}\n`);
	process.exit(1);
}

const opt = { metric: "l2", index: "ivf", nlist: 1024, M: 32, efc: 40, sweep: "1 4 16 64", batch: 1000, k: 10 };
const pos = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
	if (argv[i].startsWith("--")) {
		const key = argv[i].slice(2);
		if (!(key in opt) && key !== "dir") die(`unknown option ${argv[i]}`);
		opt[key] = argv[++i];
	} else pos.push(argv[i]);
}
if (pos.length !== 3 || !opt.dir) die("usage: see the head of lancedb_bench.mjs");
const k = Number(opt.k);

// fvecs / ivecs: per row an int32 dim, then dim values.
function readVecs(file, Kind) {
	const buf = fs.readFileSync(file);
	const dim = buf.readInt32LE(0);
	const n = buf.length / (4 + 4 * dim);
	const out = new Kind(n * dim);
	const src = new Kind(buf.buffer, buf.byteOffset, buf.length / 4);
	for (let r = 0; r < n; r++) out.set(src.subarray(r * (dim + 1) + 1, (r + 1) * (dim + 1)), r * dim);
	return { n, dim, data: out };
}

function countHits(labels, gt, nq) {
	let h = 0;
	for (let q = 0; q < nq; q++) {
		const truth = new Set(gt.data.subarray(q * gt.dim, q * gt.dim + k));
		for (const id of labels[q]) if (truth.has(id)) h++;
	}
	return h;
}

function fsyncTree(dir) {
	for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
		const p = path.join(dir, e.name);
		if (e.isDirectory()) fsyncTree(p);
		const fd = fs.openSync(p, "r");
		fs.fsyncSync(fd);
		fs.closeSync(fd);
	}
	const fd = fs.openSync(dir, "r");
	fs.fsyncSync(fd);
	fs.closeSync(fd);
}

function duBytes(dir) {
	let s = 0;
	for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
		const p = path.join(dir, e.name);
		s += e.isDirectory() ? duBytes(p) : fs.statSync(p).size;
	}
	return s;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;
const base = readVecs(pos[0], Float32Array);
const query = readVecs(pos[1], Float32Array);
const gt = readVecs(pos[2], Int32Array);
const dim = base.dim;
const dt = opt.metric === "ip" ? "dot" : opt.metric;

const itemField = new arrow.Field("item", new arrow.Float32(), true);
const vecType = new arrow.FixedSizeList(dim, itemField);
const schema = new arrow.Schema([
	new arrow.Field("id", new arrow.Int32(), false),
	new arrow.Field("vector", vecType, false),
]);
const ids = new Int32Array(base.n);
for (let i = 0; i < base.n; i++) ids[i] = i;
const child = arrow.makeData({ type: new arrow.Float32(), length: base.n * dim, data: base.data });
const struct = arrow.makeData({
	type: new arrow.Struct(schema.fields),
	length: base.n,
	children: [
		arrow.makeData({ type: new arrow.Int32(), length: base.n, data: ids }),
		arrow.makeData({ type: vecType, length: base.n, child }),
	],
});
const table = new arrow.Table([new arrow.RecordBatch(schema, struct)]);

let t0 = now();
const db = await lancedb.connect(opt.dir);
const tbl = await db.createTable("bench", table, { mode: "overwrite" });
fsyncTree(opt.dir);
const ingest = now() - t0;
if ((await tbl.countRows()) !== base.n) die("row count differs after createTable");

t0 = now();
const config = opt.index === "hnsw"
	? lancedb.Index.hnswSq({ numPartitions: 1, m: Number(opt.M), efConstruction: Number(opt.efc), distanceType: dt })
	: lancedb.Index.ivfFlat({ numPartitions: Number(opt.nlist), distanceType: dt });
await tbl.createIndex("vector", { config, replace: true });
const build = now() - t0;
const disk = duBytes(opt.dir);

console.log(`# lancedb\t${JSON.parse(fs.readFileSync(new URL("./node_modules/@lancedb/lancedb/package.json", import.meta.url))).version}`);
console.log(`# ntotal\t${base.n}\n# dim\t${dim}\n# metric\t${opt.metric}\n# index\t${opt.index}`);
console.log(`# ingest_s\t${ingest.toFixed(3)}\n# build_s\t${build.toFixed(3)}\n# disk_bytes\t${disk}`);
console.log("param\tvalue\trecall\tqps_batch\tmedian_us\tp90_us\tp99_us\tqps_single\trecall_single");

const pname = opt.index === "hnsw" ? "ef" : "nprobe";
const nq = query.n;
const qv = (q) => Array.from(query.data.subarray(q * dim, (q + 1) * dim));

function search(q0, n, v) {
	let s = tbl.query().nearestTo(qv(q0));
	for (let q = q0 + 1; q < q0 + n; q++) s = s.addQueryVector(qv(q));
	s = s.distanceType(dt).limit(k).select(["id"]);
	s = opt.index === "hnsw" ? s.ef(v).nprobes(1) : s.nprobes(v);
	return s.toArray();
}

const warm = Number(opt.sweep.split(/\s+/)[0]);
for (let q = 0; q < Math.min(nq, 100); q++) await search(q, 1, warm);
for (const v of opt.sweep.trim().split(/\s+/).map(Number)) {
	const B = Number(opt.batch);
	const labels = Array.from({ length: nq }, () => []);
	t0 = now();
	for (let q0 = 0; q0 < nq; q0 += B) {
		const n = Math.min(B, nq - q0);
		const rows = await search(q0, n, v);
		for (const r of rows) labels[n === 1 ? q0 : q0 + r.query_index].push(r.id);
	}
	const tb = now() - t0;
	const slab = new Array(nq);
	const lat = new Float64Array(nq);
	for (let q = 0; q < nq; q++) {
		const ta = now();
		const rows = await search(q, 1, v);
		lat[q] = now() - ta;
		slab[q] = rows.map((r) => r.id);
	}
	const sum = lat.reduce((a, b) => a + b, 0);
	lat.sort();
	const pick = (p) => (lat[Math.min(nq - 1, Math.max(0, Math.ceil(p * nq) - 1))] * 1e6).toFixed(1);
	console.log([pname, v, (countHits(labels, gt, nq) / (nq * k)).toFixed(4), (nq / tb).toFixed(1),
		pick(0.5), pick(0.9), pick(0.99), (nq / sum).toFixed(1),
		(countHits(slab, gt, nq) / (nq * k)).toFixed(4)].join("\t"));
}
