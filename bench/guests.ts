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
import { readV8Flags, v8FlagsArgs } from "../compile/v8_flags.ts";
import { SocketClient } from "./socket_client.ts";
import { GUEST_WATCHES, toolstackCreate } from "./host_trees.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m === null ? NaN : Number(m[1]) * 1024;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function ringRoundTrip(g: GuestClient, path: string, n: number, type = 2, value = ""): Promise<number> {
  const payload = type === 2 ? `${path}\0` : `${path}\0${value}`;
  for (let i = 0; i < Math.min(1000, n); i++) await g.call(type, payload); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await g.call(type, payload);
  return ((performance.now() - t0) * 1000) / n;
}

function socketRoundTrip(s: SocketClient, path: string, n: number, type = 2, value = ""): number {
  const payload = type === 2 ? `${path}\0` : `${path}\0${value}`;
  for (let i = 0; i < Math.min(1000, n); i++) s.call(type, payload); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) s.call(type, payload);
  return ((performance.now() - t0) * 1000) / n;
}

/**
 * The floor under a ring round trip: one simulated event-channel notification each way (a datagram
 * between two processes, each blocked in poll), with no daemon work at all.
 */
async function notifyFloorUs(dir: string, n: number): Promise<number> {
  const me = `${dir}/floor-a.sock`;
  const peer = `${dir}/floor-b.sock`;
  const fd = ffi.bindDatagram(me);
  const echo = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--echo-peer", peer, me, String(n + 1000)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const buf = new Uint8Array(16);
    const msg = new Uint8Array(8);
    while (!exists(peer)) await new Promise((r) => setTimeout(r, 10));
    let t0 = 0;
    for (let i = 0; i < n + 1000; i++) {
      if (i === 1000) t0 = performance.now(); // the first 1000 warm up
      while (ffi.sendTo(fd, peer, msg) < 0) ffi.pollReadable([], 1);
      while (ffi.recv(fd, buf) < 0) ffi.pollReadable([fd], 1000);
    }
    return ((performance.now() - t0) * 1000) / n;
  } finally {
    await echo.status;
    ffi.close(fd);
  }
}

function echoPeer(path: string, reply: string, n: number): void {
  const fd = ffi.bindDatagram(path);
  const buf = new Uint8Array(16);
  for (let i = 0; i < n; i++) {
    while (ffi.recv(fd, buf) < 0) ffi.pollReadable([fd], 1000);
    while (ffi.sendTo(fd, reply, buf.subarray(0, 8)) < 0) ffi.pollReadable([], 1);
  }
  ffi.close(fd);
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

export interface GuestBenchResult {
  readonly domains: number;
  /** Two datagram notifications between processes: what a ring round trip cannot go below. */
  readonly notifyFloorUs: number;
  readonly ringReadUs: number;
  readonly socketReadUs: number;
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
  const sock = `${dir}/socket`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...v8FlagsArgs(readV8Flags()),
      `${ROOT}src/cli/main.ts`,
      "--socket",
      sock,
      "--xen",
      `sim:${dir}/xen`,
      "--backend",
      "memory",
      "--log-level",
      "warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const guests: GuestClient[] = [];
  const evtchn = new SimEvtchn(`${dir}/xen`);
  try {
    for (let i = 0; i < 400; i++) {
      try {
        Deno.statSync(sock);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
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
    // A first pass of each only warms up (both processes' JIT tiers): the second is measured.
    await ringRoundTrip(g1, "/local/domain/1/name", roundTrips);
    socketRoundTrip(s, "/local/domain/1/name", roundTrips);
    const ringReadUs = await ringRoundTrip(g1, "/local/domain/1/name", roundTrips);
    const socketReadUs = socketRoundTrip(s, "/local/domain/1/name", roundTrips);
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
      ringReadUs: await ringRoundTrip(mid, `${midHome}/data/k7`, roundTrips),
      ringWriteUs: await ringRoundTrip(mid, `${midHome}/data/k8`, roundTrips, 11, "x"),
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
      ringReadUs,
      socketReadUs,
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
    `| READ round trip, guest ring | ${f(r.ringReadUs)} µs |`,
    `| READ round trip, Unix socket | ${f(r.socketReadUs)} µs |`,
    `| ring ÷ socket | ${(r.ringReadUs / r.socketReadUs).toFixed(2)}× |`,
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
