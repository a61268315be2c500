// The suite's requirement list (conformance/requirements.ts) and the spec (docs/spec/*.md) name the same
// requirements, at the same level, on the same page; every daemon requirement has exactly one check.
import assert from "../helpers/assert.ts";
import { REQUIREMENTS } from "../../conformance/requirements.ts";
import { missingChecks } from "../../conformance/run.ts";
import { CHECKS } from "../../conformance/checks/index.ts";

const SPEC = new URL("../../docs/spec/", import.meta.url);

interface Stated {
  readonly id: string;
  readonly page: string;
  readonly text: string;
}

/** Every requirement the spec states: a list item starting with its bold id. */
function stated(): Stated[] {
  const out: Stated[] = [];
  for (const e of Deno.readDirSync(SPEC)) {
    if (!e.name.endsWith(".md")) continue;
    const lines = Deno.readTextFileSync(new URL(e.name, SPEC)).split("\n");
    lines.forEach((l, i) => {
      const m = /^- \*\*([A-Z]+-C?\d+)\*\* (.*)$/.exec(l);
      if (m === null) return;
      let text = m[2];
      for (let j = i + 1; j < lines.length && /^ {2}\S/.test(lines[j]); j++) text += " " + lines[j].trim();
      out.push({ id: m[1], page: e.name, text });
    });
  }
  return out;
}

Deno.test("conformance registry: the spec's requirements, levels and pages", () => {
  const spec = stated();
  const ids = spec.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length, "a requirement id is stated twice");
  assert.deepEqual([...ids].sort(), REQUIREMENTS.map((r) => r.id).sort(), "the registry and the spec differ");
  for (const s of spec) {
    const r = REQUIREMENTS.find((q) => q.id === s.id)!;
    assert.equal(r.page, s.page, `${s.id}: page`);
    assert.equal(r.scope === "client", s.id.includes("-C"), `${s.id}: client requirements have -C ids`);
    const should = s.text.startsWith("(SHOULD)") || (!/\bMUST\b/.test(s.text) && /\bSHOULD\b/.test(s.text));
    assert.equal(r.level, should ? "SHOULD" : "MUST", `${s.id}: level (text: ${s.text.slice(0, 60)})`);
    assert.ok(/\b(MUST|SHOULD)\b/.test(s.text), `${s.id} states no MUST or SHOULD`);
  }
});

Deno.test("conformance registry: one check per daemon requirement, none for anything else", () => {
  assert.deepEqual(missingChecks(), []);
  const ids = CHECKS.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length, "two checks for one requirement");
  for (const id of ids) {
    const r = REQUIREMENTS.find((q) => q.id === id);
    assert.ok(r !== undefined && r.scope !== "client", `check ${id} proves no daemon requirement`);
  }
});
