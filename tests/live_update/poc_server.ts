// Proof of concept for live update (issue 16, phase A), NOT the daemon: a tiny XenStore-wire server
// over a blocking libc epoll loop, as dxenstored's transport is, that hands its whole state over with
// cxenstored's protocol and format — to another copy of itself or to Debian's cxenstored 4.17 — and
// starts from cxenstored's state. Used by tests/live_update/exec_test.ts and tests/migration.
//
//   XENSTORED_RUNDIR=DIR [XENSTORED_PATH=SOCK] poc_server.ts [-N] [-U]
//
// It speaks READ, WRITE (creating missing parents), SET_PERMS, WATCH (an initial event, then an event
// for each WRITE at or below the path) and CONTROL live-update -f/-c/-s/-a as cxenstored 4.17 does: on `-s` it
// queues "OK" as the reply of that request without sending it, writes <rundir>/state_dump with
// src/migration/writer.ts, keeps the listening socket and every client socket open across exec
// (src/live_update/exec.ts) and execs the program named by `-f` with its own arguments plus -U (or
// those of `-c`). With -U it reads <rundir>/state_dump (src/migration/reader.ts), adopts the sockets,
// sends their unsent output and serves their unprocessed input. Ring connections (dom0's, from
// cxenstored) are carried through unchanged. POC_STREAM_VERSION=2, POC_EXTRA=opaque,transaction and
// POC_NO_DOM0=1 make it write streams that probe what cxenstored 4.17 accepts.
import { closeAcrossExec, execve, keepAcrossExec, setNonBlocking } from "../../src/live_update/exec.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import { DX_RECORD_FIRST } from "../../src/migration/format.ts";
import type { ConnRecord, NodePerm, StateRecord } from "../../src/migration/records.ts";

const lib = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
});
const sys = lib.symbols;
const CLOEXEC_NONBLOCK = 0o2000000 | 0o4000;
const EPOLLIN = 1, EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10;
const XS_CONTROL = 0, XS_READ = 2, XS_WATCH = 4, XS_WRITE = 11, XS_SET_PERMS = 14, XS_WATCH_EVENT = 15;
const XS_ERROR = 16;

interface Conn {
  readonly fd: number;
  input: Uint8Array;
  output: Uint8Array;
  readonly watches: Array<{ path: string; token: string }>;
}

const restoring = Deno.args.includes("-U");
const origArgs = Deno.args.filter((a) => a !== "-U");
const rundir = Deno.env.get("XENSTORED_RUNDIR")!;
const sockPath = Deno.env.get("XENSTORED_PATH") ?? `${rundir}/socket`;
const ep = sys.epoll_create1(0o2000000);
const conns = new Map<number, Conn>();
const nodes = new Map<string, { value: string; perms: NodePerm[] }>();
const special: StateRecord[] = [];
const rings: ConnRecord[] = [];
let listenFd = -1;
let evtchnFd = -1;
let lu: { binary: string; cmdline: string | null } | null = null;

const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (a: Uint8Array, b: Uint8Array) => {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
};

function epollAdd(fd: number, mask: number, op = 1): void {
  const ev = new Uint8Array(12);
  new DataView(ev.buffer).setUint32(0, mask, true);
  new DataView(ev.buffer).setUint32(4, fd, true);
  if (sys.epoll_ctl(ep, op, fd, ev) < 0) throw new Error(`epoll_ctl ${fd}`);
}

function message(type: number, reqId: number, txId: number, payload: string): Uint8Array {
  const m = new Uint8Array(16 + payload.length);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, reqId, true);
  dv.setUint32(8, txId, true);
  dv.setUint32(12, payload.length, true);
  m.set(bytes(payload), 16);
  return m;
}

function queue(c: Conn, m: Uint8Array): void {
  c.output = concat(c.output, m);
}

function flush(c: Conn): void {
  while (c.output.length > 0) {
    const n = Number(sys.write(c.fd, c.output, BigInt(c.output.length)));
    if (n <= 0) break;
    c.output = c.output.slice(n);
  }
  epollAdd(c.fd, EPOLLIN | (c.output.length > 0 ? EPOLLOUT : 0), 3);
}

function adopt(fd: number, input = new Uint8Array(0), output = new Uint8Array(0)): Conn {
  setNonBlocking([fd], true); // an inherited socket is blocking (see handOver)
  const c: Conn = { fd, input, output, watches: [] };
  conns.set(fd, c);
  epollAdd(fd, EPOLLIN);
  return c;
}

