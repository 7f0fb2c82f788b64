// Front end of unsloth_nb.ui.chart.LossChart (an anywidget ESM).
//
// Python sends {type: "snapshot" | "delta", seq, traces: {table: {x: [...], column: [...]}}}.
// A per-model store applies them in seq order and every view of the model draws from
// it: a snapshot redraws (Plotly.react), a delta appends (Plotly.extendTraces). A gap in
// seq means iopub dropped a message, so the store asks for a snapshot ({type: "resync"}).
// plotly.js comes from the kernel (the plotly package's own plotly.min.js, pushed once
// per page as a binary buffer) and is kept on window; never from a CDN.

const RETRY_MS = 1500;
const PLOTLY_REQUEST_MS = 10000;
// Page-wide: one plotly.js per page, asked for by one chart at a time.
const PAGE = (globalThis.__unslothNbChart ??= { loading: null, waiters: [], requestedAt: -Infinity });

/** Protocol state of one chart, free of DOM and Plotly so it can be tested anywhere. */
export function createStore({ now = () => Date.now(), retryMs = RETRY_MS } = {}) {
  let tables = {};
  let seq = null;
  let width = {};
  let steps = 0;
  let smoothing = null;
  let lastRequest = -Infinity;

  function resync() {
    const t = now();
    if (t - lastRequest < retryMs) return null;
    lastRequest = t;
    return { type: "resync", have: seq === null ? -1 : seq };
  }

  return {
    get seq() {
      return seq;
    },
    get tables() {
      return tables;
    },
    get width() {
      return width;
    },
    get steps() {
      return steps;
    },
    get smoothing() {
      return smoothing;
    },
    points(table = "train") {
      return tables[table] ? tables[table].x.length : 0;
    },
    /** Apply one message; returns {kind: "reset" | "extend" | "none", added?, request?}. */
    apply(msg) {
      if (msg.type === "snapshot") {
        tables = {};
        for (const [name, columns] of Object.entries(msg.traces || {})) {
          tables[name] = Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, v.slice()]));
        }
        seq = msg.seq;
        width = msg.width || {};
        steps = msg.steps || 0;
        if (typeof msg.smoothing === "number") smoothing = msg.smoothing;
        lastRequest = -Infinity;
        return { kind: "reset" };
      }
      if (msg.type !== "delta") return { kind: "none" };
      if (seq !== null && msg.seq <= seq) return { kind: "none" }; // duplicate or stale
      if (seq === null || msg.seq !== seq + 1) return { kind: "none", request: resync() };
      seq = msg.seq;
      if (typeof msg.smoothing === "number" && msg.smoothing !== smoothing) {
        smoothing = msg.smoothing;
        for (const [name, columns] of Object.entries(msg.traces || {})) {
          const table = (tables[name] ??= {});
          for (const [k, v] of Object.entries(columns)) (table[k] ??= []).push(...v);
        }
        return { kind: "reset" };
      }
      for (const [name, columns] of Object.entries(msg.traces || {})) {
        const table = (tables[name] ??= {});
        for (const [k, v] of Object.entries(columns)) {
          (table[k] ??= []).push(...v);
        }
      }
      return { kind: "extend", added: msg.traces || {} };
    },
    /** A request to send when no snapshot came yet (reloaded page, lost first message). */
    pendingRequest() {
      return seq === null ? resync() : null;
    },
  };
}

function plotlyNow() {
  const P = globalThis.Plotly;
  return P && typeof P.extendTraces === "function" ? P : null;
}

function whenPlotly(callback) {
  const P = plotlyNow();
  if (P) callback(P);
  else PAGE.waiters.push(callback);
}

function loadPlotly(buffer) {
  if (plotlyNow() || PAGE.loading) return;
  const url = URL.createObjectURL(new Blob([buffer], { type: "text/javascript" }));
  PAGE.loading = import(url)
    .then(() => {
      const P = plotlyNow();
      if (!P) throw new Error("plotly.js did not define window.Plotly");
      const waiters = PAGE.waiters.splice(0);
      for (const callback of waiters) callback(P);
    })
    .catch((error) => {
      console.error("[unsloth_nb] could not load plotly.js", error);
      PAGE.loading = null;
    })
    .finally(() => URL.revokeObjectURL(url));
}

/**
 * Debiased EMA of ``values`` (nulls skipped), continuing from ``state`` ({biased, n}) when given;
 * rows that each merge ``width`` logged steps weigh as many. Same arithmetic as
 * unsloth_nb.ui.loss_series.smoothed, so the page and a static export agree.
 */
export function smooth(values, smoothing, width = 1, state = { biased: 0, n: 0 }) {
  const weight = Math.pow(smoothing, width);
  const out = [];
  for (const value of values) {
    if (value === null || value === undefined) {
      out.push(state.n === 0 ? null : state.biased / (1 - Math.pow(weight, state.n)));
      continue;
    }
    state.biased = weight * state.biased + (1 - weight) * value;
    state.n += 1;
    out.push(weight < 1 ? state.biased / (1 - Math.pow(weight, state.n)) : value);
  }
  return out;
}

