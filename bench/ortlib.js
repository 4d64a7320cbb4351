'use strict';
// Shared onnxruntime-node helpers for ort_run.js and bench.js.

const fs = require('fs');
const path = require('path');
const tio = require('./tensorio');

let ortModule = null;
function ort() {
  if (!ortModule) {
    try {
      ortModule = require('onnxruntime-node');
    } catch (e) {
      throw new Error(`cannot load onnxruntime-node (run \`npm ci\` in ${__dirname}): ${e.message}`);
    }
  }
  return ortModule;
}

function ortVersion() {
  const p = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'package.json');
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8')).version;
  } catch (e) {
    return (ort().env.versions || {}).node || 'unknown';
  }
}

async function createSession(modelPath, { threads = 1, opt = 'all' } = {}) {
  const levels = { all: 'all', none: 'disabled', disabled: 'disabled', basic: 'basic', extended: 'extended' };
  if (!levels[opt]) throw new Error(`--opt must be all|none|basic|extended, got ${opt}`);
  return ort().InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: levels[opt],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
}

// Find DIR/input_K.{pb,npy} for K = 0.. (stops at the first gap).
function caseInputs(dir) {
  const files = [];
  for (let k = 0; ; k++) {
    const pb = path.join(dir, `input_${k}.pb`);
    const npy = path.join(dir, `input_${k}.npy`);
    if (fs.existsSync(pb)) files.push(pb);
    else if (fs.existsSync(npy)) files.push(npy);
    else break;
  }
  return files;
}

// Build the feeds object: files map positionally onto session.inputNames.
function loadFeeds(session, files) {
  if (files.length !== session.inputNames.length) {
    throw new Error(`model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}), ` +
      `got ${files.length} input files`);
  }
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    feeds[name] = tio.toOrtTensor(ort(), tio.readTensorFile(files[i]));
  });
  return feeds;
}

async function runAndWrite(session, files, outdir, format) {
  const feeds = loadFeeds(session, files);
  const results = await session.run(feeds);
  fs.mkdirSync(outdir, { recursive: true });
  const written = [];
  session.outputNames.forEach((name, k) => {
    const p = path.join(outdir, `output_${k}.${format}`);
    tio.writeTensorFile(p, tio.fromOrtTensor(name, results[name]));
    written.push(p);
  });
  return written;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// Time `iters` session.run calls after `warmup` untimed ones. Returns per-run ms.
async function timeRuns(session, feeds, iters, warmup) {
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const ms = new Array(iters);
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return ms;
}

module.exports = { ort, ortVersion, createSession, caseInputs, loadFeeds, runAndWrite, median, timeRuns };
