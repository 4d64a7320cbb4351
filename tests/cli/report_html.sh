#!/bin/sh
# The HTML report of `lowbit analyze --html` opens in a browser with its charts
# (issue 5, acceptance 4): headless Chromium loads the page, runs its script
# and dumps the DOM, which must hold every chart with one mark per datum
# (heatmap cells = layers x candidates, plan bars, SQNR bars, the trade-off
# points), body[data-rendered="ok"] (set only at the end of a rendering without
# error) and no recorded script error. Pages: a real analysis of a small MLP
# with a budget, and synthetic ones (tests/unit/tools/test_report.c): one
# layer, 150 layers with 200-character names, no plan, hostile names. No page
# may reference anything over the network.
# Usage: report_html.sh LOWBIT_BIN TEST_TOOLS_REPORT_BIN
set -u
LOWBIT=$1
PAGES=$2
PY=/usr/bin/python3
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "FAIL: chromium is not installed; the headless-browser test needs it: run 'sh scripts/deps.sh --test'"
  exit 1
fi
. "$(dirname "$0")/lib.sh"

# x [4,32] -> 3 linear layers (the middle one with an outlier row) -> y [4,10] logits
"$PY" - "$T" <<'PYEOF' || { echo "FAIL: model/sample generation"; exit 1; }
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
t = sys.argv[1]
rng = np.random.default_rng(5)
sizes = [32, 64, 32, 10]
inits, nodes, x = [], [], "x"
for i in range(3):
    w = (rng.standard_normal((sizes[i], sizes[i + 1])) / np.sqrt(sizes[i])).astype(np.float32)
    if i == 1:
        w[7, :] = 3.0
    inits.append(numpy_helper.from_array(w, "w%d" % i))
    out = "y" if i == 2 else "h%d" % i
    nodes.append(helper.make_node("MatMul", [x, "w%d" % i], [out], name="/fc%d/MatMul" % i))
    if i < 2:
        nodes.append(helper.make_node("Relu", [out], ["r%d" % i], name="/relu%d" % i))
        x = "r%d" % i
