// How long a live update stalls clients (issue 16, Deliver 5), in every direction against cx → cx in the
// same run: a store of N leaves (/bench/fill/gNNNNN/nNN, 100 per folder), one client doing READ round
// trips one at a time throughout, and `xenstore-control live-update` replacing the daemon. Reported: p50
// and max round-trip latency in the window around the switch, and xenstore-control's time.
//
//   bin/deno run --allow-all bench/live_update.ts [--dx-only] [--cap=SECONDS] [leaves...]  (default: 10000)
//
// Directions: dx → dx; cx → cx; cx → dx then dx → cx on the same daemon (the way there and back).
// A switch to cxenstored restores slowly at 100 000 leaves (it rewrites each node's parent in its
// TDB): a switch still stalling after --cap seconds (default 120) is reported as such.
// --dx-only: dx → dx alone.
//
// cxenstored runs under ../shared/anchors' shim (tests/helpers/anchor.ts); its target is a script that
// execs cxenstored again with the arguments it was given.
import { anchorsAvailable, startAnchor } from "../tests/helpers/anchor.ts";
import { startDaemon } from "../tests/helpers/daemon.ts";
import { joinNul, WireClient, XS } from "../tests/helpers/wire.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";
const XENSTORED = "/usr/lib/xen-4.17/bin/xenstored";

async function connect(socket: string): Promise<WireClient> {
  for (let i = 0;; i++) {
    try {
      return await WireClient.connect(socket);
    } catch (e) {
      if (i > 300) throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** N leaves, written pipelined in batches (each batch's replies read before the next). */
async function fill(c: WireClient, leaves: number): Promise<void> {
  const BATCH = 500;
  for (let i = 0; i < leaves; i += BATCH) {
    const n = Math.min(BATCH, leaves - i);
    for (let j = 0; j < n; j++) {
      const k = i + j;
      const g = String(Math.floor(k / 100)).padStart(5, "0");
      await c.send(
        XS.WRITE,
        joinNul(`/bench/fill/g${g}/n${k % 100}`) + "value-" + String(k).padStart(8, "0"),
      );
    }
    for (let j = 0; j < n; j++) await c.recv(60000);
  }
}

interface Result {
  readonly p50: number;
  readonly max: number;
  readonly controlMs: number;
  readonly ok: boolean;
  /** The client was still waiting after the cap. */
  readonly stalled?: boolean;
}

let capS = 120;

async function measure(socket: string, target: string): Promise<Result> {
  const c = await connect(socket);
  const lat: number[] = [];
  let stop = false;
  let stalled = false;
  const loop = (async () => {
    while (!stop) {
      const t0 = performance.now();
      try {
        await c.request(XS.READ, "/bench/fill/g00000/n0\0", { timeoutMs: capS * 1000 });
      } catch {
        stalled = true;
        return;
      }
      lat.push(performance.now() - t0);
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  const before = lat.length;
  const t0 = performance.now();
  const out = await new Deno.Command("timeout", {
    args: [String(capS), XENSTORE_CONTROL, "live-update", "-t", String(capS), target],
    env: { XENSTORED_PATH: socket },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const controlMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await loop;
  c.close();
  const window = lat.slice(Math.max(0, before - 50)).sort((a, b) => a - b);
  return {
    p50: window[Math.floor(window.length / 2)],
    max: stalled ? capS * 1000 : window[window.length - 1],
    controlMs,
    ok: out.code === 0 && !stalled,
    stalled,
  };
}

async function dxRun(leaves: number): Promise<Result> {
  const rundir = await Deno.makeTempDir({ prefix: "dxs-lub-" });
  const launcher = `${rundir}/dxenstored`;
  Deno.writeTextFileSync(
    launcher,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" "$@"\n`,
    { mode: 0o755 },
  );
  const logFile = `${rundir}/dx.log`;
  const d = await startDaemon({ env: { XENSTORED_RUNDIR: rundir }, args: ["--log-file", logFile] });
  try {
    const c = await connect(d.socket);
    await fill(c, leaves);
    c.close();
    const r = await measure(d.socket, launcher);
    if (Deno.env.get("LU_BENCH_LOG")) console.log(Deno.readTextFileSync(logFile));
    return r;
  } finally {
    await d.stop().catch(() => {});
    await Deno.remove(rundir, { recursive: true }).catch(() => {});
  }
}

async function cxRun(leaves: number): Promise<Result> {
  const a = await startAnchor("cxenstored");
  try {
    const target = `${a.dir}/again.sh`;
    Deno.writeTextFileSync(target, `#!/bin/sh\nexec ${XENSTORED} "$@"\n`, { mode: 0o755 });
    const c = await connect(a.socket);
    await fill(c, leaves);
    c.close();
    return await measure(a.socket, target);
  } finally {
    await a.stop();
  }
}

/** cx → dx, then dx → cx back, on one daemon (dxenstored keeps the shim's LD_PRELOAD for the way back). */
async function crossRun(leaves: number): Promise<{ toDx: Result; toCx: Result }> {
  const a = await startAnchor("cxenstored");
  try {
    const launcher = `${a.dir}/dxenstored`;
    Deno.writeTextFileSync(
      launcher,
      `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" --log-file ${a.dir}/dx.log "$@"\n`,
      { mode: 0o755 },
    );
    const c = await connect(a.socket);
    await fill(c, leaves);
    c.close();
    const toDx = await measure(a.socket, launcher);
    const toCx = await measure(a.socket, XENSTORED);
    return { toDx, toCx };
  } finally {
    await a.stop();
  }
}

const fmt = (r: Result) =>
  `p50 ${r.p50.toFixed(2)} ms, max ${r.stalled ? `> ${capS * 1000}` : r.max.toFixed(0)} ms, ` +
  `xenstore-control ${r.controlMs.toFixed(0)} ms${r.ok ? "" : r.stalled ? " (STILL STALLED)" : " (FAILED)"}`;

if (import.meta.main) {
  const cap = Deno.args.find((a) => a.startsWith("--cap="));
  if (cap !== undefined) capS = Number(cap.slice(6));
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const sizes = args.length > 0 ? args.map(Number) : [10000];
  const cx = !Deno.args.includes("--dx-only") && await anchorsAvailable();
  for (const n of sizes) {
    const dx = await dxRun(n);
    console.log(`${n} leaves  dx → dx: ${fmt(dx)}`);
    if (!cx) continue;
    const c = await cxRun(n);
    console.log(`${n} leaves  cx → cx: ${fmt(c)}`);
    const { toDx, toCx } = await crossRun(n);
    console.log(`${n} leaves  cx → dx: ${fmt(toDx)}`);
    console.log(`${n} leaves  dx → cx: ${fmt(toCx)}`);
    const ratio = (r: Result) => `max ${(r.max / c.max).toFixed(2)}, p50 ${(r.p50 / c.p50).toFixed(2)}`;
    console.log(
      `${n} leaves  ratios to cx → cx: dx → dx ${ratio(dx)}; cx → dx ${ratio(toDx)}; dx → cx ${ratio(toCx)}`,
    );
  }
}
