// Start-up failures (issue 17, item 3): each prints ONE line — what failed, on which path, the errno
// name — on the terminal (here: the files the starting process's stderr goes to) AND in the configured
// log (--log-file), in the normal forking mode, with exit status 1 (2 for a usage error). One test per
// start-up path: bad backend spec, store locked, corrupt store, unreadable policy, socket path in use,
// bind failure, --xen real without /dev/xen, permission denied. (journal_test.ts: the same in journald.)
import assert from "../helpers/assert.ts";
import { describeError, errnoNameOf, StartupFailure } from "../../src/cli/startup_failure.ts";
import { parseReport } from "../../src/cli/daemonize.ts";
import { BackendError } from "../../src/backend/backend.ts";
import { SysError } from "../../ffi/libc.ts";
import { DXENSTORED, exists, isRoot, run, runToFiles, tempDir, which } from "./helpers.ts";

interface Failed {
  readonly code: number;
  /** The starting process's stderr: what the terminal shows. */
  readonly terminal: string[];
  /** The --log-file lines. */
  readonly log: string[];
}

/** Start the daemon the normal way (it forks), its log in a file; nothing may keep running. */
async function failingStart(dir: string, args: string[], wrap: string[] = []): Promise<Failed> {
  const r = await runToFiles(dir, [
    ...wrap,
    DXENSTORED,
    "--pid-file",
    `${dir}/pid`,
    "--log-file",
    `${dir}/log`,
    ...args,
  ], {
    XENSTORED_PATH: `${dir}/socket`,
  });
  const lines = (t: string) => t.split("\n").filter((l) => l.trim() !== "");
  const log = lines(await Deno.readTextFile(`${dir}/log`).catch(() => ""));
  assert.ok(!exists(`${dir}/pid`), "no pid file is left behind");
  return { code: r.code, terminal: lines(r.stderr), log };
}

/** The one line, on the terminal and in the log, naming `path` and `errno`. */
function assertOneLine(f: Failed, what: string, path: string, errno: string, code = 1): void {
  const shown = `${what} ${path}: ${errno} (`;
  assert.equal(f.code, code, `exit status: ${f.terminal.join("\n")}`);
  assert.equal(f.terminal.length, 1, `one line on the terminal:\n${f.terminal.join("\n")}`);
  assert.ok(f.terminal[0].startsWith(`dxenstored: cannot ${shown}`), `terminal: ${f.terminal[0]}`);
  const inLog = f.log.filter((l) => l.includes(`cannot ${shown}`));
  assert.equal(inLog.length, 1, `one line in the log file:\n${f.log.join("\n")}`);
  assert.ok(/ error /.test(inLog[0]), `logged at error level: ${inLog[0]}`);
  assert.ok(!f.terminal.concat(f.log).some((l) => /^\s+at /.test(l)), "no stack trace");
}

async function inDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir("dxfail-");
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("start-up failure: a bad backend spec is a usage error (exit 2), on the terminal and in the log file", async () => {
  await inDir(async (dir) => {
    const f = await failingStart(dir, ["--backend", "bogus:/x"]);
    assert.equal(f.code, 2);
    assert.deepEqual(f.terminal.length, 1, f.terminal.join("\n"));
    assert.ok(
      /^dxenstored: cannot start with these options: EINVAL \(unknown backend "bogus:\/x"/.test(
        f.terminal[0],
      ),
    );
    assert.ok(f.log.some((l) => l.includes('EINVAL (unknown backend "bogus:/x"')), f.log.join("\n"));
  });
});

Deno.test("start-up failure: a backend that cannot be opened (so: library missing)", async () => {
  await inDir(async (dir) => {
    assertOneLine(
      await failingStart(dir, ["--backend", "so:/no/such/backend.so"]),
      "open the store",
      "so:/no/such/backend.so",
      "ENOENT",
    );
  });
});

Deno.test("start-up failure: the store is locked by another daemon", async () => {
  await inDir(async (dir) => {
    Deno.mkdirSync(`${dir}/store`);
    const lock = Deno.openSync(`${dir}/store/lock`, { read: true, write: true, create: true });
    try {
      lock.lockSync(true);
      const f = await failingStart(dir, ["--backend", `file:${dir}/store`]);
      assertOneLine(f, "open the store", `file:${dir}/store`, "EWOULDBLOCK");
      assert.ok(f.terminal[0].includes("in use by another daemon"), f.terminal[0]);
    } finally {
      lock.close();
    }
  });
});

Deno.test("start-up failure: a corrupt store", async () => {
  await inDir(async (dir) => {
    Deno.mkdirSync(`${dir}/store`);
    Deno.writeFileSync(
      `${dir}/store/snapshot`,
      new TextEncoder().encode("this is no snapshot at all\n".repeat(8)),
    );
    const f = await failingStart(dir, ["--backend", `file:${dir}/store`]);
    assertOneLine(f, "open the store", `file:${dir}/store`, "EBADMSG");
    assert.ok(f.terminal[0].includes("snapshot"), f.terminal[0]);
  });
});

Deno.test("start-up failure: an unreadable policy configuration", async () => {
  await inDir(async (dir) => {
    assertOneLine(
      await failingStart(dir, ["--policy-config", `${dir}/none.conf`]),
      "load the policy",
      `${dir}/none.conf`,
      "ENOENT",
    );
  });
});

Deno.test("start-up failure: the socket path is in use (a file that is no socket)", async () => {
  await inDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/socket`, "not a socket\n");
    assertOneLine(await failingStart(dir, []), "bind the socket", `${dir}/socket`, "EADDRINUSE");
    assert.equal(Deno.readTextFileSync(`${dir}/socket`), "not a socket\n", "the file is left alone");
  });
});

Deno.test("start-up failure: the socket cannot be bound (its folder is a file; the path is too long)", async () => {
  await inDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/file`, "");
    const notDir = await runToFiles(dir, [DXENSTORED, "-F", `${dir}/pid`, "--log-file", `${dir}/log`], {
      XENSTORED_PATH: `${dir}/file/socket`,
    });
    assert.equal(notDir.code, 1);
    assert.ok(
      notDir.stderr.startsWith(`dxenstored: cannot bind the socket ${dir}/file/socket: ENOTDIR (`),
      notDir.stderr,
    );
    const long = `${dir}/${"s".repeat(120)}`;
    const tooLong = await runToFiles(dir, [DXENSTORED, "-F", `${dir}/pid`], { XENSTORED_PATH: long });
    assert.equal(tooLong.code, 1);
    assert.ok(tooLong.stderr.includes(`cannot bind the socket ${long}: ENAMETOOLONG (`), tooLong.stderr);
  });
});