/** The smoothing a run of ``steps`` steps is drawn with until the user picks one (a tenth of the run). */
export function defaultSmoothing(steps) {
  if (!steps || steps <= 0) return 0.6;
  return Math.round(Math.min(Math.max(1 - 10 / steps, 0), 0.995) * 1000) / 1000;
}

function hasValue(values) {
  return (values || []).some((v) => v !== null && v !== undefined);
}

/**
 * Every trace of ``spec`` drawn from the store's tables. ``emaStates`` gets one fresh EMA state per smoothed
 * trace (by trace index), so each curve starts on its own first point and later deltas continue its own EMA:
 * a compare view's jobs never share one.
 */
export function plotTraces(spec, store, smoothing, emaStates) {
  return spec.traces.map(({ table, column, smooth: isSmooth, ...attrs }, i) => {
    const data = store.tables[table] || {};
    const raw = data[column] || [];
    const y = isSmooth ? smooth(raw, smoothing, store.width[table] || 1, (emaStates[i] = { biased: 0, n: 0 })) : raw.slice();
    const trace = { ...attrs, x: (data.x || []).slice(), y };
    if (!hasValue(raw)) trace.showlegend = false; // no "eval loss" entry for a run without evaluation
    // One point draws no line: mark it, so a run's first step is not an empty chart.
    if (trace.mode === "lines" && trace.x.length === 1) trace.mode = "lines+markers";
    return trace;
  });
}

/** What a delta adds to the drawn traces, for Plotly.extendTraces: {update: {x, y}, indices}. */
export function traceExtension(spec, store, added, smoothing, emaStates) {
  const update = { x: [], y: [] };
  const indices = [];
  spec.traces.forEach(({ table, column, smooth: isSmooth }, i) => {
    const columns = added[table];
    if (columns && columns[column] && columns.x.length) {
      update.x.push(columns.x.slice());
      const state = (emaStates[i] ??= { biased: 0, n: 0 });
      update.y.push(isSmooth ? smooth(columns[column], smoothing, store.width[table] || 1, state) : columns[column].slice());
      indices.push(i);
    }
  });
  return { update, indices };
}

function totalPoints(store) {
  return Object.values(store.tables).reduce((n, t) => n + (t.x || []).length, 0);
}

function maxStep(store) {
  let top = 0;
  for (const table of Object.values(store.tables)) {
    const xs = table.x || [];
    if (xs.length) top = Math.max(top, xs[xs.length - 1]);
  }
  return top;
}

