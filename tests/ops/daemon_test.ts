// The daemon contract an init system relies on (docs/operations.md): bin/dxenstored forks by default
// and returns once the socket accepts; the pid file holds the daemon's pid and is locked, so a second
// start exits 0 and leaves the live daemon alone; Debian's start-stop-daemon/choom command works;
// NOTIFY_SOCKET gets READY=1 from the daemon's pid; SIGHUP reopens the log files.
import assert from "../helpers/assert.ts";
import { runTool } from "../helpers/daemon.ts";
import {
  alive,
  cmdlineOf,
  connectable,
  DXENSTORED,
  exists,
  isRoot,
  readPid,
  run,
  runToFiles,
  sessionOf,
  stopPid,
  tempDir,
  waitFor,
  which,
} from "./helpers.ts";

const XENSTORE_READ = which("xenstore-read");
const PYTHON = exists("/usr/bin/python3") ? "/usr/bin/python3" : which("python3");
const LISTENER = new URL("./tools/notify_listener.py", import.meta.url).pathname;
/** These tests keep nothing (explicitly: a configuration file on the machine could name a store). */
const MEM = ["--backend", "memory"];

/** A test folder with a socket and pid file; everything the test started is stopped at the end. */
async function withFolder(fn: (dir: string, pids: number[]) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  const pids: number[] = [];
  try {
    await fn(dir, pids);
  } finally {
    const fromFile = readPid(`${dir}/pid`);
    for (const p of fromFile !== null ? [...pids, fromFile] : pids) await stopPid(p).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("daemon: forks, returns once serving, pid file holds the locked daemon pid; a second start leaves it alone", async () => {
  await withFolder(async (dir, pids) => {
    const env = { XENSTORED_PATH: `${dir}/socket` };
    const first = await runToFiles(dir, [DXENSTORED, ...MEM, "--pid-file", `${dir}/pid`, "-P"], env);
    assert.equal(first.code, 0, `first start: ${first.stderr}`);
    const pid = readPid(`${dir}/pid`);
    assert.ok(pid !== null, "pid file written");
    pids.push(pid);
    assert.equal(first.stdout.trim(), String(pid), "-P prints the daemon's pid");
    assert.ok(alive(pid), "the daemon runs after the starting process returned");
    assert.equal(sessionOf(pid), pid, "the daemon leads its own session (setsid)");
    assert.ok(await connectable(`${dir}/socket`), "the socket accepts as soon as the start returned");
    if (XENSTORE_READ !== null) {
      const r = await runTool("xenstore-read", ["-s", "/"], `${dir}/socket`);
      assert.equal(r.code, 0, `xenstore-read -s /: ${r.stderr}`);
    }
    assert.equal((await runTool("xenstore-write", ["/ops/first", "yes"], `${dir}/socket`)).code, 0);

    const second = await runToFiles(dir, [DXENSTORED, ...MEM, "--pid-file", `${dir}/pid`], env);
    assert.equal(second.code, 0, `second start exits 0: ${second.stderr}`);
    assert.ok(second.stderr.includes("already running"), `second start says why: ${second.stderr}`);
    assert.equal(readPid(`${dir}/pid`), pid, "the pid file still names the first daemon");
    assert.ok(alive(pid), "the first daemon keeps running");
    const r = await runTool("xenstore-read", ["/ops/first"], `${dir}/socket`);
    assert.equal(r.stdout.trim(), "yes", "…and keeps serving its store on the same socket");

    Deno.kill(pid, "SIGTERM");
    await waitFor("the daemon to exit", () => !alive(pid));
    assert.ok(!exists(`${dir}/socket`), "socket removed on SIGTERM");
    assert.ok(!exists(`${dir}/pid`), "pid file removed on SIGTERM");
  });
});

Deno.test("daemon: without a pid file, a start on a socket that is being served leaves it alone", async () => {
  await withFolder(async (dir, pids) => {
    const env = { XENSTORED_PATH: `${dir}/socket` };
    const first = await runToFiles(dir, [DXENSTORED, ...MEM, "-P"], env);
    assert.equal(first.code, 0, first.stderr);
    const pid = Number(first.stdout.trim());
    pids.push(pid);
    const second = await runToFiles(dir, [DXENSTORED, ...MEM], env);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(second.stderr.includes("leaving it alone"), second.stderr);
    assert.ok(alive(pid) && (await connectable(`${dir}/socket`)), "the first daemon still serves");
  });
});

Deno.test("daemon: a start that fails in the daemon makes the starting process fail", async () => {
  await withFolder(async (dir) => {
    const r = await runToFiles(dir, [
      DXENSTORED,
      ...MEM,
      "--pid-file",
      `${dir}/pid`,
      "--policy",
      "no-such-policy",
    ], {
      XENSTORED_PATH: `${dir}/socket`,
    });
    assert.notEqual(r.code, 0, "exit status of the failed daemon");
    assert.ok(r.stderr.includes("policy"), `the daemon's error reaches the caller's stderr: ${r.stderr}`);
    assert.ok(!(await connectable(`${dir}/socket`)));
  });
});

Deno.test({
  name: "daemon: Debian's init contract (start-stop-daemon --exec /usr/bin/choom -- -n -1000 dxenstored)",
  ignore: !isRoot || which("start-stop-daemon") === null || !exists("/usr/bin/choom"),
  fn: async () => {
    // Lowering the OOM score needs CAP_SYS_RESOURCE; a container without it runs the same command
    // with the score it may set (the daemon's side of the contract does not depend on the value).
    const score = (await run("/usr/bin/choom", ["-n", "-1000", "true"])).code === 0
      ? "-1000"
      : Deno.readTextFileSync("/proc/self/oom_score_adj").trim();
    if (score !== "-1000") console.log(`  (no CAP_SYS_RESOURCE here: choom -n ${score} instead of -1000)`);
    await withFolder(async (dir, pids) => {
      // As /etc/init.d/xen: no --background; the daemon must fork by itself for this to return.
      const argv = [
        which("start-stop-daemon")!,
        "--start",
        "--quiet",
        "--pidfile",
        `${dir}/pid`,
        "--exec",
        "/usr/bin/choom",
        "--",
        "-n",
        score,
        DXENSTORED,
        "--", // /etc/init.d/xen: choom's own getopt consumes it
        ...MEM,
        "--pid-file",
        `${dir}/pid`,
      ];
      const env = { XENSTORED_PATH: `${dir}/socket`, XENSTORED_ROOTDIR: dir, XENSTORED_RUNDIR: dir };
      const first = await runToFiles(dir, argv, env);
      assert.equal(first.code, 0, `start-stop-daemon: ${first.stderr}`);
      const pid = readPid(`${dir}/pid`);
      assert.ok(pid !== null && alive(pid), "the pid file holds the live daemon");
      pids.push(pid);
      assert.ok(cmdlineOf(pid).includes("main.ts"), `pid ${pid} is the daemon: ${cmdlineOf(pid)}`);
      assert.equal(Deno.readTextFileSync(`/proc/${pid}/oom_score_adj`).trim(), score, "choom's score kept");
      // The init script's readiness poll.
      await waitFor(
        "xenstore-read -s / to answer",
        async () => (await runTool("xenstore-read", ["-s", "/"], `${dir}/socket`)).code === 0,
        30_000,
      );
      const second = await runToFiles(dir, argv, env);
      assert.equal(second.code, 0, `second identical start: ${second.stderr}`);
      assert.equal(readPid(`${dir}/pid`), pid);
      assert.ok(alive(pid));
      assert.equal((await runTool("xenstore-read", ["-s", "/"], `${dir}/socket`)).code, 0, "still serving");
    });
  },
});

Deno.test({
  name:
    "daemon: NOTIFY_SOCKET gets READY=1 from the daemon's pid once the socket accepts, STOPPING=1 on SIGTERM",
  ignore: PYTHON === null,
  fn: async () => {
    await withFolder(async (dir, pids) => {
      const listener = new Deno.Command(PYTHON!, {
        args: [LISTENER, `${dir}/notify`, `${dir}/socket`, "30", "STOPPING=1"],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = readLines(listener.stdout);
      try {
        assert.equal((await lines.next()).value, "listening");
        const r = await runToFiles(dir, [DXENSTORED, ...MEM, "--pid-file", `${dir}/pid`], {
          XENSTORED_PATH: `${dir}/socket`,
          NOTIFY_SOCKET: `${dir}/notify`,
        });
        assert.equal(r.code, 0, r.stderr);
        const pid = readPid(`${dir}/pid`);
        assert.ok(pid !== null);
        pids.push(pid);
        const msg = JSON.parse((await lines.next()).value as string);
        assert.ok(!msg.timeout, "a notification arrived");
        assert.ok(msg.text.split("\n").includes("READY=1"), `READY=1 in ${JSON.stringify(msg.text)}`);
        assert.ok(/STATUS=serving /.test(msg.text), "STATUS= says what it serves");
        assert.equal(msg.pid, pid, "sent by the pid in the pid file (NotifyAccess=all accepts it)");
        assert.equal(msg.connectable, true, "the socket accepted when READY=1 was read");
        Deno.kill(pid, "SIGTERM");
        const stopping = JSON.parse((await lines.next()).value as string);
        assert.ok(!stopping.timeout, "a second notification arrived");
        assert.ok(
          stopping.text.split("\n").includes("STOPPING=1"),
          `STOPPING=1 in ${JSON.stringify(stopping.text)}`,
        );
        assert.equal(stopping.pid, pid, "from the daemon");
      } finally {
        await lines.return(undefined);
        try {
          listener.kill("SIGKILL");
        } catch { /* exited */ }
        await listener.status;
      }
    });
  },
});

Deno.test("daemon: SIGHUP reopens the log and access log after logrotate moved them", async () => {
  await withFolder(async (dir, pids) => {
    const log = `${dir}/daemon.log`;
    const access = `${dir}/access.log`;
    const r = await runToFiles(
      dir,
      [DXENSTORED, ...MEM, "--pid-file", `${dir}/pid`, "--log-file", log, "-T", access],
      {
        XENSTORED_PATH: `${dir}/socket`,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const pid = readPid(`${dir}/pid`)!;
    pids.push(pid);
    assert.equal((await runTool("xenstore-write", ["/before", "1"], `${dir}/socket`)).code, 0);
    assert.ok(Deno.readTextFileSync(log).includes("serving"), "the log file has the start line");
    assert.ok(Deno.readTextFileSync(access).includes("write     /before 1"), "the access log has the write");
    Deno.renameSync(log, `${log}.1`);
    Deno.renameSync(access, `${access}.1`);
    Deno.kill(pid, "SIGHUP");
    await waitFor("a new log file", () => exists(log) && Deno.readTextFileSync(log).includes("reopened"));
    assert.equal((await runTool("xenstore-write", ["/after", "2"], `${dir}/socket`)).code, 0);
    await waitFor(
      "a new access log",
      () => exists(access) && Deno.readTextFileSync(access).includes("/after 2"),
    );
    assert.ok(!Deno.readTextFileSync(`${access}.1`).includes("/after"), "the rotated file got nothing more");
    assert.ok(alive(pid), "SIGHUP does not stop the daemon");
    Deno.kill(pid, "SIGTERM");
    await waitFor("exit", () => !alive(pid));
    assert.ok(Deno.readTextFileSync(log).includes("SIGTERM received"), "SIGTERM is logged");
  });
});

Deno.test("daemon: --config-test accepts Debian's oxenstored.conf and refuses a bad value with exit 2", async () => {
  await withFolder(async (dir) => {
    const debian = new URL("./golden/oxenstored.conf", import.meta.url).pathname;
    const ok = await run(DXENSTORED, ["--config-file", debian, "--config-test"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.includes(`Configuration valid at ${debian}`), ok.stdout);
    Deno.writeTextFileSync(`${dir}/bad.conf`, Deno.readTextFileSync(debian) + "\nquota-maxentity = lots\n");
    const bad = await run(DXENSTORED, ["--config-file", `${dir}/bad.conf`, "--config-test"]);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.ok(bad.stderr.includes("quota-maxentity"), bad.stderr);
    Deno.writeTextFileSync(`${dir}/garbage.conf`, "pid-file = /run/x.pid\nthis is garbage\n");
    const garbage = await run(DXENSTORED, ["--config-file", `${dir}/garbage.conf`, "--config-test"]);
    assert.equal(garbage.code, 2, garbage.stdout + garbage.stderr);
    assert.ok(
      garbage.stderr.includes(`${dir}/garbage.conf:2: this is garbage: not a "key = value" line`),
      garbage.stderr,
    );
    Deno.writeTextFileSync(`${dir}/unknown.conf`, "no-such-key = 1\n");
    assert.equal((await run(DXENSTORED, ["--config-file", `${dir}/unknown.conf`, "--config-test"])).code, 2);
    const missing = await run(DXENSTORED, ["--config-file", `${dir}/none.conf`, "--config-test"]);
    assert.equal(missing.code, 2, "a named configuration file must exist");
    const badOpt = await run(DXENSTORED, ["--pid-file"]);
    assert.equal(badOpt.code, 2, "usage errors exit 2");
  });
});

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
}
