// How the page finds out that its engine's worker has ended (www/seam/engine.js), under node with a
// stand-in Worker and Web Locks and mocked clocks: at once where the browser says so, within
// seconds by pings otherwise, and never for a worker that is only busy. The real worker in a
// real browser: tests/e2e/faults.test.mjs.
import { test, mock, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { EngineClient, PING_EVERY_MS, SILENT_CPU_MS, SILENT_PASSES, SILENT_GROWTH, SILENT_LONG_MS } from "../../www/seam/engine.js";
import { Op, Kind } from "../../www/seam/protocol.js";

/** A worker that answers pings (unless told not to) and nothing else by itself. */
class FakeWorker {
  static all = [];
  sent = [];
  answers = true;
  terminated = false;
  constructor() {
    FakeWorker.all.push(this);
  }
  postMessage(message) {
    this.sent.push(message);
    if (message.op === Op.Ping && this.answers) this.say({ id: message.id, ok: true, result: true });
  }
  say(data) {
    this.onmessage?.({ data });
  }
  get pings() {
    return this.sent.filter((m) => m.op === Op.Ping).length;
  }
  terminate() {
    this.terminated = true;
  }
}

/** Web Locks, as far as engine.js uses them: a request waits until the test ends the holder. */
const waiting = new Map();
const locks = { request: (name, granted) => new Promise((done) => waiting.set(name, () => done(granted()))) };
const endLife = (name) => waiting.get(name)?.();

beforeEach(() => {
  FakeWorker.all = [];
  waiting.clear();
  globalThis.Worker = FakeWorker;
  Object.defineProperty(globalThis, "navigator", { value: { locks }, configurable: true, writable: true });
  mock.timers.enable({ apis: ["setInterval", "Date"], now: 1_000_000 });
});
afterEach(() => mock.timers.reset());

/** A client with one request waiting; the error that ended its worker, when one did. */
function started(op = Op.AddPhoto, args = {}) {
  const client = new EngineClient();
  const ended = { error: null, at: null };
  client.onFatal = (error) => Object.assign(ended, { error, at: Date.now() });
  const request = client.call(op, args).catch((e) => e);
  return { client, ended, request, worker: FakeWorker.all.at(-1) };
}

/** Let `ms` pass, 10 ms at a time (timers fire on time, as on a page that is not held up). */
function pass(ms) {
  for (let t = 0; t < ms; t += 10) mock.timers.tick(10);
}

test("a busy worker that answers between its steps is never taken for dead", () => {
  const { ended, worker } = started();
  pass(120_000);
  assert.equal(ended.error, null);
  assert.ok(worker.pings >= 120_000 / PING_EVERY_MS - 1, `pinged ${worker.pings} times`);
  assert.equal(worker.terminated, false);
});

test("a step that keeps the worker silent for less than the limit is not a death", () => {
  const { ended, worker } = started();
  worker.answers = false;
  pass(SILENT_CPU_MS - PING_EVERY_MS);
  worker.say({ id: 1, progress: { step: 1 } }); // the step ends: its progress, then pings again
  worker.answers = true;
  pass(30_000);
  assert.equal(ended.error, null);
});

test("a silent worker on the CPU is taken for dead within 5 s, its requests failed", async () => {
  const { ended, request, worker } = started();
  pass(2_000);
  const silentFrom = Date.now();
  worker.answers = false;
  pass(10_000);
  assert.ok(ended.error, "taken for dead");
  const after = ended.at - silentFrom;
  assert.ok(after > SILENT_CPU_MS && after <= SILENT_CPU_MS + 2 * PING_EVERY_MS && after <= 5_000, `after ${after} ms`);
  assert.equal(ended.error.kind, Kind.Internal);
  assert.match(ended.error.message, /stopped answering/);
  assert.equal(worker.terminated, true);
  assert.equal((await request).kind, Kind.Internal);
});

test("a worker with no request waiting is not pinged", () => {
  const client = new EngineClient();
  client.onFatal = () => assert.fail("no death");
  client.call(Op.Hello).catch(() => {});
  const worker = FakeWorker.all[0];
  worker.say({ id: 1, ok: true, result: {} });
  worker.answers = false;
  pass(60_000);
  assert.equal(worker.pings, 0);
});

test("while a load may choose WebGPU, and on WebGPU, the limit is the GPU's", () => {
  const { ended, worker } = started(Op.Load, { device: "auto" });
  worker.answers = false;
  pass(SILENT_LONG_MS - PING_EVERY_MS);
  assert.equal(ended.error, null, "not dead while it may be loading on WebGPU");
  pass(3 * PING_EVERY_MS);
  assert.ok(ended.error, "dead past the GPU's limit (and its pings' spacing)");

  // Loaded on the CPU after all: the CPU's limit from then on.
  const cpu = started(Op.Load, { device: "auto" });
  cpu.worker.say({ id: 1, ok: true, result: { device: "cpu" } });
  cpu.client.call(Op.AddPhoto).catch(() => {});
  cpu.worker.answers = false;
  pass(SILENT_CPU_MS + 2 * PING_EVERY_MS);
  assert.ok(cpu.ended.error, "dead past the CPU's limit once loaded there");

  const gpu = started(Op.Load, { device: "auto" });
  gpu.worker.say({ id: 1, ok: true, result: { device: "webgpu" } });
  gpu.client.call(Op.AddPhoto).catch(() => {});
  gpu.worker.answers = false;
  pass(SILENT_CPU_MS * 2);
  assert.equal(gpu.ended.error, null, "on WebGPU a few silent seconds are no death");
});

test("training's first step may be long; after it, the limit follows its steps", () => {
  const { ended, worker } = started(Op.Train);
  worker.answers = false;
  pass(SILENT_CPU_MS * 2); // a big project, a wide hidden layer: one long step
  assert.equal(ended.error, null, "not dead in its first step, longer than the CPU's limit");
  worker.say({ id: 1, progress: { step: 1 } });
  // Steps as long as the first, pings answered between them.
  for (let step = 2; step < 10; step++) {
    pass(SILENT_CPU_MS * 2 - PING_EVERY_MS);
    worker.say({ id: 1, progress: { step } });
  }
  assert.equal(ended.error, null, "steps as long as the first");
  const silentFrom = Date.now();
  pass(SILENT_GROWTH * SILENT_CPU_MS * 2 + 3 * PING_EVERY_MS);
  assert.ok(ended.error, "silent for longer than its steps allow");
  assert.ok(ended.at - silentFrom > SILENT_GROWTH * (SILENT_CPU_MS * 2 - PING_EVERY_MS), `after ${ended.at - silentFrom} ms`);
});

test("a word from before training was asked for does not end its first step's allowance", () => {
  const { client, ended, worker } = started(Op.AddPhoto);
  worker.answers = false;
  pass(PING_EVERY_MS); // a ping waits
  client.call(Op.Train).catch(() => {});
  worker.say({ id: 1, ok: true, result: {} }); // the photo's answer, from before
  pass(SILENT_CPU_MS * 3);
  assert.equal(ended.error, null, "the first step of training has its allowance");
  worker.say({ id: 2, progress: { step: 1 } });
  pass(SILENT_GROWTH * (SILENT_CPU_MS * 3 + PING_EVERY_MS) + 2 * PING_EVERY_MS);
  assert.ok(ended.error, "after its first word, the limit its first step taught");
});

test("on a slow device the limit is SILENT_PASSES passes of its network", () => {
  const { client, ended, worker } = started(Op.Load, { device: "cpu" });
  worker.say({ id: 1, ok: true, result: { device: "cpu", passMs: 600 } });
  client.call(Op.AddPhoto).catch(() => {});
  worker.answers = false;
  pass(SILENT_PASSES * 600 - PING_EVERY_MS);
  assert.equal(ended.error, null, "a photo's four views at 600 ms a pass, on a busy phone");
  pass(3 * PING_EVERY_MS);
  assert.ok(ended.error);

  // Training runs no network: its short steps keep the CPU's limit on any device.
  const slow = started(Op.Load, { device: "cpu" });
  slow.worker.say({ id: 1, ok: true, result: { device: "cpu", passMs: 600 } });
  slow.client.call(Op.Train).catch(() => {});
  slow.worker.say({ id: 2, progress: { step: 1 } });
  const silentFrom = Date.now();
  slow.worker.answers = false;
  pass(SILENT_CPU_MS + 2 * PING_EVERY_MS);
  assert.ok(slow.ended.error, "training on a slow device, silent");
  assert.ok(slow.ended.at - silentFrom <= 4_000, `after ${slow.ended.at - silentFrom} ms`);
});

test("what a worker's steps taught is forgotten once it is idle", () => {
  const { client, ended, worker } = started(Op.AddPhoto);
  worker.answers = false;
  pass(2_600);
  worker.answers = true;
  worker.say({ id: 1, ok: true, result: {} }); // a 2.6 s step, then idle
  pass(2 * PING_EVERY_MS);
  client.call(Op.AddPhoto).catch(() => {});
  const silentFrom = Date.now();
  worker.answers = false;
  pass(10_000);
  assert.ok(ended.at - silentFrom <= SILENT_CPU_MS + 2 * PING_EVERY_MS, `after ${ended.at - silentFrom} ms`);
});

test("a page held up is not a silent worker: the count starts again", () => {
  const { ended, worker } = started();
  worker.answers = false;
  pass(SILENT_CPU_MS - 2 * PING_EVERY_MS);
  // The page's own thread busy for 10 s: its timers late, the worker's answer queued behind them.
  mock.timers.setTime(Date.now() + 10_000);
  worker.answers = true;
  pass(PING_EVERY_MS);
  assert.equal(ended.error, null);
});

test("the end of the worker's life (its Web Lock) is noticed at once, busy or idle", async () => {
  const { ended, request, worker } = started();
  worker.say({ life: "life-1" });
  pass(1_000);
  const endedAt = Date.now();
  endLife("life-1");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ended.at, endedAt, "at once");
  assert.match(ended.error.message, /worker ended/);
  assert.equal((await request).kind, Kind.Internal);

  // Idle: no request waits, no ping was sent, and still.
  const idle = new EngineClient();
  let fatal = null;
  idle.onFatal = (e) => (fatal = e);
  idle.call(Op.Hello).catch(() => {});
  FakeWorker.all.at(-1).say({ life: "life-2" });
  FakeWorker.all.at(-1).say({ id: 1, ok: true, result: {} });
  endLife("life-2");
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(fatal, "an idle worker's end is noticed too");
});

test("a worker the page ended itself is not mourned when its lock comes free", async () => {
  const { client, worker } = started();
  worker.say({ life: "life-3" });
  let fatal = 0;
  client.onFatal = () => fatal++;
  client.restart();
  const next = client.call(Op.Hello).catch(() => {});
  endLife("life-3");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fatal, 0);
  assert.equal(FakeWorker.all.at(-1).terminated, false, "the new worker lives on");
  void next;
});

test("an error event, a reply that cannot be read, a fatal message: dead at once", async () => {
  for (const [how, end] of [
    ["error", (w) => w.onerror({ message: "Uncaught Error: boom", preventDefault() {} })],
    ["messageerror", (w) => w.onmessageerror({})],
    ["fatal", (w) => w.say({ fatal: { kind: Kind.Internal, message: "unreachable" } })],
  ]) {
    const { ended, request, worker } = started();
    pass(700);
    const at = Date.now();
    end(worker);
    assert.equal(ended.at, at, `${how}: at once`);
    assert.equal(ended.error.kind, Kind.Internal, how);
    assert.equal(worker.terminated, true, how);
    assert.equal((await request).kind, Kind.Internal, how);
  }
});
