// The console's only script (an ES module, loaded from this origin as the CSP requires).
// Pages work without it; with it, "Load more" appends rows in place, the statistics chart is
// drawn, range selectors apply on change, and print buttons print.

function loadMore(link) {
  const table = document.getElementById(link.dataset.table);
  if (!table) return;
  link.setAttribute("aria-busy", "true");
  fetch(link.dataset.more, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      if (response.redirected) { window.location.assign(response.url); return null; }
      return response.text();
    })
    .then((html) => {
      if (html === null) return;
      // DOMParser builds an inert document: nothing in it runs while rows are moved over.
      const fragment = new DOMParser().parseFromString(html, "text/html");
      const body = table.tBodies[0];
      for (const row of fragment.querySelectorAll("tbody > tr")) body.appendChild(row);
      const next = fragment.querySelector("a[data-next]");
      if (next) {
        link.dataset.more = next.getAttribute("href");
        link.setAttribute("href", next.dataset.page || next.getAttribute("href"));
        link.removeAttribute("aria-busy");
      } else {
        link.remove();
      }
    })
    .catch((error) => {
      link.removeAttribute("aria-busy");
      link.textContent = `Load more (failed: ${error.message}; retry)`;
    });
}

document.addEventListener("click", (event) => {
  const more = event.target.closest("a[data-more]");
  if (more) { event.preventDefault(); loadMore(more); return; }
  if (event.target.closest("[data-print]")) { event.preventDefault(); window.print(); }
});

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

function drawChart() {
  const holder = document.getElementById("chart");
  const source = document.getElementById("chart-data");
  if (!holder || !source || typeof window.uPlot !== "function") return;
  const data = JSON.parse(source.textContent);
  if (!data.x.length) return;
  // Stacked by status: each band is drawn from zero up to its cumulative total, the tallest
  // first, so the visible layers are successful (bottom), failed, then other statuses (top);
  // the legend shows each layer's own count.
  const layers = [data.successful, data.failed, data.other];
  const cumulative = layers.map((_, depth) =>
    data.x.map((_, i) => layers.slice(0, depth + 1).reduce((sum, layer) => sum + layer[i], 0)));
  const raw = [null, data.other, data.failed, data.successful];
  const legendValue = (u, value, seriesIndex, index) =>
    index == null ? "–" : String(raw[seriesIndex][index]);
  const options = {
    width: Math.max(320, holder.clientWidth),
    height: 260,
    // The console shows every time in UTC, the chart's axis too.
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    series: [
      {},
      { label: "other (running, warning, cancelled)", stroke: "#8a6d00", fill: "#f3dc8c", value: legendValue, points: { show: false } },
      { label: "failed", stroke: "#b3261e", fill: "#e8a19c", value: legendValue, points: { show: false } },
      { label: "successful", stroke: "#2e7d32", fill: "#a5d6a7", value: legendValue, points: { show: false } },
    ],
    axes: [{}, { label: "actions" }],
  };
  const plot = new window.uPlot(options, [data.x, cumulative[2], cumulative[1], cumulative[0]], holder);
  holder.dataset.drawn = "true";
  window.addEventListener("resize", () => plot.setSize({ width: Math.max(320, holder.clientWidth), height: 260 }));
}

if (document.readyState === "complete") drawChart();
else window.addEventListener("load", drawChart);

// Live tail: new actions from the service's stream (Server-Sent Events, same origin, the
// session cookie authenticates). Rows are built with textContent, never from markup. While
// paused, events are kept and counted ("N new"); resume shows them in order.
const ICONS = { success: "✅", failure: "❌", timeout: "❌", pending: "⏳", in_progress: "⏳",
  retry: "⏳", warning: "⚠️", cancelled: "🚫" };
const MAX_TAIL_ROWS = 500;

function duration(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text == null ? "" : String(text);
  return td;
}

function tailRow(action) {
  const tr = document.createElement("tr");
  tr.className = `status-${action.status}`;
  tr.dataset.id = action.id;
  const status = cell(`${ICONS[action.status] || "•"} ${action.status}`, "status");
  const when = document.createElement("td");
  const link = document.createElement("a");
  link.href = `/ui/actions/${encodeURIComponent(action.id)}`;
  link.textContent = (action.created_at || "").replace("T", " ").replace(/\.\d+Z?$|Z$/, "");
  when.appendChild(link);
  const type = document.createElement("td");
  const typeLink = document.createElement("a");
  typeLink.href = link.href;
  typeLink.className = "type";
  typeLink.textContent = action.action_type;
  type.appendChild(typeLink);
  const error = action.error_message
    ? `${action.error_type ? `${action.error_type}: ` : ""}${action.error_message}` : "";
  tr.append(status, when, type, cell(action.provider_name), cell(action.service),
    cell(action.source), cell(action.user_id), cell(duration(action.execution_time_ms), "num"),
    cell(error, "error"));
  return tr;
}

function startTail(holder) {
  const body = holder.querySelector("tbody");
  const empty = document.getElementById("tail-empty");
  const toggle = document.getElementById("tail-toggle");
  const status = document.getElementById("tail-status");
  const pendingBadge = document.getElementById("tail-pending");
  const pending = [];
  let paused = false;

  const show = (action) => {
    body.insertBefore(tailRow(action), body.firstChild);
    while (body.rows.length > MAX_TAIL_ROWS) body.deleteRow(body.rows.length - 1);
    if (empty) empty.hidden = true;
  };
  const updateBadge = () => {
    pendingBadge.hidden = pending.length === 0;
    pendingBadge.textContent = `${pending.length} new`;
  };
  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.dataset.state = paused ? "paused" : "live";
    if (!paused) { pending.splice(0).forEach(show); }
    updateBadge();
  });

  const source = new EventSource(holder.dataset.source);
  source.addEventListener("open", () => { status.textContent = "Live"; });
  source.addEventListener("action", (event) => {
    const action = JSON.parse(event.data);
    if (paused) { pending.push(action); updateBadge(); } else { show(action); }
  });
  source.addEventListener("error", () => {
    status.textContent = source.readyState === EventSource.CLOSED
      ? "Disconnected: reload the page" : "Reconnecting…";
  });
}

const tail = document.getElementById("tail");
if (tail) startTail(tail);