function write(path: string, value: string): void {
  const comps = path.split("/").slice(1);
  for (let i = 1; i <= comps.length; i++) {
    const p = "/" + comps.slice(0, i).join("/");
    if (!nodes.has(p)) nodes.set(p, { value: "", perms: [{ access: "n", domid: 0, stale: false }] });
  }
  nodes.get(path)!.value = value;
  for (const c of conns.values()) {
    for (const w of c.watches) {
      if (path === w.path || path.startsWith(w.path + "/") || w.path === "/") {
        queue(c, message(XS_WATCH_EVENT, 0, 0, `${path}\0${w.token}\0`));
      }
    }
  }
}

function serve(c: Conn): void {
  for (;;) {
    if (c.input.length < 16) return;
    const dv = new DataView(c.input.buffer, c.input.byteOffset);
    const [type, reqId, txId, len] = [0, 4, 8, 12].map((o) => dv.getUint32(o, true));
    if (c.input.length < 16 + len) return;
    const args = latin1(c.input.subarray(16, 16 + len)).split("\0");
    c.input = c.input.slice(16 + len);
    const reply = (p: string, t = type) => queue(c, message(t, reqId, txId, p));
    if (type === XS_READ) {
      const n = nodes.get(args[0]);
      n === undefined ? reply("ENOENT\0", XS_ERROR) : reply(n.value);
    } else if (type === XS_WRITE) {
      const payload = args.slice(1).join("\0");
      reply("OK\0");
      write(args[0], payload);
    } else if (type === XS_SET_PERMS && nodes.has(args[0])) {
      nodes.get(args[0])!.perms = args.slice(1, -1).map((p) => ({
        access: p[0] as NodePerm["access"],
        domid: Number(p.slice(1)),
        stale: false,
      }));
      reply("OK\0");
    } else if (type === XS_WATCH) {
      c.watches.push({ path: args[0], token: args[1] });
      reply("OK\0");
      queue(c, message(XS_WATCH_EVENT, 0, 0, `${args[0]}\0${args[1]}\0`));
    } else if (type === XS_CONTROL && args[0] === "live-update") {
      if (args[1] === "-f") {
        lu = { binary: args[2], cmdline: null };
        reply("OK\0");
      } else if (args[1] === "-c" && lu !== null) {
        lu.cmdline = args[2];
        reply("OK\0");
      } else if (args[1] === "-a") {
        lu = null;
        reply("OK\0");
      } else if (args[1] === "-s" && lu !== null) {
        const ok = message(type, reqId, txId, "OK\0");
        handOver(c, ok); // returns only if the exec failed
        reply("Error activating new binary.\0");
      } else reply("EINVAL\0", XS_ERROR);
    } else reply("EINVAL\0", XS_ERROR);
  }
}

/** Write the state with `reply` as the asking connection's last output, then exec the new program. */
function handOver(asking: Conn, reply: Uint8Array): void {
  const records: StateRecord[] = [{ type: "global", socketFd: listenFd, evtchnFd }];
  let id = 1;
  // cxenstored 4.17 creates its store when it restores the master domain's (dom0's) ring connection and
  // crashes on anything else without it: a host without one (no Xen here) names dom0 with event
  // channel 0, which cxenstored restores as an "ignored" connection, as dom0 under -D.
  const dom0: ConnRecord = {
    type: "conn",
    connId: 0,
    endpoint: {
      kind: "ring",
      domid: 0,
      targetDomid: null,
      evtchn: Number(Deno.env.get("POC_DOM0_EVTCHN") ?? 0),
    },
    input: new Uint8Array(0),
    output: new Uint8Array(0),
    partialOutput: 0,
  };
  for (const r of rings.length > 0 ? rings : Deno.env.get("POC_NO_DOM0") ? [] : [dom0]) {
    records.push({ ...r, connId: id++ });
  }
  for (const c of conns.values()) {
    const connId = id++;
    const output = c === asking ? concat(c.output, reply) : c.output;
    records.push({
      type: "conn",
      connId,
      endpoint: { kind: "socket", fd: c.fd },
      input: c.input,
      output,
      partialOutput: 0,
    });
    for (const w of c.watches) {
      records.push({ type: "watch", connId, path: w.path, token: w.token, depth: null });
    }
  }
  records.push(...special);
  const paths = [...nodes.keys()].sort((a, b) => a.split("/").length - b.split("/").length);
  for (const p of paths) records.push({ type: "node", path: p, ...nodes.get(p)!, txn: null });
  // Knobs for probing what cxenstored 4.17 accepts (tests/migration/cx_interop_test.ts).
  const extra = (Deno.env.get("POC_EXTRA") ?? "").split(",");
  const firstSocket = records.find((r) => r.type === "conn" && r.endpoint.kind === "socket");
  if (extra.includes("transaction") && firstSocket?.type === "conn") {
    const connId = firstSocket.connId;
    records.push({ type: "transaction", connId, txId: 42 });
    records.push({
      type: "node",
      path: "/a/in-transaction",
      value: "pending",
      perms: [{ access: "n", domid: 0, stale: false }],
      txn: { connId, txId: 42, access: 2 },
    });
  }
  if (extra.includes("opaque")) {
    records.push({ type: "opaque", code: DX_RECORD_FIRST, body: new Uint8Array(16).fill(0xdd) });
  }
  const version = Deno.env.get("POC_STREAM_VERSION") === "2" ? 2 : 1;
  Deno.writeFileSync(`${rundir}/state_dump`, writeStream({ version, records }));
  const fds = [listenFd, ...conns.keys(), ...(evtchnFd >= 0 ? [evtchnFd] : [])];
  keepAcrossExec(fds);
  // Handed over blocking, as cxenstored's own sockets are (it takes EAGAIN on a read for end of file).
  setNonBlocking([listenFd, ...conns.keys()], false);
  const argv = lu!.cmdline === null ? [...origArgs, "-U"] : [...lu!.cmdline.split(/[ \t]+/), "-U"];
  try {
    execve(lu!.binary, [lu!.binary, ...argv], Deno.env.toObject());
  } catch (e) {
    // Still us: undo the preparations and go on serving.
    console.error(`poc: ${(e as Error).message}`);
    setNonBlocking([listenFd, ...conns.keys()], true);
    closeAcrossExec(fds);
    Deno.removeSync(`${rundir}/state_dump`);
    lu = null;
  }
}

