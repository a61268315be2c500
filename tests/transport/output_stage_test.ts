// The loop's output stage (src/transport/loop.ts OutputStage): the connections that got output in a
// turn are kept in a list marked in each connection's release marks, not in a Set. Each is tagged and
// flushed once per turn however often it queued, one that gets output from another's flush is taken
// in the same pass, a closed one is skipped, and every mark is cleared for the next turn.
import assert from "../helpers/assert.ts";
import { type OutputSink, OutputStage } from "../../src/transport/loop.ts";
import { ReleaseMarks } from "../../src/transport/release_marks.ts";

class Sink implements OutputSink {
  readonly marks = new ReleaseMarks();
  queuedPosition = 0;
  closed = false;
  flushes = 0;
  onFlush: () => void = () => {};
  constructor(readonly name: string, private readonly log: string[]) {}
  flush(): void {
    this.flushes++;
    this.log.push(this.name);
    this.onFlush();
  }
}

Deno.test("OutputStage: each connection flushed once per turn, in queueing order, marks cleared after", () => {
  const stage = new OutputStage();
  const log: string[] = [];
  const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => new Sink(n, log));
  for (const x of [a, b, a, c, b, a]) {
    x.queuedPosition++;
    stage.queued(x);
  }
  // c's flush gives d output (a watch event, say): d is flushed in the same pass; b's gives a
  // more output, already flushed this turn: it waits for the next turn's release.
  c.onFlush = () => stage.queued(d);
  b.onFlush = () => stage.queued(a);
  stage.release(0, 0);
  assert.deepEqual(log, ["a", "b", "c", "d"]);
  assert.equal(a.marks.released, 3, "released up to a's last queued position");
  for (const x of [a, b, c, d]) assert.equal(x.marks.queuedThisTurn, false);
  // Next turn: only what queued again; a closed connection is skipped.
  log.length = 0;
  c.onFlush = b.onFlush = () => {};
  stage.queued(b);
  stage.queued(c);
  c.closed = true;
  stage.release(0, 0);
  assert.deepEqual(log, ["b"]);
  stage.release(0, 0);
  assert.deepEqual(log, ["b"], "an empty turn flushes nothing");
});
