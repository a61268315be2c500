// The CONTROL live-update session (src/live_update/session.ts): cxenstored 4.17's argument rules,
// reply texts and the -s transaction rule, without a daemon.
import assert from "../helpers/assert.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { LiveUpdateSession, parseLiveUpdateArgs, startVerdict } from "../../src/live_update/session.ts";
import { execArgv } from "../../src/live_update/handover.ts";
import { programKindFromUsage } from "../../src/live_update/target.ts";

function einval(args: string[]): void {
  try {
    parseLiveUpdateArgs(args);
  } catch (e) {
    assert.ok(e instanceof XsError && e.errno === "EINVAL", String(e));
    return;
  }
  throw new Error(`accepted ${JSON.stringify(args)}`);
}

Deno.test("live-update arguments: cxenstored's forms, anything else EINVAL", () => {
  assert.deepEqual(parseLiveUpdateArgs(["-f", "/x"]), { kind: "file", file: "/x" });
  assert.deepEqual(parseLiveUpdateArgs(["-c", "a b"]), { kind: "cmdline", cmdline: "a b" });
  assert.deepEqual(parseLiveUpdateArgs(["-a"]), { kind: "abort" });
  assert.deepEqual(parseLiveUpdateArgs(["-s"]), { kind: "start", force: false, timeoutS: 60 });
  assert.deepEqual(parseLiveUpdateArgs(["-s", "-t", "5", "-F"]), { kind: "start", force: true, timeoutS: 5 });
  assert.deepEqual(parseLiveUpdateArgs(["-s", "-t", "7x"]), { kind: "start", force: false, timeoutS: 7 });
  for (
    const bad of [[], ["-f"], ["-f", "a", "b"], ["-a", "x"], ["-c"], ["-s", "-t"], ["-s", "-x"], ["-b", "x"]]
  ) {
    einval(bad);
  }
});

Deno.test("live-update session: one at a time, owned by the -f connection, replies as cxenstored", () => {
  let now = 1000;
  const s = new LiveUpdateSession<string>((f) => f === "/bad" ? "File not accessible." : null, () => now);
  const h = (c: string, a: string[]) => s.handle(c, parseLiveUpdateArgs(a), 9, 0);
  assert.deepEqual(h("A", ["-a"]), { kind: "reply", text: "No live-update session active." });
  assert.deepEqual(h("A", ["-c", "x"]), { kind: "reply", text: "Not in live-update session." });
  assert.deepEqual(h("A", ["-s"]), { kind: "reply", text: "Not in live-update session." });
  // A refused file still opens the session (xenstore-control aborts it).
  assert.deepEqual(h("A", ["-f", "/bad"]), { kind: "reply", text: "File not accessible." });
  assert.ok(s.active);
  assert.deepEqual(h("A", ["-a"]), { kind: "reply", text: "OK" });
  assert.ok(!s.active);
  assert.deepEqual(h("A", ["-f", "/good"]), { kind: "reply", text: "OK" });
  assert.deepEqual(h("B", ["-f", "/good"]), { kind: "reply", text: "live-update session already active." });
  assert.deepEqual(h("B", ["-c", "x"]), { kind: "reply", text: "Not in live-update session." });
  assert.deepEqual(h("A", ["-c", "--a  b"]), { kind: "reply", text: "OK" });
  now = 2000;
  assert.deepEqual(h("A", ["-s", "-t", "3"]), { kind: "delayed" });
  assert.deepEqual(s.session?.start, { force: false, timeoutS: 3, since: 2000, reqId: 9, txId: 0 });
  assert.equal(s.session?.cmdline, "--a  b");
});

Deno.test("live-update -s: cxenstored's transaction rule", () => {
  const p = { force: false, timeoutS: 10, since: 0, reqId: 1, txId: 0 };
  assert.deepEqual(startVerdict(p, [], 0), { kind: "go", dropsTransactions: false });
  assert.deepEqual(startVerdict(p, [{ domid: 0, oldestStart: 0 }], 5000), { kind: "wait" });
  assert.deepEqual(startVerdict(p, [{ domid: 0, oldestStart: 0 }], 12_500), {
    kind: "refuse",
    text: "Domains with long running transactions:\nDomain 0: 12 s",
  });
  // Only young transactions at the timeout: "Overlapping transactions".
  assert.deepEqual(startVerdict(p, [{ domid: 3, oldestStart: 9000 }], 10_000), {
    kind: "refuse",
    text: "Overlapping transactions",
  });
  const f = { ...p, force: true };
  // -F: at once if every open transaction is already older than the timeout; else at the timeout.
  assert.deepEqual(startVerdict(f, [{ domid: 0, oldestStart: -20_000 }], 0), {
    kind: "go",
    dropsTransactions: true,
  });
  assert.deepEqual(startVerdict(f, [{ domid: 0, oldestStart: 0 }], 5000), { kind: "wait" });
  assert.deepEqual(startVerdict(f, [{ domid: 0, oldestStart: 9000 }], 10_000), {
    kind: "go",
    dropsTransactions: true,
  });
});

Deno.test("live update: the new program's argv and what --help says it is", () => {
  assert.deepEqual(execArgv("/n", ["--socket", "/s", "-U"], null), ["/n", "--socket", "/s", "-U"]);
  assert.deepEqual(execArgv("/n", ["-N"], null), ["/n", "-N", "-U"]);
  assert.deepEqual(execArgv("/n", ["-N"], " -T  /t\t-N "), ["/n", "-T", "/t", "-N", "-U"]);
  assert.equal(programKindFromUsage("Usage: dxenstored [options]\n"), "dxenstored");
  assert.equal(programKindFromUsage("Usage:\n\n  xenstored <options>\n --live-update"), "cxenstored");
  assert.equal(programKindFromUsage("hello"), "unknown");
});