if (restoring) {
  const file = `${rundir}/state_dump`;
  const s = readStream(Deno.readFileSync(file));
  Deno.removeSync(file);
  const byId = new Map<number, Conn>();
  for (const r of s.records) {
    if (r.type === "global") [listenFd, evtchnFd] = [r.socketFd, r.evtchnFd];
    else if (r.type === "conn" && r.endpoint.kind === "ring") rings.push(r);
    else if (r.type === "conn" && r.endpoint.kind === "socket") {
      byId.set(r.connId, adopt(r.endpoint.fd, r.input.slice(), r.output.slice()));
    } else if (r.type === "watch") byId.get(r.connId)?.watches.push({ path: r.path, token: r.token });
    else if (r.type === "node" && r.txn === null && r.path[0] === "@") special.push(r);
    else if (r.type === "node" && r.txn === null) nodes.set(r.path, { value: r.value, perms: [...r.perms] });
  }
} else {
  listenFd = sys.socket(1, 1 | CLOEXEC_NONBLOCK, 0);
  const sa = new Uint8Array(110);
  sa[0] = 1;
  sa.set(bytes(sockPath), 2);
  try {
    Deno.removeSync(sockPath);
  } catch { /* none */ }
  if (sys.bind(listenFd, sa, 110) < 0 || sys.listen(listenFd, 64) < 0) {
    throw new Error(`cannot listen on ${sockPath}`);
  }
  nodes.set("/", { value: "", perms: [{ access: "n", domid: 0, stale: false }] });
}
setNonBlocking([listenFd], true);
epollAdd(listenFd, EPOLLIN);
console.log(`poc: serving pid ${Deno.pid}${restoring ? " (restored)" : ""}`);
for (const c of conns.values()) {
  serve(c);
  flush(c);
}

const events = new Uint8Array(12 * 64);
const buf = new Uint8Array(65536);
for (;;) {
  const n = sys.epoll_wait(ep, events, 64, 1000);
  for (let i = 0; i < n; i++) {
    const mask = new DataView(events.buffer).getUint32(i * 12, true);
    const fd = new DataView(events.buffer).getUint32(i * 12 + 4, true);
    if (fd === listenFd) {
      for (let a; (a = sys.accept4(listenFd, null, null, CLOEXEC_NONBLOCK)) >= 0;) adopt(a);
      continue;
    }
    const c = conns.get(fd);
    if (c === undefined) continue;
    const got = Number(sys.read(fd, buf, BigInt(buf.length)));
    if (got === 0 || (got < 0 && (mask & (EPOLLERR | EPOLLHUP)) !== 0)) {
      epollAdd(fd, 0, 2);
      sys.close(fd);
      conns.delete(fd);
      continue;
    }
    if (got > 0) c.input = concat(c.input, buf.subarray(0, got));
    serve(c);
  }
  for (const c of conns.values()) flush(c);
}
