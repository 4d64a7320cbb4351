#!/usr/bin/env node
'use strict';
// Benchmark lowbit-compiled executables against onnxruntime-node (CPU, in-process).
//
//   node bench/bench.js [--lowbit <build>/bin/lowbit] --models OUTDIR [--threads 1,2]
//                       [--iters N] [--rounds R] [--only a,b] [--out docs/performance.md]
//
// OUTDIR is what bench/make_models.py wrote: OUTDIR/NAME/{model.onnx,input_0.pb,meta.json}.
// For every model the lowbit executable is compiled once (with meta.json's --dim bindings) into
// OUTDIR/NAME/lowbit.exe and its output checked against onnxruntime's (max |diff|). Then for each
// thread count T, R rounds interleave
//   onnxruntime: session (graphOptimizationLevel 'all', intraOpNumThreads=T, interOpNumThreads=1),
//                warm-up, N timed session.run calls -> median
//   lowbit:      `exe input_0.pb --threads T --bench N` -> median_ms
// and the reported figure is the median of the R round medians. Without --lowbit only onnxruntime
// is timed and the lowbit columns read n/a.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const lib = require('./ortlib');
const tio = require('./tensorio');

function die(msg) { process.stderr.write(`bench: ${msg}\n`); process.exit(2); }

function parseArgs(argv) {
  const a = { lowbit: null, models: null, threads: [1, 2], iters: 100, rounds: 5, out: null, only: null, warmup: null, minRoundMs: 500 };
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
    else if (x === '-h' || x === '--help') {
      process.stdout.write('usage: node bench.js [--lowbit PATH] --models DIR [--threads 1,2] [--iters N] ' +
        '[--rounds R] [--warmup W] [--min-round-ms MS] [--only a,b] [--out FILE.md]\n');
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

function compileLowbit(lowbit, m) {
  const exe = path.join(m.dir, 'lowbit.exe');
  const args = ['compile', m.model, '-o', exe];
  for (const [k, v] of Object.entries(m.dims)) args.push('--dim', `${k}=${v}`);
  const t0 = Date.now();
  run(lowbit, args);
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

// Max |lowbit - ort| over all outputs (run once at 1 thread).
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

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const loadStart = os.loadavg()[0];
  const models = listModels(a.models, a.only);
  const rows = [];
  for (const m of models) {
    let exe = null, compileS = null, maxDiff = null;
    if (a.lowbit) {
      process.stderr.write(`[${m.name}] lowbit compile\n`);
      ({ exe, compileS } = compileLowbit(a.lowbit, m));
    }
    for (const T of a.threads) {
      const session = await lib.createSession(m.model, { threads: T, opt: 'all' });
      const feeds = lib.loadFeeds(session, m.inputs);
      if (exe && maxDiff === null) maxDiff = await checkOutputs(exe, m, session);
      const ortMeds = [], lbMeds = [];
      /* Rounds of a fast model would last a few ms and catch any hiccup of the
       * machine: run enough iterations that each round takes at least --min-round-ms. */
      const probe = lib.median(await lib.timeRuns(session, feeds, 5, a.warmup));
      const iters = Math.max(a.iters, Math.ceil(a.minRoundMs / Math.max(probe, 1e-3)));
      for (let r = 0; r < a.rounds; r++) {
        const ms = await lib.timeRuns(session, feeds, iters, a.warmup);
        ortMeds.push(lib.median(ms));
        if (exe) lbMeds.push(lowbitBench(exe, m.inputs, T, iters));
        process.stderr.write(`[${m.name} T=${T}] round ${r + 1}/${a.rounds}: ort ${fmt(ortMeds[r])} ms` +
          (exe ? `, lowbit ${fmt(lbMeds[r])} ms` : '') + '\n');
      }
      await session.release();
      const ortMs = lib.median(ortMeds);
      const lbMs = exe ? lib.median(lbMeds) : null;
      rows.push({ model: m.name, threads: T, ortMs, lbMs, ratio: exe ? lbMs / ortMs : null, maxDiff, compileS });
    }
  }
  const ratios = rows.filter((r) => r.ratio !== null).map((r) => r.ratio);
  const geomean = ratios.length ? Math.exp(ratios.reduce((s, x) => s + Math.log(x), 0) / ratios.length) : null;

  const lines = [];
  lines.push('| model | threads | onnxruntime ms | lowbit ms | lowbit/ort | max abs diff |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.threads} | ${fmt(r.ortMs)} | ${fmt(r.lbMs)} | ${fmt(r.ratio)} | ` +
      `${r.maxDiff === null ? 'n/a' : r.maxDiff.toExponential(2)} |`);
  }
  lines.push('');
  lines.push(`Geometric mean of lowbit/ort: ${fmt(geomean)} (below 1 means lowbit is faster).`);
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
