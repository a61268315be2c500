// The server loop's waits and clock (src/transport/loop.ts, src/common/clock.ts):
//  - Deno's event loop (timers, signal handlers, promises) runs while the loop is idle and, under load
//    (a descriptor always ready), still runs: a timer fires and its stop() ends run();
//  - a turn that serves one request reads the clock twice: once after its wait, once at the request's
//    end (the request's start is the turn's reading). In a Xen PV dom0 each read may be a system call
//    (docs/domains.md), so a stray performance.now() on the request path is a regression.
import assert from "../helpers/assert.ts";
import { testCore } from "../helpers/core.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import * as libc from "../../ffi/libc.ts";
import { TurnClock } from "../../src/common/clock.ts";
import type { RequestObserver } from "../../src/dispatch/extensions.ts";

Deno.test("idle loop: timers run while it waits, and stop() from one ends run()", async () => {
  const loop = new EventLoop();
  let ticks = 0;
  const tick = setInterval(() => {
    if (++ticks >= 3) loop.stop();
  }, 1);
  try {
    await loop.run();
    assert.ok(ticks >= 3);
    assert.ok(loop.stats.yields >= 1, "an idle wait lets Deno's event loop run");
  } finally {
    clearInterval(tick);
    loop.close();
  }
});

Deno.test("loaded loop (an fd always ready): timers still run, stop() ends run()", async () => {
  const loop = new EventLoop();
  const efd = libc.eventfd();
  libc.write(efd, new Uint8Array(new BigUint64Array([1n]).buffer)); // readable until read: never is
  let events = 0;
  loop.addFd(efd, () => events++);
  const stopper = setTimeout(() => loop.stop(), 120);
  try {
    await loop.run();
    assert.ok(events > 0, "the ready fd was served");
    assert.ok(loop.stats.yields >= 1, "Deno's event loop ran although no wait was idle");
  } finally {
    clearTimeout(stopper);
    loop.removeFd(efd);
    libc.close(efd);
    loop.close();
  }
});

Deno.test("TurnClock: one reading per turn unless read() again; outside turns recent() reads", () => {
  const clock = new TurnClock();
  const t0 = clock.turnStart();
  assert.equal(clock.recent(), t0);
  const t1 = clock.read();
  assert.ok(t1 >= t0);
  assert.equal(clock.recent(), t1);
  clock.turnEnd();
  const t2 = clock.recent(); // between turns: a fresh reading
  assert.ok(t2 >= t1);
});

Deno.test("a turn serving one READ reads the clock twice (turn start, request end)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-clock-" });
  const timings: Array<{ ms: number; at: number | undefined }> = [];
  const observer: RequestObserver = {
    opened: () => {},
    closed: () => {},
    replied: (_c, _m, _t, _r, _f, ms, at) => timings.push({ ms, at }),
    watchEvent: () => {},
  };
  const core = testCore({ observer });
  const loop = new EventLoop();
  const server = new SocketServer(loop, core, { path: `${dir}/sock` });
  // Clock reads made inside a turn (serveTurn on the stack), counted per turn.
  const perf = globalThis.performance;
  const realNow = perf.now.bind(perf);
  let reads = 0;
  // Deep enough a stack that serveTurn is in it however many frames the transport adds.
  const limit = Error.stackTraceLimit;
  perf.now = () => {
    Error.stackTraceLimit = 50;
    if (new Error().stack!.includes("serveTurn")) reads++;
    Error.stackTraceLimit = limit;
    return realNow();
  };
  const perRequestTurn: number[] = [];
  let served = core.dispatcher.stats.requests;
  loop.onTurnEnd(() => {
    const n = core.dispatcher.stats.requests - served;
    served += n;
    if (n === 1) perRequestTurn.push(reads);
    reads = 0;
  });
  server.listen();
  const running = loop.run();
  try {
    const c = await WireClient.connect(`${dir}/sock`);
    assert.equal((await c.request(XS.WRITE, "/a\0x")).type, XS.WRITE);
    for (let i = 0; i < 20; i++) assert.equal((await c.request(XS.READ, "/a\0")).payload, "x");
    c.close();
    assert.ok(perRequestTurn.length >= 10, `turns serving one request: ${perRequestTurn.length}`);
    // The counting hook runs after the request's end: reads = turn start + request end.
    for (const r of perRequestTurn) assert.equal(r, 2, `clock reads per one-request turn: ${perRequestTurn}`);
    for (const t of timings) {
      assert.ok(t.ms >= 0 && t.at !== undefined, "the observer gets the request's time and its end");
    }
  } finally {
    perf.now = realNow;
    loop.stop();
    await running;
    loop.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

// Where a clock read is a system call (a PV dom0 without the vDSO path; ~50 µs each under QEMU TCG)
// the daemon gives the turn clock a coarse source (src/cli/daemon.ts chooseTurnClock).
Deno.test("clock reads: a system call is told from a vDSO read by its cost over a coarse read", async () => {
  const { clockReadIsSystemCall } = await import("../../src/common/clock.ts");
  // ms per read: natively tens of ns apart; under TCG ~50 µs against ~1 µs
  assert.equal(clockReadIsSystemCall([0.0006, 0.0004], [0.0003, 0.0005]), false);
  assert.equal(clockReadIsSystemCall([0.05, 0.2], [0.001, 0.03]), true);
  // the cheapest batch counts: one interrupted batch of precise reads proves nothing
  assert.equal(clockReadIsSystemCall([0.5, 0.0004], [0.0003]), false);
  assert.equal(clockReadIsSystemCall([], [0.0003]), false);
});

Deno.test("turn clock on CLOCK_MONOTONIC through the C library: performance.now()'s readings", async () => {
  const { onPerformanceTimeBase } = await import("../../src/common/clock.ts");
  const precise = onPerformanceTimeBase(() => libc.clockMs(libc.CLOCK_MONOTONIC));
  // The same clock as performance.now(): between two of its readings (give or take the few µs the
  // offset was taken to), never outside them.
  for (let i = 0; i < 1000; i++) {
    const before = performance.now();
    const reading = precise();
    const after = performance.now();
    assert.ok(reading >= before - 0.02 && reading <= after + 0.02, `${before} ≤ ${reading} ≤ ${after}`);
  }
});

Deno.test("turn clock on a coarse source: performance.now()'s time base, never backwards", async () => {
  const { onPerformanceTimeBase } = await import("../../src/common/clock.ts");
  const tick = libc.clockResolutionMs(libc.CLOCK_MONOTONIC_COARSE);
  assert.ok(tick > 0 && tick <= 100, `CLOCK_MONOTONIC_COARSE resolution ${tick} ms`);
  const coarse = onPerformanceTimeBase(() => libc.clockMs(libc.CLOCK_MONOTONIC_COARSE));
  for (let i = 0; i < 5; i++) {
    const skew = coarse() - performance.now();
    assert.ok(Math.abs(skew) <= 2 * tick + 1, `coarse reading ${skew} ms off performance.now()`);
  }
  const clock = new TurnClock();
  const before = clock.read();
  let next = before - 1000; // a source behind the old one's last reading
  clock.useSource(() => next);
  assert.ok(clock.turnStart() >= before, "no reading goes back across the switch");
  next = before + 5000;
  assert.equal(clock.read(), before + 5000, "readings come from the new source");
  assert.equal(clock.recent(), before + 5000);
});
