// The inbox's web UI: plain DOM, no framework, no build step. Everything a message says is put
// on the page as text (textContent), never as markup; its HTML part only ever runs inside a
// sandboxed iframe without scripts, served with a Content-Security-Policy.

const PAGE_SIZE = 50;
const $ = (id) => document.getElementById(id);

const state = {
  query: "",
  start: 0,
  total: 0,
  matched: 0,
  selected: null,
  tab: "html",
  remoteImages: false,
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addressText(address) {
  if (!address) return "";
  return address.Name ? `${address.Name} <${address.Address}>` : address.Address;
}

function shortDate(iso) {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? date.toLocaleTimeString()
    : date.toLocaleDateString();
}

async function getJson(path, init) {
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function loadList() {
  const params = new URLSearchParams({ start: String(state.start), limit: String(PAGE_SIZE) });
  let path = "/api/v1/messages";
  if (state.query) {
    params.set("query", state.query);
    path = "/api/v1/search";
  }
  const listing = await getJson(`${path}?${params}`);
  state.total = listing.total;
  state.matched = listing.messages_count;
  renderList(listing.messages);
  $("counts").textContent = state.query
    ? `${listing.messages_count} of ${listing.total} match`
    : `${listing.total} message${listing.total === 1 ? "" : "s"}, ${listing.unread} unread`;
  const last = Math.min(state.start + listing.count, state.matched);
  $("page").textContent =
    state.matched === 0 ? "" : `${state.start + 1}–${last} of ${state.matched}`;
  $("newer").disabled = state.start === 0;
  $("older").disabled = last >= state.matched;
}

function renderList(messages) {
  const list = $("messages");
  list.replaceChildren(
    ...messages.map((message) => {
      const item = element("li");
      item.dataset.id = message.ID;
      if (!message.Read) item.classList.add("unread");
      if (message.ID === state.selected) item.classList.add("selected");
      const top = element("div", "line");
      top.append(
        element("span", "from", addressText(message.From) || message.MailFrom || "(no sender)"),
        element("span", "date", shortDate(message.Created)),
      );
      const subject = element("div", "subject", message.Subject || "(no subject)");
      const tags = element("div", "tags");
      for (const tag of message.Tags) tags.append(element("span", "tag", tag));
      item.append(top, subject, element("div", "snippet", message.Snippet), tags);
      item.addEventListener("click", () => openMessage(message.ID));
      return item;
    }),
  );
  if (messages.length === 0)
    list.append(element("li", "hint", state.query ? "No match." : "No messages yet."));
}

function showTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("[role=tab]"))
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  for (const name of ["html", "text", "headers", "raw", "attachments"])
    $(`panel-${name}`).hidden = name !== tab;
  if (tab === "raw" && state.selected) loadRaw(state.selected);
  if (tab === "headers" && state.selected) loadHeaders(state.selected);
}

function htmlSource(id) {
  return `/api/v1/message/${encodeURIComponent(id)}/html${state.remoteImages ? "?remote=1" : ""}`;
}

async function openMessage(id) {
  state.selected = id;
  state.remoteImages = false;
  for (const item of $("messages").children)
    item.classList.toggle("selected", item.dataset.id === id);
  const message = await getJson(`/api/v1/message/${encodeURIComponent(id)}`);
  if (state.selected !== id) return;
  $("empty").hidden = true;
  $("view").hidden = false;
  $("view").dataset.id = id;
  $("view-subject").textContent = message.Subject || "(no subject)";
  const meta = $("view-meta");
  meta.replaceChildren();
  const row = (label, value) => {
    if (!value) return;
    meta.append(element("dt", "", label), element("dd", "", value));
  };
  row("From", addressText(message.From));
  row("To", message.To.map(addressText).join(", "));
  row("Cc", (message.Cc || []).map(addressText).join(", "));
  row("Envelope", `${message.MailFrom || "<>"} → ${message.RcptTo.join(", ")}`);
  row("Date", new Date(message.Date).toLocaleString());
  row("Size", `${message.Size} bytes`);
  row("Tags", message.Tags.join(", "));
  $("panel-text").textContent = message.Text || "(no text part)";
  const frame = $("html-frame");
  frame.src = message.HTML ? htmlSource(id) : "about:blank";
  $("remote-images").disabled = !message.HTML;
  $("remote-images").textContent = "Load remote images";
  $("download").href = `/api/v1/message/${encodeURIComponent(id)}/raw?download`;
  const attachments = $("panel-attachments");
  attachments.replaceChildren();
  for (const part of [...message.Attachments, ...message.Inline]) {
    const item = element("li");
    const link = element("a", "", part.FileName || `part ${part.PartID}`);
    link.href = `/api/v1/message/${encodeURIComponent(id)}/part/${encodeURIComponent(part.PartID)}`;
    item.append(link, ` ${part.ContentType}, ${part.Size} bytes`);
    attachments.append(item);
  }
  if (attachments.children.length === 0)
    attachments.append(element("li", "hint", "No attachments."));
  $("panel-raw").textContent = "";
  $("panel-headers").tBodies[0].replaceChildren();
  showTab(!message.HTML && state.tab === "html" ? "text" : state.tab);
  const item = [...$("messages").children].find((li) => li.dataset.id === id);
  item?.classList.remove("unread");
}

