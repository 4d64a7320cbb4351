'use strict';
// Minimal readers/writers for ONNX TensorProto (.pb) and NumPy (.npy) files, plus
// conversion to/from onnxruntime-node tensors. No protobuf dependency.
//
// TensorProto fields used: dims=1 (int64, packed or not), data_type=2, float_data=4,
// int32_data=5, string_data=6 (rejected), int64_data=7, name=8, raw_data=9,
// double_data=10, uint64_data=11, data_location=14 (external data rejected).

const fs = require('fs');

// ONNX TensorProto.DataType -> [ort type name, typed array ctor, numpy descr]
const DTYPES = {
  1: ['float32', Float32Array, '<f4'],
  2: ['uint8', Uint8Array, '|u1'],
  3: ['int8', Int8Array, '|i1'],
  4: ['uint16', Uint16Array, '<u2'],
  5: ['int16', Int16Array, '<i2'],
  6: ['int32', Int32Array, '<i4'],
  7: ['int64', BigInt64Array, '<i8'],
  9: ['bool', Uint8Array, '|b1'],
  10: ['float16', Uint16Array, '<f2'],
  11: ['float64', Float64Array, '<f8'],
  12: ['uint32', Uint32Array, '<u4'],
  13: ['uint64', BigUint64Array, '<u8'],
};
const ORT_TO_ONNX = {};
for (const [k, v] of Object.entries(DTYPES)) ORT_TO_ONNX[v[0]] = Number(k);
const NPY_TO_ONNX = {};
for (const [k, v] of Object.entries(DTYPES)) NPY_TO_ONNX[v[2]] = Number(k);
NPY_TO_ONNX['<b1'] = 9; NPY_TO_ONNX['|b1'] = 9;
NPY_TO_ONNX['<u1'] = 2; NPY_TO_ONNX['<i1'] = 3;

// ---------- protobuf wire helpers ----------
function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7n;
  }
  return [result, pos];
}

function writeVarint(out, v) {
  let x = BigInt.asUintN(64, BigInt(v));
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x !== 0n) b |= 0x80;
    out.push(b);
  } while (x !== 0n);
}

function toSigned64(v) { return BigInt.asIntN(64, v); }

// Parse a TensorProto. Returns {name, dataType, dims: number[], data: TypedArray}.
function decodeTensorProto(buf) {
  let pos = 0;
  const dims = [];
  let dataType = 0;
  let name = '';
  let raw = null;
  const floats = [], int32s = [], int64s = [], doubles = [], uint64s = [];
  let external = false;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      if (field === 1) dims.push(Number(toSigned64(v)));
      else if (field === 2) dataType = Number(v);
      else if (field === 5) int32s.push(Number(BigInt.asIntN(32, v)));
      else if (field === 7) int64s.push(toSigned64(v));
      else if (field === 11) uint64s.push(v);
      else if (field === 14) external = Number(v) === 1;
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      len = Number(len);
      const end = pos + len;
      if (end > buf.length) throw new Error('truncated field');
      const sub = buf.subarray(pos, end);
      if (field === 8) name = sub.toString('utf8');
      else if (field === 9) raw = sub;
      else if (field === 1 || field === 5 || field === 7 || field === 11) {
        let p = 0;
        while (p < sub.length) {
          let v;
          [v, p] = readVarint(sub, p);
          if (field === 1) dims.push(Number(toSigned64(v)));
          else if (field === 5) int32s.push(Number(BigInt.asIntN(32, v)));
          else if (field === 7) int64s.push(toSigned64(v));
          else uint64s.push(v);
        }
      } else if (field === 4) {
        for (let p = 0; p + 4 <= sub.length; p += 4) floats.push(sub.readFloatLE(p));
      } else if (field === 10) {
        for (let p = 0; p + 8 <= sub.length; p += 8) doubles.push(sub.readDoubleLE(p));
      } else if (field === 6) {
        throw new Error('string tensors are not supported');
      }
      pos = end;
    } else if (wire === 5) {
      if (field === 4) floats.push(buf.readFloatLE(pos));
      pos += 4;
    } else if (wire === 1) {
      if (field === 10) doubles.push(buf.readDoubleLE(pos));
      pos += 8;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  if (external) throw new Error('TensorProto with external data is not supported');
  const dt = DTYPES[dataType];
  if (!dt) throw new Error(`unsupported TensorProto data_type ${dataType}`);
  const Ctor = dt[1];
  const count = dims.reduce((a, b) => a * b, 1);
  let data;
  if (raw) {
    const bytes = new Uint8Array(raw.length);
    bytes.set(raw); // copy: aligned, and independent of the file buffer
    data = new Ctor(bytes.buffer, 0, raw.length / Ctor.BYTES_PER_ELEMENT);
  } else {
    data = new Ctor(count);
    if (dataType === 1) data.set(floats);
    else if (dataType === 11) data.set(doubles);
    else if (dataType === 7) data.set(int64s);
    else if (dataType === 13) data.set(uint64s);
    else if (dataType === 12) data.set(uint64s.map(Number));
    else data.set(int32s); // int32, int16, int8, uint16, uint8, bool, float16 bits
  }
  if (data.length !== count) {
    throw new Error(`TensorProto ${name}: ${data.length} elements for dims [${dims}]`);
  }
  return { name, dataType, dims, data };
}

