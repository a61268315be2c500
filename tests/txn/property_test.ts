/**
 * Property tests: random interleavings of transactions (flat, then nested) and plain requests from
 * several connections, driven through the real Core, checked against the Map model (model.ts).
 *
 * The oracle is replay on the model, in commit order:
 *  - every reply inside a transaction equals the model run on the transaction's snapshot plus its own
 *    earlier requests (snapshot isolation), and every plain reply equals the model of the live store;
 *  - a transaction that modified something commits iff re-running its requests on the model of the
 *    store at its commit point gives exactly the replies its client saw. "Commits ⇒ same replies" is
 *    serializability (the committed transactions, re-run in commit order, reproduce every read and the
 *    final store); "same replies ⇒ commits" is the permissiveness requirement, in its strongest form:
 *    a transaction whose observed set is untouched gets the same replies on replay, so it must not
 *    fail — and neither may any other transaction that replay (oxenstored's rule) would accept;
 *  - a read-only transaction always commits and changes nothing;
 *  - a nested transaction commits into its parent iff its requests replay identically on the parent's
 *    current view, and then becomes part of the parent's history;
 *  - at the end the real store equals the model.
 * The path alphabet is tiny so that conflicts (and near-misses) are frequent.
 */
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { type Conn, Harness } from "./harness.ts";
import { apply, isModification, type MStore, type Op, send, showOp, showStore, snapshot } from "./model.ts";
import { initialStore } from "./model.ts";

const PATHS = ["/a", "/b", "/a/a", "/a/b", "/b/a", "/a/a/b", "/a/b/a"];
const READ_PATHS = [...PATHS, "/"];
const VALUES = ["", "1", "2"];
const PERMS = ["n0", "r0", "n0,r1"];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant("read" as const), p: fc.constantFrom(...READ_PATHS) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("write" as const),
      p: fc.constantFrom(...PATHS),
      v: fc.constantFrom(...VALUES),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("rm" as const), p: fc.constantFrom(...PATHS) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("mkdir" as const), p: fc.constantFrom(...PATHS) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("dir" as const), p: fc.constantFrom(...READ_PATHS) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("dirpart" as const), p: fc.constantFrom(...PATHS) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("getperms" as const), p: fc.constantFrom(...PATHS) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("setperms" as const),
      p: fc.constantFrom(...PATHS),
      perms: fc.constantFrom(...PERMS),
    }),
  },
);

type Step =
  | { readonly s: "op"; readonly actor: number; readonly pick: number; readonly op: Op }
  | { readonly s: "start" | "commit" | "abort"; readonly actor: number; readonly pick: number };

const ACTORS = 3;
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      s: fc.constant("op" as const),
      actor: fc.nat(ACTORS - 1),
      pick: fc.nat(7),
      op: opArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ s: fc.constant("start" as const), actor: fc.nat(ACTORS - 1), pick: fc.nat(7) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ s: fc.constant("commit" as const), actor: fc.nat(ACTORS - 1), pick: fc.nat(7) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ s: fc.constant("abort" as const), actor: fc.nat(ACTORS - 1), pick: fc.nat(7) }),
  },
);

interface MTx {
  readonly id: number;
  readonly parent: MTx | null;
  /** The model of this transaction's view. */
  view: MStore;
  /** Requests and the replies the client saw, in order (merged children included). */
  history: Array<{ op: Op; reply: string }>;
  children: number;
}

export interface Stats {
  commits: number;
  conflicts: number;
  readOnly: number;
  nestedCommits: number;
  nestedConflicts: number;
  busy: number;
}

const copy = (s: MStore): MStore => new Map(s);

/** Re-run `history` on a copy of `s`: the resulting store if every reply matches, else null. */
function replayModel(s: MStore, history: ReadonlyArray<{ op: Op; reply: string }>): MStore | null {
  const w = copy(s);
  for (const h of history) if (apply(w, h.op) !== h.reply) return null;
  return w;
}

