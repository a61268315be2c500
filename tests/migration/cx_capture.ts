/**
 * Ground truth from Debian's cxenstored 4.17 (under ../shared/anchors' fake-Xen shim): put it in a
 * known state, make it live-update to a small script that keeps a copy of its <rundir>/state_dump,
 * records the arguments and descriptors it was given, and execs cxenstored again with them — so the
 * same daemon goes on serving and the test can check that its clients noticed nothing.
 *
 *   bin/deno run --allow-all tests/migration/cx_capture.ts --write   # regenerate tests/migration/fixtures
 *
 * tests/migration/cx_fixtures_test.ts runs the same scenarios and compares with the fixtures.
 */
import { type Anchor, anchorsAvailable, startAnchor } from "../helpers/anchor.ts";
import { concat, frame, joinNul, type Reply, WireClient, XS } from "../helpers/wire.ts";

export const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
export const XENSTORED = "/usr/lib/xen-4.17/bin/xenstored";
/** The real tool (/usr/bin/xenstore-control is Debian's wrapper, which wants a hypervisor). */
export const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";
const dec = new TextDecoder();

export { anchorsAvailable };

/** What cxenstored handed to the program it live-updated to. */
export interface Handover {
  /** argv, argv[0] included. */
  readonly argv: string[];
  /** The sockets and event fds open in the new program: "fd kind flags=<octal open flags>". */
  readonly fds: string[];
  /** The new program's environment is exactly the daemon's. */
  readonly sameEnvironment: boolean;
}

export interface Capture {
  readonly dump: Uint8Array;
  readonly handover: Handover;
  /** `xenstore-ls -f -p /` of the daemon just before the live update. */
  readonly lsBefore: string;
  /** The same after it (the restored daemon). */
  readonly lsAfter: string;
}

