/* report_page.js: draws the charts of `lowbit analyze --html` (embedded into
 * tools/report.c) from the JSON blob #report-data, as inline SVG. No network,
 * no libraries. Sets body[data-rendered] to "ok" once every part is drawn;
 * script errors are shown in #errors and set it to "error". */
(function () {
  'use strict';
  var body = document.body;
  function fail(msg) {
    var pre = document.getElementById('errors');
    pre.hidden = false;
    pre.textContent += msg + '\n';
    body.setAttribute('data-rendered', 'error');
  }
  window.addEventListener('error', function (e) {
    fail('script error: ' + e.message + ' (line ' + e.lineno + ')');
  });

  var SVG = 'http://www.w3.org/2000/svg';
  /* candidate colors, by index (cands[0] is f32) */
  var PALETTE = ['#7b8794', '#1f78b4', '#33a02c', '#ff7f00', '#e31a1c', '#6a3d9a', '#b15928',
                 '#17becf', '#a6761d', '#e7298a', '#66a61e', '#386cb0'];

  function el(tag, attrs, text, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function sv(tag, attrs, parent, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function tip(node, text) { sv('title', {}, node, text); return node; }
  /* numbers of the blob: null is "not measured", "inf" an exact match */
  function num(x) { return x === null ? NaN : x === 'inf' ? Infinity : x === '-inf' ? -Infinity : x; }
  function fmt(x) {
    x = num(x);
    if (isNaN(x)) return 'n/a';
    if (!isFinite(x)) return x > 0 ? 'exact' : '-inf';
    if (x === 0) return '0';
    var a = Math.abs(x);
    return a < 1e-2 || a >= 1e5 ? x.toExponential(2) : String(Number(x.toPrecision(3)));
  }
  function fmtInt(x) { return String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function fmtBytes(b) {
    if (b >= 1048576) return (b / 1048576).toFixed(2) + ' MiB';
    if (b >= 1024) return (b / 1024).toFixed(1) + ' KiB';
    return b + ' B';
  }
  /* a name cut in the middle to n characters (layers differ at both ends) */
  function cut(s, n) {
    if (s.length <= n) return s;
    var head = Math.floor((n - 1) / 3);
    return s.slice(0, head) + '\u2026' + s.slice(s.length - (n - 1 - head));
  }
  /* what tells exported layer names apart: no leading '/', no trailing "_output_N" */
  function short(s) { return s.replace(/^\/(?=.)/, '').replace(/(.)_output_\d+$/, '$1'); }
  function color(c) { return PALETTE[c % PALETTE.length]; }
  function section(parent, id, title, note) {
    var s = el('section', {id: id}, null, parent);
    el('h2', {}, title, s);
    if (note) el('p', {class: 'note'}, note, s);
    return s;
  }

  var D = JSON.parse(document.getElementById('report-data').textContent);
  var L = D.layers, C = D.cands, nL = L.length, nC = C.length;
  var planned = D.budget !== null && nL > 0 && L.every(function (l) { return l.choice >= 0; });
  var measured = L.some(function (l) { return !isNaN(num(l.sqnr_db)); });
  var metricName = D.metric === 'kl' ? 'KL(float \u2016 quantized)' : 'MSE against float';

  var totals = {weights: 0, bytes: 0, fbytes: 0, error: 0};
  L.forEach(function (l) {
    totals.weights += l.k * l.n;
    totals.fbytes += l.k * l.n * 4;
    if (planned) { totals.bytes += l.bytes[l.choice]; totals.error += num(l.error[l.choice]); }
  });
  var planBpw = totals.weights ? totals.bytes * 8 / totals.weights : NaN;
  var root = document.getElementById('report');

  /* ---- summary ---- */
  function summary() {
    var dl = el('dl', {class: 'summary', id: 'summary'}, null, root);
    function item(k, v, big) {
      var d = el('div', {}, null, dl);
      el('dt', {}, k, d);
      el('dd', big ? {class: 'big'} : {}, v, d);
    }
    item('layers', nL + ' weight layers, ' + fmtInt(totals.weights) + ' weights');
    item('metric', metricName + ', mean over ' + (D.metric === 'kl' ? 'output rows' : 'output elements'));
    item('samples', D.samples + ' calibration samples');
    item('weight algorithm', D.weight_algo);
    item('candidates', C.join(', '));
    item('budget', D.budget === null ? 'none (no plan)' : D.budget);
    if (planned) {
      item('plan', planBpw.toFixed(3) + ' bits/weight', true);
      item('weights', fmtBytes(totals.bytes) + ' (f32 ' + fmtBytes(totals.fbytes) + ', ' +
           (totals.fbytes / totals.bytes).toFixed(1) + '\u00d7 smaller)', true);
      item('estimated error', fmt(totals.error) + ' (sum of single-layer ' + D.metric + ')', true);
    }
    item('measured error', isNaN(num(D.model_error)) ? 'not measured' :
         fmt(D.model_error) + ' (' + D.metric + ' of the chosen model)', planned);
    item('analysis time', isNaN(num(D.seconds)) ? 'n/a' : num(D.seconds).toFixed(1) + ' s');
  }

  /* row labels of the per-layer charts: index and name, full name in a tooltip */
  /* as wide as the longest label needs (7 px a character of the 11.5 px monospace) */
  var LABEL_W = 40 + 7 * Math.max(8, Math.min(36, L.reduce(function (m, l) { return Math.max(m, short(l.value).length); }, 0)) +
                                String(nL).length);
  var ROW_H = 20;
  function rowLabel(g, i, y) {
    var l = L[i];
    var t = sv('text', {x: LABEL_W - 8, y: y + ROW_H / 2 + 4, 'text-anchor': 'end', class: 'mono'}, g,
               (i + 1) + '  ' + cut(short(l.value), 36));
    tip(t, l.value + (l.node ? ' (node ' + l.node + ')' : '') + ', ' + l.k + '\u00d7' + l.n);
  }

  /* ---- (a) sensitivity heatmap ---- */
  function heatmap() {
    var s = section(root, 'sec-sensitivity', 'Sensitivity: each layer quantized alone',
      'The increase of ' + metricName + ' at the model outputs on the calibration samples when only this ' +
      'layer takes the precision (all others float). Log color scale; grey cells: the layer cannot take the ' +
      'precision. ' + (planned ? 'Outlined: the plan\u2019s choice.' : ''));
    var lo = Infinity, hi = -Infinity;
    L.forEach(function (l) {
      l.error.forEach(function (e) { e = num(e); if (e > 0 && isFinite(e)) { lo = Math.min(lo, e); hi = Math.max(hi, e); } });
    });
    if (!(lo <= hi)) { lo = 1; hi = 1; }
    var llo = Math.log10(lo), lhi = Math.log10(hi);
    /* light yellow -> orange -> dark red */
    var stops = [[255, 255, 204], [254, 217, 118], [253, 141, 60], [227, 26, 28], [128, 0, 38]];
    function ramp(e) {
      var t = lhi > llo ? (Math.log10(e) - llo) / (lhi - llo) : 0.5;
      t = Math.max(0, Math.min(1, t)) * (stops.length - 1);
      var i = Math.min(stops.length - 2, Math.floor(t)), f = t - i, a = stops[i], b = stops[i + 1];
      return {fill: 'rgb(' + [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * f); }).join(',') + ')',
              dark: t > 2.4};
    }
    var leg = el('div', {class: 'legend'}, null, s);
    el('span', {}, fmt(lo), leg).appendChild(el('span', {class: 'ramp', style: 'background: linear-gradient(90deg,' +
      stops.map(function (c) { return 'rgb(' + c.join(',') + ')'; }).join(',') + ')'}));
    el('span', {}, fmt(hi) + ' (' + D.metric + ', log scale)', leg);
    var na = el('span', {}, null, leg);
    el('span', {class: 'sw', style: 'background:#e4e7eb'}, null, na);
    na.appendChild(document.createTextNode('n/a'));

    var CW = 86, top = 26, w = LABEL_W + nC * CW + 10, h = top + nL * ROW_H + 6;
    var box = el('div', {class: 'chart'}, null, s);
    var svg = sv('svg', {width: w, height: h, id: 'chart-sensitivity', role: 'img'}, box);
    for (var c = 0; c < nC; c++)
      sv('text', {x: LABEL_W + c * CW + CW / 2, y: 17, 'text-anchor': 'middle', 'font-weight': 600}, svg, C[c]);
    for (var i = 0; i < nL; i++) {
      var y = top + i * ROW_H;
      rowLabel(svg, i, y);
      for (c = 0; c < nC; c++) {
        var e = num(L[i].error[c]), x = LABEL_W + c * CW;
        var fill = '#e4e7eb', dark = false;
        if (e === 0) fill = '#ffffff';
        else if (e > 0 && isFinite(e)) { var r = ramp(e); fill = r.fill; dark = r.dark; }
        var chosen = planned && L[i].choice === c;
        var rect = sv('rect', {x: x + 1, y: y + 1, width: CW - 2, height: ROW_H - 2, rx: 2, fill: fill,
                               stroke: chosen ? '#000' : '#d0d5da', 'stroke-width': chosen ? 2 : 0.5,
                               class: 'cell', 'data-layer': i, 'data-cand': c,
                               'data-error': isNaN(e) ? 'n/a' : String(e)}, svg);
        tip(rect, L[i].value + ' at ' + C[c] + ': ' + D.metric + ' ' + (isNaN(e) ? 'n/a' : String(e)) +
            ', ' + fmtInt(L[i].bytes[c]) + ' bytes');
        sv('text', {x: x + CW / 2, y: y + ROW_H / 2 + 4, 'text-anchor': 'middle', 'pointer-events': 'none',
                    style: dark ? 'fill:#fff' : null, 'font-weight': chosen ? 700 : 400}, svg, fmt(e));
      }
    }
  }

  /* the plan's precisions, their colors and layer counts */
  function planLegend(parent) {
    var leg = el('div', {class: 'legend'}, null, parent);
    for (var c = 0; c < nC; c++) {
      var count = L.filter(function (l) { return l.choice === c; }).length;
      if (!count) continue;
      var it = el('span', {}, null, leg);
      el('span', {class: 'sw', style: 'background:' + color(c)}, null, it);
      it.appendChild(document.createTextNode(C[c] + ' \u00d7 ' + count));
    }
  }

  /* ---- (b) the plan: precision and bytes per layer ---- */
  function planChart() {
    var s = section(root, 'sec-plan', 'The plan: precision and weight bytes per layer',
      planned ? 'Bar length: the layer\u2019s weight bytes at its chosen precision (codes, scales and zero points); ' +
                'the grey tick marks its f32 size when it fits the scale. \u2691 fixed by --keep-float or the plan file.'
              : null);
    if (!planned) {
      el('p', {id: 'no-plan'}, 'No budget was given, so there is no plan. Give --target-bpw B, --max-size S or ' +
         '--max-loss L to choose a precision per layer; the curve below shows what each budget would cost.', s);
      return;
    }
    planLegend(s);
    var maxB = 1;
    L.forEach(function (l) { maxB = Math.max(maxB, l.bytes[l.choice]); });
    var BAR = 560, top = 8, w = LABEL_W + BAR + 300, h = top + nL * ROW_H + 8;
    var box = el('div', {class: 'chart'}, null, s);
    var svg = sv('svg', {width: w, height: h, id: 'chart-plan', role: 'img'}, box);
    for (var i = 0; i < nL; i++) {
      var l = L[i], y = top + i * ROW_H, b = l.bytes[l.choice], bw = Math.max(1, BAR * b / maxB);
      rowLabel(svg, i, y);
      var fb = l.k * l.n * 4;
      if (fb <= maxB && l.choice !== 0)
        sv('line', {x1: LABEL_W + BAR * fb / maxB, x2: LABEL_W + BAR * fb / maxB, y1: y + 2, y2: y + ROW_H - 2,
                    stroke: '#9aa5b1', 'stroke-width': 2}, svg);
      var rect = sv('rect', {x: LABEL_W, y: y + 3, width: bw, height: ROW_H - 6, rx: 2, fill: color(l.choice),
                             class: 'plan-bar', 'data-layer': i, 'data-cand': l.choice, 'data-bytes': b,
                             'data-fixed': l.fixed ? 'true' : 'false',
                             stroke: l.fixed ? '#000' : 'none', 'stroke-dasharray': l.fixed ? '3 2' : null}, svg);
      tip(rect, l.value + ': ' + C[l.choice] + ', ' + fmtInt(b) + ' bytes, ' + (b * 8 / (l.k * l.n)).toFixed(3) +
          ' bits/weight' + (l.fixed ? ' (fixed)' : ''));
      sv('text', {x: LABEL_W + bw + 6, y: y + ROW_H / 2 + 4}, svg,
         (l.fixed ? '\u2691 ' : '') + C[l.choice] + '  ' + fmtBytes(b) + '  ' + (b * 8 / (l.k * l.n)).toFixed(2) + ' bpw');
    }
  }

  /* ---- (c) estimated error against bits per weight ---- */
  function tradeoff() {
    var s = section(root, 'sec-tradeoff', 'Estimated error against bits per weight',
      'The additive estimate (sum of the single-layer errors) along the greedy path from every layer at its ' +
      'cheapest precision to the richest, each step the best error decrease per extra bit; squares: every ' +
      'layer at one precision' + (planned ? '; ring: the plan' : '') +
      (isNaN(num(D.model_error)) ? '' : '; triangle: the chosen model\u2019s error as measured') + '. Log scales.');
    var pts = [];
    D.curve.forEach(function (p) { pts.push([num(p[0]), num(p[1])]); });
    D.uniform.forEach(function (p) { pts.push([num(p[0]), num(p[1])]); });
    if (planned) pts.push([planBpw, totals.error]);
    if (!isNaN(num(D.model_error)) && planned) pts.push([planBpw, num(D.model_error)]);
    var xs = pts.filter(function (p) { return p[0] > 0 && isFinite(p[0]); }).map(function (p) { return p[0]; });
    var ys = pts.filter(function (p) { return p[1] > 0 && isFinite(p[1]); }).map(function (p) { return p[1]; });
    if (D.budget_bpw !== null) xs.push(num(D.budget_bpw));
    if (D.budget_loss !== null) ys.push(num(D.budget_loss));
    if (!xs.length) xs = [1, 32];
    if (!ys.length) ys = [1e-3, 1];
    var x0 = Math.log2(Math.min.apply(null, xs) * 0.9), x1 = Math.log2(Math.max.apply(null, xs) * 1.1);
    var y0 = Math.log10(Math.min.apply(null, ys)) - 0.3, y1 = Math.log10(Math.max.apply(null, ys)) + 0.5;
    if (x1 - x0 < 0.5) { x0 -= 0.25; x1 += 0.25; }
    var W = 1100, H = 420, ml = 70, mr = 30, mt = 16, mb = 46, pw = W - ml - mr, ph = H - mt - mb;
    function X(b) { return ml + (Math.log2(b) - x0) / (x1 - x0) * pw; }
    /* an error of 0 (every layer float) sits on the floor of the log axis */
    function Y(e) { return mt + ph - ((e > 0 ? Math.log10(e) : y0) - y0) / (y1 - y0) * ph; }
    var box = el('div', {class: 'chart wide'}, null, s);
    var svg = sv('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, id: 'chart-tradeoff', role: 'img',
                         style: 'max-width:100%;height:auto'}, box);
    [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 8, 12, 16, 24, 32].forEach(function (b) {
      var x = X(b);
      if (x < ml - 0.5 || x > ml + pw + 0.5) return;
      sv('line', {x1: x, x2: x, y1: mt, y2: mt + ph, class: 'grid'}, svg);
      sv('text', {x: x, y: mt + ph + 16, 'text-anchor': 'middle', class: 'muted'}, svg, String(b));
    });
    for (var d = Math.ceil(y0); d <= Math.floor(y1); d++) {
      sv('line', {x1: ml, x2: ml + pw, y1: Y(Math.pow(10, d)), y2: Y(Math.pow(10, d)), class: 'grid'}, svg);
      sv('text', {x: ml - 6, y: Y(Math.pow(10, d)) + 4, 'text-anchor': 'end', class: 'muted'}, svg, '1e' + d);
    }
    sv('rect', {x: ml, y: mt, width: pw, height: ph, fill: 'none', class: 'axis'}, svg);
    sv('text', {x: ml + pw / 2, y: H - 8, 'text-anchor': 'middle'}, svg, 'bits per weight (scales and zero points counted)');
    sv('text', {x: 16, y: mt + ph / 2, 'text-anchor': 'middle', transform: 'rotate(-90 16 ' + (mt + ph / 2) + ')'},
       svg, 'summed ' + D.metric);
    var placed = []; /* label boxes so far: a label that would overlap one moves down */
    function freeY(x, y, w) {
      for (var moved = true, n = 0; moved && n < 20; n++) {
        moved = false;
        for (var k = 0; k < placed.length; k++) {
          var q = placed[k];
          if (x < q.x + q.w && q.x < x + w && Math.abs(y - q.y) < 14) { y = q.y + 14; moved = true; }
        }
      }
      placed.push({x: x, y: y, w: w});
      return y;
    }
    if (D.budget_bpw !== null) {
      var bx = X(num(D.budget_bpw));
      sv('line', {x1: bx, x2: bx, y1: mt, y2: mt + ph, stroke: '#1f6feb', 'stroke-dasharray': '6 4', 'stroke-width': 1.5,
                  class: 'budget-line'}, svg);
      var btext = 'budget ' + fmt(D.budget_bpw) + ' bpw';
      placed.push({x: bx + 5, y: mt + 14, w: 7 * btext.length});
      sv('text', {x: bx + 5, y: mt + 14, style: 'fill:#1f6feb'}, svg, btext);
    }
    if (D.budget_loss !== null) {
      var by = Y(num(D.budget_loss));
      sv('line', {x1: ml, x2: ml + pw, y1: by, y2: by, stroke: '#1f6feb', 'stroke-dasharray': '6 4', 'stroke-width': 1.5,
                  class: 'budget-line'}, svg);
      sv('text', {x: ml + pw - 5, y: by - 5, 'text-anchor': 'end', style: 'fill:#1f6feb'}, svg, 'max loss ' + fmt(D.budget_loss));
    }
    var line = D.curve.filter(function (p) { return num(p[0]) > 0; }).map(function (p) {
      return X(num(p[0])).toFixed(1) + ',' + Y(num(p[1])).toFixed(1);
    });
    if (line.length) sv('polyline', {points: line.join(' '), fill: 'none', stroke: '#444c56', 'stroke-width': 1.5}, svg);
    D.curve.forEach(function (p, i) {
      var b = num(p[0]), e = num(p[1]);
      if (!(b > 0) || isNaN(e)) return;
      tip(sv('circle', {cx: X(b), cy: Y(e), r: 2.6, fill: '#444c56', class: 'curve-pt', 'data-step': i}, svg),
          'greedy step ' + i + ': ' + b.toFixed(3) + ' bits/weight, summed ' + D.metric + ' ' + fmt(e));
    });
    D.uniform.forEach(function (p, c) {
      var b = num(p[0]), e = num(p[1]);
      if (!(b > 0) || isNaN(e)) return;
      var x = X(b), y = Y(e), ly = freeY(x + 8, y - 7, 8.5 * C[c].length);
      tip(sv('rect', {x: x - 5, y: y - 5, width: 10, height: 10, fill: color(c), stroke: '#fff', class: 'uniform-pt',
                      'data-cand': c}, svg),
          'every layer ' + C[c] + ': ' + b.toFixed(3) + ' bits/weight, summed ' + D.metric + ' ' + fmt(e));
      sv('text', {x: x + 8, y: ly, 'font-weight': 600, style: 'fill:' + color(c)}, svg, C[c]);
    });
    if (planned) {
      tip(sv('circle', {cx: X(planBpw), cy: Y(totals.error), r: 8, fill: 'none', stroke: '#d62728', 'stroke-width': 3,
                        class: 'plan-pt'}, svg),
          'the plan: ' + planBpw.toFixed(3) + ' bits/weight, estimated ' + D.metric + ' ' + fmt(totals.error));
      sv('text', {x: X(planBpw) + 11, y: Y(totals.error) + 16, 'font-weight': 700, style: 'fill:#d62728'}, svg, 'plan');
      var me = num(D.model_error);
      if (!isNaN(me)) {
        var tx = X(planBpw), ty = Y(me);
        tip(sv('path', {d: 'M' + tx + ',' + (ty - 7) + ' l6,11 l-12,0 z', fill: '#d62728', class: 'measured-pt'}, svg),
            'measured on the chosen model: ' + D.metric + ' ' + fmt(me));
      }
    }
  }

  /* ---- (d) error against float after each layer ---- */
  function sqnrChart() {
    var s = section(root, 'sec-sqnr', 'Error against float after each layer',
      'SQNR of each layer\u2019s output in the chosen model against the float model, over all calibration samples: ' +
      '10\u00b7log10(\u03a3x\u00b2 / \u03a3(x \u2212 x\u0302)\u00b2), in graph order (higher is better; 6 dB per bit). ' +
      'Both models run end to end, so a layer\u2019s error includes what the layers before it passed on.');
    if (!measured) {
      el('p', {id: 'no-sqnr'}, 'Not measured: ' + (planned ? 'the analysis did not run the chosen model.'
                                                          : 'there is no plan to measure (no budget given).'), s);
      return;
    }
    if (planned) planLegend(s);
    var vals = L.map(function (l) { return num(l.sqnr_db); });
    var fin = vals.filter(function (v) { return isFinite(v); });
    var top = Math.max(10, Math.ceil((fin.length ? Math.max.apply(null, fin) : 10) / 10) * 10 + 5);
    var bot = Math.min(0, Math.floor((fin.length ? Math.min.apply(null, fin) : 0) / 10) * 10);
    var STEP = Math.max(12, Math.min(44, Math.floor(1080 / Math.max(1, nL))));
    var longest = L.reduce(function (m, l) { return Math.max(m, Math.min(22, short(l.value).length)); }, 0);
    var labels = nL <= 48, mb = labels ? 24 + Math.round(longest * 7 * 0.77) : 40, ml = 56, mt = 14, ph = 260;
    var W = Math.max(600, ml + nL * STEP + 20), H = mt + ph + mb;
    function Y(v) { return mt + ph - (Math.max(bot, Math.min(top, v)) - bot) / (top - bot) * ph; }
    var box = el('div', {class: 'chart'}, null, s);
    var svg = sv('svg', {width: W, height: H, id: 'chart-sqnr', role: 'img'}, box);
    for (var v = bot; v <= top; v += 10) {
      sv('line', {x1: ml, x2: ml + nL * STEP, y1: Y(v), y2: Y(v), class: 'grid'}, svg);
      sv('text', {x: ml - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'muted'}, svg, String(v));
    }
    sv('text', {x: 14, y: mt + ph / 2, 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (mt + ph / 2) + ')'},
       svg, 'SQNR dB');
    var every = Math.ceil(nL / 40);
    for (var i = 0; i < nL; i++) {
      var x = ml + i * STEP, val = vals[i], l = L[i];
      var c = planned ? l.choice : 0, bw = Math.max(3, STEP - 4);
      if (isNaN(val)) {
        sv('text', {x: x + STEP / 2, y: Y(bot) - 4, 'text-anchor': 'middle', class: 'muted'}, svg, 'n/a');
      } else {
        var y = isFinite(val) ? Y(val) : mt;
        var rect = sv('rect', {x: x + 2, y: y, width: bw, height: Math.max(1, Y(bot) - y), fill: color(c),
                               opacity: isFinite(val) ? 1 : 0.35, class: 'sqnr-bar', 'data-layer': i,
                               'data-sqnr': String(l.sqnr_db)}, svg);
        tip(rect, (i + 1) + ' ' + l.value + ' (' + (planned ? C[c] : '') + '): SQNR ' +
            (isFinite(val) ? val.toFixed(2) + ' dB' : 'exact') + ', max |error| ' + fmt(l.max_abs));
        if (STEP >= 26)
          sv('text', {x: x + STEP / 2, y: y - 4, 'text-anchor': 'middle', 'font-size': 10.5}, svg,
             isFinite(val) ? val.toFixed(1) : 'exact');
      }
      if (labels) {
        var lx = x + STEP / 2, ly = mt + ph + 10;
        sv('text', {x: lx, y: ly, 'text-anchor': 'end', class: 'mono', 'font-size': 11,
                    transform: 'rotate(-50 ' + lx + ' ' + ly + ')'}, svg, cut(short(l.value), 22));
      } else if (i % every === 0) {
        sv('text', {x: x + STEP / 2, y: mt + ph + 14, 'text-anchor': 'middle', class: 'muted'}, svg, String(i + 1));
      }
    }
    sv('line', {x1: ml, x2: ml + nL * STEP, y1: Y(bot), y2: Y(bot), class: 'axis'}, svg);
  }

  /* ---- the table (click a header to sort) ---- */
  function table() {
    var s = section(root, 'sec-numbers', 'All numbers', 'Click a column header to sort. Errors: ' + metricName +
                    ' with the layer alone at the precision; bold and outlined: the plan\u2019s choice.');
    var wrap = el('div', {class: 'table-wrap'}, null, s);
    var t = el('table', {class: 'layers', id: 'layers-table'}, null, wrap);
    var cols = [{h: '#', key: function (l, i) { return i; }, show: function (l, i) { return String(i + 1); }},
                {h: 'value', name: true, key: function (l) { return l.value; }, show: function (l) { return l.value; }},
                {h: 'node', name: true, key: function (l) { return l.node; }, show: function (l) { return l.node; }},
                {h: 'K\u00d7N', key: function (l) { return l.k * l.n; }, show: function (l) { return l.k + '\u00d7' + l.n; }}];
    C.forEach(function (name, c) {
      cols.push({h: name, cand: c, key: function (l) { var e = num(l.error[c]); return isNaN(e) ? Infinity : e; },
                 show: function (l) { return fmt(l.error[c]); }});
    });
    if (planned) {
      cols.push({h: 'plan', key: function (l) { return l.choice; },
                 show: function (l) { return C[l.choice] + (l.fixed ? ' \u2691' : ''); }});
      cols.push({h: 'bytes', key: function (l) { return l.bytes[l.choice]; }, show: function (l) { return fmtInt(l.bytes[l.choice]); }});
      cols.push({h: 'bits/weight', key: function (l) { return l.bytes[l.choice] * 8 / (l.k * l.n); },
                 show: function (l) { return (l.bytes[l.choice] * 8 / (l.k * l.n)).toFixed(3); }});
    }
    if (measured) {
      cols.push({h: 'SQNR dB', key: function (l) { var v = num(l.sqnr_db); return isNaN(v) ? -Infinity : v; },
                 show: function (l) { var v = num(l.sqnr_db); return isFinite(v) ? v.toFixed(2) : fmt(v); }});
      cols.push({h: 'max |err|', key: function (l) { var v = num(l.max_abs); return isNaN(v) ? -Infinity : v; },
                 show: function (l) { return fmt(l.max_abs); }});
    }
    var head = el('tr', {}, null, el('thead', {}, null, t)), tb = el('tbody', {}, null, t);
    var order = L.map(function (l, i) { return i; }), sortCol = 0, asc = true;
    function fill() {
      tb.textContent = '';
      order.forEach(function (i) {
        var l = L[i], tr = el('tr', {'data-layer': i}, null, tb);
        cols.forEach(function (col) {
          var td = el('td', {}, col.show(l, i), tr);
          if (col.name) { td.className = 'name'; td.title = col.show(l, i); }
          if (planned && col.cand === l.choice) td.className = 'chosen';
        });
      });
      Array.prototype.forEach.call(head.children, function (th, k) {
        th.className = (cols[k].name ? 'name ' : '') + (k === sortCol ? (asc ? 'sorted-asc' : 'sorted-desc') : '');
      });
    }
    cols.forEach(function (col, k) {
      var th = el('th', {}, col.h, head);
      th.addEventListener('click', function () {
        asc = sortCol === k ? !asc : true;
        sortCol = k;
        order.sort(function (a, b) {
          var ka = col.key(L[a], a), kb = col.key(L[b], b);
          var r = ka < kb ? -1 : ka > kb ? 1 : a - b;
          return asc ? r : -r;
        });
        fill();
      });
    });
    fill();
  }

  try {
    summary();
    heatmap();
    planChart();
    tradeoff();
    sqnrChart();
    table();
    el('footer', {}, 'Made by lowbit analyze. Self-contained: no network access; the numbers are in the ' +
       'JSON blob #report-data of this page.', body);
    if (body.getAttribute('data-rendered') !== 'error') body.setAttribute('data-rendered', 'ok');
  } catch (e) {
    fail('rendering failed: ' + (e && e.stack ? e.stack : e));
  }
})();
