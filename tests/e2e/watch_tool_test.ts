// Debian's xenstore-watch against the daemon: the initial event, then one event per change under the
// watched path (and none for changes elsewhere), delivered through libxenstore's reader thread.
import assert from "../helpers/assert.ts";
import { runTool, withDaemon } from "../helpers/daemon.ts";

/** Reads a child's stdout line by line, with a per-line timeout (a guard against hangs, not a timing check). */
class LineReader {
  private buf = "";
  private readonly reader: ReadableStreamDefaultReader<string>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async line(timeoutMs = 10000): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!this.buf.includes("\n")) {
        const next = this.reader.read();
        const timeout = new Promise<never>((_, rej) => {
          timer = setTimeout(
            () => rej(new Error(`no line within ${timeoutMs} ms (have ${JSON.stringify(this.buf)})`)),
            timeoutMs,
          );
        });
        const r = await Promise.race([next, timeout]);
        clearTimeout(timer);
        if (r.done) throw new Error(`EOF (have ${JSON.stringify(this.buf)})`);
        this.buf += r.value;
      }
      const i = this.buf.indexOf("\n");
      const l = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      return l;
    } finally {
      clearTimeout(timer);
    }
  }

  async rest(): Promise<string> {
    for (;;) {
      const r = await this.reader.read();
      if (r.done) return this.buf;
      this.buf += r.value;
    }
  }
}

Deno.test("xenstore-watch: initial event, then events for changes below the path only", async () => {
  await withDaemon(async (d) => {
    await runTool("xenstore-write", ["/w", ""], d.socket);
    const child = new Deno.Command("xenstore-watch", {
      args: ["-n", "5", "/w"],
      env: { XENSTORED_PATH: d.socket },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = new LineReader(child.stdout);
    const errText = new Response(child.stderr).text();
    let exited = false;
    try {
      // The initial event also proves the watch is registered before we change anything.
      assert.equal(await out.line(), "/w", "initial event");
      const write = async (p: string, v: string) =>
        assert.equal((await runTool("xenstore-write", [p, v], d.socket)).code, 0);
      await write("/elsewhere", "x"); // must not fire
      await write("/w/a", "1");
      assert.equal(await out.line(), "/w/a");
      await write("/w/a/b/c", "2"); // one write creating two nodes: one event, for the written path
      assert.equal(await out.line(), "/w/a/b/c");
      assert.equal((await runTool("xenstore-rm", ["/w/a"], d.socket)).code, 0);
      assert.equal(await out.line(), "/w/a");
      assert.equal((await runTool("xenstore-chmod", ["/w", "n0", "r1"], d.socket)).code, 0);
      assert.equal(await out.line(), "/w");
      const st = await child.status;
      exited = true;
      assert.equal(st.code, 0, await errText);
      assert.equal(await out.rest(), "", "nothing after the 5th event");
    } finally {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
      }
      await errText;
      await out.rest().catch(() => "");
    }
  });
});
