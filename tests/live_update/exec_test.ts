// Exec from Deno, keeping chosen descriptors (src/live_update/exec.ts), and the proof of concept of a
// live update built on it (poc_server.ts): a libc epoll server that replaces itself with a new copy
// while its clients stay connected — same pid, same sockets, watches and a half-read request kept.
import assert from "../helpers/assert.ts";
import { frame, joinNul, type Reply, WireClient, XS } from "../helpers/wire.ts";
import {
  ExecError,
  execve,
  isCloseOnExec,
  isNonBlocking,
  keepAcrossExec,
  setNonBlocking,
} from "../../src/live_update/exec.ts";
import { type Host, liveUpdate, startHost } from "./poc.ts";

const dec = new TextDecoder();

Deno.test("exec: the new program has our pid, one thread, no blocked signal, and only the kept descriptors", async () => {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", new URL("./exec_probe.ts", import.meta.url).pathname],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = dec.decode(o.stdout).trim().split("\n");
  assert.equal(o.code, 0, dec.decode(o.stderr));
  const before = JSON.parse(lines[0]) as {
    pid: number;
    threads: number;
    kept: number;
    inherited: number[];
    sigIgn: string;
  };
  assert.ok(before.threads > 1, `Deno runs ${before.threads} thread(s)`);
  assert.equal(lines[1], `pid ${before.pid}`);
  assert.equal(lines[2], "Threads:\t1");
  assert.equal(lines[3], "SigBlk:\t0000000000000000");
  // Ignored signals stay ignored (SIGPIPE among them: Deno's choice, and cxenstored's too); handlers
  // Deno installed are reset.
  assert.equal(lines[4], `SigIgn:\t${before.sigIgn}`);
  assert.ok((BigInt(`0x${before.sigIgn}`) & (1n << 12n)) !== 0n, "SIGPIPE is not ignored");
  const fds = lines[5].split(",").map((f) => Number(f.trim())).sort((a, b) => a - b);
  assert.deepEqual(fds, [...new Set([0, 1, 2, before.kept, ...before.inherited])].sort((a, b) => a - b));
});

Deno.test("exec: a failed execve throws ExecError and changes nothing", () => {
  const [r, w] = pipeFds();
  try {
    keepAcrossExec([r]);
    assert.ok(!isCloseOnExec(r));
    const e = assert.throws(() => execve("/nonexistent/program", ["x"], {}), ExecError);
    assert.equal(e.errno, 2);
    const plain = Deno.makeTempFileSync();
    try {
      Deno.chmodSync(plain, 0o644);
      const notExec = assert.throws(() => execve(plain, ["x"], {}), ExecError);
      assert.equal(notExec.errno, 13); // EACCES: no execute permission
    } finally {
      Deno.removeSync(plain);
    }
    // Still us, with the descriptor as we left it.
    assert.ok(!isCloseOnExec(r));
    setNonBlocking([r], true);
    assert.ok(isNonBlocking(r));
    setNonBlocking([r], false);
    assert.ok(!isNonBlocking(r));
    assert.throws(() => keepAcrossExec([987654]), ExecError);
  } finally {
    closeFds(r, w);
  }
});

const libc = Deno.dlopen("libc.so.6", {
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
});
function pipeFds(): [number, number] {
  const b = new Int32Array(2);
  assert.equal(libc.symbols.pipe2(new Uint8Array(b.buffer), 0o2000000), 0);
  return [b[0], b[1]];
}
function closeFds(...fds: number[]): void {
  for (const fd of fds) libc.symbols.close(fd);
}

async function call(c: WireClient, events: Reply[], type: number, payload: string): Promise<Reply> {
  const reqId = await c.send(type, payload);
  for (;;) {
    const r = await c.recv();
    if (r.type === XS.WATCH_EVENT) events.push(r);
    else if (r.reqId === reqId) return r;
    else throw new Error(`reply to ${r.reqId}, expected ${reqId}`);
  }
}

async function event(c: WireClient, events: Reply[]): Promise<string> {
  return (events.shift() ?? await c.recv()).payload;
}

Deno.test("live update proof of concept: dx → dx five times, clients connected throughout", async () => {
  const h: Host = await startHost("poc");
  const clients: WireClient[] = [];
  try {
    const w = await WireClient.connect(h.socket);
    const watcher = await WireClient.connect(h.socket);
    const cut = await WireClient.connect(h.socket);
    clients.push(w, watcher, cut);
    const ev: Reply[] = [];
    await call(watcher, ev, XS.WATCH, joinNul("/w", "tok"));
    assert.equal(await event(watcher, ev), joinNul("/w", "tok"));
    for (let round = 1; round <= 5; round++) {
      // A request whose first bytes the old program read and the new one completes.
      const req = frame(XS.WRITE, 100 + round, 0, joinNul(`/w/cut${round}`) + "x");
      await cut.writeRaw(req.subarray(0, 18));
      await new Promise((r) => setTimeout(r, 100));
      const lu = await liveUpdate(h, h.pocTarget);
      assert.equal(lu.code, 0, `round ${round}: ${lu.out}`);
      await cut.writeRaw(req.subarray(18));
      const done = await cut.recv();
      assert.deepEqual([done.reqId, done.payload], [100 + round, "OK\0"]);
      assert.equal(await event(watcher, ev), joinNul(`/w/cut${round}`, "tok"));
      assert.equal((await call(w, [], XS.WRITE, joinNul(`/w/${round}`) + String(round))).payload, "OK\0");
      assert.equal(await event(watcher, ev), joinNul(`/w/${round}`, "tok"));
      assert.equal((await call(w, [], XS.READ, joinNul("/w/1"))).payload, "1");
    }
    // One process all along: the restored copy says so in its log, five times.
    assert.equal(
      h.log().split("\n").filter((l) => l === `poc: serving pid ${h.pid} (restored)`).length,
      5,
      h.log(),
    );
  } finally {
    for (const c of clients) c.close();
    await h.stop();
  }
});

Deno.test("live update proof of concept: a program that cannot be executed leaves the old one serving", async () => {
  const h = await startHost("poc");
  const watcher = await WireClient.connect(h.socket);
  try {
    const ev: Reply[] = [];
    await call(watcher, ev, XS.WATCH, joinNul("/w", "tok"));
    await event(watcher, ev);
    const lu = await liveUpdate(h, "/nonexistent/xenstored");
    assert.equal(lu.code, 3);
    assert.ok(lu.out.includes("Error activating new binary."), lu.out);
    assert.ok(h.log().includes("execve: /nonexistent/xenstored (errno 2)"), h.log());
    // Same program, same connections: the watch still fires.
    assert.equal((await call(watcher, ev, XS.WRITE, joinNul("/w/after") + "1")).payload, "OK\0");
    assert.equal(await event(watcher, ev), joinNul("/w/after", "tok"));
  } finally {
    watcher.close();
    await h.stop();
  }
});
