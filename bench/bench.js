#!/usr/bin/env node
'use strict';
// Benchmark lowbit-compiled executables against onnxruntime-node (CPU, in-process), in float and
// in int8.
//
//   node bench/bench.js [--lowbit <build>/bin/lowbit] --models OUTDIR [--threads 1,2]
//                       [--iters N] [--rounds R] [--only a,b] [--no-int8] [--out docs/performance.md]
//
// OUTDIR is what bench/make_models.py wrote: OUTDIR/NAME/{model.onnx,input_0.pb,meta.json}, and
// for the int8 comparisons meta.json "variants": [{name, lowbit_flags, ort_model, ort_label}]:
// lowbit compiled with extra flags (e.g. --quant w8a8 --calib calib, paths relative to the model
// folder) against onnxruntime running another model file (its int8 version).
// For every model each distinct lowbit build is compiled once (OUTDIR/NAME/lowbit.exe for float,
// lowbit-<variant>.exe for int8) and its output checked against onnxruntime's float output
// (max |diff|). Then for each thread count T, R rounds interleave every configuration of the model:
//   onnxruntime: session (graphOptimizationLevel 'all', intraOpNumThreads=T, interOpNumThreads=1),
//                warm-up, N timed session.run calls -> median   (float model, then each int8 file)
//   lowbit:      `exe input_0.pb --threads T --bench N` -> median_ms   (float, then each int8 build)
// and the reported figure is the median of the R round medians. A row is
//   model, int8 variant, threads, lowbit fp32, lowbit int8, ort fp32, ort int8 (ms), ratios.
// Without --lowbit only onnxruntime is timed and the lowbit columns read n/a.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const lib = require('./ortlib');
const tio = require('./tensorio');

function die(msg) { process.stderr.write(`bench: ${msg}\n`); process.exit(2); }

function parseArgs(argv) {
  const a = { lowbit: null, models: null, threads: [1, 2], iters: 100, rounds: 5, out: null, only: null, warmup: null, minRoundMs: 500, int8: true };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const next = () => { if (i + 1 >= argv.length) die(`${x} needs a value`); return argv[++i]; };
    if (x === '--lowbit') a.lowbit = path.resolve(next());
    else if (x === '--models') a.models = path.resolve(next());
    else if (x === '--threads') a.threads = next().split(',').map((s) => parseInt(s, 10));
    else if (x === '--iters') a.iters = parseInt(next(), 10);
    else if (x === '--rounds') a.rounds = parseInt(next(), 10);
    else if (x === '--warmup') a.warmup = parseInt(next(), 10);
    else if (x === '--min-round-ms') a.minRoundMs = parseFloat(next());
    else if (x === '--out') a.out = path.resolve(next());
    else if (x === '--only') a.only = next().split(',');
    else if (x === '--no-int8') a.int8 = false;
    else if (x === '-h' || x === '--help') {
      process.stdout.write('usage: node bench.js [--lowbit PATH] --models DIR [--threads 1,2] [--iters N] ' +
        '[--rounds R] [--warmup W] [--min-round-ms MS] [--only a,b] [--no-int8] [--out FILE.md]\n');
      process.exit(0);
    } else die(`unknown argument ${x}`);
  }
  if (!a.models) die('--models DIR is required (make it with bench/make_models.py)');
  if (a.threads.some((t) => !(t >= 1))) die('bad --threads');
  if (!(a.iters >= 1) || !(a.rounds >= 1)) die('bad --iters/--rounds');
  if (a.warmup === null) a.warmup = Math.max(5, Math.ceil(a.iters / 10));
  return a;
}

