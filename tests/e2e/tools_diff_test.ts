// Differential test: the same xenstore-* command sequence against dxenstored and against Debian's C
// xenstored (through /work/shared/anchors); every command's exit code, stdout and stderr, and the final
// `xenstore-ls -p`, must be identical. cxenstored lists children in insertion order and dxenstored
// sorted, so every directory's children are created in sorted order (and never re-created). The seeded
// random differential test of the wire protocol is random_diff_test.ts.
import assert from "../helpers/assert.ts";
import { runTool, type ToolResult, withDaemon } from "../helpers/daemon.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";

const SCRIPT: ReadonlyArray<readonly string[]> = [
  ["xenstore-write", "/t/a", "1"],
  ["xenstore-write", "/t/b/c", "two words"],
  ["xenstore-write", "/t/b/d", "\\x01\\xff\\t\\\\"],
  ["xenstore-write", "/t/c", ""],
  ["xenstore-read", "/t/a"],
  ["xenstore-read", "/t/b/d"],
  ["xenstore-read", "/t/c"],
  ["xenstore-read", "/t/missing"],
  ["xenstore-read", "/t/b/c/missing/deeper"],
  ["xenstore-read", "-p", "/t/a", "/t/b/c"],
  ["xenstore-write", "/t/d/e", "v", "/t/d/f", "w"],
  ["xenstore-exists", "/t/a"],
  ["xenstore-exists", "/t/zz"],
  ["xenstore-exists", "/zz/zz"],
  ["xenstore-list", "/t"],
  ["xenstore-list", "-p", "/t/b"],
  ["xenstore-list", "/t/a"],
  ["xenstore-list", "/t/zz"],
  // Under the anchors' fake Xen (and dxenstored's --xen=none) only dom0 exists: another owner is
  // refused (ENOENT) by both; entries naming other domains are kept.
  ["xenstore-chmod", "/t/b/c", "n5", "r0"],
  ["xenstore-chmod", "/t/b//c", "n5"],
  ["xenstore-chmod", "/t/b/c", "n0", "r5", "b6"],
  ["xenstore-chmod", "-r", "/t/d", "r0", "w7"],
  ["xenstore-chmod", "-u", "/t/b/d", "b0", "r1"],
  ["xenstore-chmod", "/t/zz", "b0"],
  ["xenstore-ls", "-p", "/t"],
  ["xenstore-rm", "/t/zz"],
  ["xenstore-rm", "/zz/zz"],
  ["xenstore-rm", "/t/b/c"],
  ["xenstore-write", "/t/e/f/g", "deep"],
  ["xenstore-rm", "-t", "/t/e/f/g"],
  ["xenstore-write", "/t/bad path", "x"],
  ["xenstore-write", "/t/trailing/", "x"],
  ["xenstore-read", "//t"],
  ["xenstore-write", "rel/x", "relative"],
  ["xenstore-read", "rel/x"],
  ["xenstore-read", "/local/domain/0/rel/x"],
  ["xenstore-ls", "-p", "/local/domain/0/rel"],
  ["xenstore-ls", "-f", "/t"],
  ["xenstore-ls", "/t/missing"],
  ["xenstore-ls", "-p", "/t"],
];

async function runScript(socket: string): Promise<ToolResult[]> {
  const out: ToolResult[] = [];
  for (const [name, ...args] of SCRIPT) out.push(await runTool(name, args, socket));
  return out;
}

Deno.test({
  name: "differential: xenstore-* command sequence, dxenstored vs cxenstored",
  ignore: !anchorsAvailable(),
  async fn() {
    const ref = await startAnchor("cxenstored");
    let expected: ToolResult[];
    try {
      expected = await runScript(ref.socket);
    } finally {
      await ref.stop();
    }
    // The oracle must have done real work, or the comparison proves nothing.
    assert.equal(expected[4].stdout, "1\n", "cxenstored answered the script");
    assert.ok(expected.some((r) => r.code !== 0), "the script includes failures");
    const actual = await withDaemon((d) => runScript(d.socket));
    const diffs: string[] = [];
    SCRIPT.forEach((cmd, i) => {
      const a = actual[i];
      const e = expected[i];
      if (a.code !== e.code || a.stdout !== e.stdout || a.stderr !== e.stderr) {
        diffs.push(
          `${cmd.join(" ")}\n  cxenstored: code ${e.code} stdout ${JSON.stringify(e.stdout)} stderr ${
            JSON.stringify(e.stderr)
          }\n  dxenstored: code ${a.code} stdout ${JSON.stringify(a.stdout)} stderr ${
            JSON.stringify(a.stderr)
          }`,
        );
      }
    });
    assert.equal(diffs.length, 0, `${diffs.length} command(s) differ:\n${diffs.join("\n")}`);
  },
});
