#!/usr/bin/env bash
# Fewshot's one entry point.
#   ./build.sh serve   build the page (wasm + weights) and serve www/ on http://127.0.0.1:8080
#   ./build.sh test    run every test: native (CPU and lavapipe GPU), the page in headless Chromium, Firefox ESR and WebKitGTK
#   ./build.sh bench   measure speed and "none of these" (see README, "Performance")
#   ./build.sh bench-gpu   the same on a machine with a real GPU: native wgpu and Chromium's WebGPU on it
#   ./build.sh probe   Fewshot against a scikit-learn linear probe on clothing-small (README, "Learning")
#   ./build.sh litert  the .tflite export run by Google's LiteRT against Fewshot's own predictions (part of test)
#   ./build.sh wasm | weights | vendor | precache | deps   the steps on their own
# It installs what is missing itself, pinned, and says so in one line each.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

WEIGHTS_NAME=mobilenet_v2_1.0_224_quant.tflite
# The one place the weights' sha256 is written (the engine includes the same file).
WEIGHTS_SHA256=$(cut -c1-64 src/backbone/weights.sha256)
WEIGHTS_URL=https://raw.githubusercontent.com/google-coral/test_data/104342d2d3480b3e66203073dac24f4e2dbb4c41/$WEIGHTS_NAME
BINARYEN_VERSION=132.0.0
# fflate (MIT) reads and writes the ZIP files of "Save project" and the exports: kept, small,
# no dependencies, ES modules. Vendored into www/vendor by the build, checked by sha256.
FFLATE_VERSION=0.8.2
FFLATE_SHA256=8cc1f687e0159e977addb6b85e274dbd11e622cf151f4fcb7b85d49622ea43e7
PORT=${PORT:-8080}
TOOLS=$ROOT/target/tools
# The wasm build has a build directory of its own, so that it can run beside a native build
# (cargo locks a whole build directory while it builds).
WASM_TARGET=$ROOT/target/wasm-build

# Each line says how long the command has run, so that a CI log shows where the time goes.
say() { printf '\033[1m==> [%d:%02d] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Debian packages, when missing and when we may install them.
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    return 1
  fi
  say "installing ${missing[*]} (apt)"
  if [ -z "${FEWSHOT_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; export FEWSHOT_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null || { say "Rust is missing: install it with rustup first"; exit 1; }
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "installing the wasm32-unknown-unknown target (rustup)"
    rustup target add wasm32-unknown-unknown >/dev/null
  fi
}

# wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (cargo install, ~2 min)"
    # --locked fails for 0.2.130 (a yanked dependency in its lock file).
    cargo install -q wasm-bindgen-cli --version "$want" --force
  fi
}

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
}

ensure_wasm_opt() {
  if [ ! -x "$TOOLS/node_modules/.bin/wasm-opt" ]; then
    ensure_node
    say "installing binaryen $BINARYEN_VERSION (wasm-opt, npm)"
    mkdir -p "$TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "binaryen@$BINARYEN_VERSION" >/dev/null
  fi
}

ensure_test_tools() {
  apt_install chromium firefox-esr webkit2gtk-driver xvfb xauth mesa-vulkan-drivers libvulkan1 fonts-dejavu-core
  ensure_node
  local module
  for module in playwright-core axe-core puppeteer-core; do
    if [ ! -d "tests/e2e/node_modules/$module" ]; then
      say "installing playwright-core, puppeteer-core and axe-core (npm, from tests/e2e/package-lock.json)"
      PUPPETEER_SKIP_DOWNLOAD=1 npm ci --silent --no-audit --no-fund --prefix tests/e2e >/dev/null
      break
    fi
  done
}