/** Connect, retrying while cxenstored's backlog of 1 (listen(sock, 1)) is full. */
export async function connect(socket: string): Promise<WireClient> {
  for (let i = 0;; i++) {
    try {
      return await WireClient.connect(socket);
    } catch (e) {
      if (i >= 300 || !(e instanceof Deno.errors.WouldBlock || e instanceof Deno.errors.ConnectionRefused)) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export async function tool(
  socket: string,
  cmd: string,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, {
    args,
    env: { XENSTORED_PATH: socket },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** Watch events a client received while waiting for replies (cxenstored may send them first). */
const eventsOf = new WeakMap<WireClient, Reply[]>();

function events(c: WireClient): Reply[] {
  let e = eventsOf.get(c);
  if (e === undefined) eventsOf.set(c, e = []);
  return e;
}

/** The next watch event of `c` (one already received first). */
async function nextEvent(c: WireClient, timeoutMs = 5000): Promise<Reply> {
  const queued = events(c).shift();
  if (queued !== undefined) return queued;
  const r = await c.recv(timeoutMs);
  if (r.type !== XS.WATCH_EVENT) throw new Error(`expected a watch event, got ${JSON.stringify(r)}`);
  return r;
}

async function ok(c: WireClient, type: number, payload: string, txId = 0): Promise<Reply> {
  const reqId = await c.send(type, payload, { txId });
  for (;;) {
    const r = await c.recv();
    if (r.type === XS.WATCH_EVENT) {
      events(c).push(r);
      continue;
    }
    if (r.reqId !== reqId) throw new Error(`reply ${r.reqId} to request ${reqId}`);
    if (r.type === XS.ERROR) throw new Error(`request ${type} ${JSON.stringify(payload)}: ${r.payload}`);
    return r;
  }
}

/** The live-update target: records what it was given, keeps the dump, becomes cxenstored again. */
function writeTarget(a: Anchor): string {
  const out = `${a.dir}/handover`;
  const script = `${a.dir}/lu-target.sh`;
  Deno.writeTextFileSync(
    script,
    `#!/bin/bash
mkdir -p ${out}
printf '%s\\0' "$0" "$@" > ${out}/argv
# Each listing runs in a child whose redirection does not touch this shell's descriptors.
ls -l /proc/$$/fd/ > ${out}/fd-links
grep -H '^flags:' /proc/$$/fdinfo/* > ${out}/fd-flags
tr '\\0' '\\n' < /proc/$$/environ > ${out}/env
cp "$XENSTORED_RUNDIR/state_dump" ${out}/state_dump.tmp && mv ${out}/state_dump.tmp ${out}/state_dump
exec ${XENSTORED} "$@"
`,
  );
  Deno.chmodSync(script, 0o755);
  return script;
}

function environOf(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/environ`);
}

/** The descriptors that carry state (sockets, event channel) as "fd kind flags", from the listings. */
function stateFds(links: string, flags: string): string[] {
  const flagOf = new Map<string, string>();
  for (const l of flags.trim().split("\n")) {
    const m = /fdinfo\/(\d+):flags:\s*(\d+)/.exec(l);
    if (m !== null) flagOf.set(m[1], m[2]);
  }
  const out: Array<[number, string]> = [];
  for (const l of links.trim().split("\n")) {
    const m = / (\d+) -> (socket|anon_inode):\[?([a-z]*)/.exec(l);
    if (m === null) continue;
    const kind = m[2] === "socket" ? "socket" : m[3];
    out.push([Number(m[1]), `${m[1]} ${kind} flags=${flagOf.get(m[1]) ?? "?"}`]);
  }
  return out.sort((x, y) => x[0] - y[0]).map((x) => x[1]);
}

function readHandover(a: Anchor, envBefore: string): { dump: Uint8Array; handover: Handover } {
  const dir = `${a.dir}/handover`;
  const argv = Deno.readTextFileSync(`${dir}/argv`).split("\0").slice(0, -1);
  argv[0] = argv[0].replace(a.dir, "<dir>");
  const fds = stateFds(Deno.readTextFileSync(`${dir}/fd-links`), Deno.readTextFileSync(`${dir}/fd-flags`));
  return {
    dump: Deno.readFileSync(`${dir}/state_dump`),
    handover: {
      argv,
      fds,
      sameEnvironment: Deno.readTextFileSync(`${dir}/env`) === envBefore.replaceAll("\0", "\n"),
    },
  };
}

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      Deno.statSync(file);
      return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${file} did not appear`);
}

function daemonPid(a: Anchor): number {
  return Number(Deno.readTextFileSync(`${a.dir}/pid`).trim());
}

async function ls(a: Anchor): Promise<string> {
  const r = await tool(a.socket, "xenstore-ls", "-f", "-p", "/");
  if (r.code !== 0) throw new Error(`xenstore-ls: ${r.out}`);
  return r.out;
}

/**
 * "basic": nodes with values (one binary) and permissions (entries for domains that do not exist are
 * stale), special-node permissions, an absolute, a relative and a special watch; live update by the
 * real `xenstore-control live-update <file>`, whose connection finds its "OK" in the dump.
 */
export async function captureBasic(): Promise<Capture> {
  const a = await startAnchor("cxenstored");
  const clients: WireClient[] = [];
  try {
    const target = writeTarget(a);
    const w = await connect(a.socket);
    clients.push(w);
    await ok(w, XS.WRITE, joinNul("/a/b") + "hello");
    await ok(w, XS.SET_PERMS, joinNul("/a/b", "n0", "r5", "w7"));
    await ok(w, XS.WRITE, joinNul("/a/c") + "\x00\x01\xfe\xff");
    await ok(w, XS.WRITE, joinNul("rel/x") + "relative to /local/domain/0");
    await ok(w, XS.MKDIR, joinNul("/empty"));
    await ok(w, XS.SET_PERMS, joinNul("@introduceDomain", "r0", "b3"));
    for (const [path, token] of [["/a", "tA"], ["rel", "tR"], ["@releaseDomain", "tS"]]) {
      await ok(w, XS.WATCH, joinNul(path, token));
      await nextEvent(w); // the initial event
    }
    const lsBefore = await ls(a);
    const envBefore = environOf(daemonPid(a));
    const lu = await tool(a.socket, XENSTORE_CONTROL, "live-update", target);
    if (lu.code !== 0) throw new Error(`xenstore-control live-update: ${lu.out}`);
    await waitFor(`${a.dir}/handover/state_dump`);
    // The restored daemon serves the same connection: the watch still fires.
    await ok(w, XS.WRITE, joinNul("/a/after") + "1");
    const ev = await nextEvent(w);
    if (ev.type !== XS.WATCH_EVENT || ev.payload !== joinNul("/a/after", "tA")) {
      throw new Error(`watch after the live update: ${JSON.stringify(ev)}`);
    }
    await ok(w, XS.RM, joinNul("/a/after"));
    await nextEvent(w); // its removal event
    const lsAfter = await ls(a);
    return { ...readHandover(a, envBefore), lsBefore, lsAfter };
  } finally {
    for (const c of clients) c.close();
    await a.stop();
  }
}

/** The events a never-reading watcher of /big is sent by `bigWrites` (one per write). */
export const BIG_TOKEN = "T".repeat(1500);
export const BIG_WRITES = 200;
export function bigEvent(i: number): Uint8Array {
  return frame(XS.WATCH_EVENT, 0, 0, joinNul(`/big/n${i}`, BIG_TOKEN));
}

/**
 * "pending": what a switch finds in flight. A transaction open on conn A (forced away with -F after
 * the 1 s timeout); a TRANSACTION_START on conn B sent once the update was pending (cxenstored delays
 * it: unprocessed input); a request cut inside its payload (conn C) and inside its header (conn E);
 * a watcher that never reads (conn D) holding ~300 KB of events, more than the socket takes, so its
 * first unsent message is partly written. The CONTROL requests are sent by hand, as xenstore-control
 * sends them, so B's request can go in between.
 */
export async function capturePending(): Promise<Capture & { readonly afterwards: string[] }> {
  const a = await startAnchor("cxenstored");
  const clients: WireClient[] = [];
  const conn = async () => {
    const c = await connect(a.socket);
    clients.push(c);
    return c;
  };
  try {
    const target = writeTarget(a);
    const ta = await conn();
    const tx = Number((await ok(ta, XS.TRANSACTION_START, "\0")).payload.replace("\0", ""));
    await ok(ta, XS.WRITE, joinNul("/ta/x") + "in the transaction", tx);
    const d = await conn();
    await ok(d, XS.WATCH, joinNul("/big", BIG_TOKEN));
    await nextEvent(d);
    const writer = await conn();
    const value = "v".repeat(100);
    for (let i = 0; i < BIG_WRITES; i++) await ok(writer, XS.WRITE, joinNul(`/big/n${i}`) + value);
    const ctl = await conn();
    const f = await ctl.request(XS.CONTROL, joinNul("live-update", "-f", target));
    if (f.payload !== "OK\0") throw new Error(`live-update -f: ${f.payload}`);
    const b = await conn();
    await b.send(XS.TRANSACTION_START, "\0", { reqId: 0x77 });
    const c = await conn();
    const cut = frame(XS.WRITE, 0x88, 0, joinNul("/c/partial") + "value of c");
    await c.writeRaw(cut.subarray(0, 20));
    const e = await conn();
    await e.writeRaw(cut.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 300)); // let cxenstored read all of it
    const lsBefore = await ls(a);
    const envBefore = environOf(daemonPid(a));
    const s = await ctl.request(XS.CONTROL, joinNul("live-update", "-s", "-t", "1", "-F"), {
      timeoutMs: 20000,
    });
    if (s.payload !== "OK\0") throw new Error(`live-update -s: ${s.payload}`);
    await waitFor(`${a.dir}/handover/state_dump`);
    // Afterwards, as the clients see it.
    const afterwards: string[] = [];
    const rb = await b.recv();
    afterwards.push(`B: reply ${rb.type} req ${rb.reqId} ${JSON.stringify(rb.payload)}`);
    await c.writeRaw(cut.subarray(20));
    const rc = await c.recv();
    afterwards.push(`C: reply ${rc.type} req ${rc.reqId} ${JSON.stringify(rc.payload)}`);
    await e.writeRaw(cut.subarray(10));
    const re = await e.recv();
    afterwards.push(`E: reply ${re.type} req ${re.reqId} ${JSON.stringify(re.payload)}`);
    const end = await ta.request(XS.TRANSACTION_END, "T\0", { txId: tx });
    afterwards.push(
      `A: TRANSACTION_END of the forced transaction: ${end.type} ${JSON.stringify(end.payload)}`,
    );
    const got = [];
    for (let i = 0; i < BIG_WRITES; i++) got.push((await d.recv(10000)).payload);
    const expected = Array.from({ length: BIG_WRITES }, (_, i) => joinNul(`/big/n${i}`, BIG_TOKEN));
    afterwards.push(
      `D: ${got.length} events, ${got.every((p, i) => p === expected[i]) ? "all" : "NOT all"} in order`,
    );
    const lsAfter = await ls(a);
    return { ...readHandover(a, envBefore), lsBefore, lsAfter, afterwards };
  } finally {
    for (const c of clients) c.close();
    await a.stop();
  }
}

/** The whole event stream D was owed, for checking D's unsent output is a suffix of it. */
export function allBigEvents(): Uint8Array {
  return concat(Array.from({ length: BIG_WRITES }, (_, i) => bigEvent(i)));
}

async function gzip(b: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(new Blob([new Uint8Array(b)]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
}

export async function gunzip(b: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(new Blob([new Uint8Array(b)]).stream().pipeThrough(new DecompressionStream("gzip")))
      .arrayBuffer(),
  );
}

if (import.meta.main) {
  if (!Deno.args.includes("--write")) {
    console.error(
      "usage: cx_capture.ts --write   (regenerates tests/migration/fixtures from cxenstored 4.17)",
    );
    Deno.exit(2);
  }
  if (!anchorsAvailable()) throw new Error("needs ../shared/anchors and xen-utils-4.17");
  Deno.mkdirSync(FIXTURES, { recursive: true });
  const basic = await captureBasic();
  Deno.writeFileSync(`${FIXTURES}/basic.state`, basic.dump);
  Deno.writeTextFileSync(`${FIXTURES}/basic.ls`, basic.lsBefore);
  Deno.writeTextFileSync(`${FIXTURES}/basic.handover.json`, JSON.stringify(basic.handover, null, 2) + "\n");
  const pending = await capturePending();
  Deno.writeFileSync(`${FIXTURES}/pending.state.gz`, await gzip(pending.dump));
  Deno.writeTextFileSync(`${FIXTURES}/pending.ls`, pending.lsBefore);
  Deno.writeTextFileSync(
    `${FIXTURES}/pending.handover.json`,
    JSON.stringify({ ...pending.handover, afterwards: pending.afterwards }, null, 2) + "\n",
  );
  console.log(`basic: ${basic.dump.length} bytes; pending: ${pending.dump.length} bytes`);
}
