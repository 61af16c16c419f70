// The embedded console's live tail: new actions of the viewer's scope as they are recorded.
const MAX_ROWS = 200;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function row(action) {
  const tr = document.createElement("tr");
  tr.className = `status-${action.status}`;
  tr.dataset.id = action.id;
  const when = document.createElement("td");
  const link = document.createElement("a");
  link.href = `/ui/embed/actions/${encodeURIComponent(action.id)}`;
  link.textContent = (action.created_at || "").replace("T", " ").replace(/\.\d+Z?$|Z$/, "");
  when.appendChild(link);
  tr.append(cell(action.status), when, cell(action.action_type), cell(action.provider_name),
    cell(action.user_id));
  return tr;
}

const holder = document.getElementById("viewer-tail");
if (holder) {
  const body = holder.querySelector("tbody");
  const status = document.getElementById("viewer-tail-status");
  const source = new EventSource(holder.dataset.source);
  source.addEventListener("open", () => { status.textContent = "Live"; });
  source.addEventListener("action", (event) => {
    body.insertBefore(row(JSON.parse(event.data)), body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  });
  source.addEventListener("error", () => {
    status.textContent = source.readyState === EventSource.CLOSED
      ? "Disconnected: reload the page" : "Reconnecting…";
  });
}
