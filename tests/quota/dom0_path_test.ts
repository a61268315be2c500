// dom0's path lengths as cxenstored 4.17 (issue 17, item 5): path-max (2048 by default, -M) binds
// dom0's requests too, on the part after "/local/domain/<id>/", so a dom0 path of 2049–3072 bytes
// outside a domain's home is EINVAL, and one under /local/domain/<id>/ is fine while its relative part
// fits. Checked against the reference daemon (tests/helpers/anchor.ts) when it is installed, and
// against the recorded 4.17 answers otherwise.
import assert from "../helpers/assert.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";
import { runTool, withDaemon } from "../helpers/daemon.ts";

/** A path of exactly `len` bytes under `prefix` (segments of at most 200 bytes). */
function pathOf(prefix: string, len: number): string {
  let p = prefix;
  while (p.length < len) {
    const room = len - p.length - 1;
    p += "/" + "p".repeat(Math.max(1, Math.min(200, room)));
  }
  assert.equal(p.length, len);
  return p;
}

const CASES: Array<[string, string]> = [
  ["outside a home, 2048 bytes", pathOf("/t", 2048)],
  ["outside a home, 2049 bytes", pathOf("/t", 2049)],
  ["outside a home, 3072 bytes", pathOf("/t", 3072)],
  ["under /local/domain/1/, 2049 bytes (relative 2033)", pathOf("/local/domain/1", 2049)],
  ["under /local/domain/1/, relative 2048", pathOf("/local/domain/1", 16 + 2048)],
  ["under /local/domain/1/, relative 2049", pathOf("/local/domain/1", 16 + 2049)],
];
/** cxenstored 4.17.7's answers (Debian 12), recorded through the anchors: written or refused. */
const CX_417 = [true, false, false, true, true, false];

/**
 * xenstore-write of every case as dom0 (the socket). (`xenstore-chmod -r` fails on a 2048-byte node
 * against cxenstored too: its client walks with a shorter buffer; not a daemon matter.)
 */
async function answers(socket: string): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const [, p] of CASES) {
    const w = await runTool("xenstore-write", [p, "v"], socket);
    out.push(w.code === 0);
    if (w.code === 0) assert.equal((await runTool("xenstore-read", [p], socket)).stdout.trim(), "v");
    await runTool("xenstore-rm", [p.startsWith("/t/") ? "/t" : "/local/domain/1"], socket);
  }
  return out;
}

Deno.test("dom0 path lengths: path-max binds dom0 as in cxenstored 4.17 (2049–3072 bytes refused)", async () => {
  const ours = await withDaemon((d) => answers(d.socket));
  const label = (a: boolean[]) =>
    CASES.map(([what], i) => `${what}: ${a[i] ? "written" : "EINVAL"}`).join("\n");
  assert.equal(label(ours), label(CX_417));
  if (!anchorsAvailable()) return;
  const ref = await startAnchor("cxenstored");
  try {
    assert.equal(label(await answers(ref.socket)), label(CX_417), "the recorded answers are cxenstored's");
  } finally {
    await ref.stop();
  }
});

Deno.test("dom0 path lengths: -M raises dom0's limit up to the absolute 3072", async () => {
  await withDaemon(async (d) => {
    assert.equal((await runTool("xenstore-write", [pathOf("/t", 3072), "v"], d.socket)).code, 0);
    assert.notEqual((await runTool("xenstore-write", [pathOf("/t", 3073), "v"], d.socket)).code, 0);
  }, { args: ["-M", "4000"] });
});