function encodeTensorProto({ name, dataType, dims, data }) {
  const head = [];
  for (const d of dims) { head.push(0x08); writeVarint(head, d); } // dims, unpacked (as onnx writes)
  head.push(0x10); writeVarint(head, dataType);
  if (name) {
    const nb = Buffer.from(name, 'utf8');
    head.push(0x42); writeVarint(head, nb.length);
    for (const b of nb) head.push(b);
  }
  const rawBytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  head.push(0x4a); writeVarint(head, rawBytes.length);
  return Buffer.concat([Buffer.from(head), rawBytes]);
}

// ---------- .npy ----------
function decodeNpy(buf) {
  if (buf.readUInt32BE(0) !== 0x934e554d || buf[4] !== 0x50 || buf[5] !== 0x59) {
    throw new Error('not a .npy file');
  }
  const major = buf[6];
  let hlen, off;
  if (major === 1) { hlen = buf.readUInt16LE(8); off = 10; } else { hlen = buf.readUInt32LE(8); off = 12; }
  const header = buf.subarray(off, off + hlen).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`bad .npy header: ${header}`);
  if (fortran[1] === 'True') throw new Error('fortran_order .npy is not supported');
  const dataType = NPY_TO_ONNX[descr[1]];
  if (!dataType) throw new Error(`unsupported .npy dtype ${descr[1]}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const Ctor = DTYPES[dataType][1];
  const body = buf.subarray(off + hlen);
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(count * Ctor.BYTES_PER_ELEMENT);
  bytes.set(body.subarray(0, bytes.length));
  return { name: '', dataType, dims, data: new Ctor(bytes.buffer) };
}

function encodeNpy({ dataType, dims, data }) {
  const descr = DTYPES[dataType][2];
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.writeUInt32BE(0x934e554d, 0); pre[4] = 0x50; pre[5] = 0x59; pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

// ---------- files & ORT tensors ----------
function readTensorFile(path) {
  const buf = fs.readFileSync(path);
  return path.endsWith('.npy') ? decodeNpy(buf) : decodeTensorProto(buf);
}

function writeTensorFile(path, t) {
  fs.writeFileSync(path, path.endsWith('.npy') ? encodeNpy(t) : encodeTensorProto(t));
}

function toOrtTensor(ort, t) {
  const type = DTYPES[t.dataType][0];
  let data = t.data;
  if (type === 'bool') data = new Uint8Array(data.buffer, data.byteOffset, data.length);
  return new ort.Tensor(type, data, t.dims);
}

function fromOrtTensor(name, ot) {
  const dataType = ORT_TO_ONNX[ot.type];
  if (!dataType) throw new Error(`unsupported output type ${ot.type}`);
  let data = ot.data;
  if (ot.type === 'bool') data = Uint8Array.from(data, (x) => (x ? 1 : 0));
  return { name, dataType, dims: ot.dims.map(Number), data };
}

module.exports = {
  decodeTensorProto, encodeTensorProto, decodeNpy, encodeNpy,
  readTensorFile, writeTensorFile, toOrtTensor, fromOrtTensor, DTYPES,
};
