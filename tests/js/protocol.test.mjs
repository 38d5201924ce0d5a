// The page ↔ worker protocol and the photo checks, under node's own test runner: no browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Op, Kind, FewshotError, errorToMessage, errorFromMessage, restartFor, badInput } from "../../www/seam/protocol.js";
import { sniffType, fitSize, STORED_SIDE } from "../../www/seam/image.js";

test("an error keeps its kind across the seam", () => {
  for (const kind of Object.values(Kind)) {
    const back = errorFromMessage(structuredClone(errorToMessage(new FewshotError(kind, "why"))));
    assert.ok(back instanceof FewshotError);
    assert.equal(back.kind, kind);
    assert.equal(back.message, "why");
  }
  // The engine's JS errors carry a kind property (src/web.rs); anything else is internal.
  assert.equal(errorToMessage(Object.assign(new Error("bad"), { kind: "bad-input" })).kind, Kind.BadInput);
  assert.equal(errorToMessage(new Error("bug")).kind, Kind.Internal);
  assert.equal(errorToMessage(new WebAssembly.RuntimeError("unreachable")).kind, Kind.Internal);
  assert.equal(errorToMessage("a string").kind, Kind.Internal);
  assert.equal(errorFromMessage({ kind: "nonsense", message: "x" }).kind, Kind.Internal);
  assert.equal(errorFromMessage(undefined).kind, Kind.Internal);
});

test("the kinds are the engine's own strings", () => {
  const rust = readFileSync(new URL("../../src/error.rs", import.meta.url), "utf8");
  const fromRust = [...rust.matchAll(/ErrorKind::\w+ => "([a-z-]+)"/g)].map((m) => m[1]).sort();
  assert.deepEqual(fromRust, Object.values(Kind).sort());
});

test("only a lost GPU or a crash restarts the engine", () => {
  assert.equal(restartFor(new FewshotError(Kind.GpuLost, ""), "webgpu"), "cpu");
  assert.equal(restartFor(new FewshotError(Kind.Internal, ""), "webgpu"), "cpu");
  assert.equal(restartFor(new FewshotError(Kind.Internal, ""), "cpu"), "cpu");
  for (const kind of [Kind.BadInput, Kind.Stopped, Kind.Storage]) assert.equal(restartFor(new FewshotError(kind, ""), "webgpu"), null);
  assert.equal(restartFor(badInput("x"), "cpu"), null);
});

test("every request the page makes is one the worker answers", () => {
  const worker = readFileSync(new URL("../../www/worker/worker.js", import.meta.url), "utf8");
  const handled = [...worker.matchAll(/\[Op\.(\w+)\]/g)].map((m) => m[1]).sort();
  assert.deepEqual(handled, Object.keys(Op).sort());
});

test("a photo's type comes from its bytes", () => {
  const bytes = (...b) => new Uint8Array([...b, ...new Array(16).fill(0)]);
  const ascii = (s) => [...s].map((c) => c.charCodeAt(0));
  assert.equal(sniffType(bytes(0xff, 0xd8, 0xff, 0xe0)), "image/jpeg");
  assert.equal(sniffType(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)), "image/png");
  assert.equal(sniffType(bytes(...ascii("GIF89a"))), "image/gif");
  assert.equal(sniffType(bytes(...ascii("RIFF"), 0, 0, 0, 0, ...ascii("WEBP"))), "image/webp");
  assert.equal(sniffType(bytes(0, 0, 0, 0x1c, ...ascii("ftypavif"))), "image/avif");
  assert.equal(sniffType(bytes(...ascii("BM"))), "image/bmp");
  for (const text of ["<svg xmlns='http://www.w3.org/2000/svg'><script>", "<!doctype html><script>", "hello", ""]) {
    assert.equal(sniffType(new TextEncoder().encode(text)), null, text);
  }
  assert.equal(sniffType(readFileSync(new URL("../e2e/fixtures/cmyk.jpg", import.meta.url))), "image/jpeg");
  assert.equal(sniffType(readFileSync(new URL("../e2e/fixtures/transparent.png", import.meta.url))), "image/png");
});

test("photos are kept at most STORED_SIDE a side, never below the engine's minimum", () => {
  assert.deepEqual(fitSize(4000, 3000, 16), { width: STORED_SIDE, height: 336 });
  assert.deepEqual(fitSize(100, 50, 16), { width: 100, height: 50 });
  assert.deepEqual(fitSize(20000, 20, 16), { width: STORED_SIDE, height: 16 });
  for (const [w, h] of [[0, 0], [15, 100], [NaN, 20], [undefined, 20]]) {
    assert.throws(() => fitSize(w, h, 16), (e) => e.kind === Kind.BadInput && /at least 16x16/.test(e.message));
  }
});

test("the pool embeds with one engine a core on the CPU, at most MAX_ENGINES, one on a GPU", async () => {
  const { engineCount, MAX_ENGINES } = await import("../../www/worker/pool.js");
  assert.equal(engineCount("cpu", 2), 2);
  assert.equal(engineCount("cpu", 64), MAX_ENGINES);
  assert.equal(engineCount("cpu", 1), 1);
  assert.equal(engineCount("cpu", undefined), 1, "a browser that does not say");
  assert.equal(engineCount("webgpu", 16), 1);
});
