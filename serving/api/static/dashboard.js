/* riskgate dashboard: reads GET /v1/status, /v1/trends and /v1/drift with the key kept in sessionStorage,
 * and draws them with uPlot. Plain JS, no build step. Times are UTC (buckets are UTC).
 *
 * For tests and the curious, `window.riskgate` exposes the state: the uPlot instances (`charts`), the last
 * answers (`trends`, `drift`, `status`), the errors shown (`errors`) and how many loads have finished (`loads`);
 * `document.body.dataset.state` is "locked" (no key), "loading", "ready" or "error".
 */
(function () {
  "use strict";

  const { api: call, key: apiKey } = window.riskgateApi;
  const DAY_SECONDS = 86400;
  const BUCKET_SECONDS = { hour: 3600, day: DAY_SECONDS, week: 7 * DAY_SECONDS };
  const ACTIONS = ["approve", "review", "block", "defer"];
  const COLORS = {
    approve: "#2e9d5b", review: "#e0a100", block: "#d6453d", defer: "#5b7bd5",
    mean: "#1f4e79", p50: "#4f8fd6", p90: "#e08a2c", p99: "#c0392b",
    predicted: "#4f5bd5", realised: "#d6453d", fraud: "#c0392b", failure: "#e08a2c",
  };
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"];
  const MAX_VOLUME_LINES = 8;

  const $ = (id) => document.getElementById(id);
  const state = { charts: {}, trends: null, drift: null, status: null, errors: [], anchorEnd: null, loads: 0 };
  window.riskgate = state;

  // -- API ------------------------------------------------------------------------------------------------

  const api = (path, params, accept) => call(path, { params, accept });

  // -- formatting -----------------------------------------------------------------------------------------

  const pct = (v, digits) => (v == null || !isFinite(v) ? "–" : (v * 100).toFixed(digits == null ? 1 : digits) + "%");
  const num = (v) => (v == null ? "–" : Number(v).toLocaleString("en-US"));
  const ms = (v) => (v == null ? "–" : (v < 10 ? v.toFixed(2) : v.toFixed(0)) + " ms");
  const prob = (v) => (v == null || !isFinite(v) ? "–" : v < 0.01 ? v.toFixed(4) : v.toFixed(3));
  const money = (v) => (v == null || !isFinite(v) ? "–" : Math.round(v).toLocaleString("en-US"));
  const isoDay = (date) => date.toISOString().slice(0, 10);
  const seconds = (iso) => Date.parse(iso) / 1000;

  function text(el, value) { el.textContent = value; return el; }
  function make(tag, cls, content) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (content != null) el.textContent = content;
    return el;
  }

  // -- errors and banners ---------------------------------------------------------------------------------

  function showError(error) {
    state.errors.push(error.message);
    const box = $("errors");
    const line = make("div", "banner error");
    line.append(make("strong", null, error.status === 401 || error.status === 403 ? "Key refused. " : "Error. "));
    line.append(document.createTextNode(error.message));
    box.append(line);
    box.hidden = false;
  }

  function clearErrors() {
    state.errors = [];
    $("errors").replaceChildren();
    $("errors").hidden = true;
  }

  function banner(id, message) {
    const el = $(id);
    el.hidden = !message;
    el.textContent = message || "";
  }

  // -- the key --------------------------------------------------------------------------------------------

  function setupKey() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) { $("api-key").focus(); return; }
      apiKey.set(key);
      $("api-key").value = "";
      state.anchorEnd = null;
      unlock();
    });
    $("key-forget").addEventListener("click", () => {
      apiKey.forget();
      lock();
    });
  }

  function lock() {
    document.body.dataset.state = "locked";
    $("main").hidden = true;
    $("welcome").hidden = false;
    $("key-forget").hidden = true;
    ["api-key", "key-use", "key-label"].forEach((id) => { $(id).hidden = false; });
    Object.values(state.charts).forEach((chart) => chart.destroy());
    state.charts = {};
  }

  function unlock() {
    $("welcome").hidden = true;
    $("main").hidden = false;
    $("key-forget").hidden = false;
    ["api-key", "key-use", "key-label"].forEach((id) => { $(id).hidden = true; });
    load(true);
  }

  // -- loading --------------------------------------------------------------------------------------------

  function rangeParams() {
    const choice = $("range").value;
    if (choice === "custom") {
      const params = {};
      if ($("start").value) params.start = $("start").value + "T00:00:00Z";
      if ($("end").value) params.end = new Date(Date.parse($("end").value + "T00:00:00Z") + DAY_SECONDS * 1000).toISOString();
      return params;
    }
    const end = new Date(state.anchorEnd * 1000);
    const start = new Date(end.getTime() - Number(choice) * DAY_SECONDS * 1000);
    return { start: start.toISOString(), end: end.toISOString() };
  }

  function trendParams() {
    return { ...rangeParams(), bucket: $("bucket").value, segment: $("segment").value };
  }

  async function anchorRange() {
    // The presets count back from the log's newest attempt: the service's default range ends just after it.
    const probe = await api("/v1/trends", { bucket: "week" });
    state.anchorEnd = (Date.parse(probe.end) + 1) / 1000;  // + 1 ms: Date keeps ms, the service sends µs
  }

  async function load(rediscover) {
    document.body.dataset.state = "loading";
    clearErrors();
    let failed = false;
    if ($("range").value !== "custom" && (rediscover === true || state.anchorEnd == null)) {
      try { await anchorRange(); } catch (error) { failed = true; showError(error); }
    }
    if (!failed) failed = !(await loadData());
    if (failed && isAuthFailure()) lockAfterRefusal();
    else document.body.dataset.state = failed ? "error" : "ready";
    state.loads += 1;
  }

  async function loadData() {
    const params = trendParams();
    const [status, trends] = await Promise.allSettled([api("/v1/status"), api("/v1/trends", params)]);
    let ok = true;
    if (status.status === "fulfilled") { state.status = status.value; renderStatus(status.value); }
    else { ok = false; showError(status.reason); }
    if (trends.status === "fulfilled") {
      state.trends = trends.value;
      if ($("range").value !== "custom") syncRangeInputs(trends.value);
      renderTrends(trends.value);
    } else { ok = false; showError(trends.reason); }
    const drift = await api("/v1/drift", driftParams(trends.status === "fulfilled" ? trends.value : params))
      .then((value) => ({ value }), (error) => ({ error }));
    if (drift.error) { ok = false; showError(drift.error); } else { state.drift = drift.value; renderDrift(drift.value); }
    return ok;
  }

  function driftParams(range) {
    const params = {};
    if (range.start) params.start = range.start;
    if (range.end) params.end = range.end;
    return params;
  }

  function isAuthFailure() {
    return state.errors.some((message) => / HTTP 40[13]/.test(message));
  }

  function lockAfterRefusal() {
    apiKey.forget();
    const messages = [...state.errors];
    lock();
    state.errors = messages;
    document.body.dataset.state = "error";
  }

  function syncRangeInputs(trends) {
    $("start").value = trends.start ? isoDay(new Date(trends.start)) : "";
    $("end").value = trends.end ? isoDay(new Date(Date.parse(trends.end) - 1000)) : "";
  }

  async function downloadCsv() {
    try {
      const csv = await api("/v1/trends", { ...trendParams(), format: "csv" }, "text/csv");
      const link = make("a");
      link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      link.download = `riskgate-trends-${$("bucket").value}-${$("segment").value}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (error) {
      showError(error);
    }
  }

  // -- status ---------------------------------------------------------------------------------------------

  function modelLabel(model) {
    if (!model || !model.name) return "none — fallback rules";
    const cached = model.source === "cache" ? " (local copy)" : "";
    return `${model.name} v${model.version}${cached}`;
  }

  function renderStatus(status) {
    const byTask = Object.fromEntries(status.models.map((m) => [m.task, m]));
    text($("st-fraud"), modelLabel(byTask.fraud));
    text($("st-failure"), modelLabel(byTask.failure));
    text($("st-features"), status.feature_hash.slice(0, 12));
    $("st-features").title = status.feature_hash;
    text($("st-decisions"), num(status.decisions_logged));
    const l = status.scoring_latency;
    text($("st-latency"), l.count ? `${ms(l.p50_ms)} / ${ms(l.p90_ms)} / ${ms(l.p99_ms)}` : "no attempt scored yet");
    const route = status.route_latency.find((r) => r.route === "/v1/score");
    text($("st-route-latency"), route && route.count ? `${ms(route.p50_ms)} / ${ms(route.p90_ms)} / ${ms(route.p99_ms)}` : "no request yet");
    listAttributeSegments(status.attribute_segments || []);
    const missing = status.models.filter((m) => !m.name).map((m) => m.task);
    banner("fallback", missing.length ? `No ${missing.join(" or ")} model is loaded: the service answers with its ` +
      "documented fallback decisions until a champion is registered (riskgate train, then riskgate promote)." : "");
  }

  function listAttributeSegments(segments) {
    // The served feature set's category attributes join the segment picker, in a group of their own, once.
    const picker = $("segment");
    if (!segments.length || picker.querySelector("optgroup[data-attributes]")) return;
    const group = make("optgroup");
    group.label = "provider fields";
    group.dataset.attributes = "true";
    segments.forEach((segment) => {
      const option = make("option", null, segment.name.replace(/_/g, " "));
      option.value = segment.name;
      if (segment.doc) option.title = segment.doc;
      group.append(option);
    });
    picker.append(group);
  }

  // -- trends ---------------------------------------------------------------------------------------------

  function seriesTotal(series) {
    return series.points.reduce((sum, p) => sum + p.attempts, 0);
  }

  function sortedSeries(trends) {
    return [...trends.series].sort((a, b) => seriesTotal(b) - seriesTotal(a));
  }

  function segmentLabel(value) {
    return value == null ? "all attempts" : value === "" ? "(none)" : String(value);
  }

  function renderValuePicker(trends, ordered) {
    const picker = $("segment-value");
    const previous = picker.value;
    picker.replaceChildren();
    $("value-picker").hidden = trends.segment == null;
    if (trends.segment == null) return;
    ordered.forEach((series) => {
      const option = make("option", null, `${segmentLabel(series.segment_value)} (${num(seriesTotal(series))})`);
      option.value = JSON.stringify(series.segment_value);
      picker.append(option);
    });
    if ([...picker.options].some((o) => o.value === previous)) picker.value = previous;
  }

  function chosenSeries(trends, ordered) {
    if (trends.segment == null) return ordered[0];
    const value = $("segment-value").value;
    return ordered.find((s) => JSON.stringify(s.segment_value) === value) || ordered[0];
  }

  function renderTrends(trends) {
    const ordered = sortedSeries(trends);
    renderValuePicker(trends, ordered);
    const from = new Date(trends.start).toISOString().slice(0, 16).replace("T", " ");
    const to = new Date(trends.end).toISOString().slice(0, 16).replace("T", " ");
    text($("range-note"), `${from} → ${to} UTC, by ${trends.bucket}`);
    const total = ordered.reduce((sum, s) => sum + seriesTotal(s), 0);
    if (!total) {
      banner("empty", "No decision is logged in this range. Score attempts through POST /v1/score, or replay " +
        "history with `riskgate backtest` and serve its state directory (see the README), then refresh.");
      $("charts").hidden = true;
      $("kpis").hidden = true;
      Object.values(state.charts).forEach((chart) => chart.destroy());
      state.charts = {};
      return;
    }
    banner("empty", "");
    $("charts").hidden = false;
    $("kpis").hidden = false;
    const series = chosenSeries(trends, ordered);
    renderKpis(series, trends);
    drawCharts(trends, ordered, series);
    text($("maturity-note"), `Labels count as mature ${trends.fraud_maturity_days} days after the attempt; ` +
      `the log's newest outcome or report is from ${trends.as_of ? trends.as_of.replace("T", " ").slice(0, 16) + " UTC" : "–"}.`);
    const notes = new Set(series.points.map((p) => p.money_at_risk && p.money_at_risk.currency_note).filter(Boolean));
    text($("currency-note"), [...notes].join(" "));
  }

  function sum(points, pick) {
    return points.reduce((total, p) => total + (pick(p) || 0), 0);
  }

  function weighted(points, pick, weight) {
    let total = 0, weights = 0;
    points.forEach((p) => {
      const value = pick(p), w = weight(p);
      if (value != null && isFinite(value) && w) { total += value * w; weights += w; }
    });
    return weights ? total / weights : null;
  }

  function renderKpis(series, trends) {
    const points = series.points;
    const attempts = sum(points, (p) => p.attempts);
    const share = (action) => (attempts ? sum(points, (p) => p.actions[action]) / attempts : null);
    const withOutcome = sum(points, (p) => p.failure.with_outcome);
    const mature = points.filter((p) => p.fraud.realised_rate != null);
    const kpis = [
      ["Attempts", num(attempts), segmentLabel(series.segment_value)],
      ["Approved", pct(share("approve")), "of attempts"],
      ["Review", pct(share("review"), 2), "of attempts"],
      ["Blocked", pct(share("block"), 2), "of attempts"],
      ["Deferred", pct(share("defer"), 2), "of attempts"],
      ["Decline rate", pct(weighted(points, (p) => p.failure.realised_rate, (p) => p.failure.with_outcome)),
        `realised, ${num(withOutcome)} outcomes · predicted ${pct(weighted(points, (p) => p.failure.predicted_rate, (p) => p.failure.with_outcome))}`],
      mature.length
        ? ["Fraud rate", pct(weighted(mature, (p) => p.fraud.realised_rate, (p) => p.attempts * p.fraud.mature_share), 2),
          `reported, mature labels · predicted ${pct(weighted(mature, (p) => p.fraud.predicted_rate, (p) => p.attempts * p.fraud.mature_share), 2)}`]
        : ["Fraud rate", "pending", `no label is mature yet (${trends.fraud_maturity_days} days) · predicted ` +
          pct(weighted(points, (p) => p.fraud.mean, (p) => p.attempts), 2)],
    ];
    $("kpis").replaceChildren(...kpis.map(([label, value, note]) => {
      const card = make("div", "kpi");
      card.append(make("span", "kpi-label", label), make("span", "kpi-value", value), make("span", "kpi-note", note));
      return card;
    }));
  }

  // -- charts ---------------------------------------------------------------------------------------------

  function chartWidth(el) {
    return Math.max(320, Math.floor(el.getBoundingClientRect().width));
  }

  function timeAxis() {
    return { stroke: "#55606e", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#dde1e6" } };
  }

  function decade(v) {
    // The stretched (asinh) probability axis: label only 0.001, 0.01, 0.1 and 1, so labels never crowd near 0.
    const exponent = v > 0 ? Math.log10(v) : NaN;
    return v >= 0.001 && Math.abs(exponent - Math.round(exponent)) < 1e-9 ? String(Number(v.toPrecision(1))) : "";
  }

  function valueAxis(format, label) {
    return {
      stroke: "#55606e", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#dde1e6" }, size: 62, label,
      labelSize: label ? 18 : 0,
      values: (u, values) => values.map(format),
    };
  }

  function line(label, color, extra) {
    return { label, stroke: color, width: 2, spanGaps: false, points: { show: false }, ...extra };
  }

  function immatureShading(points) {
    // Shade the buckets whose fraud labels are not yet mature (drawn under the series).
    return (u) => {
      const { ctx } = u;
      const top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      ctx.fillStyle = "rgba(128, 128, 140, 0.16)";
      points.forEach((p, i) => {
        if (p.fraud.mature) return;
        const x0 = seconds(p.bucket_start);
        const x1 = i + 1 < points.length ? seconds(points[i + 1].bucket_start) : x0 + BUCKET_SECONDS[state.trends.bucket];
        const left = u.valToPos(x0, "x", true), right = u.valToPos(x1, "x", true);
        ctx.fillRect(left, top, Math.max(1, right - left), height);
      });
      ctx.restore();
    };
  }

  function chartSpec(id, series, data, axes, hooks, yScale, xPad) {
    return { id, series, data, axes, hooks, yScale, xPad };
  }

  function mainCurrency(points) {
    const priced = points.find((p) => p.money_at_risk && p.money_at_risk.currency);
    return priced ? priced.money_at_risk.currency : null;
  }

  function buildSpecs(trends, ordered, chosen) {
    const xs = chosen.points.map((p) => seconds(p.bucket_start));
    const pts = chosen.points;
    const share = (p, a) => (p.attempts ? p.actions[a] / p.attempts : null);
    const specs = [];

    const volumeSeries = trends.segment == null ? [chosen] : ordered.slice(0, MAX_VOLUME_LINES);
    const volumeXs = [...new Set(volumeSeries.flatMap((s) => s.points.map((p) => seconds(p.bucket_start))))].sort((a, b) => a - b);
    const volumeData = [volumeXs, ...volumeSeries.map((s) => {
      const byX = new Map(s.points.map((p) => [seconds(p.bucket_start), p.attempts]));
      return volumeXs.map((x) => (byX.has(x) ? byX.get(x) : 0));
    })];
    const bars = trends.segment == null && uPlot.paths && uPlot.paths.bars ? { paths: uPlot.paths.bars({ size: [0.7, 60] }), fill: "rgba(31, 78, 121, 0.55)" } : {};
    specs.push(chartSpec("chart-volume",
      volumeSeries.map((s, i) => line(segmentLabel(s.segment_value), trends.segment == null ? COLORS.mean : PALETTE[i % PALETTE.length], bars)),
      volumeData, valueAxis((v) => num(v), "attempts"), null, null, trends.segment == null ? BUCKET_SECONDS[trends.bucket] / 2 : 0));

    specs.push(chartSpec("chart-actions",
      ACTIONS.map((a) => line(a, COLORS[a], a === "approve" ? { show: false } : {})),
      [xs, ...ACTIONS.map((a) => pts.map((p) => share(p, a)))], valueAxis((v) => pct(v, v < 0.1 ? 1 : 0), "share")));

    for (const task of ["fraud", "failure"]) {
      specs.push(chartSpec(`chart-${task}-scores`,
        ["mean", "p50", "p90", "p99"].map((q) => line(q, COLORS[q], q === "mean" ? { width: 2.5 } : { width: 1.5 })),
        [xs, ...["mean", "p50", "p90", "p99"].map((q) => pts.map((p) => p[task][q]))], { ...valueAxis(decade, "probability"), filter: (u, splits) => splits.map((v) => (v < 0 ? null : v)) },
        null, { distr: 4, asinh: 0.001, auto: false, range: [0, 1] }));
    }

    // Mature buckets: predicted and reported over the same (mature) attempts, solid. Buckets whose labels are
    // still arriving: the model's mean over all their attempts, and what has been reported so far, dashed.
    const mature = (i) => pts[i].fraud.mature;
    const solid = (pick) => pts.map((p, i) => (mature(i) ? pick(p) : null));
    const pending = (pick, joinPick) => pts.map((p, i) =>
      (!mature(i) ? pick(p) : pts[i + 1] && !mature(i + 1) ? joinPick(p) : null));
    const dashed = { dash: [4, 4], width: 1.5 };
    specs.push(chartSpec("chart-fraud-rates",
      [line("predicted", COLORS.predicted), line("reported", COLORS.realised),
        line("predicted, labels pending", COLORS.predicted, dashed), line("reported so far", COLORS.realised, dashed)],
      [xs, solid((p) => p.fraud.predicted_rate), solid((p) => p.fraud.realised_rate),
        pending((p) => p.fraud.mean, (p) => p.fraud.predicted_rate),
        pending((p) => p.fraud.realised_rate, (p) => p.fraud.realised_rate)],
      valueAxis((v) => pct(v, v < 0.1 ? 2 : 0), "rate"), { drawClear: [immatureShading(pts)] }));

    specs.push(chartSpec("chart-failure-rates",
      [line("predicted", COLORS.predicted), line("realised", COLORS.realised)],
      [xs, pts.map((p) => (p.failure.with_outcome ? p.failure.predicted_rate : null)), pts.map((p) => p.failure.realised_rate)],
      valueAxis((v) => pct(v, 0), "rate")));

    specs.push(chartSpec("chart-money",
      [line("fraud", COLORS.fraud), line("failure", COLORS.failure)],
      [xs, pts.map((p) => (p.money_at_risk ? p.money_at_risk.fraud : null)), pts.map((p) => (p.money_at_risk ? p.money_at_risk.failure : null))],
      valueAxis(money, `amount${mainCurrency(pts) ? " (" + mainCurrency(pts) + ")" : ""}`)));
    return specs;
  }

  function xScale(pad) {
    // Bars are centred on their bucket: pad the time axis by half a bucket so the first and last are whole.
    return pad ? { time: true, range: (u, min, max) => [min - pad, max + pad] } : { time: true };
  }

  function drawCharts(trends, ordered, chosen) {
    Object.values(state.charts).forEach((chart) => chart.destroy());
    state.charts = {};
    const syncKey = uPlot.sync ? uPlot.sync("riskgate") : null;
    for (const spec of buildSpecs(trends, ordered, chosen)) {
      const el = $(spec.id);
      el.replaceChildren();
      const options = {
        width: chartWidth(el),
        height: 230,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        scales: { x: xScale(spec.xPad), y: spec.yScale || { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.08 : 1] } },
        series: [{ label: "bucket (UTC)" }, ...spec.series],
        axes: [timeAxis(), spec.axes],
        legend: { live: true },
        cursor: syncKey ? { sync: { key: syncKey.key } } : {},
        hooks: spec.hooks || {},
      };
      state.charts[spec.id] = new uPlot(options, spec.data, el);
    }
  }

  function resizeCharts() {
    Object.entries(state.charts).forEach(([id, chart]) => chart.setSize({ width: chartWidth($(id)), height: 230 }));
  }

  // -- drift ----------------------------------------------------------------------------------------------

  function renderDrift(drift) {
    const box = $("drift");
    box.replaceChildren();
    if (!drift.models || !drift.models.length) {
      box.append(make("p", "muted", "No drift to show: drift compares the range with the reference distributions " +
        "saved with the served models, and no model is loaded (fallback)."));
      return;
    }
    const grid = make("div", "drift-grid");
    drift.models.forEach((model) => grid.append(driftTable(model)));
    box.append(grid);
  }

  function driftTable(model) {
    const wrapper = make("div", "drift-model");
    wrapper.append(make("h3", null, `${model.task} · ${model.model || "no model"}`),
      make("p", "muted", `reference: ${model.reference_window}`));
    if (!model.model) {
      wrapper.append(make("p", "muted", "No model is loaded for this task (fallback): there is no reference to compare with."));
      return wrapper;
    }
    if (!model.rows.length) {
      wrapper.append(make("p", "muted", "No reference distribution was saved with this model."));
      return wrapper;
    }
    const table = make("table", "drift-table");
    const head = make("tr");
    ["", "PSI", "band", "attempts"].forEach((h) => head.append(make("th", null, h)));
    const thead = make("thead");
    thead.append(head);
    table.append(thead);
    const body = make("tbody");
    const rows = [...model.rows].sort((a, b) => (a.kind === "score" ? -1 : b.kind === "score" ? 1 : (b.psi ?? -1) - (a.psi ?? -1)));
    rows.forEach((row) => {
      const tr = make("tr", `band-row-${row.band}`);
      tr.append(make("td", row.kind === "score" ? "name score" : "name", row.kind === "score" ? `${model.task} score` : row.name),
        make("td", "num", row.psi == null ? "–" : row.psi.toFixed(3)));
      const band = make("td");
      band.append(make("span", `band band-${row.band}`, row.band.replace("_", " ")));
      tr.append(band, make("td", "num", num(row.n)));
      body.append(tr);
    });
    table.append(body);
    wrapper.append(table);
    return wrapper;
  }

  // -- start ----------------------------------------------------------------------------------------------

  function setupControls() {
    $("range").addEventListener("change", () => {
      $("custom-range").hidden = $("range").value !== "custom";
      if ($("range").value !== "custom") load(false);
    });
    ["start", "end", "bucket", "segment"].forEach((id) => $(id).addEventListener("change", () => load(false)));
    $("segment-value").addEventListener("change", () => state.trends && renderTrends(state.trends));
    $("refresh").addEventListener("click", () => load(true));
    $("csv").addEventListener("click", downloadCsv);
    let pending = null;
    window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(resizeCharts, 150); });
  }

  setupKey();
  setupControls();
  if (apiKey.get()) unlock(); else lock();
})();