Deno.test({
  name: "start-up failure: --xen real on a host without /dev/xen",
  ignore: exists("/dev/xen"),
  fn: async () => {
    await inDir(async (dir) => {
      const f = await failingStart(dir, ["--xen", "real"]);
      assertOneLine(f, "attach to Xen (--xen real)", "/dev/xen", "ENOENT");
      assert.ok(f.terminal[0].includes("/dev/xen/evtchn"), f.terminal[0]);
    });
  },
});

Deno.test({
  name:
    "start-up failure: permission denied (the socket's folder is not writable; the daemon has no DAC override)",
  // Root ignores file modes: the daemon runs as root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
  ignore: !isRoot || which("setpriv") === null,
  fn: async () => {
    await inDir(async (dir) => {
      Deno.mkdirSync(`${dir}/ro`, { mode: 0o555 });
      Deno.chmodSync(`${dir}/ro`, 0o555);
      const drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"];
      const r = await runToFiles(dir, [...drop, DXENSTORED, "-F", `${dir}/pid`, "--log-file", `${dir}/log`], {
        XENSTORED_PATH: `${dir}/ro/socket`,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(
        r.stderr.startsWith(`dxenstored: cannot bind the socket ${dir}/ro/socket: EACCES (`),
        r.stderr,
      );
      assert.ok(
        Deno.readTextFileSync(`${dir}/log`).includes(`cannot bind the socket ${dir}/ro/socket: EACCES`),
      );
      // The pid file's folder not writable: the same line for the pid file.
      const p = await runToFiles(dir, [...drop, DXENSTORED, "-F", `${dir}/ro/pid`], {
        XENSTORED_PATH: `${dir}/socket`,
      });
      assert.equal(p.code, 1, p.stderr);
      assert.ok(p.stderr.includes(`cannot lock the pid file ${dir}/ro/pid: EACCES (`), p.stderr);
    });
  },
});

Deno.test("start-up failure: without a log file, the terminal (a pipe) shows the line once", async () => {
  await inDir(async (dir) => {
    const r = await run(DXENSTORED, ["-F", `${dir}/pid`, "--backend", "so:/no/such/backend.so"], {
      XENSTORED_PATH: `${dir}/socket`,
    });
    assert.equal(r.code, 1);
    const lines = r.stderr.split("\n").filter((l) => l.includes("cannot open the store"));
    assert.equal(lines.length, 1, r.stderr);
    // The foreground mode (-N): the log is stderr, so the line is there once, with its priority.
    const fg = await run(DXENSTORED, ["-N", "--backend", "so:/no/such/backend.so"], {
      XENSTORED_PATH: `${dir}/socket`,
    });
    assert.equal(fg.code, 1);
    assert.deepEqual(fg.stderr.split("\n").filter((l) => l.includes("cannot open the store")), [
      "<3>dxenstored: cannot open the store so:/no/such/backend.so: ENOENT (cannot load /no/such/backend.so: " +
      "/no/such/backend.so: cannot open shared object file: No such file or directory)",
    ]);
  });
});

Deno.test("start-up failure: errno names and the report line of the forking handshake", () => {
  assert.equal(errnoNameOf(98), "EADDRINUSE");
  assert.equal(errnoNameOf(13), "EACCES");
  assert.equal(errnoNameOf(4095), "errno 4095");
  assert.deepEqual(describeError(new SysError("bind(/x)", 98)), {
    errno: "EADDRINUSE",
    detail: "Address already in use",
  });
  assert.deepEqual(describeError(new BackendError("in use", "EWOULDBLOCK")), {
    errno: "EWOULDBLOCK",
    detail: "in use",
  });
  assert.equal(describeError(new BackendError("/s/snapshot is damaged")).errno, "EBADMSG");
  let denoErr: unknown;
  try {
    Deno.readTextFileSync("/nonexistent/file");
  } catch (e) {
    denoErr = e;
  }
  assert.deepEqual(describeError(denoErr), { errno: "ENOENT", detail: "No such file or directory" });
  assert.equal(
    StartupFailure.of("bind the socket", "/run/s", new SysError("bind(/run/s)", 98)).line(),
    "cannot bind the socket /run/s: EADDRINUSE (Address already in use)",
  );
  assert.deepEqual(parseReport("FAIL 1 0 cannot x: EIO (y)"), {
    kind: "fail",
    status: 1,
    shown: false,
    line: "cannot x: EIO (y)",
  });
  assert.deepEqual(parseReport("READY 42"), { kind: "ready", pid: 42 });
  assert.equal(parseReport("FAIL x"), null);
});
