// Instructions per request in user space, counted by valgrind's callgrind (issue 20): what one
// request costs the daemon's JavaScript (and the V8 and libc code under it) with no system call, no
// scheduling and no other process involved. The count does not depend on machine load, so a change
// that saves work shows even on a busy machine, where timings do not; and under QEMU's TCG (the
// real-Xen end-to-end boots) every instruction is emulated, so this is what a guest's round trip
// there mostly pays for.
//
//   bin/deno run -A bench/instructions.ts [--scenarios socket-read,ring-read,txn] [--requests N]
//
// Scenarios, each in one process with the daemon's real policy chain (the WebAssembly plugins):
//   socket-read  a READ as the socket transport handles it: framed from a read buffer, dispatched,
//                the reply encoded into the connection's output buffer (src/server's pieces)
//   socket-turn  the same READ as the daemon's socket server serves it over a Unix socket: the
//                client's request written into the socket, one turn of the event loop (epoll, read,
//                framing, dispatch, the output stage's write), the reply read back by the client. The
//                four system calls are not counted (user space only), their JavaScript and FFI sides
//                are, the client's two included (the same in every build)
//   socket-enoent the same READ of a node that does not exist (an ERROR reply: probing tools and
//                drivers ask for missing nodes all the time)
//   ring-read    a READ from a guest ring: the request is put into the ring page, the event
//                channel fires, the domain manager serves the ring and writes the reply into it
//                (an in-memory Xen: tests/domains/harness.ts FakeXen)
//   ring-guest   the guest's and the in-memory Xen's side of ring-read alone: the request put into
//                the ring, the kick and the fake's event queue drained, the reply taken off the ring
//                (the daemon's part replaced by copying its reply bytes into the page). In production
//                the guest's side runs in another domain: ring-read minus ring-guest, printed as
//                "ring-read, daemon's side", is what dom0 pays per guest READ
//   txn          a dom0 transaction as xsbench's txn/create workload: START, READ, WRITE, a child
//                created or removed, END (commit); per transaction
// Each runs 10 000 + 5 000 times unmeasured (V8's optimizing tiers), then N (default 30 000) more,
// and callgrind's instrumentation is on for those N alone (callgrind_control, between two lines the
// worker writes): the count divided by N is printed. (It used to run the program twice, 0 and N
// requests, and take the difference: start-ups differ between runs by hundreds of millions of
// instructions, more than 30 000 requests cost, so that gave numbers off by thousands per request.)
// V8 runs with the daemon's flags (compile/v8-flags: its tier-up thresholds decide which code runs)
// and --single-threaded, so that compilation and GC happen in the counted thread, in the same way
// every run. Needs valgrind (apt-get install valgrind); a scenario takes a few minutes.
import { readV8Flags, v8FlagsArgs } from "../compile/v8_flags.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const WARMUP = 10_000;

export type Scenario = "socket-read" | "socket-turn" | "socket-enoent" | "ring-read" | "ring-guest" | "txn";
const SCENARIOS: Scenario[] = [
  "socket-read",
  "socket-turn",
  "socket-enoent",
  "ring-read",
  "ring-guest",
  "txn",
];