# The backbone beside the page: upstream with a sha256 check, else $FEWSHOT_WEIGHTS or ../shared.
weights() {
  local dest=www/weights/$WEIGHTS_NAME
  mkdir -p www/weights
  if [ -f "$dest" ] && [ "$(sha256_of "$dest")" = "$WEIGHTS_SHA256" ]; then return 0; fi
  say "fetching the backbone weights"
  if curl -fsSL --max-time 60 -o "$dest.part" "$WEIGHTS_URL" 2>/dev/null && [ "$(sha256_of "$dest.part")" = "$WEIGHTS_SHA256" ]; then
    mv "$dest.part" "$dest"
    return 0
  fi
  rm -f "$dest.part"
  for candidate in "${FEWSHOT_WEIGHTS:-}" ../shared/weights/$WEIGHTS_NAME; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then
      if [ "$(sha256_of "$candidate")" != "$WEIGHTS_SHA256" ]; then
        say "warning: $candidate has sha256 $(sha256_of "$candidate"), not $WEIGHTS_SHA256"
      fi
      say "no download; using $candidate"
      cp "$candidate" "$dest"
      return 0
    fi
  done
  say "cannot get the weights: no network, no \$FEWSHOT_WEIGHTS, no ../shared/weights/$WEIGHTS_NAME"
  exit 1
}

# Libraries the page uses, copied from npm into www/vendor (never fetched from elsewhere).
vendor() {
  local dest=www/vendor/fflate.js
  if [ -f "$dest" ] && [ "$(sha256_of "$dest")" = "$FFLATE_SHA256" ]; then return 0; fi
  if [ ! -f "$TOOLS/node_modules/fflate/esm/browser.js" ] || [ "$(sha256_of "$TOOLS/node_modules/fflate/esm/browser.js")" != "$FFLATE_SHA256" ]; then
    ensure_node
    say "installing fflate $FFLATE_VERSION (ZIP files, npm)"
    mkdir -p "$TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "fflate@$FFLATE_VERSION" >/dev/null
  fi
  if [ "$(sha256_of "$TOOLS/node_modules/fflate/esm/browser.js")" != "$FFLATE_SHA256" ]; then
    say "fflate $FFLATE_VERSION from npm does not have the expected sha256; refusing to vendor it"
    exit 1
  fi
  mkdir -p www/vendor
  cp "$TOOLS/node_modules/fflate/esm/browser.js" "$dest"
}

