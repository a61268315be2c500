// dxenstore-guest: a debugging CLI that runs as a guest domain of a simulated Xen and talks to
// dxenstored over that domain's ring, plus the simulated hypervisor's controls (create, destroy,
// crash... a domain). See `dxenstore-guest --help` and docs/domains.md.
import { XsError } from "../common/xs_error.ts";
import { XenStore } from "./xenstore.ts";
import { GuestClient, RingClientError } from "./guest.ts";
import { SimGuest } from "../xen/sim/guest.ts";
import {
  crashDomain,
  createDomain,
  destroyDomain,
  domainInfo,
  listDomains,
  shutdownDomain,
} from "../xen/sim/control.ts";

const USAGE = `Usage: dxenstore-guest --sim DIR --domid N [options] COMMAND [ARGS...]
       dxenstore-guest --sim DIR sim COMMAND [ARGS...]

Run as guest domain N of the simulated Xen in DIR (dxenstored --xen=sim:DIR)
and talk to the daemon over the domain's ring:

  read PATH...              print each value
  write PATH VALUE...       write PATH=VALUE pairs
  mkdir PATH | rm PATH      create / remove a node
  ls PATH                   list the children of PATH
  perms PATH                print the permissions of PATH
  chmod PATH PERM...        set the permissions (e.g. n5 r0)
  watch PATH [COUNT]        print "PATH TOKEN" per event; stop after COUNT
  domain-path [DOMID]       GET_DOMAIN_PATH (default: our own)
  features                  the ring's server features and GET_FEATURE
  raw TYPE [ARG...]         send one request (args NUL-terminated); print
                            the reply type and payload
  reconnect                 ring reconnection (drops watches, transactions)
  bench N                   N READ round trips of PATH (--path, default
                            "domid"); prints microseconds per round trip

The simulated hypervisor (like xl):

  sim create N              create domain N (ring page, unbound port)
  sim info N                print "DOMID GFN PORT" (INTRODUCE's arguments)
  sim introduce N SOCKET    INTRODUCE domain N through dom0's socket
  sim shutdown N [REASON]   shut it down (fires @releaseDomain/N)
  sim crash N               crash it (it dies: @releaseDomain, cleanup)
  sim destroy N             destroy it (the domid may be reused)
  sim list                  domains that exist

Options:
  --sim DIR        the simulated Xen's directory (required)
  --domid N        the domain to run as
  --no-reset       keep the ring as it is (by default each run starts with
                   a ring reconnection: a clean connection)
  --timeout MS     how long to wait for a reply (default 10000)
  --blocking       block the thread while waiting (lowest latency)
  --path PATH      the node bench reads (default "domid")
  -h, --help       this text
`;

interface Options {
  sim?: string;
  domid?: number;
  reset: boolean;
  timeoutMs: number;
  blocking: boolean;
  benchPath: string;
  rest: string[];
}

function parse(argv: readonly string[]): Options | string {
  const o: Options = { reset: true, timeoutMs: 10_000, blocking: false, benchPath: "domid", rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case "--sim":
        o.sim = value();
        break;
      case "--domid":
        o.domid = domidArg(value());
        break;
      case "--no-reset":
        o.reset = false;
        break;
      case "--timeout":
        o.timeoutMs = Number(value());
        break;
      case "--blocking":
        o.blocking = true;
        break;
      case "--path":
        o.benchPath = value();
        break;
      case "-h":
      case "--help":
        return "help";
      default:
        o.rest = argv.slice(i) as string[];
        return o;
    }
  }
  return o;
}

function domidArg(s: string): number {
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) >= 0x7ff0) throw new Error(`bad domid "${s}"`);
  return Number(s);
}

const out = (s: string) => console.log(s);

/** Send INTRODUCE for a simulated domain over dom0's Unix socket (what xl does), with the client library. */
async function introduce(dir: string, domid: number, socket: string): Promise<void> {
  const d = domainInfo(dir, domid);
  if (d === null) throw new Error(`no simulated domain ${domid}`);
  using xs = await XenStore.open({ socket, reconnect: false });
  await xs.introduce(d.domid, d.gfn, d.port);
}