/** Builds the scenario's state and returns one request's work. */
export async function setup(s: Scenario): Promise<() => void> {
  const { PolicyManager } = await import("../src/policy/manager.ts");
  const { buildCore, chooseTurnClock } = await import("../src/cli/daemon.ts");
  const { defaultOptions } = await import("../src/cli/options.ts");
  const { FakeXen } = await import("../tests/domains/harness.ts");
  const pm = await PolicyManager.start({});
  chooseTurnClock(); // the turn clock's source, as the daemon chooses it
  // The core as the daemon builds it from its default options: quotas, limits, the request observer
  // (metrics, slow-request record; the access log is off by default), the policy manager's chain.
  const xen = new FakeXen();
  const { core } = buildCore(defaultOptions(() => undefined), { policy: pm, platform: xen });
  if (s === "socket-turn") {
    // The daemon's socket parts as src/cli/daemon.ts assembles them (its live-update stage, which
    // only passes requests on while no update is pending, left out), one connected client.
    const libc = await import("../ffi/libc.ts");
    const { EventLoop } = await import("../src/transport/loop.ts");
    const { SocketServer } = await import("../src/transport/socket_server.ts");
    const { encodeMessage } = await import("../src/protocol/codec.ts");
    const dir = Deno.makeTempDirSync({ prefix: "dxs-instr-" });
    const loop = new EventLoop({ gate: null });
    const server = new SocketServer(loop, core, { path: `${dir}/sock` });
    server.listen();
    const client = libc.connectUnix(`${dir}/sock`);
    for (let i = 0; i < 10 && server.connectionCount < 1; i++) loop.turn(100);
    if (server.connectionCount !== 1) throw new Error("the client was not accepted");
    Deno.removeSync(dir, { recursive: true });
    const replyBuf = new Uint8Array(4096);
    const ask = (bytes: Uint8Array): string => {
      if (libc.write(client, bytes) !== bytes.length) throw new Error("request not written");
      loop.turn(1000);
      const n = libc.read(client, replyBuf);
      if (n < 16) throw new Error(`reply: ${n}`);
      return String.fromCharCode(...replyBuf.subarray(16, n));
    };
    if (ask(encodeMessage(11, 7, 0, "/local/domain/1/name\0guest1")) !== "OK\0") {
      throw new Error("setup write");
    }
    const read = encodeMessage(2, 7, 0, "/local/domain/1/name\0");
    return () => {
      if (libc.write(client, read) !== read.length) throw new Error("request not written");
      loop.turn(1000);
      // The reply: 16 header bytes and "guest1".
      if (libc.read(client, replyBuf) !== 22 || replyBuf[16] !== 0x67) throw new Error("bad reply");
    };
  }
  if (s !== "ring-read" && s !== "ring-guest") {
    const { Framer, encodeMessage } = await import("../src/protocol/codec.ts");
    const { OutBuffer } = await import("../src/transport/outbuf.ts");
    const out = new OutBuffer();
    let last = "";
    const c = core.open({
      send(t: number, r: number, x: number, p: string) {
        out.append(t, r, x, p);
        last = p;
        return true;
      },
    }, "bench");
    const framer = new Framer();
    const readBuf = new Uint8Array(65536);
    /**
     * One request as the socket transport handles it (its bytes were encoded once: the client's
     * work is not counted; only the transaction id is patched in); returns the reply payload.
     */
    const request = (bytes: Uint8Array, tx = 0): string => {
      readBuf.set(bytes, 0);
      readBuf[8] = tx & 0xff;
      readBuf[9] = (tx >>> 8) & 0xff;
      readBuf[10] = (tx >>> 16) & 0xff;
      readBuf[11] = (tx >>> 24) & 0xff;
      framer.feed(readBuf.subarray(0, bytes.length));
      for (let m = framer.next(); m !== null; m = framer.next()) {
        if ("kind" in m) throw new Error("framing error");
        core.message(c, m);
      }
      framer.release();
      out.consume(out.pending().length);
      return last;
    };
    const msg = (type: number, payload: string) => encodeMessage(type, 7, 0, payload);
    request(msg(11, "/local/domain/1/name\0guest1"));
    if (s === "socket-read") {
      const read = msg(2, "/local/domain/1/name\0");
      return () => {
        if (request(read) !== "guest1") throw new Error("bad reply");
      };
    }
    if (s === "socket-enoent") {
      const read = msg(2, "/local/domain/1/missing\0");
      return () => {
        if (request(read) !== "ENOENT\0") throw new Error("bad reply");
      };
    }
    // xsbench's txn/create: READ and WRITE the client's counter, create or remove its child.
    request(msg(11, "/bench/txn/counter\x000"));
    const start = msg(6, "\0");
    const read = msg(2, "/bench/txn/counter\0");
    const write = msg(11, "/bench/txn/counter\x001");
    const create = msg(11, "/bench/txn/parent/c\0x");
    const remove = msg(13, "/bench/txn/parent/c\0");
    const commit = msg(7, "T\0");
    let child = false;
    return () => {
      const tx = Number(request(start).slice(0, -1));
      request(read, tx);
      request(write, tx);
      request(child ? remove : create, tx);
      child = !child;
      if (request(commit, tx) !== "OK\0") throw new Error("commit failed");
    };
  }
  // The daemon's ring parts as src/cli/daemon.ts assembles them, over the in-memory Xen of the tests.
  const { EventLoop } = await import("../src/transport/loop.ts");
  const { RingServer } = await import("../src/transport/ring_server.ts");
  const { dom0 } = await import("../tests/helpers/core.ts");
  const ring = await import("../src/xen/ring.ts");
  const loop = new EventLoop({ gate: null });
  const rings = new RingServer(loop, xen, core, core.domains, { quotas: core.quotas });
  const turn = () => {
    rings.checkEventChannel();
    loop.turn(0);
  };
  const admin = dom0(core);
  xen.create(5);
  // The domain's home as a toolstack makes it: owned by dom0, readable by the guest, then its nodes.
  for (
    const [type, payload] of [
      [12, "/local/domain/5\0"],
      [14, "/local/domain/5\0n0\0r5\0"],
      [11, "/local/domain/5/name\0guest5"],
      [8, "5\x004101\x007\0"],
    ] as const
  ) {
    const reply = admin.tryRequest(type, payload);
    if (/^E[A-Z]+$/.test(reply)) throw new Error(`setup request ${type}: ${reply}`);
  }
  turn();
  const page = new ring.RingPage(xen.domains.get(5)!.page);
  const reply = new ring.MessageReader();
  // The watches a Linux guest's xenbus holds on its own nodes (token: a kernel address), set over the
  // ring: each WATCH's reply and first event taken off it.
  for (const path of ["device", "control/shutdown", "control/sysrq", "memory/target", "cpu", "backend"]) {
    ring.ringProduce(page, ring.REQUESTS, ring.encode(4, 1, 0, `${path}\0ffff88800b8c4${path.length}00\0`));
    xen.kick(5);
    turn();
    for (let i = 0; i < 2; i++) {
      const m = reply.read(page, ring.RESPONSES);
      if (m === null || typeof m === "string" || m.type === 16) throw new Error(`WATCH ${path}: ${m}`);
    }
  }
  xen.notified.length = 0;
  const req = ring.encode(2, 7, 0, "name\0");
  if (s === "ring-guest") {
    // The daemon's reply, as it writes it (header and payload), copied in place of its work.
    const answer = ring.encode(2, 7, 0, "guest5");
    const bytes = page.bytes;
    return () => {
      ring.ringProduce(page, ring.REQUESTS, req);
      xen.kick(5);
      xen.pendingPorts();
      page.set(ring.Field.REQ_CONS, page.get(ring.Field.REQ_PROD));
      const prod = page.get(ring.Field.RSP_PROD);
      for (let i = 0; i < answer.length; i++) {
        bytes[ring.RSP_OFFSET + ((prod + i) & (ring.RING_SIZE - 1))] = answer[i];
      }
      page.set(ring.Field.RSP_PROD, prod + answer.length);
      const m = reply.read(page, ring.RESPONSES);
      if (m === null || typeof m === "string" || m.payload !== "guest5") throw new Error(`bad reply ${m}`);
      xen.notified.length = 0;
    };
  }
  return () => {
    ring.ringProduce(page, ring.REQUESTS, req);
    xen.kick(5);
    turn();
    if (page.get(ring.Field.REQ_CONS) !== page.get(ring.Field.REQ_PROD)) throw new Error("not served");
    const m = reply.read(page, ring.RESPONSES); // the guest takes the reply
    if (m === null || typeof m === "string" || m.payload !== "guest5") throw new Error(`bad reply ${m}`);
    xen.notified.length = 0;
  };
}

