// The sio admin page: asks the admin endpoint for everything once a second and draws it.
// Every value from the server is put in the page as text (textContent), never as markup:
// socket ids, channel names and log lines come from clients and plugins.
"use strict";

const state = {
  token: sessionStorage.getItem("sio-admin-token"),
  history: [],          // [time, deliveries/s], for the chart
  previous: null,       // the last metrics sample: {time, values}
  filter: "",
};

const $ = (id) => document.getElementById(id);
// Sockets asked for each second: a server with 20,000 would otherwise send them all, every second.
const SOCKET_ROWS = 500;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function request(method, path, body) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    showLogin();
    throw new Error("token needed");
  }
  const type = response.headers.get("Content-Type") || "";
  const payload = type.startsWith("application/json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((payload && payload.error) || response.statusText);
  return payload;
}

function showLogin() {
  $("login").classList.remove("hidden");
  $("dashboard").classList.add("hidden");
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value;
  sessionStorage.setItem("sio-admin-token", state.token);
  $("login").classList.add("hidden");
  $("dashboard").classList.remove("hidden");
  refresh();
});

// Prometheus text format: the few series the page needs, summed over their labels.
function parseMetrics(text) {
  const values = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match) continue;
    values[match[1]] = (values[match[1]] || 0) + Number(match[3]);
  }
  return values;
}

function formatNumber(value) {
  if (value >= 1e6) return (value / 1e6).toFixed(value >= 1e7 ? 0 : 1) + " M";
  if (value >= 1e4) return (value / 1e3).toFixed(value >= 1e5 ? 0 : 1) + " k";
  return String(Math.round(value));
}

function formatBytes(value) {
  if (value >= 1 << 20) return (value / (1 << 20)).toFixed(1) + " MiB";
  if (value >= 1 << 10) return (value / (1 << 10)).toFixed(1) + " KiB";
  return Math.round(value) + " B";
}

function since(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return Math.floor(seconds) + " s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
  return Math.floor(seconds / 86400) + " d ago";
}

function fillTable(id, rows, makeRow) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map(makeRow));
  const empty = $(id + "-empty");
  if (empty) empty.classList.toggle("hidden", rows.length > 0);
}

function drawStats(stats) {
  $("c-sessions").textContent = stats.sessions;
  const namespaces = Object.entries(stats.sockets);
  $("c-sockets").textContent = namespaces.reduce((sum, [, count]) => sum + count, 0);
  $("c-namespaces").textContent = namespaces.map(([name, count]) => `${name} ${count}`).join(" · ");
  const rows = Object.entries(stats.disconnects).sort((a, b) => b[1] - a[1]);
  fillTable("disconnects", rows, ([reason, count]) => {
    const row = element("tr");
    row.append(element("td", reason), element("td", count, "num"));
    return row;
  });
}

function drawSockets(sockets, total) {
  const filter = state.filter.toLowerCase();
  const shown = sockets.filter((socket) => !filter ||
    [socket.id, socket.remote_address, socket.namespace, ...socket.channels].some((text) => text.toLowerCase().includes(filter)));
  const loaded = sockets.length < total ? `${sockets.length} of ${total} loaded` : `${total}`;
  $("sockets-count").textContent = shown.length === sockets.length ? loaded : `${shown.length} shown · ${loaded}`;
  fillTable("sockets", shown, (socket) => {
    const row = element("tr");
    const channels = element("td");
    for (const channel of socket.channels) channels.append(element("span", channel, "chip"));
    const action = element("td");
    const button = element("button", "Disconnect", "small danger");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await request("POST", "/disconnect", { socket_id: socket.id, namespace: socket.namespace });
        refresh();
      } catch (error) {
        button.textContent = error.message;
      }
    });
    action.append(button);
    const connected = element("td", since(socket.connected_at));
    connected.title = socket.connected_at;
    row.append(element("td", socket.id, "mono"), element("td", socket.namespace), element("td", socket.transport),
               element("td", socket.remote_address, "mono"), channels, connected, action);
    return row;
  });
}

function drawChannels(channels) {
  $("c-channels").textContent = channels.length;
  $("c-subscriptions").textContent = channels.reduce((sum, channel) => sum + channel.members, 0) + " subscriptions";
  fillTable("channels", channels, (channel) => {
    const row = element("tr");
    const action = element("td");
    const button = element("button", "Broadcast…", "small");
    button.addEventListener("click", () => {
      $("b-namespace").value = channel.namespace;
      $("b-channel").value = channel.channel;
      $("b-message").focus();
    });
    action.append(button);
    row.append(element("td", channel.namespace), element("td", channel.channel, "mono"), element("td", channel.members, "num"), action);
    return row;
  });
}

function drawPlugins(plugins) {
  fillTable("plugins", plugins, (plugin) => {
    const row = element("tr");
    const name = element("td");
    name.append(element("strong", plugin.name || "(not loaded)"));
    if (plugin.version) name.append(element("div", `${plugin.version} · ABI ${plugin.abi}`, "result"));
    const handlers = element("td");
    for (const handler of plugin.handlers || []) {
      handlers.append(element("span", handler.event, "chip"));
      if (handler.pattern) handlers.append(element("span", handler.pattern, "chip pattern"));
    }
    const reload = element("td");
    if (plugin.last_reload) {
      const outcome = plugin.last_reload.outcome;
      reload.append(element("span", outcome, outcome.startsWith("refused") ? "refused" : "ok"));
      reload.append(element("div", since(plugin.last_reload.at), "result"));
    }
    row.append(name, element("td", plugin.file, "mono"), handlers, reload);
    return row;
  });
}

