/* riskgate review queue: lists the open cases (GET /v1/review/cases, oldest first), shows one with its
 * reasons and its account's history (GET /v1/review/cases/{id}), claims and resolves it (POST .../claim,
 * .../resolve), with the admin key kept in sessionStorage (shared with the dashboard). Plain JS, no build.
 *
 * For tests, `window.riskgateQueue` exposes the state: the cases listed (`cases`), the case shown
 * (`selected`), the errors shown (`errors`) and how many loads and actions have finished (`loads`);
 * `document.body.dataset.state` is "locked", "loading", "ready" or "error".
 */
(function () {
  "use strict";

  const { api: call, key: apiKey } = window.riskgateApi;
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  const state = { cases: [], selected: null, errors: [], loads: 0, next: null, lists: null };
  window.riskgateQueue = state;

  // -- API ------------------------------------------------------------------------------------------------

  const api = (path, params, body) => call(path, { params, body });

  // -- formatting -----------------------------------------------------------------------------------------

  const dash = (v) => (v == null || v === "" ? "–" : String(v));
  const value = (v) => (v == null ? "–" : String(Number(v.toPrecision(4))));
  const prob = (v) => (v == null ? "–" : v < 0.01 ? v.toFixed(4) : v.toFixed(3));
  const money = (v, currency) => (v == null ? "–" : v.toFixed(2) + (currency ? " " + currency : ""));
  const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 16) + " UTC" : "–");
  const short = (iso) => (iso ? iso.replace("T", " ").slice(5, 16) : "–");  // in tables: MM-DD hh:mm (UTC)
  function age(iso) {
    const minutes = Math.max(0, (Date.now() - Date.parse(iso)) / 60000);
    if (minutes < 60) return Math.floor(minutes) + " min";
    if (minutes < 48 * 60) return (minutes / 60).toFixed(1) + " h";
    return (minutes / 1440).toFixed(1) + " d";
  }

  function make(tag, cls, content) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (content != null) el.textContent = content;
    return el;
  }
  function row(cells) {
    const tr = make("tr");
    cells.forEach((cell) => tr.append(make("td", null, cell)));
    return tr;
  }

  // -- errors ---------------------------------------------------------------------------------------------

  function showError(error) {
    state.errors.push(error.message);
    const line = make("div", "banner error");
    line.append(make("strong", null, error.status === 401 || error.status === 403 ? "Key refused. " : "Error. "));
    line.append(document.createTextNode(error.message));
    $("errors").append(line);
    $("errors").hidden = false;
  }
  function clearErrors() {
    state.errors = [];
    $("errors").replaceChildren();
    $("errors").hidden = true;
  }

  // -- the key --------------------------------------------------------------------------------------------

  function setupKey() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) { $("api-key").focus(); return; }
      apiKey.set(key);
      $("api-key").value = "";
      unlock();
    });
    $("key-forget").addEventListener("click", () => { apiKey.forget(); lock(); });
  }
  function lock() {
    document.body.dataset.state = "locked";
    $("main").hidden = true;
    $("welcome").hidden = false;
    $("key-forget").hidden = true;
    ["api-key", "key-use", "key-label"].forEach((id) => { $(id).hidden = false; });
  }
  function unlock() {
    $("welcome").hidden = true;
    $("main").hidden = false;
    $("key-forget").hidden = false;
    ["api-key", "key-use", "key-label"].forEach((id) => { $(id).hidden = true; });
    run(() => loadCases(false));
  }

  // -- loading and acting ---------------------------------------------------------------------------------

  async function run(work) {
    document.body.dataset.state = "loading";
    clearErrors();
    try {
      await work();
      document.body.dataset.state = "ready";
    } catch (error) {
      showError(error);
      if (error.status === 401 || error.status === 403) { lock(); document.body.dataset.state = "error"; }
      else document.body.dataset.state = "error";
    }
    state.loads += 1;
  }

  function filters() {
    const params = { status: $("status").value, limit: PAGE };
    if ($("rule").value.trim()) params.rule = $("rule").value.trim();
    if ($("level").value) params.fraud_level = $("level").value;
    if ($("min-amount").value) params.min_amount = $("min-amount").value;
    if ($("max-amount").value) params.max_amount = $("max-amount").value;
    return params;
  }

  async function loadCases(more) {
    const params = filters();
    if (more && state.next) params.after = state.next;
    const page = await api("/v1/review/cases", params);
    state.cases = more ? state.cases.concat(page.cases) : page.cases;
    state.next = page.next_after;
    renderCases();  // the case shown stays shown (just resolved, it has left the open ones)
  }

  async function openCase(caseId) {
    state.selected = await api("/v1/review/cases/" + encodeURIComponent(caseId), { history: 20 });
    renderDetail();
    renderCases();
  }

  async function claim() {
    const id = state.selected.case.case_id;
    await api("/v1/review/cases/" + encodeURIComponent(id) + "/claim", null, {});
    await openCase(id);
    await loadCases(false);
  }

  async function resolve() {
    const id = state.selected.case.case_id;
    const body = { outcome: $("outcome").value, note: $("note").value };
    if (body.outcome === "fraud" && $("block-list").value) body.block_list = $("block-list").value;
    await api("/v1/review/cases/" + encodeURIComponent(id) + "/resolve", null, body);
    $("note").value = "";
    await openCase(id);
    await loadCases(false);
  }

  async function loadBlockLists() {
    const fields = state.selected ? state.selected.case.block_fields : [];
    const select = $("block-list");
    select.replaceChildren(make("option", null, "none"));
    select.firstChild.value = "";
    if (state.lists == null) {
      try { state.lists = (await api("/v1/lists")).lists; } catch (error) { state.lists = []; }
    }
    state.lists.filter((l) => fields.includes(l.field)).forEach((l) => {
      const option = make("option", null, l.name + " (" + l.field + ")");
      option.value = l.name;
      select.append(option);
    });
    $("block-label").hidden = $("outcome").value !== "fraud" || select.options.length < 2;
  }

  // -- rendering ------------------------------------------------------------------------------------------

  function renderCases() {
    const body = $("cases").tBodies[0];
    body.replaceChildren();
    state.cases.forEach((c) => {
      const claimed = c.claim && Date.parse(c.claim.until) > Date.now() ? c.claim.claimed_by : "";
      const tr = row([short(c.opened_at), age(c.opened_at), c.case_id, dash(c.kind), money(c.amount, c.currency),
        c.rule, dash(c.fraud_level), prob(c.fraud_probability), dash(claimed)]);
      tr.dataset.case = c.case_id;
      if (state.selected && state.selected.case.case_id === c.case_id) tr.classList.add("selected");
      tr.addEventListener("click", () => run(() => openCase(c.case_id)));
      body.append(tr);
    });
    $("empty").hidden = state.cases.length > 0;
    $("more").hidden = !state.next;
    $("count").textContent = state.cases.length + (state.next ? "+" : "") + " case(s), oldest first";
  }

  function renderDetail() {
    const { case: c, history } = state.selected;
    $("detail").hidden = false;
    $("d-title").textContent = "Case " + c.case_id + " · " + c.status;
    $("d-summary").textContent = `${dash(c.kind)} of ${money(c.amount, c.currency)} at ${when(c.occurred_at)}; ` +
      `${c.decided_by} ${c.rule} decided review (fraud ${prob(c.fraud_probability)}, ${dash(c.fraud_level)}); ` +
      `opened ${age(c.opened_at)} ago; account ${dash(c.account)}`;
    const holder = c.claim && Date.parse(c.claim.until) > Date.now() ? c.claim : null;
    $("d-claim").textContent = c.status !== "open" ? "" :
      holder ? `Claimed by ${holder.claimed_by} until ${when(holder.until)}` : "Not claimed";
    const reasons = $("d-reasons").tBodies[0];
    reasons.replaceChildren();
    c.fraud_reasons.forEach((r) => {
      const tr = row([r.feature, value(r.value), (r.contribution > 0 ? "+" : "") + r.contribution.toFixed(3)]);
      tr.cells[2].className = r.contribution > 0 ? "positive" : "negative";
      reasons.append(tr);
    });
    const past = $("d-history").tBodies[0];
    past.replaceChildren();
    history.forEach((h) => past.append(row([short(h.occurred_at), h.attempt_id, dash(h.kind),
      money(h.amount, h.currency), h.action, h.rule, dash(h.status) + (h.decline_code ? " (" + h.decline_code + ")" : ""),
      h.fraud_reported ? "yes" : ""])));
    const open = c.status === "open";
    $("d-actions").hidden = !open;
    const made = c.resolution;
    $("d-resolution").textContent = made ? `Resolved ${made.outcome} by ${made.resolved_by} at ${when(made.resolved_at)}` +
      (made.note ? ": " + made.note : "") : "";
    if (open) loadBlockLists();
  }

  // -- start ----------------------------------------------------------------------------------------------

  function setup() {
    setupKey();
    $("refresh").addEventListener("click", () => run(() => loadCases(false)));
    $("more").addEventListener("click", () => run(() => loadCases(true)));
    $("status").addEventListener("change", () => run(() => loadCases(false)));
    $("level").addEventListener("change", () => run(() => loadCases(false)));
    $("claim").addEventListener("click", () => run(claim));
    $("outcome").addEventListener("change", () => loadBlockLists());
    $("resolve-form").addEventListener("submit", (event) => { event.preventDefault(); run(resolve); });
    if (apiKey.get()) unlock(); else lock();
  }

  setup();
})();