/** Requests run after the pause at "ready", before the counted ones (see worker). */
const SETTLE = 5_000;

/**
 * The worker: the scenario's set-up and warm-up; then, told "go" on stdin, SETTLE more requests and
 * (told "go" again) n requests. It says "ready", "settled" and "done" on stdout and waits for a line
 * after each: the parent turns callgrind's instrumentation on before the n requests and off after
 * them, so that only those are counted. The SETTLE requests take in what the first pause changed
 * (V8 deoptimized code after it: a field's representation, prototype chains of the stream classes
 * the first read loads), so that the count does not include its recompilation.
 */
async function worker(s: Scenario, n: number): Promise<void> {
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  const encoder = new TextEncoder();
  const say = (w: string) => Deno.stdout.writeSync(encoder.encode(`${w}\n`));
  const one = await setup(s);
  // One loop for every phase: a loop of its own for the counted requests would be compiled (OSR)
  // while they are counted.
  const run = (k: number) => {
    for (let i = 0; i < k; i++) one();
  };
  for (let i = 0; i < WARMUP / 1000; i++) run(1000);
  say("ready");
  await lines.read();
  run(SETTLE);
  // A full collection now, so that whether one falls into the counted requests (tens of millions of
  // instructions with --single-threaded) does not depend on where the warm-up left the heap.
  (globalThis as { gc?: () => void }).gc?.();
  say("settled");
  await lines.read();
  run(n);
  say("done");
  await lines.read();
}