async function loadRaw(id) {
  const response = await fetch(`/api/v1/message/${encodeURIComponent(id)}/raw`);
  if (state.selected === id) $("panel-raw").textContent = await response.text();
}

async function loadHeaders(id) {
  const headers = await getJson(`/api/v1/message/${encodeURIComponent(id)}/headers`);
  if (state.selected !== id) return;
  const body = $("panel-headers").tBodies[0];
  body.replaceChildren();
  for (const [name, values] of Object.entries(headers))
    for (const value of values) {
      const tr = element("tr");
      tr.append(element("td", "", name), element("td", "", value));
      body.append(tr);
    }
}

async function deleteSelected() {
  const id = state.selected;
  if (!id) return;
  await fetch(`/api/v1/message/${encodeURIComponent(id)}`, { method: "DELETE" });
  closeView();
  await loadList();
}

function closeView() {
  state.selected = null;
  $("view").hidden = true;
  $("empty").hidden = false;
  $("html-frame").src = "about:blank";
}

async function loadFaults() {
  const rules = await getJson("/api/v1/faults");
  $("fault-count").textContent = rules.length ? `(${rules.length})` : "";
  $("faults").replaceChildren(
    ...rules.map((rule) => {
      const what = [
        rule.reply && `reply ${rule.reply}`,
        rule.delay && `delay ${rule.delay} ms`,
        rule.drop && "drop the connection",
      ].filter(Boolean);
      const times = rule.count === null ? "every time" : `${rule.count - rule.fired} more time(s)`;
      const who = rule.recipient ? ` for ${rule.recipient}` : "";
      return element(
        "li",
        "",
        `#${rule.id} at ${rule.stage}${who}, after ${rule.after}: ${what.join(", ")} (${times}; seen ${rule.seen})`,
      );
    }),
  );
  $("faults-panel").open ||= rules.length > 0;
}

function connectEvents() {
  const events = new EventSource("/api/v1/events");
  const live = $("live");
  events.addEventListener("hello", () => {
    live.className = "live on";
  });
  events.addEventListener("new", () => {
    loadList();
    loadFaults();
  });
  events.addEventListener("delete", (event) => {
    const { IDs } = JSON.parse(event.data);
    if (IDs === "all" || IDs.includes(state.selected)) closeView();
    loadList();
  });
  events.addEventListener("update", () => loadList());
  events.addEventListener("faults", () => loadFaults());
  events.onerror = () => {
    live.className = "live off";
  };
}

function start() {
  for (const button of document.querySelectorAll("[role=tab]"))
    button.addEventListener("click", () => showTab(button.dataset.tab));
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = $("search").value.trim();
    state.start = 0;
    loadList();
  });
  $("search").addEventListener("search", () => {
    state.query = $("search").value.trim();
    state.start = 0;
    loadList();
  });
  $("newer").addEventListener("click", () => {
    state.start = Math.max(0, state.start - PAGE_SIZE);
    loadList();
  });
  $("older").addEventListener("click", () => {
    state.start += PAGE_SIZE;
    loadList();
  });
  $("delete").addEventListener("click", deleteSelected);
  $("delete-all").addEventListener("click", async () => {
    if (!confirm("Delete every message?")) return;
    await fetch("/api/v1/messages", { method: "DELETE" });
    closeView();
    loadList();
  });
  $("remote-images").addEventListener("click", () => {
    if (!state.selected) return;
    state.remoteImages = !state.remoteImages;
    $("remote-images").textContent = state.remoteImages
      ? "Block remote images"
      : "Load remote images";
    $("html-frame").src = htmlSource(state.selected);
  });
  $("clear-faults").addEventListener("click", async () => {
    await fetch("/api/v1/faults", { method: "DELETE" });
    loadFaults();
  });
  getJson("/api/v1/info").then((info) => {
    $("smtp-address").textContent = info.SMTP;
  });
  showTab("html");
  loadList();
  loadFaults();
  connectEvents();
}

start();