function createView(el, model, store, unanswered) {
  const root = document.createElement("div");
  root.className = "unsloth-nb-chart";
  const plot = document.createElement("div");
  plot.className = "unsloth-nb-chart-plot";
  const note = document.createElement("div");
  note.className = "unsloth-nb-chart-note";
  // The page's own controls: they change only this drawing, so they work without a kernel.
  const tools = document.createElement("div");
  tools.className = "unsloth-nb-chart-tools";
  const smoothLabel = document.createElement("label");
  smoothLabel.textContent = "smoothing ";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "0.995";
  slider.step = "0.005";
  slider.className = "unsloth-nb-smoothing";
  const smoothValue = document.createElement("span");
  smoothValue.className = "unsloth-nb-smoothing-value";
  smoothLabel.append(slider, smoothValue);
  const logLabel = document.createElement("label");
  const logBox = document.createElement("input");
  logBox.type = "checkbox";
  logBox.className = "unsloth-nb-log-y";
  logLabel.append(logBox, document.createTextNode(" log y"));
  tools.append(smoothLabel, logLabel);
  root.append(tools, plot, note);
  el.append(root);

  let userSmoothing = null; // set once the user moves the slider
  let logY = false;
  let emaStates = {}; // one EMA per smoothed trace, by trace index
  let marked = false; // a one-point trace drawn with a marker: the next change redraws it as a line
  let hadValue = {};
  const smoothing = () => userSmoothing ?? store.smoothing ?? model.get("spec").layout?.meta?.smoothing ?? defaultSmoothing(maxStep(store));
  slider.addEventListener("input", () => {
    userSmoothing = Number(slider.value);
    reset();
  });
  logBox.addEventListener("change", () => {
    logY = logBox.checked;
    if (drawn) run(() => Plotly.relayout(plot, { "yaxis.type": logY ? "log" : "linear" }));
  });

  let Plotly = null;
  let drawn = false;
  let shown = { train: 0, eval: 0, total: 0, seq: -1 }; // what the plot holds, for data-* attributes
  let queue = Promise.resolve();
  const run = (step) => {
    queue = queue.then(step).catch((error) => console.error("[unsloth_nb] chart update failed", error));
  };

  function describe() {
    const points = shown.train || shown.total; // a compare view has no "train" table, one per job
    root.dataset.points = String(points);
    root.dataset.evalPoints = String(shown.eval);
    root.dataset.seq = String(shown.seq);
    const silent = unanswered() && (!Plotly || store.seq === null);
    root.dataset.state = silent ? "no-kernel" : Plotly ? "ready" : "loading";
    const s = smoothing();
    slider.value = String(s);
    smoothValue.textContent = ` ${s.toFixed(3)}`;
    root.dataset.smoothing = String(s);
    const every = store.width.train || 1;
    if (silent) note.textContent = "The kernel does not answer (restarted or busy?): re-run the cell to redraw the chart.";
    else if (!Plotly) note.textContent = "Loading plotly.js from the kernel…";
    else if (!points) note.textContent = "Waiting for the first logged step…";
    else note.textContent = every > 1 ? `${points.toLocaleString()} points, each the mean of ${every} logged steps` : "";
  }

  // Data is taken when a change arrives, not when the queue gets to it, so a delta that
  // lands while a redraw waits is neither lost nor drawn twice.
  function reset() {
    if (!Plotly) return describe();
    const spec = model.get("spec");
    emaStates = {};
    const traces = plotTraces(spec, store, smoothing(), emaStates);
    marked = traces.some((trace, i) => trace.mode !== spec.traces[i].mode);
    hadValue = {};
    spec.traces.forEach(({ table, column }, i) => (hadValue[i] = hasValue((store.tables[table] || {})[column])));
    // Plotly keeps (and mutates) the layout it is given: hand it a copy, not the model's.
    const layout = structuredClone(spec.layout);
    layout.yaxis = { ...(layout.yaxis || {}), type: logY ? "log" : "linear" };
    if (maxStep(store) <= 10) layout.xaxis = { ...(layout.xaxis || {}), dtick: 1 }; // whole steps only
    const after = { train: store.points("train"), eval: store.points("eval"), total: totalPoints(store), seq: store.seq ?? -1 };
    drawn = true;
    run(async () => {
      await Plotly.react(plot, traces, layout, spec.config || {});
      shown = after;
      describe();
    });
  }

  function extend(added) {
    if (!drawn || marked || maxStep(store) <= 10) return reset();
    const spec = model.get("spec");
    // A trace getting its first value needs its legend entry: redraw once.
    const firstValue = spec.traces.some(({ table, column }, i) => !hadValue[i] && hasValue((added[table] || {})[column]));
    if (firstValue) return reset();
    const { update, indices } = traceExtension(spec, store, added, smoothing(), emaStates);
    const after = { train: store.points("train"), eval: store.points("eval"), total: totalPoints(store), seq: store.seq ?? -1 };
    run(async () => {
      if (indices.length) await Plotly.extendTraces(plot, update, indices);
      shown = after;
      describe();
    });
  }

  const resize = new ResizeObserver(() => {
    if (drawn && plot.offsetWidth) run(() => Plotly.Plots.resize(plot));
  });
  resize.observe(root);
  describe();
  whenPlotly((P) => {
    Plotly = P;
    reset();
  });

  return {
    reset,
    extend,
    describe,
    dispose() {
      resize.disconnect();
      if (Plotly) Plotly.purge(plot);
      root.remove();
    },
  };
}

/** Ask the kernel for what a view still lacks; repeat a few times (the kernel may be busy). */
function askUntilReady(model, store, done, giveUp) {
  let tries = 0;
  const ask = () => {
    const request = store.pendingRequest();
    if (request) model.send(request);
    const now = Date.now();
    if (!plotlyNow() && !PAGE.loading && now - PAGE.requestedAt >= PLOTLY_REQUEST_MS) {
      PAGE.requestedAt = now;
      model.send({ type: "plotly" });
    }
    if (store.seq !== null && plotlyNow()) return true;
    if (++tries < 8) return false;
    giveUp();
    return true;
  };
  // The kernel pushes a snapshot (and, for its first chart, plotly.js) as it creates the
  // widget, so a fresh page needs nothing; wait a moment before asking.
  const timer = setInterval(() => {
    if (ask()) {
      clearInterval(timer);
      done();
    }
  }, RETRY_MS);
  return () => clearInterval(timer);
}

export default () => {
  // One closure per model: anywidget calls this factory for each widget instance.
  const store = createStore();
  const views = new Set();
  let stopAsking = null;
  let unanswered = false;

  return {
    initialize({ model }) {
      const onMessage = (msg, buffers) => {
        if (msg.type === "plotly") {
          if (buffers && buffers.length) loadPlotly(buffers[0]);
          return;
        }
        const result = store.apply(msg);
        if (result.request && views.size) model.send(result.request);
        if (result.kind === "reset") views.forEach((v) => v.reset());
        else if (result.kind === "extend") views.forEach((v) => v.extend(result.added));
      };
      model.on("msg:custom", onMessage);
      return () => {
        if (stopAsking) stopAsking();
        model.off("msg:custom", onMessage);
      };
    },
    render({ model, el }) {
      // A reloaded page re-creates every live widget model; only charts on screen ask for data.
      if (!stopAsking) {
        unanswered = false;
        const giveUp = () => {
          unanswered = true;
          views.forEach((v) => v.describe());
        };
        stopAsking = askUntilReady(model, store, () => (stopAsking = null), giveUp);
      }
      const view = createView(el, model, store, () => unanswered);
      views.add(view);
      return () => {
        views.delete(view);
        view.dispose();
      };
    },
  };
};