/** Waits for `word` on the worker's stdout. */
async function expectLine(out: ReadableStreamDefaultReader<string>, word: string): Promise<void> {
  let seen = "";
  while (!seen.includes(`${word}\n`)) {
    const r = await out.read();
    if (r.done) throw new Error(`the worker ended before saying ${word}`);
    seen += r.value;
  }
}

/** callgrind_control on the worker (valgrind's pid is the worker's). */
async function control(pid: number, ...args: string[]): Promise<void> {
  const r = await new Deno.Command("callgrind_control", { args: [...args, String(pid)], stdout: "null" })
    .output();
  if (!r.success) throw new Error(`callgrind_control ${args.join(" ")} failed`);
}

/**
 * Instructions callgrind counted for n requests of the scenario: instrumentation is off during the
 * start-up, set-up and warm-up (whose count varies from run to run by more than n requests cost:
 * V8's random hash seeds, compilation and GC timing), on for the n requests alone.
 */
async function count(s: Scenario, n: number): Promise<number> {
  const child = new Deno.Command("valgrind", {
    args: [
      "--tool=callgrind",
      "--smc-check=all-non-file", // V8 writes and rewrites its own machine code
      "--instr-atstart=no",
      "--callgrind-out-file=/dev/null",
      Deno.execPath(),
      "run",
      "-A",
      "--no-check",
      ...v8FlagsArgs([...readV8Flags(), "--single-threaded"]),
      new URL(import.meta.url).pathname,
      "--worker",
      s,
      String(n),
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const input = child.stdin.getWriter();
  const stderr = new Response(child.stderr).text();
  await expectLine(out, "ready");
  await input.write(new TextEncoder().encode("go\n"));
  await expectLine(out, "settled");
  await control(child.pid, "--instr=on");
  await input.write(new TextEncoder().encode("go\n"));
  await expectLine(out, "done");
  await control(child.pid, "--instr=off");
  await input.write(new TextEncoder().encode("exit\n"));
  await input.close();
  const status = await child.status;
  const err = await stderr;
  const m = /I\s+refs:\s+([\d,]+)/.exec(err);
  if (!status.success || m === null) throw new Error(`callgrind on ${s} failed:\n${err.slice(-2000)}`);
  return Number(m[1].replaceAll(",", ""));
}

if (import.meta.main && Deno.args[0] === "--worker") {
  await worker(Deno.args[1] as Scenario, Number(Deno.args[2]));
} else if (import.meta.main) {
  const args = Deno.args;
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const n = Number(opt("--requests") ?? 30_000);
  const scenarios = (opt("--scenarios")?.split(",") ?? SCENARIOS) as Scenario[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
  console.log("| scenario | instructions per request (user space, callgrind) |");
  console.log("| --- | ---: |");
  const perRequest = new Map<Scenario, number>();
  for (const s of scenarios) {
    const total = await count(s, n);
    perRequest.set(s, total / Math.max(n, 1));
    console.log(`| ${s}${s === "txn" ? " (per transaction)" : ""} | ${Math.round(total / Math.max(n, 1))} |`);
  }
  const ringRead = perRequest.get("ring-read");
  const ringGuest = perRequest.get("ring-guest");
  if (ringRead !== undefined && ringGuest !== undefined) {
    console.log(
      `| ring-read, daemon's side (ring-read − ring-guest) | ${Math.round(ringRead - ringGuest)} |`,
    );
  }
}
