// pulse dashboard: keeps the windows the server pushes over /events and
// draws the selected symbol with uPlot. No build step, no framework.
"use strict";

(function () {
  const RIBBON = 60; // windows shown in the signal ribbon
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();

  // The selected symbol's rows sorted by start_ms, each as the server sent
  // it (a map, for pulseDashboard.rows). Other symbols' windows only add
  // their name to the picker: with hundreds of symbols, keeping every row
  // would cost the browser far more than the one symbol drawn.
  const bySymbol = new Map();
  const known = new Set(); // symbols with windows
  let configured = []; // symbols from the status, in the order given
  // The symbol asked for (the URL's #SYMBOL, or the picker) and the one
  // shown: they differ while the one asked for has no window yet.
  let wanted = fromHash();
  let selected = wanted;
  let historyLimit = Infinity;
  let state = "connecting";
  let pending = false; // a render is scheduled

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------ the feed --

  // One stream per selection: its snapshot brings that symbol's history.
  let events = null;
  function connect() {
    if (events) events.close();
    events = new EventSource("events?symbol=" + encodeURIComponent(selected || ""));
    events.onopen = () => setConn(state === "ended" ? "ended" : "live");
    // A finished or stopped pulse closes the stream: keep saying so.
    events.onerror = () => {
      if (state !== "ended" && state !== "stopped") setConn("disconnected");
    };
    events.addEventListener("snapshot", (e) => {
      const snap = JSON.parse(e.data);
      bySymbol.clear();
      for (const s of snap.symbols) known.add(s);
      if (snap.selected) selected = snap.selected;
      historyLimit = snap.history_limit;
      $("limit").textContent = snap.history_limit;
      for (const row of snap.windows) insert(row);
      applyStatus(snap.status);
      schedule();
    });
    events.addEventListener("window", (e) => {
      const row = JSON.parse(e.data);
      const fresh = !known.has(row.symbol);
      known.add(row.symbol);
      if (!selected) selected = row.symbol;
      if (row.symbol === selected) insert(row);
      if (row.symbol === selected || fresh) schedule();
    });
    events.addEventListener("status", (e) => {
      applyStatus(JSON.parse(e.data));
      schedule();
    });
  }
  connect();

  // Insert or replace by start: a snapshot may repeat rows already seen,
  // and a re-emitted window (higher version) replaces the first one.
  function insert(row) {
    let rows = bySymbol.get(row.symbol);
    if (!rows) bySymbol.set(row.symbol, (rows = []));
    let i = rows.length;
    while (i > 0 && rows[i - 1].start_ms > row.start_ms) i--;
    if (i > 0 && rows[i - 1].start_ms === row.start_ms) rows[i - 1] = row;
    else rows.splice(i, 0, row);
    if (rows.length > historyLimit) rows.splice(0, rows.length - historyLimit);
  }

  function applyStatus(status) {
    configured = status.symbols || [];
    state = status.state;
    $("source").textContent = status.source;
    if (state === "ended") {
      setConn("ended", `replay finished: ${status.trades} trades, ${status.windows} windows`);
    } else if (state === "stopped") {
      setConn("ended", "stopped");
    } else {
      setConn("live");
    }
  }

  function setConn(value, text) {
    document.body.dataset.state = value;
    $("conn").textContent =
      text || { live: "live", ended: "finished", disconnected: "reconnecting…", connecting: "connecting…" }[value];
  }

  // -------------------------------------------------------------- picker --

  const picker = $("symbol");
  picker.addEventListener("change", () => select(picker.value));
  window.addEventListener("hashchange", () => select(fromHash()));

  function fromHash() {
    return decodeURIComponent(location.hash.slice(1)).toUpperCase() || null;
  }

  function select(symbol) {
    wanted = selected = symbol;
    if (symbol) history.replaceState(null, "", "#" + encodeURIComponent(symbol));
    connect(); // the page redraws when the new snapshot arrives
  }

  function symbols() {
    const seen = [...known].filter((s) => !configured.includes(s)).sort();
    return [...configured, ...seen];
  }

  function renderPicker(list) {
    if (picker.options.length !== list.length || [...picker.options].some((o, i) => o.value !== list[i])) {
      picker.replaceChildren(...list.map((s) => new Option(s, s)));
    }
    // The one asked for, as soon as it is listed; meanwhile another.
    const next = wanted && list.includes(wanted) ? wanted : list.includes(selected) ? selected : null;
    if (next !== selected || !selected) {
      selected = next || list.find((s) => bySymbol.has(s)) || list[0] || null;
      // A symbol whose history this page has not loaded yet.
      if (selected && !bySymbol.has(selected) && known.has(selected)) connect();
    }
    // Once nothing new can come, the URL names what is shown.
    if (wanted && !list.includes(wanted) && (state === "ended" || state === "stopped") && selected) {
      wanted = selected;
      history.replaceState(null, "", "#" + encodeURIComponent(selected));
    }
    picker.value = selected || "";
    $("picker").hidden = list.length < 2;
  }

  // -------------------------------------------------------------- charts --

  const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
  const hms = (ts) => new Date(ts * 1e3).toISOString().slice(11, 19);

  // Green above zero, red below: a hard-stop gradient at the zero line.
  function signFill(u) {
    const { top, height } = u.bbox;
    if (!height) return color("--buy");
    const zero = Math.min(Math.max((u.valToPos(0, "y", true) - top) / height, 0), 1);
    const g = u.ctx.createLinearGradient(0, top, 0, top + height);
    g.addColorStop(0, color("--buy"));
    g.addColorStop(zero, color("--buy"));
    g.addColorStop(zero, color("--sell"));
    g.addColorStop(1, color("--sell"));
    return g;
  }

  const axis = (extra) => ({
    stroke: color("--muted"),
    grid: { stroke: color("--grid"), width: 1 },
    ticks: { stroke: color("--grid"), width: 1 },
    ...extra,
  });
  const bars = () => uPlot.paths.bars({ size: [0.8, 40] });

  function chart(id, series, scales, axes) {
    const el = $(id);
    const opts = {
      width: el.clientWidth || 600,
      height: 240,
      tzDate: utc,
      scales: { x: { time: true }, ...scales },
      series: [{ label: "UTC" }, ...series],
      axes: [axis({ values: (u, splits) => splits.map(hms) }), ...axes],
      cursor: { drag: { x: true, y: false } },
    };
    return new uPlot(opts, [[], ...series.map(() => [])], el);
  }

  const charts = {
    price: chart(
      "chart-price",
      [
        { label: "VWAP", stroke: color("--vwap"), width: 2 },
        { label: "Avg price", stroke: color("--price"), width: 1 },
      ],
      {},
      [axis({ size: 80 })],
    ),
    delta: chart(
      "chart-delta",
      [{ label: "Net delta", stroke: signFill, fill: signFill, paths: bars(), points: { show: false } }],
      // Symmetric around zero, so buying and selling look alike.
      { y: { range: (u, min, max) => { const m = Math.max(-min, max) * 1.1 || 1; return [-m, m]; } } },
      [axis({ size: 80 })],
    ),
    buy: chart(
      "chart-buy",
      [
        { label: "Buy %", stroke: color("--buy"), width: 1.5, fill: "rgba(34,197,94,0.12)" },
        { label: "50 %", stroke: color("--muted"), dash: [4, 4], width: 1, points: { show: false } },
      ],
      { y: { range: [0, 100] } },
      [axis({ size: 80 })],
    ),
    volume: chart(
      "chart-volume",
      [
        { label: "Volume", stroke: color("--price"), fill: "rgba(96,165,250,0.5)", paths: bars(), points: { show: false } },
        { label: "Trades", stroke: color("--vwap"), width: 1.5, scale: "n" },
      ],
      { y: { range: (u, min, max) => [0, max * 1.1 || 1] }, n: { range: (u, min, max) => [0, max * 1.1 || 1] } },
      [axis({ size: 80 }), axis({ scale: "n", side: 1, size: 60, grid: { show: false } })],
    ),
  };

  function columns(rows) {
    const n = rows.length;
    const cols = {
      t: new Array(n), vwap: new Array(n), avg: new Array(n), delta: new Array(n),
      buy: new Array(n), half: new Array(n), volume: new Array(n), trades: new Array(n),
    };
    rows.forEach((r, i) => {
      cols.t[i] = r.start_ms / 1000;
      cols.vwap[i] = r.vwap;
      cols.avg[i] = r.avg_price_1_sec;
      cols.delta[i] = r.net_delta;
      cols.buy[i] = r.buy_pressure_pct;
      cols.half[i] = 50;
      cols.volume[i] = r.total_volume;
      cols.trades[i] = r.trade_count;
    });
    return cols;
  }

  // ------------------------------------------------------------- numbers --

  const decimals = (p) => (Math.abs(p) >= 1000 ? 2 : Math.abs(p) >= 1 ? 4 : 6);
  const fixed = (v, d) => v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  const signed = (v, d) => (v > 0 ? "+" : "") + fixed(v, d);

  function renderLatest(rows) {
    const latest = $("latest");
    const last = rows[rows.length - 1];
    if (!last) return;
    const d = decimals(last.vwap);
    $("latest-symbol").textContent = last.symbol;
    const signal = $("signal");
    signal.textContent = last.signal;
    signal.dataset.signal = last.signal;
    $("stat-time").textContent = last.window_start.slice(11, 19);
    $("stat-vwap").textContent = fixed(last.vwap, d);
    $("stat-avg").textContent = fixed(last.avg_price_1_sec, d);
    $("stat-delta").textContent = signed(last.net_delta, 3);
    $("stat-buy").textContent = fixed(last.buy_pressure_pct, 1) + " %";
    $("stat-volume").textContent = fixed(last.total_volume, 3);
    $("stat-trades").textContent = String(last.trade_count);
    // Exact values for scripts and tests: JSON numbers round-trip as String().
    Object.assign(latest.dataset, {
      symbol: last.symbol,
      windowStart: last.window_start,
      startMs: String(last.start_ms),
      vwap: String(last.vwap),
      netDelta: String(last.net_delta),
      buyPressurePct: String(last.buy_pressure_pct),
      totalVolume: String(last.total_volume),
      tradeCount: String(last.trade_count),
      avgPrice: String(last.avg_price_1_sec),
      signal: last.signal,
    });
    const cells = rows.slice(-RIBBON).map((r) => {
      const cell = document.createElement("span");
      cell.className = "cell";
      cell.dataset.signal = r.signal;
      cell.title = `${r.window_start.slice(11, 19)} ${r.signal}`;
      return cell;
    });
    $("ribbon").replaceChildren(...cells);
  }

  // -------------------------------------------------------------- render --

  function schedule() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(render);
    }
  }

  function render() {
    pending = false;
    renderPicker(symbols());
    const rows = (selected && bySymbol.get(selected)) || [];
    const c = columns(rows);
    charts.price.setData([c.t, c.vwap, c.avg]);
    charts.delta.setData([c.t, c.delta]);
    charts.buy.setData([c.t, c.buy, c.half]);
    charts.volume.setData([c.t, c.volume, c.trades]);
    // Legends show the latest window unless the pointer is on a chart.
    for (const u of Object.values(charts)) {
      if (rows.length && !(u.cursor.left >= 0)) u.setLegend({ idx: rows.length - 1 });
    }
    renderLatest(rows);
    $("count").textContent = rows.length;
    document.body.dataset.windows = String(rows.length);
  }

  function resize() {
    for (const [name, u] of Object.entries(charts)) {
      const width = $("chart-" + name).clientWidth;
      if (width && width !== u.width) u.setSize({ width, height: 240 });
    }
  }
  new ResizeObserver(resize).observe(document.querySelector(".charts"));

  // For the browser console and tests: what is drawn, and what was received.
  window.pulseDashboard = { charts, rows: (symbol) => bySymbol.get(symbol) || [] };
})();
