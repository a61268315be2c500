// Guest domains over the simulated Xen (part of `deno task bench`; alone:
// `bin/deno run -A bench/guests.ts [--domains N] [--round-trips N]`):
//
//  1. round trip of a READ over a guest's ring vs over the Unix socket (same daemon, same client
//     runtime: a blocking loop in this process, no event loop in the way);
//  2. a host with N (1 000) simulated domains, each with its typical device tree written by the
//     toolstack, 50 data nodes and 5 watches the guest registered over its ring: daemon RSS, READ and
//     WRITE latency over a ring and over the socket, and the time to introduce the (N+1)th domain and
//     write its device tree compared with the 11th (target ratio ≤ 1.5).
//
// The daemon is a separate process (`src/cli/main.ts --xen=sim:<dir> --backend memory`); the guests
// are this process, mapping the daemon's ring pages from a directory in /dev/shm.
import { GuestClient } from "../src/client/guest.ts";
import { createDomain, destroyDomain, type SimDomain } from "../src/xen/sim/control.ts";
import { SimEvtchn, SimGuest } from "../src/xen/sim/guest.ts";
import * as ffi from "../ffi/libc.ts";
import { SocketClient } from "./socket_client.ts";
import { startSimDaemon } from "./sim_daemon.ts";
import { GUEST_WATCHES, toolstackCreate } from "./host_trees.ts";

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m === null ? NaN : Number(m[1]) * 1024;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Round trips of a blocking guest client (callSync: no promise per request, like the socket client's). */
function ringRoundTrip(g: GuestClient, path: string, n: number, type = 2, value = ""): number {
  const payload = type === 2 ? `${path}\0` : `${path}\0${value}`;
  for (let i = 0; i < Math.min(1000, n); i++) g.callSync(type, payload); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) g.callSync(type, payload);
  return ((performance.now() - t0) * 1000) / n;
}

function socketRoundTrip(s: SocketClient, path: string, n: number, type = 2, value = ""): number {
  const payload = type === 2 ? `${path}\0` : `${path}\0${value}`;
  for (let i = 0; i < Math.min(1000, n); i++) s.call(type, payload); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) s.call(type, payload);
  return ((performance.now() - t0) * 1000) / n;
}