g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 32])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 10])], inits)
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(t, "mlp.onnx"))
for i in range(4):
    os.makedirs(os.path.join(t, "calib", "s%d" % i))
    with open(os.path.join(t, "calib", "s%d" % i, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(rng.standard_normal((4, 32)).astype(np.float32), "x").SerializeToString())
PYEOF

# render NAME: the DOM of $T/NAME.html after its scripts ran, in $T/NAME.dom
render() {
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
    --user-data-dir="$T/profile" --virtual-time-budget=5000 --dump-dom "file://$T/$1.html" >"$T/$1.dom" 2>"$T/$1.chromium"
}
# count NAME PATTERN: occurrences of an extended regex in the DOM
count() { grep -oE "$2" "$T/$1.dom" | wc -l | tr -d ' '; }
# expect NAME WHAT PATTERN N
expect() {
  n=$(count "$1" "$3")
  [ "$n" = "$4" ] && ok || bad "$1: $2: $n, want $4"
}
# rendered NAME: the script finished and recorded no error
rendered() {
  if render "$1" && grep -q '<body data-rendered="ok"' "$T/$1.dom" && grep -q '<pre id="errors" hidden=""></pre>' "$T/$1.dom"
  then ok; else
    bad "$1: not rendered:"; grep -o '<pre id="errors".\{0,400\}' "$T/$1.dom"; tail -3 "$T/$1.chromium"
  fi
}
# offline NAME: nothing in the page or its DOM loads from the network
offline() {
  if grep -qiE "(src|href|xlink:href)[[:space:]]*=[[:space:]]*[\"']?(https?:)?//|url\([[:space:]]*[\"']?(https?:)?//|@import|<link|<iframe|<img" \
       "$T/$1.html" "$T/$1.dom"; then bad "$1: references a network resource"; else ok; fi
}

# ---- a real analysis with a budget -----------------------------------------------------
if "$LOWBIT" analyze "$T/mlp.onnx" --calib "$T/calib" --target-bpw 4 --html "$T/mlp.html" --json "$T/mlp.json" \
    >"$T/mlp.out" 2>"$T/mlp.err"; then ok; else bad "analyze: exit $?"; cat "$T/mlp.err"; fi
rendered mlp
offline mlp
expect mlp "heatmap cells (3 layers x 5 candidates)" '<rect [^>]*class="cell"' 15
expect mlp "plan bars" '<rect [^>]*class="plan-bar"' 3
expect mlp "SQNR bars" '<rect [^>]*class="sqnr-bar"' 3
expect mlp "uniform points (f32 w8 w4g32 w3g32 w2g32)" 'class="uniform-pt"' 5
expect mlp "plan point" 'class="plan-pt"' 1
expect mlp "measured point" 'class="measured-pt"' 1
expect mlp "budget line" 'class="budget-line"' 1
expect mlp "table rows" '<tr data-layer=' 3
# the marks carry the numbers of the JSON: each plan bar's candidate and bytes, the greedy path's length
"$PY" - "$T/mlp.json" "$T/mlp.dom" "$T/mlp.html" <<'PYEOF' && ok || bad "mlp: marks against the JSON"
import json, re, sys
j = json.load(open(sys.argv[1]))
dom = open(sys.argv[2]).read()
cands = re.search(r'"cands":(\[[^]]*\])', open(sys.argv[3]).read())
cands = json.loads(cands.group(1))
bars = re.findall(r'<rect [^>]*class="plan-bar" data-layer="(\d+)" data-cand="(\d+)" data-bytes="(\d+)"', dom)
assert len(bars) == len(j["layers"]), bars
for (i, c, b) in bars:
    l = j["layers"][int(i)]
    want = [r["bytes"] for r in l["results"] if r["precision"] == l["plan"]]
    assert cands[int(c)] == l["plan"] and [int(b)] == want, (l["value"], cands[int(c)], b, l["plan"], want)
curve = re.search(r'"curve":(\[.*?\]\])', open(sys.argv[3]).read())
n_curve = len(json.loads(curve.group(1))) if curve else 0
assert n_curve >= 2 and dom.count('class="curve-pt"') == n_curve, (n_curve, dom.count('class="curve-pt"'))
sq = re.findall(r'class="sqnr-bar" data-layer="(\d+)" data-sqnr="([^"]*)"', dom)
for (i, v) in sq:
    want = j["layers"][int(i)]["sqnr_db"]
    assert abs(float(v) - want) <= 1e-6 * abs(want), (i, v, want)
PYEOF

# ---- the same page from a compile; the compiled model is the one without --report ---------
"$LOWBIT" compile "$T/mlp.onnx" --quant auto --target-bpw 4 --calib "$T/calib" --report "$T/compile.html" \
  --emit ir -o "$T/with.lbir" >"$T/compile.out" 2>&1 && ok || { bad "compile --report: exit $?"; tail -5 "$T/compile.out"; }
"$LOWBIT" compile "$T/mlp.onnx" --quant auto --target-bpw 4 --calib "$T/calib" --emit ir -o "$T/without.lbir" \
  >"$T/compile2.out" 2>&1 && cmp -s "$T/with.lbir" "$T/without.lbir" && ok || bad "compile --report changed the model"
rendered compile
offline compile
expect compile "heatmap cells" '<rect [^>]*class="cell"' 15
expect compile "SQNR bars" '<rect [^>]*class="sqnr-bar"' 3
# the same page as analyze --html, but for the time taken
for p in mlp compile; do sed 's/"seconds":[^,]*,//; s/<dd>[0-9.]* s<\/dd>//' "$T/$p.dom" >"$T/$p.notime"; done
grep -q '"seconds"\|<dd>[0-9.]* s</dd>' "$T/mlp.notime" && bad "the time is still in the page"
cmp -s "$T/mlp.notime" "$T/compile.notime" && ok || bad "compile --report: another page than analyze --html"

# ---- synthetic pages: sizes, no plan, hostile names ------------------------------------
"$PAGES" --write-html "$T" && ok || bad "writing the synthetic pages"
rendered one
expect one "cells" '<rect [^>]*class="cell"' 5
expect one "plan bars" '<rect [^>]*class="plan-bar"' 1
expect one "SQNR bars" '<rect [^>]*class="sqnr-bar"' 1
rendered many
expect many "cells (150 x 8)" '<rect [^>]*class="cell"' 1200
expect many "plan bars" '<rect [^>]*class="plan-bar"' 150
expect many "SQNR bars" '<rect [^>]*class="sqnr-bar"' 150
expect many "table rows" '<tr data-layer=' 150
# 200-character names are cut in the labels (the full name stays in the tooltip)
[ "$(grep -oE '<text [^>]*class="mono"[^>]*>[^<]{60,}</text>' "$T/many.dom" | wc -l)" = 0 ] && ok ||
  bad "many: a label longer than 60 characters"
rendered noplan
expect noplan "cells" '<rect [^>]*class="cell"' 25
expect noplan "plan bars" '<rect [^>]*class="plan-bar"' 0
expect noplan "no-plan sentence" '<p id="no-plan">' 1
expect noplan "no-SQNR sentence" '<p id="no-sqnr">' 1
rendered hostile
offline hostile
expect hostile "injected elements" '<(img|b)[ >]' 0
# the name is shown as text (in labels, tooltips and the table), never parsed as markup
[ "$(count hostile '&lt;/script&gt;&lt;script&gt;alert\(1\)&lt;/script&gt;')" -ge 3 ] && ok ||
  bad "hostile: the name is not shown as text"
for p in one many noplan; do offline "$p"; done

finish report_html