# The list of files the service worker (www/sw.js) keeps for offline use, with a version that
# changes whenever one of them does: a changed list is how a visitor's browser learns of an
# update. Written after every build (it takes a moment).
precache() {
  local files=(index.html style.css icon.svg icon-192.png icon-512.png manifest.webmanifest package.json package/example.html package/app.html package/app.css package/fewshot.d.ts)
  files+=($(cd www && ls *.js page/*.js worker/*.js seam/*.js package/*.js | grep -v '^sw\.js$') vendor/fflate.js pkg/fewshot.js pkg/fewshot_bg.wasm "weights/$WEIGHTS_NAME")
  local version
  version=$( (cd www && cat "${files[@]}") | sha256sum | cut -c1-16)
  {
    echo "// Written by build.sh: the files sw.js keeps, and their version."
    printf 'self.PRECACHE = { version: "%s", files: [' "$version"
    printf '"%s",' "${files[@]}" | sed 's/,$//'
    echo '] };'
  } > www/pkg/precache.js
}

# The wasm module, its JS glue and the weights under www/.
wasm() {
  ensure_rust
  ensure_wasm_bindgen
  ensure_wasm_opt
  weights
  vendor
  # Nothing to do when the module was built from these very sources (serve starts at once).
  local stamp
  stamp=$( (cat Cargo.toml Cargo.lock; find src -type f | sort | xargs cat; declare -f wasm; echo "profile=${PROFILE:-}") | sha256sum | cut -c1-64)
  if [ -f www/pkg/fewshot_bg.wasm ] && [ "$(cat www/pkg/.sources 2>/dev/null)" = "$stamp" ]; then
    say "www/pkg is up to date with src/ (delete www/pkg to rebuild)"
    precache
    return 0
  fi
  say "building the wasm module (release; a clean build takes ~10 min on 2 cores)"
  # A cdylib alone, so that LTO applies (with the rlib beside it, it is skipped).
  CARGO_TARGET_DIR=$WASM_TARGET CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
    cargo rustc -q --lib --profile wasm --target wasm32-unknown-unknown --no-default-features --crate-type cdylib
  rm -rf www/pkg
  if [ -n "${PROFILE:-}" ]; then
    # PROFILE=1: the functions keep their names and LLVM's code is left as it is (wasm-opt
    # would inline the kernels into their caller), so that a CPU profile (tests/bench/
    # profile.mjs, or DevTools) tells them apart.
    wasm-bindgen --target web --out-dir www/pkg "$WASM_TARGET/wasm32-unknown-unknown/wasm/fewshot.wasm"
  else
    wasm-bindgen --target web --remove-name-section --out-dir www/pkg "$WASM_TARGET/wasm32-unknown-unknown/wasm/fewshot.wasm"
    "$TOOLS/node_modules/.bin/wasm-opt" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals -o www/pkg/fewshot_bg.wasm www/pkg/fewshot_bg.wasm
  fi
  say "www/pkg/fewshot_bg.wasm: $(stat -c %s www/pkg/fewshot_bg.wasm) bytes, $(gzip -9c www/pkg/fewshot_bg.wasm | wc -c) gzipped"
  echo "$stamp" > www/pkg/.sources
  precache
}

serve() {
  wasm
  ensure_node
  say "serving www/ on http://127.0.0.1:$PORT (Ctrl-C stops)"
  exec node tests/e2e/serve.mjs www "$PORT"
}

test_all() {
  local started=$SECONDS
  ensure_test_tools
  weights
  vendor
  export FEWSHOT_WEIGHTS=$ROOT/www/weights/$WEIGHTS_NAME
  # Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every start without
  # one (as in CI); the test binaries get a private one, as the CLI makes for itself.
  if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR=$ROOT/target/runtime
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  fi
  # The wasm module builds beside the native tests: each build leaves a core idle at times (a
  # long crate on its own, the final link, the tests themselves), and the two share no build
  # directory. Its output waits in a log until the native tests are done.
  say "building the wasm module beside the native tests"
  local wasm_log=$ROOT/target/wasm-build.log wasm_pid
  mkdir -p target
  wasm > "$wasm_log" 2>&1 &
  wasm_pid=$!
  trap 'kill $wasm_pid 2>/dev/null || true' EXIT
  say "native tests (CPU device, and wgpu on Mesa lavapipe)"
  cargo test -q --all-targets
  litert
  if ! wait $wasm_pid; then
    cat "$wasm_log" >&2
    say "the wasm build failed (above)"
    exit 1
  fi
  trap - EXIT
  cat "$wasm_log" >&2
  # After the wasm: the project file's checks are the engine's own (src/projectfile.rs), run
  # under node from www/pkg.
  say "JavaScript modules under node (no browser)"
  node --test tests/js/
  say "page tests in headless Chromium (and the smoke tests in Firefox ESR and WebKitGTK)"
  # Each test has its own timeout; this one bounds the whole run, so that a browser that
  # never answers fails the tests instead of holding CI until its own limit.
  timeout --kill-after=30 1800 node --test --test-concurrency=1 tests/e2e/*.test.mjs
  say "all tests passed in $((SECONDS - started)) s"
}

bench() {
  ensure_test_tools
  if [ ! -d tests/bench/node_modules/@tensorflow/tfjs-tflite ]; then
    say "installing TF.js and tfjs-tflite to compare with (npm, from tests/bench/package-lock.json)"
    npm ci --silent --no-audit --no-fund --prefix tests/bench >/dev/null
  fi
  weights
  export FEWSHOT_WEIGHTS=$ROOT/www/weights/$WEIGHTS_NAME
  mkdir -p target/bench
  say "native: fewshot bench"
  # The test build (Burn at opt-level 3) rather than a third full build of Burn.
  cargo run -q -- bench | tee target/bench/native.txt
  ensure_litert
  "$LITERT_VENV/bin/python" tests/litert/time.py "www/weights/$WEIGHTS_NAME" target/bench/litert.json 2>&1 | grep -v "^INFO: "
  wasm
  say "browser: tests/bench/bench.mjs (a few minutes)"
  node tests/bench/bench.mjs | tee target/bench/browser.txt
  node tests/bench/head.mjs | tee target/bench/head.txt
  node tests/bench/page.mjs | tee target/bench/page.txt
  node tests/bench/browsers.mjs | grep -v "^TAP" | tee target/bench/browsers.txt
  say "learning: \"none of these\" on clothing-small and photos from elsewhere"
  learning_bench
  node tests/bench/summary.mjs
}

# On a machine with a real GPU (Vulkan): the native bench (its GPU row is wgpu on that GPU,
# not lavapipe) and the browser bench with Chromium's WebGPU on the hardware
# (FEWSHOT_GPU=hardware makes browser.mjs ask for it instead of SwiftShader).
bench_gpu() {
  ensure_test_tools
  weights
  export FEWSHOT_WEIGHTS=$ROOT/www/weights/$WEIGHTS_NAME
  mkdir -p target/bench
  say "native: fewshot bench (the GPU row is the machine's own adapter)"
  cargo run -q -- bench | tee target/bench/native-gpu.txt
  wasm
  say "browser: tests/bench/bench.mjs with WebGPU on the GPU"
  FEWSHOT_GPU=hardware ONLY=speed node tests/bench/bench.mjs | tee target/bench/browser-gpu.txt
}

# Fewshot's head against scikit-learn's LogisticRegression on the same embeddings and draws.
# Python packages for the learning figures, in target/venv: numpy and scikit-learn (the probe).
PROBE_VENV=$ROOT/target/venv
ensure_probe_venv() {
  local venv=$PROBE_VENV
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sklearn" 2>/dev/null; then
    say "installing numpy and scikit-learn (pip, into target/venv)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy scikit-learn
  fi
}

# "None of these" measured at 5, 10 and 30 photos a class of clothing-small (3 draws each): how
# many of its test photos it flags, of those photos changed as a person's own photos differ from
# catalogue shots (tests/probe/harder.py: another crop, other light, a tilt, a background, a poor
# camera), and of 31 photos from elsewhere (the fixtures' five and the 26 that scikit-image
# ships), into target/bench/learning.json.
learning_bench() {
  ensure_probe_venv
  if ! "$PROBE_VENV/bin/python" -c "import skimage, PIL" 2>/dev/null; then
    say "installing scikit-image and Pillow, for the sample photos and the harder check (pip, into target/venv)"
    "$PROBE_VENV/bin/pip" install -q scikit-image pillow
  fi
  local foreign=$ROOT/target/bench/foreign harder=$ROOT/target/bench/harder data=../shared/datasets/clothing-small samples
  samples=$("$PROBE_VENV/bin/python" -c "import os, skimage.data; print(os.path.dirname(skimage.data.__file__))")
  rm -rf "$foreign" "$harder" && mkdir -p "$foreign"
  cp ../shared/fixtures/images/*.bmp ../shared/fixtures/images/*.jpg "$samples"/*.png "$samples"/*.jpg "$foreign/"
  "$PROBE_VENV/bin/python" tests/probe/harder.py "$data/test" "$harder" >/dev/null
  cargo run -q -- eval --train "$data/train" --test "$data/test" --harder "$harder" --foreign "$foreign" \
    --shots 5,10,30 --repeats 3 --device cpu --json > target/bench/learning.json
  node -e 'for (const r of JSON.parse(require("fs").readFileSync("target/bench/learning.json")).results)
  console.log(`"none of these" at ${r.shots} photos a class flagged ${(100 * r.unfamiliar_flagged).toFixed(1)} % of the photos from elsewhere, ${(100 * r.familiar_flagged).toFixed(1)} % of the test photos, ${(100 * r.familiar_flagged_hard).toFixed(1)} % of the harder ones`)'
}

probe() {
  weights
  export FEWSHOT_WEIGHTS=$ROOT/www/weights/$WEIGHTS_NAME
  local venv=$PROBE_VENV data=../shared/datasets/clothing-small out=$ROOT/target/probe
  ensure_probe_venv
  mkdir -p "$out"
  cargo build -q --bin fewshot
  say "embedding clothing-small, then training on 1 to 30 photos a class, 5 draws each"
  ./target/debug/fewshot embed "$data/train" -o "$out/train.json" --device cpu
  ./target/debug/fewshot embed "$data/test" -o "$out/test.json" --device cpu
  ./target/debug/fewshot eval --train "$data/train" --test "$data/test" --shots 1,5,10,20,30 --repeats 5 \
    --device cpu --json ${PROBE_ARGS:-} > "$out/eval.json"
  "$venv/bin/python" tests/probe/probe.py "$out/train.json" "$out/test.json" "$out/eval.json"
}

# The standalone .tflite export, run by Google's LiteRT (PyPI, in a venv made here) against
# Fewshot's own predictions on the same 224x224 pixels: a model of clothing-small (10 photos a
# class), its 372 test photos and the fixtures; both arithmetics (src/export.rs).
# Google's LiteRT, numpy and Pillow in a venv of our own: the export's client and the
# benchmark's native reference.
LITERT_VENV=$ROOT/target/venv-litert
ensure_litert() {
  if ! "$LITERT_VENV/bin/python" -c "import ai_edge_litert, PIL" 2>/dev/null; then
    say "installing LiteRT, numpy and Pillow (pip, into target/venv-litert)"
    python3 -m venv "$LITERT_VENV"
    "$LITERT_VENV/bin/pip" install -q ai-edge-litert numpy pillow
  fi
}

litert() {
  weights
  ensure_litert
  export FEWSHOT_WEIGHTS=$ROOT/www/weights/$WEIGHTS_NAME
  local venv=$LITERT_VENV data=../shared/datasets/clothing-small out=$ROOT/target/litert
  rm -rf "$out" && mkdir -p "$out/train"
  for class in "$data"/train/*/; do
    mkdir -p "$out/train/$(basename "$class")"
    ls "$class" | sort | head -10 | while read -r photo; do ln -s "$(realpath "$class$photo")" "$out/train/$(basename "$class")/$photo"; done
  done
  cargo build -q --bin fewshot
  say "LiteRT: a model of 10 photos a class, exported, both ways on the test photos and fixtures"
  ./target/debug/fewshot train "$out/train" -o "$out/model.fewshot" --device cpu 2>/dev/null
  "$venv/bin/python" tests/litert/check.py squares "$out/squares" "$data"/test/*/* ../shared/fixtures/images/*.{bmp,jpg}
  ./target/debug/fewshot predict --model "$out/model.fewshot" --device cpu "$out"/squares/*/* > "$out/fewshot.txt" 2>/dev/null
  # Float computes as Fewshot does; quantized rounds every layer to uint8 (about 2 % differ).
  for arithmetic in float:0.99 quantized:0.95; do
    ./target/debug/fewshot export "$out/model.fewshot" --format tflite --arithmetic "${arithmetic%:*}" -o "$out/${arithmetic%:*}.tflite" 2>/dev/null
    "$venv/bin/python" tests/litert/check.py agree "$out/${arithmetic%:*}.tflite" "$out/fewshot.txt" "${arithmetic#*:}" 2>&1 | grep -v "^INFO: "
  done
  # A head with a hidden ReLU layer, without mirroring: the other shape of graph.
  ./target/debug/fewshot train "$out/train" -o "$out/hidden.fewshot" --device cpu --hidden 32 --mirror off 2>/dev/null
  ./target/debug/fewshot predict --model "$out/hidden.fewshot" --device cpu "$out"/squares/*/* > "$out/hidden.txt" 2>/dev/null
  ./target/debug/fewshot export "$out/hidden.fewshot" --format tflite -o "$out/hidden.tflite" 2>/dev/null
  "$venv/bin/python" tests/litert/check.py agree "$out/hidden.tflite" "$out/hidden.txt" 0.99 2>&1 | grep -v "^INFO: "
}

case "${1:-}" in
  serve) serve ;;
  test) test_all ;;
  bench) bench ;;
  bench-gpu) bench_gpu ;;
  probe) probe ;;
  litert) litert ;;
  wasm) wasm ;;
  weights) weights ;;
  vendor) vendor ;;
  precache) precache ;;
  deps) ensure_rust; ensure_wasm_bindgen; ensure_wasm_opt; ensure_test_tools ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
