// Metrics in Prometheus' text exposition format (version 0.0.4), written atomically to a file for
// node_exporter's textfile collector (no listening port on dom0) and returned by
// `xenstore-control stats`. Collectors are pulled at render time: nothing is computed between scrapes.

export type MetricType = "counter" | "gauge" | "histogram";

export interface Sample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
  /** Appended to the family's name: a histogram's `_bucket`, `_sum` and `_count` samples. */
  readonly suffix?: string;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly Sample[];
}

export type Collector = () => readonly MetricFamily[];

/** Label values escape backslash, double quote and newline; HELP text escapes backslash and newline. */
function escLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function fmtValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function sampleLine(name: string, s: Sample): string {
  const l = s.labels;
  let labels = "";
  if (l !== undefined) {
    const parts = Object.keys(l).map((k) => `${k}="${escLabel(l[k])}"`);
    if (parts.length > 0) labels = `{${parts.join(",")}}`;
  }
  return `${name}${labels} ${fmtValue(s.value)}`;
}

export class Metrics {
  private readonly collectors: Collector[] = [];

  add(c: Collector): void {
    this.collectors.push(c);
  }

  families(): MetricFamily[] {
    const out: MetricFamily[] = [];
    for (const c of this.collectors) out.push(...c());
    return out;
  }

  /** The full exposition: HELP and TYPE lines, then the samples, one family after another. */
  render(): string {
    let out = "";
    for (const f of this.families()) {
      out += `# HELP ${f.name} ${escHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
      for (const s of f.samples) out += sampleLine(f.name + (s.suffix ?? ""), s) + "\n";
    }
    return out;
  }

  /** Sample lines only (no comments) of the families whose name starts with `prefix`: `stats`. */
  renderSamples(prefix = ""): string {
    let out = "";
    for (const f of this.families()) {
      if (!f.name.startsWith(prefix)) continue;
      for (const s of f.samples) out += sampleLine(f.name + (s.suffix ?? ""), s) + "\n";
    }
    return out;
  }
}

/**
 * A Prometheus histogram: counts of observations at or below each bound (seconds), their sum and
 * count. Observing is a short scan of the bounds and three additions: cheap enough for every request.
 */
export class Histogram {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new Error("histogram bounds must increase");
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }

  /** The samples of one series: cumulative `_bucket`s with `le` (then `+Inf`), `_sum`, `_count`. */
  samples(labels: Readonly<Record<string, string>> = {}): Sample[] {
    return histogramSamples([[labels, this]]);
  }

  /** The cumulative `_bucket` samples of this series, `le` ascending, `+Inf` last. */
  buckets(labels: Readonly<Record<string, string>>): Sample[] {
    const out: Sample[] = [];
    let acc = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      acc += this.counts[i];
      const le = i < this.bounds.length ? String(this.bounds[i]) : "+Inf";
      out.push({ suffix: "_bucket", labels: { ...labels, le }, value: acc });
    }
    return out;
  }
}

/**
 * The samples of a histogram family with several series: every `_bucket` line, then every `_sum`, then
 * every `_count`. Each sample name stays one contiguous group, so the lines are valid even without
 * their `# TYPE` line (`xenstore-control stats` prints samples only).
 */
export function histogramSamples(
  series: ReadonlyArray<readonly [Readonly<Record<string, string>>, Histogram]>,
): Sample[] {
  const out: Sample[] = [];
  for (const [labels, h] of series) out.push(...h.buckets(labels));
  for (const [labels, h] of series) out.push({ suffix: "_sum", labels, value: h.sum });
  for (const [labels, h] of series) out.push({ suffix: "_count", labels, value: h.count });
  return out;
}

/**
 * Write `text` to `path` atomically: a temporary file in the same directory, then rename(2), so a
 * reader (node_exporter) sees the old file or the new one, never a partial one.
 */
export function writeAtomic(path: string, text: string): void {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const base = slash < 0 ? path : path.slice(slash + 1);
  const tmp = `${dir}/.${base}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, text, { mode: 0o644 });
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw e;
  }
}