/** CPU time (ns) the main thread of process `pid` has run so far (/proc/<pid>/task/<pid>/schedstat). */
function threadCpuNs(pid: number): number {
  const t = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`);
  return Number(t.split(" ")[0]);
}

export interface RoundTripComparison {
  /** Median over rounds of the wall time per round trip (µs). */
  readonly ringUs: number;
  readonly socketUs: number;
  /**
   * Median over blocks of two rounds (ring first, then socket first) of (ring round trip ÷ socket
   * round trip) in the block.
   */
  readonly ratio: number;
  /**
   * CPU time per round trip of the daemon's and the client's main threads (µs): on a busy machine
   * wall time mostly measures waiting for a CPU; this does not.
   */
  readonly ringCpuUs: number;
  readonly socketCpuUs: number;
  /** The daemon's share of those. */
  readonly ringDaemonCpuUs: number;
  readonly socketDaemonCpuUs: number;
}

/**
 * Ring vs socket, the same READ from the same client runtime, in alternating rounds (ring, socket,
 * socket, ring, ...), so that background load falls on both alike and neither always goes first. The
 * ratio is the median of per-pair ratios.
 */
export function compareRoundTrips(
  g: GuestClient,
  s: SocketClient,
  path: string,
  daemonPid: number,
  rounds: number,
  perRound: number,
): RoundTripComparison {
  type Round = { us: number; cpu: number; daemon: number };
  const ring: Round[] = [];
  const sock: Round[] = [];
  const payload = `${path}\0`;
  const measure = (body: () => void): Round => {
    const d0 = threadCpuNs(daemonPid);
    const c0 = threadCpuNs(Deno.pid);
    const t0 = performance.now();
    body();
    const us = ((performance.now() - t0) * 1000) / perRound;
    const daemon = (threadCpuNs(daemonPid) - d0) / 1000 / perRound;
    return { us, daemon, cpu: daemon + (threadCpuNs(Deno.pid) - c0) / 1000 / perRound };
  };
  const ringRound = () =>
    ring.push(measure(() => {
      for (let i = 0; i < perRound; i++) g.callSync(2, payload);
    }));
  const socketRound = () =>
    sock.push(measure(() => {
      for (let i = 0; i < perRound; i++) s.call(2, payload);
    }));
  // Whichever transport goes second in a pair measured faster (by ~8% each way on a loaded 2-CPU
  // machine), so each goes first in every other round.
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      ringRound();
      socketRound();
    } else {
      socketRound();
      ringRound();
    }
  }
  return {
    ringUs: median(ring.map((x) => x.us)),
    socketUs: median(sock.map((x) => x.us)),
    // per block of two rounds (one in each order), so the order's bias cancels within each ratio
    ratio: median(
      Array.from(
        { length: Math.floor(rounds / 2) },
        (_, b) => (ring[2 * b].us + ring[2 * b + 1].us) / (sock[2 * b].us + sock[2 * b + 1].us),
      ),
    ),
    ringCpuUs: median(ring.map((x) => x.cpu)),
    socketCpuUs: median(sock.map((x) => x.cpu)),
    ringDaemonCpuUs: median(ring.map((x) => x.daemon)),
    socketDaemonCpuUs: median(sock.map((x) => x.daemon)),
  };
}

/**
 * The floor under a ring round trip: one simulated event-channel notification each way (an 8-byte
 * record written into the other process's FIFO, which it polls and drains, as src/xen/sim does), with
 * no daemon work at all.
 */
async function notifyFloorUs(dir: string, n: number): Promise<number> {
  const me = `${dir}/floor-a.fifo`;
  const peer = `${dir}/floor-b.fifo`;
  ffi.mkfifo(me);
  const fd = ffi.open(me, ffi.O_RDWR | ffi.O_NONBLOCK);
  const echo = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--echo-peer", peer, me, String(n + 1000)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const buf = new Uint8Array(64);
    const msg = new Uint8Array(8);
    let out = -1;
    while (out < 0) {
      out = ffi.tryOpen(peer, ffi.O_WRONLY | ffi.O_NONBLOCK); // -ENXIO/-ENOENT until the peer is up
      if (out < 0) await new Promise((r) => setTimeout(r, 10));
    }
    let t0 = 0;
    for (let i = 0; i < n + 1000; i++) {
      if (i === 1000) t0 = performance.now(); // the first 1000 warm up
      ffi.write(out, msg);
      while (!ffi.pollReadable([fd], 1000));
      ffi.read(fd, buf);
    }
    const us = ((performance.now() - t0) * 1000) / n;
    ffi.close(out);
    return us;
  } finally {
    await echo.status;
    ffi.close(fd);
  }
}

function echoPeer(path: string, reply: string, n: number): void {
  ffi.mkfifo(path);
  const fd = ffi.open(path, ffi.O_RDWR | ffi.O_NONBLOCK);
  const out = ffi.open(reply, ffi.O_WRONLY | ffi.O_NONBLOCK);
  const buf = new Uint8Array(64);
  for (let i = 0; i < n; i++) {
    while (!ffi.pollReadable([fd], 1000));
    ffi.read(fd, buf);
    ffi.write(out, buf.subarray(0, 8));
  }
  ffi.close(out);
  ffi.close(fd);
}

export interface GuestBenchResult {
  readonly domains: number;
  /** Two simulated event-channel notifications between processes: what a ring round trip cannot go below. */
  readonly notifyFloorUs: number;
  readonly ringReadUs: number;
  readonly socketReadUs: number;
  /** The same READ on the ring and on the socket in alternating rounds. */
  readonly rtt: RoundTripComparison;
  readonly loaded: {
    readonly rssBytes: number;
    readonly rssBaseBytes: number;
    readonly ringReadUs: number;
    readonly ringWriteUs: number;
    readonly socketReadUs: number;
    readonly socketWriteUs: number;
  };
  readonly introduceEarlyMs: number;
  readonly introduceLateMs: number;
  readonly setupSeconds: number;
}

export async function runGuestBench(domains = 1000, roundTrips = 5000): Promise<GuestBenchResult> {
  const base = (() => {
    try {
      Deno.statSync("/dev/shm");
      return "/dev/shm";
    } catch {
      return undefined;
    }
  })();
  const dir = Deno.makeTempDirSync({ dir: base, prefix: "dxbench-xen." });
  const { child, socket: sock } = await startSimDaemon(dir);
  const guests: GuestClient[] = [];
  const evtchn = new SimEvtchn(`${dir}/xen`);
  try {
    const s = new SocketClient(sock);
    const rss0 = rss(child.pid);
    const attach = (d: SimDomain) => {
      const g = new GuestClient(new SimGuest(`${dir}/xen`, d.domid, evtchn), {
        blocking: true,
        timeoutMs: 30_000,
      });
      guests.push(g);
      return g;
    };

    // 1. One guest: ring vs socket round trip of the same READ.
    const d1 = createDomain(`${dir}/xen`, 1);
    toolstackCreate(s, d1);
    const g1 = attach(d1);
    // A first pass of each only warms up (both processes' JIT tiers): the rounds after it are measured.
    ringRoundTrip(g1, "/local/domain/1/name", roundTrips);
    socketRoundTrip(s, "/local/domain/1/name", roundTrips);
    const rtt = compareRoundTrips(
      g1,
      s,
      "/local/domain/1/name",
      child.pid,
      10,
      Math.ceil(roundTrips / 5),
    );
    const floorUs = await notifyFloorUs(dir, roundTrips);

    // 2. N domains, each with its device tree, 50 data nodes and 5 watches of its own. First warm up
    // the toolstack's path (both processes' JIT) on throwaway domains, so the 11th is not measured cold.
    for (let i = 0; i < 30; i++) {
      const d = createDomain(`${dir}/xen`, 7000 + i);
      toolstackCreate(s, d);
      s.call(9, `${d.domid}\0`); // RELEASE: the nodes it owns go
      s.call(13, `/local/domain/${d.domid}\0`);
      s.call(13, `/local/domain/0/backend/vbd/${d.domid}\0`);
      s.call(13, `/local/domain/0/backend/vif/${d.domid}\0`);
      destroyDomain(`${dir}/xen`, d.domid);
    }
    const t0 = performance.now();
    const early: number[] = [];
    const late: number[] = [];
    const populate = async (domid: number) => {
      const d = createDomain(`${dir}/xen`, domid);
      const ms = toolstackCreate(s, d);
      if (domid >= 11 && domid < 16) early.push(ms);
      if (domid > domains) late.push(ms);
      const home = `/local/domain/${domid}`;
      const data: Array<[number, string]> = [];
      for (let k = 0; k < 50; k++) data.push([11, `${home}/data/k${k}\0value-${domid}-${k}`]);
      s.batch(data);
      const g = attach(d);
      const ids = GUEST_WATCHES.map((p, i) => g.send(4, `${p}\0w${i}\0`));
      for (const id of ids) await g.reply(id);
      g.events.length = 0;
    };
    for (let domid = 2; domid <= domains; domid++) await populate(domid);
    const setupSeconds = (performance.now() - t0) / 1000;
    const rssLoaded = rss(child.pid);
    const mid = guests[Math.floor(guests.length / 2)];
    const midHome = `/local/domain/${mid.transport.domid}`;
    const loaded = {
      rssBytes: rssLoaded,
      rssBaseBytes: rss0,
      ringReadUs: ringRoundTrip(mid, `${midHome}/data/k7`, roundTrips),
      ringWriteUs: ringRoundTrip(mid, `${midHome}/data/k8`, roundTrips, 11, "x"),
      // A node no guest watches: the guests do not read their rings while this process is on the socket.
      socketReadUs: socketRoundTrip(s, `${midHome}/name`, roundTrips),
      socketWriteUs: socketRoundTrip(s, `${midHome}/vm`, roundTrips, 11, "y"),
    };
    // The (N+1)th.. domains, with N already there.
    for (let domid = domains + 1; domid <= domains + 5; domid++) await populate(domid);
    s.close();
    return {
      domains,
      notifyFloorUs: floorUs,
      ringReadUs: rtt.ringUs,
      socketReadUs: rtt.socketUs,
      rtt,
      loaded,
      introduceEarlyMs: median(early),
      introduceLateMs: median(late),
      setupSeconds,
    };
  } finally {
    for (const g of guests) g.close();
    evtchn.close();
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    Deno.removeSync(dir, { recursive: true });
  }
}

export function guestBenchMarkdown(r: GuestBenchResult): string {
  const f = (v: number) => v.toFixed(1);
  const ratio = r.introduceLateMs / r.introduceEarlyMs;
  return [
    `### guest domains over the simulated Xen`,
    "",
    "| measure | value |",
    "| --- | --- |",
    `| READ round trip, guest ring (median of 10 alternating rounds) | ${f(r.ringReadUs)} µs |`,
    `| READ round trip, Unix socket (same rounds) | ${f(r.socketReadUs)} µs |`,
    `| ring RTT ÷ socket RTT (median over 5 pairs of rounds, one in each order; target ≤ 1.2) | ${
      r.rtt.ratio.toFixed(2)
    }×${r.rtt.ratio <= 1.2 ? "" : " **over target**"} |`,
    `| CPU per round trip, daemon + client main threads: ring / socket | ${f(r.rtt.ringCpuUs)} / ${
      f(r.rtt.socketCpuUs)
    } µs (${(r.rtt.ringCpuUs / r.rtt.socketCpuUs).toFixed(2)}×; daemon ${f(r.rtt.ringDaemonCpuUs)} / ${
      f(r.rtt.socketDaemonCpuUs)
    } µs) |`,
    `| floor: one simulated event-channel signal each way, no daemon | ${f(r.notifyFloorUs)} µs |`,
    `| domains (device tree + 50 data nodes + 5 watches each) | ${r.domains} (set up in ${
      r.setupSeconds.toFixed(1)
    } s) |`,
    `| daemon RSS, empty → loaded | ${(r.loaded.rssBaseBytes / 1048576).toFixed(1)} → ${
      (r.loaded.rssBytes / 1048576).toFixed(1)
    } MiB (${((r.loaded.rssBytes - r.loaded.rssBaseBytes) / r.domains / 1024).toFixed(1)} KiB per domain) |`,
    `| READ / WRITE over a ring, loaded | ${f(r.loaded.ringReadUs)} / ${f(r.loaded.ringWriteUs)} µs |`,
    `| READ / WRITE over the socket, loaded | ${f(r.loaded.socketReadUs)} / ${
      f(r.loaded.socketWriteUs)
    } µs |`,
    `| introduce + device tree, 11th domain (median of 5) | ${r.introduceEarlyMs.toFixed(2)} ms |`,
    `| introduce + device tree, ${r.domains + 1}st domain (median of 5) | ${
      r.introduceLateMs.toFixed(2)
    } ms |`,
    `| ratio (target ≤ 1.5) | ${ratio.toFixed(2)}${ratio <= 1.5 ? "" : " **over target**"} |`,
    "",
  ].join("\n");
}

if (import.meta.main && Deno.args[0] === "--echo-peer") {
  echoPeer(Deno.args[1], Deno.args[2], Number(Deno.args[3]));
} else if (import.meta.main) {
  const args = Deno.args;
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const r = await runGuestBench(opt("--domains", 1000), opt("--round-trips", 5000));
  console.log(guestBenchMarkdown(r));
  console.error(JSON.stringify(r));
}