async function simCommand(dir: string, args: string[]): Promise<void> {
  const [cmd, a, b] = args;
  switch (cmd) {
    case "create": {
      const d = createDomain(dir, domidArg(a));
      out(`${d.domid} ${d.gfn} ${d.port}`);
      return;
    }
    case "info": {
      const d = domainInfo(dir, domidArg(a));
      if (d === null) throw new Error(`no simulated domain ${a}`);
      out(`${d.domid} ${d.gfn} ${d.port}`);
      return;
    }
    case "introduce":
      if (b === undefined) throw new Error("sim introduce N SOCKET");
      return await introduce(dir, domidArg(a), b);
    case "shutdown":
      return shutdownDomain(dir, domidArg(a), b ?? "poweroff");
    case "crash":
      return crashDomain(dir, domidArg(a));
    case "destroy":
      return destroyDomain(dir, domidArg(a));
    case "list":
      for (const d of listDomains(dir)) out(String(d));
      return;
    default:
      throw new Error(`unknown sim command "${cmd ?? ""}"`);
  }
}

async function guestCommand(g: GuestClient, o: Options): Promise<void> {
  const [cmd, ...args] = o.rest;
  const need = (n: number) => {
    if (args.length < n) throw new Error(`${cmd} needs ${n} argument(s)`);
  };
  switch (cmd) {
    case "read":
      need(1);
      for (const p of args) out(await g.read(p));
      return;
    case "write":
      need(2);
      if (args.length % 2 !== 0) throw new Error("write takes PATH VALUE pairs");
      for (let i = 0; i < args.length; i += 2) await g.write(args[i], args[i + 1]);
      return;
    case "mkdir":
      need(1);
      return await g.mkdir(args[0]);
    case "rm":
      need(1);
      return await g.rm(args[0]);
    case "ls":
      need(1);
      for (const n of await g.directory(args[0])) out(n);
      return;
    case "perms":
      need(1);
      out((await g.getPerms(args[0])).join(" "));
      return;
    case "chmod":
      need(2);
      return await g.setPerms(args[0], args.slice(1));
    case "watch": {
      need(1);
      const limit = args[1] === undefined ? Infinity : Number(args[1]);
      await g.watch(args[0], "dxenstore-guest");
      for (let n = 0; n < limit;) {
        const e = await g.nextEvent(60_000);
        if (e === null) continue;
        out(`${e.path} ${e.token}`);
        n++;
      }
      return;
    }
    case "domain-path":
      out(await g.getDomainPath(args[0] === undefined ? g.transport.domid : domidArg(args[0])));
      return;
    case "features":
      out(`ring ${g.serverFeatures}`);
      out(`get-feature ${await g.getFeature()}`);
      return;
    case "raw": {
      need(1);
      const type = Number(args[0]);
      const r = await g.request(type, args.slice(1).map((s) => s + "\0").join(""));
      out(`${r.type} ${JSON.stringify(r.payload)}`);
      return;
    }
    case "reconnect":
      return await g.reconnect(o.timeoutMs);
    case "bench": {
      need(1);
      const n = Number(args[0]);
      for (let i = 0; i < Math.min(100, n); i++) await g.read(o.benchPath); // warm-up
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await g.read(o.benchPath);
      const us = ((performance.now() - t0) * 1000) / n;
      out(JSON.stringify({ ops: n, us_per_op: Number(us.toFixed(2)) }));
      return;
    }
    default:
      throw new Error(`unknown command "${cmd ?? ""}"`);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let o: Options | string;
  try {
    o = parse(argv);
  } catch (e) {
    o = (e as Error).message;
  }
  if (o === "help") {
    console.log(USAGE);
    return 0;
  }
  if (typeof o === "string" || o.sim === undefined || o.rest.length === 0) {
    console.error(
      `dxenstore-guest: ${typeof o === "string" ? o : "--sim DIR and a command are needed"}\n\n${USAGE}`,
    );
    return 2;
  }
  try {
    if (o.rest[0] === "sim") {
      await simCommand(o.sim, o.rest.slice(1));
      return 0;
    }
    if (o.domid === undefined) throw new Error("--domid N is needed to run as a guest");
    const g = new GuestClient(new SimGuest(o.sim, o.domid), { timeoutMs: o.timeoutMs, blocking: o.blocking });
    try {
      if (o.reset && (g.serverFeatures & 1) !== 0) await g.reconnect(o.timeoutMs);
      await guestCommand(g, o);
    } finally {
      g.close();
    }
    return 0;
  } catch (e) {
    if (e instanceof XsError) console.error(`dxenstore-guest: ${e.errno}`);
    else if (e instanceof RingClientError) console.error(`dxenstore-guest: ring: ${e.message}`);
    else console.error(`dxenstore-guest: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
