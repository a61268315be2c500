// Per-request cost of a guest READ over the simulated ring, as the kernel and V8 see the daemon:
// CPU (user, system), minor page faults, context switches and V8 collections per READ, for the ring
// and (same daemon, same run) the socket. Under real Xen in QEMU (TCG, PV dom0) every page fault and
// page-table change is a hypercall and far dearer than here, so faults and collections per request
// matter more than their native microseconds. `bin/deno run -A bench/ring_probe.ts [--n N]
// [--daemon-flag F]... [--strace [--rate R]]` (F: e.g. --cpu-prof, passed to the daemon's deno; --strace
// counts the daemon's system calls per request, at R requests per second if given).
import { GuestClient } from "../src/client/guest.ts";
import { createDomain } from "../src/xen/sim/control.ts";
import { SimEvtchn, SimGuest } from "../src/xen/sim/guest.ts";
import { SocketClient } from "./socket_client.ts";
import { startSimDaemon } from "./sim_daemon.ts";
import { toolstackCreate } from "./host_trees.ts";

interface ProcSample {
  utime: number;
  stime: number;
  minflt: number;
  ctx: number;
}

/** The daemon's counters, all its threads (/proc/<pid>/stat; ticks are 10 ms). */
function sample(pid: number): ProcSample {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const ctx = [...status.matchAll(/ctxt_switches:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  return { minflt: Number(f[7]), utime: Number(f[11]), stime: Number(f[12]), ctx };
}

function schedNs(pid: number): number {
  let ns = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0]);
  }
  return ns;
}

function measure(label: string, pid: number, n: number, call: () => void): void {
  const a = sample(pid);
  const c0 = schedNs(pid);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) call();
  const us = ((performance.now() - t0) * 1000) / n;
  const cpuUs = (schedNs(pid) - c0) / 1000 / n;
  const b = sample(pid);
  console.log(
    `${label.padEnd(7)} rtt ${us.toFixed(1)} µs  daemon cpu ${cpuUs.toFixed(1)} µs/req ` +
      `(user ${((b.utime - a.utime) * 10000 / n).toFixed(1)}, sys ${
        ((b.stime - a.stime) * 10000 / n).toFixed(1)
      })  ` +
      `minflt ${((b.minflt - a.minflt) / n).toFixed(3)}/req  ctxsw ${((b.ctx - a.ctx) / n).toFixed(2)}/req`,
  );
}

const args = Deno.args;
let n = 20000;
let ringOnly = false;
let strace = false;
/** Requests per second in the strace rounds (0: back to back); under emulated Xen a guest gets ~10-50. */
let rate = 0;
const daemonFlags: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--n") n = Number(args[++i]);
  else if (args[i] === "--daemon-flag") daemonFlags.push(args[++i]);
  else if (args[i] === "--ring-only") ringOnly = true;
  else if (args[i] === "--strace") strace = true;
  else if (args[i] === "--rate") rate = Number(args[++i]);
}
const dir = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "dxprobe." });
const { child, socket: sock } = await startSimDaemon(dir, { denoFlags: daemonFlags, stdout: "inherit" });
try {
  const s = new SocketClient(sock);
  const d1 = createDomain(`${dir}/xen`, 1);
  toolstackCreate(s, d1);
  const g = new GuestClient(new SimGuest(`${dir}/xen`, d1.domid, new SimEvtchn(`${dir}/xen`)), {
    blocking: true,
    timeoutMs: 30_000,
  });
  const ring = () => g.callSync(2, "/local/domain/1/name\0");
  const socket = () => s.call(2, "/local/domain/1/name\0");
  for (let i = 0; i < n; i++) ring(), ringOnly || socket(); // warm-up: both JIT tiers
  if (strace) {
    // System calls per request, all the daemon's threads (strace's own overhead slows everything).
    for (const [label, call] of [["ring", ring], ["socket", socket]] as const) {
      const out = `${dir}/strace-${label}`;
      const st = new Deno.Command("strace", { args: ["-c", "-f", "-o", out, "-p", String(child.pid)] })
        .spawn();
      await new Promise((r) => setTimeout(r, 1000));
      for (let i = 0; i < n; i++) {
        call();
        if (rate > 0) await new Promise((r) => setTimeout(r, 1000 / rate));
      }
      st.kill("SIGINT");
      await st.status;
      console.log(`${label}: system calls per request (n = ${n})`);
      for (const line of Deno.readTextFileSync(out).split("\n")) {
        const f = line.trim().split(/\s+/);
        if (f.length >= 5 && /^\d/.test(f[3])) {
          console.log(`  ${f[f.length - 1].padEnd(16)} ${(Number(f[3]) / n).toFixed(3)}`);
        }
      }
    }
  }
  if (rate > 0 && !strace) {
    // CPU per request of the daemon's main thread and of its other threads (V8's, Deno's), at R/s.
    const cpu = () => {
      let main = 0, other = 0;
      for (const t of Deno.readDirSync(`/proc/${child.pid}/task`)) {
        const ns = Number(Deno.readTextFileSync(`/proc/${child.pid}/task/${t.name}/schedstat`).split(" ")[0]);
        if (t.name === String(child.pid)) main += ns;
        else other += ns;
      }
      return { main, other };
    };
    const a = cpu();
    for (let i = 0; i < n; i++) {
      ring();
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    const b = cpu();
    console.log(
      `ring at ${rate}/s: daemon CPU per request: main thread ${
        ((b.main - a.main) / 1000 / n).toFixed(1)
      } µs, ` +
        `other threads ${((b.other - a.other) / 1000 / n).toFixed(1)} µs`,
    );
  }
  for (let r = 0; r < 2; r++) {
    measure("ring", child.pid, n, ring);
    if (!ringOnly) measure("socket", child.pid, n, socket);
  }
  g.close();
  s.close();
} finally {
  child.kill("SIGTERM");
  await child.status;
  Deno.removeSync(dir, { recursive: true });
}
