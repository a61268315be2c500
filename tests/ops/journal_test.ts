// The daemon looks like a xenstored to the tools around it: started as Debian's init script does under
// systemd (stderr a journal stream opened by someone else, here with identifier "xen" as xen.service's),
// the forked daemon's log lines reach journald with SYSLOG_IDENTIFIER=dxenstored and _COMM=dxenstored,
// and pidof and `pgrep -x` find it as dxenstored. Needs root: a real systemd-journald runs in a
// private mount namespace (tmpfs on /run/systemd, /run/log and /var/log/journal), fed by
// tests/ops/tools/journal_exec.py the way systemd connects a service's stderr.
import assert from "../helpers/assert.ts";
import { journalEntry, stderrIsJournal } from "../../src/cli/log_sink.ts";
import { exists, isRoot, which } from "./helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const JOURNALD = "/lib/systemd/systemd-journald";
const canRun = isRoot && exists(JOURNALD) && which("journalctl") !== null && which("unshare") !== null &&
  which("xenstore-write") !== null && which("python3") !== null && which("pidof") !== null;
const dec = new TextDecoder();

const SCRIPT = String.raw`
set -u
dir="$1"; root="$2"
mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/journal /run/log && mount -t tmpfs tmpfs /run/log &&
    mount -t tmpfs tmpfs /var/log/journal || { echo "RESULT no-namespace"; exit 0; }
${JOURNALD} & jd=$!
for _ in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
export XENSTORED_PATH="$dir/socket" XENSTORED_RUNDIR="$dir/run" XENSTORED_ROOTDIR="$dir/lib"
python3 "$root/tests/ops/tools/journal_exec.py" xen "$root/bin/dxenstored" --backend memory --pid-file "$dir/pid"
echo "RESULT start=$?"
pid="$(cat "$dir/pid")"
echo "RESULT pid=$pid"
echo "RESULT pidof=$(pidof dxenstored | tr ' ' ',')"
echo "RESULT pgrep=$(pgrep -x dxenstored | tr '\n' ',')"
xenstore-write /journal/x 1
kill "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
# A start that fails (issue 17: one line, in the journal, exit status non-zero), in the forking mode.
python3 "$root/tests/ops/tools/journal_exec.py" xen "$root/bin/dxenstored" --backend so:/no/such.so --pid-file "$dir/pid2"
echo "RESULT failstart=$?"
journalctl --sync 2>/dev/null || sleep 0.5
journalctl -D /run/log/journal -o json --no-pager _PID="$pid"
journalctl -D /run/log/journal -o json --no-pager | grep 'cannot open the store' | sed 's/^/FAIL-ENTRY /'
kill "$jd"; wait "$jd"
`;

Deno.test({
  name:
    "journal: the forked daemon's lines (and a failed start's) carry SYSLOG_IDENTIFIER and _COMM dxenstored; pidof/pgrep find it",
  ignore: !canRun,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxs-journal-" });
    try {
      const o = await new Deno.Command("unshare", {
        args: [
          "-m",
          "--propagation",
          "private",
          "bash",
          "-c",
          SCRIPT.replaceAll("${JOURNALD}", JOURNALD),
          "x",
          dir,
          ROOT,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      const out = dec.decode(o.stdout);
      const result = Object.fromEntries(
        out.split("\n").filter((l) => l.startsWith("RESULT ")).map((l) => l.slice(7).split("=", 2)),
      );
      if ("no-namespace" in result) {
        console.log("  (no tmpfs mounts in a private namespace here: skipped)");
        return;
      }
      assert.equal(result.start, "0", `the start: ${dec.decode(o.stderr)}`);
      const pid = result.pid;
      assert.ok(result.pidof.split(",").includes(pid), `pidof dxenstored: ${result.pidof} (pid ${pid})`);
      assert.ok(result.pgrep.split(",").includes(pid), `pgrep -x dxenstored: ${result.pgrep} (pid ${pid})`);
      const entries = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const serving = entries.find((e) => String(e.MESSAGE).startsWith("serving "));
      assert.ok(serving !== undefined, `a "serving" entry from pid ${pid}:\n${out}`);
      assert.equal(serving.SYSLOG_IDENTIFIER, "dxenstored");
      assert.equal(serving._COMM, "dxenstored");
      assert.equal(serving.PRIORITY, "6");
      assert.ok(entries.some((e) => e.MESSAGE === "stopped" && e.SYSLOG_IDENTIFIER === "dxenstored"), out);
      // A failed start: its one line is in the journal once, under dxenstored's identifier.
      assert.equal(result.failstart, "1", "a failed start exits 1");
      const failed = out.split("\n").filter((l) => l.startsWith("FAIL-ENTRY ")).map((l) =>
        JSON.parse(l.slice(11))
      );
      assert.equal(failed.length, 1, `one journal entry for the failed start:\n${out}`);
      assert.equal(failed[0].SYSLOG_IDENTIFIER, "dxenstored");
      assert.equal(failed[0].PRIORITY, "3");
      assert.ok(String(failed[0].MESSAGE).includes("so:/no/such.so: ENOENT"), failed[0].MESSAGE);
      // Nothing of the daemon's came through the stream under the init script's identifier.
      assert.deepEqual(entries.filter((e) => e.SYSLOG_IDENTIFIER !== "dxenstored").map((e) => e.MESSAGE), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("journal: native entries (KEY=value, a multi-line message in the binary form); JOURNAL_STREAM must match", () => {
  const text = dec.decode(journalEntry(3, "disk full"));
  assert.equal(text, `PRIORITY=3\nSYSLOG_IDENTIFIER=dxenstored\nSYSLOG_PID=${Deno.pid}\nMESSAGE=disk full\n`);
  const multi = journalEntry(6, "a\nb");
  const head = `PRIORITY=6\nSYSLOG_IDENTIFIER=dxenstored\nSYSLOG_PID=${Deno.pid}\nMESSAGE\n`;
  assert.equal(dec.decode(multi.subarray(0, head.length)), head);
  assert.equal(new DataView(multi.buffer, head.length, 8).getBigUint64(0, true), 3n);
  assert.equal(dec.decode(multi.subarray(head.length + 8)), "a\nb\n");
  // Only a stream whose device and inode are stderr's counts (the variable is inherited further).
  assert.equal(stderrIsJournal(undefined), false);
  assert.equal(stderrIsJournal("1:2"), false);
  assert.equal(stderrIsJournal("garbage"), false);
  const st = Deno.statSync("/proc/self/fd/2");
  assert.equal(stderrIsJournal(`${st.dev}:${st.ino}`), true);
});