/** Run one scenario; throws (with a trace) on the first disagreement with the model. */
export function runScenario(steps: readonly Step[], nested: boolean, stats: Stats): void {
  const h = new Harness();
  const conns: Conn[] = [];
  for (let i = 0; i < ACTORS; i++) conns.push(h.conn(`actor${i}`));
  let model = initialStore();
  const open: MTx[][] = conns.map(() => []);
  const trace: string[] = [];
  const fail = (msg: string): never => {
    throw new Error(`${msg}\n--- trace ---\n${trace.join("\n")}\n--- model ---\n${showStore(model)}`);
  };
  const check = (what: string, got: string, want: string) => {
    if (got !== want) fail(`${what}: got ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
  };

  const end = (a: number, tx: MTx, commit: boolean) => {
    const c = conns[a];
    const got = commit ? c.commit(tx.id) : c.abort(tx.id);
    trace.push(`a${a} ${commit ? "COMMIT" : "ABORT"} t${tx.id} -> ${got}`);
    if (tx.children > 0) {
      check(`end of t${tx.id} with open children`, got, "EBUSY");
      stats.busy++;
      return;
    }
    open[a].splice(open[a].indexOf(tx), 1);
    if (tx.parent) tx.parent.children--;
    if (!commit) return check(`abort t${tx.id}`, got, "OK");
    if (tx.parent !== null) {
      const merged = replayModel(tx.parent.view, tx.history);
      check(`nested commit t${tx.id}`, got, merged ? "OK" : "EAGAIN");
      if (merged) {
        tx.parent.view = merged;
        tx.parent.history.push(...tx.history);
        stats.nestedCommits++;
      } else stats.nestedConflicts++;
      return;
    }
    if (!tx.history.some((x) => isModification(x.op, x.reply))) {
      check(`read-only commit t${tx.id}`, got, "OK");
      stats.readOnly++;
      return;
    }
    const next = replayModel(model, tx.history);
    check(`commit t${tx.id}`, got, next ? "OK" : "EAGAIN");
    if (next) {
      model = next;
      stats.commits++;
    } else stats.conflicts++;
  };

  for (const st of steps) {
    const a = st.actor;
    const c = conns[a];
    const txs = open[a];
    switch (st.s) {
      case "op": {
        const tx = txs.length === 0 ? null : nested ? txs[st.pick % txs.length] : txs[0];
        const got = send(c, st.op, tx ? tx.id : 0);
        trace.push(`a${a} ${showOp(st.op)}${tx ? ` [t${tx.id}]` : ""} -> ${JSON.stringify(got)}`);
        if (tx === null) {
          check(`plain ${showOp(st.op)}`, got, apply(model, st.op));
        } else {
          check(`${showOp(st.op)} in t${tx.id}`, got, apply(tx.view, st.op));
          tx.history.push({ op: st.op, reply: got });
        }
        break;
      }
      case "start": {
        if (!nested && txs.length > 0) break;
        const parent = nested && txs.length > 0 && st.pick % 3 !== 0 ? txs[st.pick % txs.length] : null;
        const id = c.startTx(parent ? parent.id : 0);
        trace.push(`a${a} START${parent ? ` in t${parent.id}` : ""} -> t${id}`);
        if (parent) parent.children++;
        txs.push({ id, parent, view: copy(parent ? parent.view : model), history: [], children: 0 });
        break;
      }
      case "commit":
      case "abort":
        if (txs.length > 0) end(a, txs[st.pick % txs.length], st.s === "commit");
        break;
    }
  }
  // Finish: end every open transaction, innermost first.
  for (let a = 0; a < ACTORS; a++) {
    while (open[a].length > 0) {
      const leaf = open[a].find((t) => t.children === 0)!;
      end(a, leaf, true);
    }
  }
  const real = snapshot(h.core.db.root);
  if (showStore(real) !== showStore(model)) {
    fail(`final store differs\nreal:  ${showStore(real)}\nmodel: ${showStore(model)}`);
  }
  for (const c of conns) h.close(c);
}

function newStats(): Stats {
  return { commits: 0, conflicts: 0, readOnly: 0, nestedCommits: 0, nestedConflicts: 0, busy: 0 };
}

Deno.test("property: flat transactions + plain requests are serializable and exactly as permissive as replay", () => {
  const stats = newStats();
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 10, maxLength: 80, size: "max" }),
      (steps) => runScenario(steps, false, stats),
    ),
    { numRuns: 400 },
  );
  // The generator must exercise both outcomes, or the property proves little.
  assert.ok(stats.commits > 100 && stats.conflicts > 50 && stats.readOnly > 20, JSON.stringify(stats));
});

Deno.test("property: nested transactions merge into their parent exactly as replay on the parent's view", () => {
  const stats = newStats();
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 10, maxLength: 90, size: "max" }),
      (steps) => runScenario(steps, true, stats),
    ),
    { numRuns: 400 },
  );
  assert.ok(
    stats.nestedCommits > 100 && stats.nestedConflicts > 10 && stats.conflicts > 20 && stats.busy > 10,
    JSON.stringify(stats),
  );
});
