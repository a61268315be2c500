/**
 * A strict parser of Prometheus' text exposition format 0.0.4, independent of src/observe (an oracle
 * for the tests): metric and label name syntax, label value escapes, numeric values, HELP/TYPE
 * placement (TYPE once per family, before its samples; a family's samples contiguous). A histogram's
 * `_bucket`, `_sum` and `_count` samples belong to its family; per series its buckets carry `le`,
 * grow with it, end with `+Inf`, and the `+Inf` bucket equals `_count`.
 */
const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export interface ParsedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Parsed {
  readonly samples: readonly ParsedSample[];
  readonly types: ReadonlyMap<string, string>;
  /** The value of the sample with exactly these labels (throws if absent). */
  value(name: string, labels: Record<string, string>): number;
}

function parseValue(s: string, line: number): number {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(s)) {
    throw new Error(`line ${line}: bad value "${s}"`);
  }
  return Number(s);
}

/** The histogram family a `_bucket`/`_sum`/`_count` sample belongs to, if declared as one. */
function histogramOf(name: string, types: ReadonlyMap<string, string>): string | null {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && types.get(m[1]) === "histogram" ? m[1] : null;
}

function checkHistograms(samples: readonly ParsedSample[], types: ReadonlyMap<string, string>): void {
  const key = (l: Readonly<Record<string, string>>) =>
    JSON.stringify(Object.keys(l).filter((k) => k !== "le").sort().map((k) => [k, l[k]]));
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
    for (const s of samples) {
      if (histogramOf(s.name, types) !== family) {
        if (s.name === family) throw new Error(`histogram ${family} has a plain sample`);
        continue;
      }
      const k = key(s.labels);
      const e = series.get(k) ?? { buckets: [] };
      series.set(k, e);
      if (s.name.endsWith("_bucket")) {
        if (s.labels.le === undefined) throw new Error(`${s.name} without le`);
        e.buckets.push([parseValue(s.labels.le, 0), s.value]);
      } else if (s.name.endsWith("_sum")) e.sum = s.value;
      else e.count = s.value;
    }
    for (const [k, e] of series) {
      const b = e.buckets;
      if (b.length === 0 || b[b.length - 1][0] !== Infinity) throw new Error(`${family}${k}: no +Inf bucket`);
      for (let i = 1; i < b.length; i++) {
        if (!(b[i][0] > b[i - 1][0]) || b[i][1] < b[i - 1][1]) {
          throw new Error(`${family}${k}: buckets out of order`);
        }
      }
      if (e.count !== b[b.length - 1][1] || e.sum === undefined) {
        throw new Error(`${family}${k}: _count must equal the +Inf bucket, and _sum be there`);
      }
    }
  }
}

export function parsePrometheus(text: string): Parsed {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const samples: ParsedSample[] = [];
  const types = new Map<string, string>();
  const finished = new Set<string>();
  let current: string | null = null;
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((l, i) => {
    const n = i + 1;
    if (l.trim() === "") return;
    if (l.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(l);
      if (m === null) return; // a plain comment
      if (!METRIC.test(m[2])) throw new Error(`line ${n}: bad metric name in ${m[1]}`);
      if (m[1] === "TYPE") {
        if (!TYPES.has(m[3])) throw new Error(`line ${n}: bad type "${m[3]}"`);
        if (types.has(m[2])) throw new Error(`line ${n}: second TYPE for ${m[2]}`);
        if (samples.some((s) => s.name === m[2])) throw new Error(`line ${n}: TYPE after samples of ${m[2]}`);
        types.set(m[2], m[3]);
      } else if (!/^([^\\]|\\[\\n])*$/.test(m[3])) throw new Error(`line ${n}: bad escape in HELP`);
      return;
    }
    let p = 0;
    while (p < l.length && l[p] !== "{" && l[p] !== " ") p++;
    const name = l.slice(0, p);
    if (!METRIC.test(name)) throw new Error(`line ${n}: bad metric name "${name}"`);
    const labels: Record<string, string> = {};
    if (l[p] === "{") {
      p++;
      while (l[p] !== "}") {
        const eq = l.indexOf("=", p);
        if (eq < 0) throw new Error(`line ${n}: label without =`);
        const ln = l.slice(p, eq);
        if (!LABEL.test(ln)) throw new Error(`line ${n}: bad label name "${ln}"`);
        if (l[eq + 1] !== '"') throw new Error(`line ${n}: label value not quoted`);
        let v = "";
        let q = eq + 2;
        for (;; q++) {
          if (q >= l.length) throw new Error(`line ${n}: unterminated label value`);
          const ch = l[q];
          if (ch === '"') break;
          if (ch === "\\") {
            const e = l[++q];
            if (e === "\\") v += "\\";
            else if (e === '"') v += '"';
            else if (e === "n") v += "\n";
            else throw new Error(`line ${n}: bad escape \\${e}`);
          } else v += ch;
        }
        if (ln in labels) throw new Error(`line ${n}: label ${ln} twice`);
        labels[ln] = v;
        p = q + 1;
        if (l[p] === ",") p++;
        else if (l[p] !== "}") throw new Error(`line ${n}: expected , or }`);
      }
      p++;
    }
    if (l[p] !== " ") throw new Error(`line ${n}: expected a space before the value`);
    const rest = l.slice(p + 1).split(" ");
    if (rest.length > 2) throw new Error(`line ${n}: trailing fields`);
    const value = parseValue(rest[0], n);
    if (rest.length === 2 && !/^-?[0-9]+$/.test(rest[1])) throw new Error(`line ${n}: bad timestamp`);
    const family = histogramOf(name, types) ?? name;
    if (family !== current) {
      if (finished.has(family)) throw new Error(`line ${n}: samples of ${family} are not contiguous`);
      if (current !== null) finished.add(current);
      current = family;
    }
    samples.push({ name, labels, value });
  });
  checkHistograms(samples, types);
  return {
    samples,
    types,
    value(name, want) {
      const keys = Object.keys(want);
      const s = samples.find((x) =>
        x.name === name && Object.keys(x.labels).length === keys.length &&
        keys.every((k) => x.labels[k] === want[k])
      );
      if (s === undefined) throw new Error(`no sample ${name}${JSON.stringify(want)}`);
      return s.value;
    },
  };
}