function listModels(dir, only) {
  const order = ['mlp4x1024_b1', 'mlp4x1024_b64', 'mlp8x4096_b1', 'gpt'];
  let names = fs.readdirSync(dir).filter((n) => fs.existsSync(path.join(dir, n, 'meta.json')));
  names.sort((x, y) => {
    const ix = order.indexOf(x), iy = order.indexOf(y);
    return (ix < 0 ? 99 : ix) - (iy < 0 ? 99 : iy) || x.localeCompare(y);
  });
  if (only) names = names.filter((n) => only.includes(n));
  if (!names.length) die(`no models in ${dir}`);
  return names.map((n) => {
    const d = path.join(dir, n);
    const meta = JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8'));
    return {
      name: n, dir: d, model: path.join(d, meta.model || 'model.onnx'),
      inputs: (meta.inputs || ['input_0.pb']).map((f) => path.join(d, f)), dims: meta.dims || {},
      variants: (meta.variants || []).map((v) => ({ ...v, ortModel: path.join(d, v.ort_model) })),
    };
  });
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}${r.signal ? ` (${r.signal})` : ''}\n${r.stderr}`);
  }
  return r.stdout;
}

// flags: extra compile flags (int8 variants), relative paths resolved in the model folder.
function compileLowbit(lowbit, m, name = null, flags = []) {
  const exe = path.join(m.dir, name ? `lowbit-${name}.exe` : 'lowbit.exe');
  const args = ['compile', m.model, '-o', exe, ...flags];
  for (const [k, v] of Object.entries(m.dims)) args.push('--dim', `${k}=${v}`);
  const t0 = Date.now();
  run(lowbit, args, { cwd: m.dir });
  return { exe, compileS: (Date.now() - t0) / 1000 };
}

function lowbitBench(exe, inputs, threads, iters) {
  const out = run(exe, [...inputs, '--threads', String(threads), '--bench', String(iters)]);
  const lines = out.trim().split('\n').filter((l) => l.trim().startsWith('{'));
  if (!lines.length) throw new Error(`${exe} --bench printed no JSON line:\n${out}`);
  const j = JSON.parse(lines[lines.length - 1]);
  if (typeof j.median_ms !== 'number') throw new Error(`${exe} --bench: no median_ms in ${lines[lines.length - 1]}`);
  return j.median_ms;
}

// Max |lowbit - ort| over all outputs (run once).
async function checkOutputs(exe, m, session) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lowbit-bench-'));
  try {
    run(exe, [...m.inputs, '-o', tmp]);
    const res = await session.run(lib.loadFeeds(session, m.inputs));
    let maxDiff = 0;
    session.outputNames.forEach((name, k) => {
      const mine = tio.readTensorFile(path.join(tmp, `output_${k}.pb`)).data;
      const ref = res[name].data;
      if (mine.length !== ref.length) throw new Error(`${m.name}: output ${k} has ${mine.length} elements, ORT ${ref.length}`);
      for (let i = 0; i < ref.length; i++) {
        const d = Math.abs(Number(mine[i]) - Number(ref[i]));
        if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? NaN : d;
        if (Number.isNaN(maxDiff)) break;
      }
    });
    return maxDiff;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function lscpu() {
  const info = { model: os.cpus()[0] ? os.cpus()[0].model : 'unknown', cpus: os.cpus().length };
  try {
    const out = spawnSync('lscpu', [], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).stdout || '';
    const get = (k) => { const m = new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(out); return m ? m[1].trim() : null; };
    info.model = get('Model name') || info.model;
    info.cpus = get('CPU\\(s\\)') || info.cpus;
    info.family = get('CPU family');
    info.modelNo = get('Model');
    info.cores = Number(get('Core\\(s\\) per socket') || 0) * Number(get('Socket\\(s\\)') || 1) || null;
    const flags = get('Flags') || '';
    info.avx512 = /\bavx512f\b/.test(flags);
  } catch (e) { /* keep os.cpus() values */ }
  return info;
}

function gitCommit() {
  const r = spawnSync('git', ['-C', path.join(__dirname, '..'), 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'n/a (no commit)';
}

const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));

// One model: compile its lowbit builds, then time every configuration, interleaved, per
// thread count. Returns the table rows.
async function benchModel(a, m) {
  const variants = a.int8 ? m.variants : [];
  // distinct lowbit builds (by variant name) and onnxruntime files
  const lbBuilds = [{ key: 'fp32', name: null, flags: [] }];
  for (const v of variants) {
    if (!lbBuilds.some((b) => b.key === v.name)) lbBuilds.push({ key: v.name, name: v.name, flags: v.lowbit_flags });
  }
  const ortFiles = [{ key: 'fp32', file: m.model }];
  for (const v of variants) {
    if (!ortFiles.some((f) => f.key === v.ort_model)) ortFiles.push({ key: v.ort_model, file: v.ortModel });
  }
  if (a.lowbit) {
    for (const b of lbBuilds) {
      process.stderr.write(`[${m.name}] lowbit compile ${b.key}${b.flags.length ? ` (${b.flags.join(' ')})` : ''}\n`);
      try {
        Object.assign(b, compileLowbit(a.lowbit, m, b.name, b.flags));
      } catch (e) { /* an int8 build that fails leaves its columns n/a; the float one must work */
        if (!b.name) throw e;
        b.error = e.message.split('\n').filter((l) => l.trim()).slice(-1)[0] || 'failed';
        process.stderr.write(`[${m.name}] lowbit ${b.key}: ${e.message}\n`);
      }
    }
  }
  const lbTimed = lbBuilds.filter((b) => b.exe);
  const rows = [];
  for (const T of a.threads) {
    const sessions = [];
    for (const f of ortFiles) sessions.push({ ...f, session: await lib.createSession(f.file, { threads: T, opt: 'all' }) });
    for (const s of sessions) s.feeds = lib.loadFeeds(s.session, m.inputs);
    if (T === a.threads[0]) {
      for (const b of lbTimed) b.maxDiff = await checkOutputs(b.exe, m, sessions[0].session);
    }
    /* Rounds of a fast model would last a few ms and catch any hiccup of the
     * machine: run enough iterations that each round takes at least --min-round-ms. */
    let probe = Infinity;
    for (const s of sessions) probe = Math.min(probe, lib.median(await lib.timeRuns(s.session, s.feeds, 5, a.warmup)));
    const iters = Math.max(a.iters, Math.ceil(a.minRoundMs / Math.max(probe, 1e-3)));
    for (const s of sessions) s.meds = [];
    for (const b of lbTimed) b.meds = [];
    for (let r = 0; r < a.rounds; r++) {
      for (const s of sessions) s.meds.push(lib.median(await lib.timeRuns(s.session, s.feeds, iters, a.warmup)));
      for (const b of lbTimed) b.meds.push(lowbitBench(b.exe, m.inputs, T, iters));
      process.stderr.write(`[${m.name} T=${T}] round ${r + 1}/${a.rounds}: ` +
        [...sessions.map((s) => `ort ${s.key} ${fmt(s.meds[r])}`), ...lbTimed.map((b) => `lowbit ${b.key} ${fmt(b.meds[r])}`)]
          .join(', ') + ' ms\n');
    }
    for (const s of sessions) await s.session.release();
    const ortMs = (key) => lib.median(sessions.find((s) => s.key === key).meds);
    const lbMs = (key) => { const b = lbTimed.find((x) => x.key === key); return b ? lib.median(b.meds) : null; };
    const lbDiff = (key) => { const b = lbTimed.find((x) => x.key === key); return b ? b.maxDiff : null; };
    const base = { model: m.name, threads: T, lbFp32: lbMs('fp32'), ortFp32: ortMs('fp32'), maxDiff: lbDiff('fp32') };
    if (!variants.length) rows.push({ ...base, variant: null, lbInt8: null, ortInt8: null, int8Diff: null });
    for (const v of variants) {
      const build = lbBuilds.find((b) => b.key === v.name);
      rows.push({ ...base, variant: `${v.name} vs ${v.ort_label}`, lbInt8: lbMs(v.name), ortInt8: ortMs(v.ort_model),
        int8Diff: lbDiff(v.name), int8Error: build.error || null, minSpeedup: v.min_speedup || null,
        weightBytes: v.weight_bytes || null });
    }
  }
  return rows;
}

const ratio = (x, y) => (x === null || y === null ? null : x / y);
const geomean = (xs) => (xs.length ? Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length) : null);

// The speed acceptance of an int8 row: lowbit int8 at least as fast as onnxruntime's int8 and
// faster than lowbit's own fp32.
// A quantized row is accepted when lowbit's build is at least as fast as onnxruntime's
// quantized model and faster than lowbit fp32 by the variant's min_speedup (default: any).
function verdict(r) {
  if (r.lbInt8 === null || r.lbInt8 === undefined) return r.int8Error ? 'build failed' : 'n/a';
  const fastEnough = r.minSpeedup ? r.lbInt8 * r.minSpeedup <= r.lbFp32 : r.lbInt8 < r.lbFp32;
  return r.lbInt8 <= r.ortInt8 && fastEnough ? 'yes' : 'no';
}

// The machine's memory read bandwidth per thread count (bench/membw.c), for the rows whose
// variant gives weight_bytes (batch-1 low-bit: bounded by reading the weights once).
function readBandwidth(threads) {
  const exe = path.join(os.tmpdir(), `lowbit-membw-${process.pid}`);
  run('cc', ['-O3', '-march=native', '-pthread', path.join(__dirname, 'membw.c'), '-o', exe]);
  const bw = {};
  try {
    for (const T of threads) bw[T] = JSON.parse(run(exe, [String(T)]).trim()).gbps;
  } finally {
    fs.rmSync(exe, { force: true });
  }
  return bw;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const loadStart = os.loadavg()[0];
  const models = listModels(a.models, a.only);
  const rows = [];
  for (const m of models) rows.push(...(await benchModel(a, m)));

  const fmtDiff = (x) => (x === null || x === undefined ? 'n/a' : x.toExponential(2));
  const lines = [];
  lines.push('| model | int8: lowbit vs onnxruntime | threads | lowbit fp32 ms | lowbit int8 ms | ort fp32 ms | ' +
    'ort int8 ms | lowbit/ort fp32 | lowbit/ort int8 | lowbit int8/fp32 | int8 accepted | max abs diff fp32 | ' +
    'int8 max abs diff vs ort fp32 |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|');
  const seenFp32 = new Set();
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.variant || '-'} | ${r.threads} | ${fmt(r.lbFp32)} | ${fmt(r.lbInt8)} | ` +
      `${fmt(r.ortFp32)} | ${fmt(r.ortInt8)} | ${fmt(ratio(r.lbFp32, r.ortFp32))} | ${fmt(ratio(r.lbInt8, r.ortInt8))} | ` +
      `${fmt(ratio(r.lbInt8, r.lbFp32))} | ${r.variant ? verdict(r) : '-'} | ${fmtDiff(r.maxDiff)} | ${fmtDiff(r.int8Diff)} |`);
  }
  /* a model's fp32 figures repeat on each of its int8 rows: count them once */
  const fp32Ratios = [];
  for (const r of rows) {
    const k = `${r.model}/${r.threads}`;
    if (seenFp32.has(k) || ratio(r.lbFp32, r.ortFp32) === null) continue;
    seenFp32.add(k);
    fp32Ratios.push(ratio(r.lbFp32, r.ortFp32));
  }
  const int8Ratios = rows.map((r) => ratio(r.lbInt8, r.ortInt8)).filter((x) => x !== null);
  lines.push('');
  lines.push(`Geometric mean of lowbit/ort: fp32 ${fmt(geomean(fp32Ratios))}, int8 ${fmt(geomean(int8Ratios))} ` +
    '(below 1 means lowbit is faster).');
  const failed = rows.filter((r) => r.variant && verdict(r) !== 'yes');
  if (a.lowbit && rows.some((r) => r.variant)) {
    lines.push(failed.length ? `Int8 rows not accepted: ${failed.map((r) => `${r.model} ${r.variant} T=${r.threads}`).join('; ')}.`
      : 'Every int8 row is accepted (lowbit int8 <= onnxruntime int8 and < lowbit fp32).');
  }
  const bwRows = rows.filter((r) => r.weightBytes && r.lbInt8);
  if (bwRows.length) {
    const bw = readBandwidth(a.threads);
    lines.push('');
    lines.push('Effective weight bandwidth of the low-bit batch-1 rows (packed weight bytes / lowbit time) ' +
      'against the machine\'s read bandwidth (bench/membw.c: best of 7 sums over 512 MiB). Above the read ' +
      'bandwidth means part of the weights stayed in the last-level cache between inferences (both engines ' +
      'get that help):');
    for (const r of bwRows) {
      lines.push(`- ${r.model} ${r.variant.split(' vs ')[0]}, ${r.threads} thread(s): ` +
        `${(r.weightBytes / r.lbInt8 / 1e6).toFixed(1)} GB/s of ${(r.weightBytes / 1e6).toFixed(1)} MB ` +
        `(read bandwidth ${bw[r.threads].toFixed(1)} GB/s; onnxruntime ` +
        `${(r.weightBytes / r.ortInt8 / 1e6).toFixed(1)} GB/s-equivalent)`);
    }
  }
  const table = lines.join('\n');
  process.stdout.write(table + '\n');

  if (a.out) {
    const cpu = lscpu();
    const ortV = lib.ortVersion();
    const doc = [
      '# lowbit performance',
      '',
      'Generated by `node bench/bench.js` (see bench/README.md); do not edit by hand.',
      '',
      `- Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
      `- CPU: ${cpu.model}${cpu.family ? ` (family ${cpu.family} model ${cpu.modelNo})` : ''}, ` +
        `${cpu.cores || '?'} cores / ${cpu.cpus} logical CPUs${cpu.avx512 ? ', AVX-512' : ''}`,
      `- onnxruntime-node: ${ortV} (CPU EP, graphOptimizationLevel all, interOpNumThreads 1, in-process session.run)`,
      `- 1-minute load average: ${loadStart.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at end ` +
        '(anything well above 0 means other work competed for the cores)',
      `- lowbit commit: ${gitCommit()}${a.lowbit ? '' : ' (lowbit not run)'}`,
      `- Method: ${a.rounds} interleaved rounds x at least ${a.iters} timed runs, more for fast models so ` +
        `that a round lasts at least ${a.minRoundMs} ms (${a.warmup} warm-up); ` +
        'each figure is the median of the per-round medians, in milliseconds per inference.',
      '- Int8: onnxruntime runs its own int8 versions of each model (made by bench/make_models.py with ' +
        'tests/gpt/ort_quantize.py, an emulation of onnxruntime\'s quantize_dynamic / quantize_static); ' +
        'lowbit compiles the float model with the int8 flags named in the second column ' +
        '(meta.json `variants`). "int8 accepted": lowbit int8 is at least as fast as onnxruntime int8 and ' +
        'faster than lowbit fp32 (4-bit rows: at least 2.5x faster). The 4-bit rows time onnxruntime\'s ' +
        'MatMulNBits version (tests/gpt/ort_nbits.py: block 32, symmetric, accuracy_level 4) under the same ' +
        'columns.',
      '',
      table,
      '',
    ].join('\n');
    fs.mkdirSync(path.dirname(a.out), { recursive: true });
    fs.writeFileSync(a.out, doc);
    process.stderr.write(`wrote ${a.out}\n`);
  }
}

main().catch((e) => { process.stderr.write(`bench: ${e && e.message ? e.message : e}\n`); process.exit(1); });
