// dxenstored's memory with real guests (the simulated Xen, as bench/guests.ts): G guests introduced the
// way libxl does it — their tree written in one transaction, INTRODUCE, then the guest registers its
// watches over its own ring — and released again (RELEASE, the toolstack removes the tree, the
// domain dies), several times. RSS before, with the G guests, and after each release (part of
// bench/memory.ts; issue 15 item 3 and issue 18 item 2).
import { GuestClient } from "../src/client/guest.ts";
import { createDomain, destroyDomain } from "../src/xen/sim/control.ts";
import { SimEvtchn, SimGuest } from "../src/xen/sim/guest.ts";
import { readV8Flags, v8FlagsArgs } from "../compile/v8_flags.ts";
import { SocketClient } from "./socket_client.ts";
import { GUEST_WATCHES, removeGuestTree, toolstackCreate } from "./host_trees.ts";

const ROOT = new URL("..", import.meta.url).pathname;

export interface SimHostResult {
  readonly guests: number;
  /** RSS (bytes) of the idle daemon before the first guest. */
  readonly idle: number;
  /** RSS with the G guests, settled, in each cycle. */
  readonly loaded: number[];
  /** RSS after releasing all of them, settled, in each cycle. */
  readonly released: number[];
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m === null ? NaN : Number(m[1]) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function simGuestCycles(
  guests: number,
  cycles: number,
  settleS: number,
  cpu: "same" | "split" | "none",
): Promise<SimHostResult> {
  const dir = Deno.makeTempDirSync({
    dir: exists("/dev/shm") ? "/dev/shm" : undefined,
    prefix: "dxmem-xen.",
  });
  const sock = `${dir}/socket`;
  const argv = [
    Deno.execPath(),
    "run",
    "-A",
    ...v8FlagsArgs(readV8Flags()),
    `${ROOT}src/cli/main.ts`,
    ...["--socket", sock, "--xen", `sim:${dir}/xen`, "--backend", "memory", "--log-level", "warn"],
  ];
  const pinned = cpu === "none" ? argv : ["taskset", "-c", "0", ...argv];
  const child = new Deno.Command(pinned[0], {
    args: pinned.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // taskset execs the daemon: the child's pid is the daemon's.
  const evtchn = new SimEvtchn(`${dir}/xen`);
  try {
    for (let i = 0; i < 400 && !exists(sock); i++) await sleep(25);
    const s = new SocketClient(sock);
    await sleep(2000);
    const idle = rss(child.pid);
    const loaded: number[] = [];
    const released: number[] = [];
    let domid = 1;
    for (let c = 0; c < cycles; c++) {
      const live: Array<{ domid: number; g: GuestClient }> = [];
      for (let i = 0; i < guests; i++, domid++) {
        const d = createDomain(`${dir}/xen`, domid);
        toolstackCreate(s, d);
        const g = new GuestClient(new SimGuest(`${dir}/xen`, domid, evtchn), {
          blocking: true,
          timeoutMs: 30_000,
        });
        const ids = GUEST_WATCHES.map((p, k) => g.send(4, `${p}\0w${k}\0`));
        for (const id of ids) await g.reply(id);
        g.events.length = 0;
        live.push({ domid, g });
      }
      await sleep(settleS * 1000);
      loaded.push(rss(child.pid));
      for (const { domid, g } of live) {
        g.close();
        s.call(9, `${domid}\0`); // RELEASE: its connection, watches and owned nodes go
        removeGuestTree(s, domid);
        destroyDomain(`${dir}/xen`, domid);
      }
      await sleep(settleS * 1000);
      released.push(rss(child.pid));
    }
    s.close();
    return { guests, idle, loaded, released };
  } finally {
    evtchn.close();
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    Deno.removeSync(dir, { recursive: true });
  }
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}