function drawErrors(errors) {
  $("errors").replaceChildren(...errors.map((entry) => {
    const item = element("li");
    item.append(element("span", entry.time.slice(11, 23), "time"), element("span", entry.message, "level-" + entry.level));
    const meta = Object.entries(entry.metadata).map(([key, value]) => `${key}=${value}`).join(" ");
    if (meta) item.append(element("span", meta, "meta"));
    return item;
  }));
  $("errors-empty").classList.toggle("hidden", errors.length > 0);
}

function drawMetrics(text) {
  if (text === null) {
    $("c-deliveries").textContent = "off";
    $("c-messages").textContent = "sio serve --no-metrics";
    return;
  }
  const now = performance.now() / 1000;
  const values = parseMetrics(text);
  const previous = state.previous;
  state.previous = { time: now, values };
  if (!previous) return;
  const elapsed = now - previous.time;
  const rate = (name) => Math.max(0, ((values[name] || 0) - (previous.values[name] || 0)) / elapsed);
  const deliveries = rate("sio_deliveries_total");
  $("c-deliveries").textContent = formatNumber(deliveries);
  $("c-messages").textContent = `${formatNumber(rate("sio_messages_sent_total"))} messages/s`;
  $("c-events").textContent = formatNumber(rate("sio_packets_received_total"));
  $("c-bytes").textContent = `in ${formatBytes(rate("sio_received_bytes_total"))}/s · out ${formatBytes(rate("sio_sent_bytes_total"))}/s`;
  state.history.push(deliveries);
  if (state.history.length > 120) state.history.shift();
  drawChart();
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);
  const points = state.history;
  const top = Math.max(10, ...points) * 1.15;
  context.strokeStyle = "#26313d";
  context.fillStyle = "#8593a3";
  context.font = "11px system-ui";
  for (const fraction of [0, 0.5, 1]) {
    const y = height - 14 - (height - 24) * fraction;
    context.beginPath();
    context.moveTo(0, y);
    context.lineTo(width, y);
    context.stroke();
    context.fillText(formatNumber(top * fraction) + "/s", 4, y - 3);
  }
  if (points.length < 2) return;
  const step = width / 119;
  const x = (index) => width - (points.length - 1 - index) * step;
  const y = (value) => height - 14 - (height - 24) * (value / top);
  context.beginPath();
  context.moveTo(x(0), y(points[0]));
  points.forEach((value, index) => context.lineTo(x(index), y(value)));
  context.strokeStyle = "#4fb3ff";
  context.lineWidth = 2;
  context.stroke();
  context.lineTo(x(points.length - 1), height - 14);
  context.lineTo(x(0), height - 14);
  context.fillStyle = "rgba(79, 179, 255, 0.12)";
  context.fill();
}

async function refresh() {
  try {
    const [stats, sockets, channels, plugins, errors, metrics] = await Promise.all([
      request("GET", "/stats"), request("GET", "/sockets?limit=" + SOCKET_ROWS), request("GET", "/channels"), request("GET", "/plugins"),
      request("GET", "/errors"), request("GET", "/metrics").catch(() => null),
    ]);
    drawStats(stats);
    const transports = {};
    for (const socket of sockets.sockets) transports[socket.transport] = (transports[socket.transport] || 0) + 1;
    drawSockets(sockets.sockets, Object.values(stats.sockets).reduce((sum, count) => sum + count, 0));
    drawChannels(channels.channels);
    drawPlugins(plugins.plugins);
    drawErrors(errors.errors);
    drawMetrics(metrics);
    $("c-transports").textContent = Object.entries(transports).map(([name, count]) => `${name} ${count}`).join(" · ");
    $("status").textContent = "live · " + new Date().toLocaleTimeString();
    $("status").className = "status live";
  } catch (error) {
    $("status").textContent = "not reachable: " + error.message;
    $("status").className = "status stale";
  }
}

$("socket-filter").addEventListener("input", (event) => {
  state.filter = event.target.value;
  refresh();
});

$("reload").addEventListener("click", async () => {
  $("reload-result").textContent = "reloading…";
  $("reload-result").className = "result";
  try {
    const reply = await request("POST", "/reload", {});
    $("reload-result").textContent = reply.plugins.map((plugin) => `${plugin.file.split("/").pop()}: ${plugin.outcome}`).join(" · ") || "no plugin";
  } catch (error) {
    $("reload-result").textContent = error.message;
    $("reload-result").className = "result error";
  }
  refresh();
});

$("broadcast").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("b-message").value;
  let message;
  try { message = JSON.parse(text); } catch { message = text; }
  const body = { message, namespace: $("b-namespace").value || "/" };
  if ($("b-channel").value) body.channel = $("b-channel").value;
  try {
    const reply = await request("POST", "/broadcast", body);
    $("b-result").textContent = `delivered to ${reply.delivered}`;
    $("b-result").className = "result";
  } catch (error) {
    $("b-result").textContent = error.message;
    $("b-result").className = "result error";
  }
});

refresh();
setInterval(refresh, 1000);
