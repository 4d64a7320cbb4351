#!/usr/bin/env node
'use strict';
// Reference peer: run an ONNX model with onnxruntime-node (CPU) in-process.
//
//   node bench/ort_run.js model.onnx [--threads T] [--opt all|none] -o outdir in_0.pb [in_1.pb ...]
//       writes outdir/output_K.pb (or .npy when the inputs are .npy or --format npy)
//   node bench/ort_run.js model.onnx [--threads T] [--opt all|none] --cases DIR1 DIR2 ...
//       for each DIR reads DIR/input_K.{pb,npy}, writes DIR/ort/output_K.{pb,npy}
//   node bench/ort_run.js model.onnx [--threads T] --bench N in_0.pb ...
//       prints one JSON line like the lowbit executable's --bench
//
// Input files map positionally onto the model's inputs. Output K is the model's K-th output.

const path = require('path');
const lib = require('./ortlib');

function usage(msg) {
  if (msg) process.stderr.write(`ort_run: ${msg}\n`);
  process.stderr.write('usage: node ort_run.js model.onnx [--threads T] [--opt all|none] [--format pb|npy] ' +
    '(-o outdir in_0.pb ... | --cases DIR... | --bench N in_0.pb ...)\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { threads: 1, opt: 'all', out: null, cases: null, inputs: [], model: null, format: null, bench: 0 };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const next = () => { if (i + 1 >= argv.length) usage(`${x} needs a value`); return argv[++i]; };
    if (x === '--threads') a.threads = parseInt(next(), 10);
    else if (x === '--opt') a.opt = next();
    else if (x === '-o' || x === '--out') a.out = next();
    else if (x === '--format') a.format = next();
    else if (x === '--bench') a.bench = parseInt(next(), 10);
    else if (x === '--cases') { a.cases = []; while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) a.cases.push(argv[++i]); }
    else if (x === '-h' || x === '--help') usage();
    else if (x.startsWith('-')) usage(`unknown option ${x}`);
    else if (!a.model) a.model = x;
    else a.inputs.push(x);
  }
  if (!a.model) usage('no model');
  if (!(a.threads >= 1)) usage('--threads must be >= 1');
  if (a.format && a.format !== 'pb' && a.format !== 'npy') usage('--format must be pb or npy');
  return a;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const session = await lib.createSession(a.model, { threads: a.threads, opt: a.opt });
  const fmtOf = (files) => a.format || (files.length && files[0].endsWith('.npy') ? 'npy' : 'pb');

  if (a.cases) {
    if (!a.cases.length) usage('--cases needs directories');
    for (const dir of a.cases) {
      const files = lib.caseInputs(dir);
      if (!files.length) throw new Error(`${dir}: no input_0.pb / input_0.npy`);
      await lib.runAndWrite(session, files, path.join(dir, 'ort'), fmtOf(files));
    }
    return;
  }
  if (!a.inputs.length) usage('no input files');
  if (a.bench > 0) {
    const feeds = lib.loadFeeds(session, a.inputs);
    const ms = await lib.timeRuns(session, feeds, a.bench, Math.max(3, Math.ceil(a.bench / 10)));
    const mean = ms.reduce((s, x) => s + x, 0) / ms.length;
    console.log(JSON.stringify({
      model: path.basename(a.model), iterations: a.bench, median_ms: lib.median(ms),
      min_ms: Math.min(...ms), mean_ms: mean, threads: a.threads,
    }));
    return;
  }
  if (!a.out) usage('-o outdir is required');
  await lib.runAndWrite(session, a.inputs, a.out, fmtOf(a.inputs));
}

main().catch((e) => {
  process.stderr.write(`ort_run: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
