// Pacebot console: chat with the bot as any member of the organisation.
//
// Talks only to the same-origin JSON API under /console/api. Everything shown that comes from
// the server or the user is inserted as text (textContent) or, for markdown, escaped first.

const API = "/console/api";
const MEDIA = "/console/media/";
const POLL_MS = 2000;
const PAGE_LIMIT = 200;
const STORAGE_KEY = "pacebot.console.member";

const ROLE_NAMES = { rep: "销售", manager: "主管", supporter: "支持", admin: "管理员" };
const ROLE_ORDER = { manager: 0, rep: 1, supporter: 2, admin: 3 };
const PLATFORM_NAMES = { console: "控制台", wecom: "企业微信", dingtalk: "钉钉" };
// Items are fetched once, so only a final state is worth showing ("pending" would never update).
const STATUS_NAMES = { dead: "发送失败(已放弃)" };
const WEEKDAYS = ["日", "一", "二", "三", "四", "五", "六"];

const state = {
  members: new Map(), // code -> member
  teams: new Map(), // key -> team
  teamOrder: [],
  clockControl: false,
  current: null, // member code
  team: null, // team key shown in the side panel
  views: new Map(), // "m:<code>" / "t:<key>" -> View
  clock: { serverMs: null, localMs: 0 },
  pendingKind: null, // "photo" | "file" chosen via the tool buttons
  pollTimer: null,
  errorSource: null,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function newMsgId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return "web-" + window.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function parseInstant(iso) {
  if (!iso) return NaN;
  // Timestamps without an offset (SQLite drops it) are UTC.
  const hasZone = /([zZ]|[+-]\d{2}:?\d{2})$/.test(iso);
  return Date.parse(hasZone ? iso : iso + "Z");
}

const pad = (n) => String(n).padStart(2, "0");

// The bot's clock is shown in the organisation's time zone, whatever the browser's is.
let clockZone = undefined;

function formatClock(ms) {
  const parts = {};
  const formatter = new Intl.DateTimeFormat("en-GB", {
    timeZone: clockZone, year: "numeric", month: "2-digit", day: "2-digit", weekday: "short",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  for (const part of formatter.formatToParts(new Date(ms))) parts[part.type] = part.value;
  const weekday = WEEKDAYS[["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday)];
  return `${parts.year}-${parts.month}-${parts.day} 周${weekday} ${parts.hour}:${parts.minute}:${parts.second}`;
}

function nowForEntry() {
  // Own messages are stamped with the bot's clock, so that they sort sensibly when it was moved.
  return state.clock.serverMs === null ? Date.now() : serverNow();
}

function formatTime(ms) {
  if (Number.isNaN(ms)) return "";
  const d = new Date(ms);
  const now = state.clock.serverMs === null ? Date.now() : serverNow();
  const sameDay = new Date(now).toDateString() === d.toDateString();
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return sameDay ? hm : `${d.getMonth() + 1}月${d.getDate()}日 ${hm}`;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function isoWithOffset(date) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function mediaUrl(path) {
  return MEDIA + String(path).split("/").map(encodeURIComponent).join("/");
}

// ---------------------------------------------------------------------------------------------
// Markdown: escape everything first, then add a small set of tags.

function inlineMarkdown(escaped) {
  return escaped
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
    .replace(/__(.+?)__/g, "<strong>$1</strong>")
    .replace(
      /&lt;font color=(?:&quot;|&#39;)?(info|comment|warning)(?:&quot;|&#39;)?&gt;(.*?)&lt;\/font&gt;/g,
      '<span class="md-$1">$2</span>',
    )
    .replace(
      /\[([^\]]+)\]\(((?:https?:\/\/|\/)[^\s)]+)\)/g,
      '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>',
    );
}

export function renderMarkdown(source) {
  const lines = escapeHtml(source || "").split(/\r?\n/);
  const out = [];
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map(inlineMarkdown).join("<br>")}</p>`);
    paragraph = [];
  };
  const closeList = () => {
    if (list) out.push(`</${list}>`);
    list = null;
  };
  for (const line of lines) {
    let m;
    if (!line.trim()) {
      flush();
      closeList();
    } else if ((m = line.match(/^\s{0,3}(#{1,6})\s+(.*)$/))) {
      flush();
      closeList();
      const level = Math.min(m[1].length + 2, 6); // keep headings modest inside a bubble
      out.push(`<h${level}>${inlineMarkdown(m[2])}</h${level}>`);
    } else if (/^\s*(-{3,}|\*{3,}|_{3,})\s*$/.test(line)) {
      flush();
      closeList();
      out.push("<hr>");
    } else if ((m = line.match(/^\s*[-*+•]\s+(.*)$/))) {
      flush();
      if (list !== "ul") {
        closeList();
        out.push("<ul>");
        list = "ul";
      }
      out.push(`<li>${inlineMarkdown(m[1])}</li>`);
    } else if ((m = line.match(/^\s*(\d{1,3})(?:[.)]\s+|、\s*)(.+)$/))) {
      flush();
      if (list !== "ol") {
        closeList();
        out.push(`<ol start="${Number(m[1])}">`);
        list = "ol";
      }
      out.push(`<li>${inlineMarkdown(m[2])}</li>`);
    } else if ((m = line.match(/^\s*&gt;\s?(.*)$/))) {
      flush();
      closeList();
      out.push(`<blockquote>${inlineMarkdown(m[1])}</blockquote>`);
    } else {
      closeList();
      paragraph.push(line);
    }
  }
  flush();
  closeList();
  return out.join("");
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", json, form } = {}) {
  const init = { method, headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError("无法连接服务器,请确认 Pacebot 正在运行。", 0);
  }
  const raw = await response.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    let message = data && typeof data.error === "string" ? data.error : "";
    if (!message) {
      if (response.status === 413) message = "文件太大,服务器拒绝接收。";
      else message = raw && raw.length < 300 ? raw.trim() : response.statusText || "请求失败";
    }
    throw new ApiError(`${message}(HTTP ${response.status})`, response.status);
  }
  if (data === null) throw new ApiError("服务器返回的内容无法解析。", response.status);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Banner for errors and notices

let bannerTimer = null;

function showError(message, source = null) {
  showBanner(message, "error", source);
}

function showNotice(message) {
  showBanner(message, "info", null);
  bannerTimer = setTimeout(hideBanner, 4000);
}

function showBanner(message, level, source) {
  clearTimeout(bannerTimer);
  const banner = $("error-banner");
  banner.dataset.level = level;
  $("error-text").textContent = message;
  banner.hidden = false;
  state.errorSource = source;
}

function hideBanner() {
  clearTimeout(bannerTimer);
  $("error-banner").hidden = true;
  state.errorSource = null;
}

function clearErrorFrom(source) {
  if (state.errorSource === source && !$("error-banner").hidden) hideBanner();
}

// ---------------------------------------------------------------------------------------------
// Views: the timeline of one member's chat or one team group.

class View {
  constructor(kind, key) {
    this.kind = kind; // "member" | "team"
    this.key = key;
    this.entries = [];
    this.seen = new Set();
    this.cards = new Map(); // task_id -> entry showing that card
    this.cursor = 0;
    this.loaded = false;
    this.polling = null;
  }

  get container() {
    if (this.kind === "member" && state.current === this.key) return $("feed");
    if (this.kind === "team" && state.team === this.key) return $("team-feed");
    return null;
  }
}

function viewFor(kind, key) {
  const id = `${kind === "member" ? "m" : "t"}:${key}`;
  let view = state.views.get(id);
  if (!view) {
    view = new View(kind, key);
    state.views.set(id, view);
  }
  return view;
}

function nearBottom(container) {
  return container.scrollHeight - container.scrollTop - container.clientHeight < 120;
}

function scrollToBottom(container) {
  container.scrollTop = container.scrollHeight;
}

function appendEntry(view, entry) {
  view.entries.push(entry);
  const container = view.container;
  if (!container) return;
  const stick = entry.type === "mine" || nearBottom(container);
  container.querySelector(".feed-empty")?.remove();
  entry.node = renderEntry(entry, view);
  container.append(entry.node);
  if (stick) scrollToBottom(container);
}

function refreshEntry(entry, view, { flash = false } = {}) {
  if (!entry.node || !entry.node.isConnected || !view.container) return;
  const fresh = renderEntry(entry, view);
  entry.node.replaceWith(fresh);
  entry.node = fresh;
  if (flash) {
    fresh.classList.add("flash");
    setTimeout(() => fresh.classList.remove("flash"), 1600);
  }
}

function addFeedItem(view, item) {
  if (view.seen.has(item.id)) return;
  view.seen.add(item.id);
  const card = item.payload && item.payload.card;
  if (item.kind === "card_update" && card) {
    const existing = view.cards.get(card.task_id);
    if (existing) {
      existing.item = { ...existing.item, payload: item.payload, fallback: item.fallback, updatedAt: item.created_at };
      refreshEntry(existing, view, { flash: true });
      return;
    }
  }
  const entry = { type: "bot", item };
  if (card) view.cards.set(card.task_id, entry);
  appendEntry(view, entry);
}

function renderView(view) {
  const container = view.container;
  if (!container) return;
  container.replaceChildren();
  if (!view.entries.length) {
    const text = !view.loaded
      ? "加载中…"
      : view.kind === "member"
        ? "还没有消息。发送 /帮助 看看机器人能做什么。"
        : "这个群还没有收到消息。";
    container.append(el("div", { class: "feed-empty", id: view.kind === "member" ? "feed-empty" : null, text }));
  }
  for (const entry of view.entries) {
    entry.node = renderEntry(entry, view);
    container.append(entry.node);
  }
  scrollToBottom(container);
}

function routeItems(items) {
  for (const item of items || []) {
    const to = item.to || {};
    let view = null;
    if (to.member) view = state.views.get(`m:${to.member}`);
    else if (to.team) view = state.views.get(`t:${to.team}`);
    // Views not loaded yet pick the item up with their first poll.
    if (view && view.loaded) addFeedItem(view, item);
  }
}

async function pollView(view) {
  if (view.polling) return view.polling;
  view.polling = (async () => {
    const param = view.kind === "member" ? "member" : "team";
    for (;;) {
      const data = await api(
        `${API}/feed?${param}=${encodeURIComponent(view.key)}&after=${view.cursor}&limit=${PAGE_LIMIT}`,
      );
      const wasLoaded = view.loaded;
      for (const item of data.items) {
        view.cursor = Math.max(view.cursor, item.id);
        addFeedItem(view, item);
      }
      if (data.now) setServerNow(data.now);
      if (!wasLoaded) {
        view.loaded = true;
        if (!view.entries.length) renderView(view);
      }
      if (data.items.length < PAGE_LIMIT) break;
    }
  })();
  try {
    await view.polling;
  } finally {
    view.polling = null;
  }
}

async function pollNow() {
  const jobs = [];
  if (state.current) jobs.push(pollView(viewFor("member", state.current)));
  if (state.team) jobs.push(pollView(viewFor("team", state.team)));
  if (!jobs.length) jobs.push(refreshClock());
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(`获取消息失败:${failed.reason.message}`, "poll");
  else clearErrorFrom("poll");
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(async () => {
    await pollNow();
    schedulePoll();
  }, POLL_MS);
}

// ---------------------------------------------------------------------------------------------
// Rendering entries

function metaLine(parts) {
  return el("div", { class: "meta" }, parts.filter(Boolean).join(" · "));
}

function renderEntry(entry, view) {
  return entry.type === "mine" ? renderMine(entry) : renderBot(entry.item, view);
}

function renderMine(entry) {
  const bubble = el("div", { class: "bubble" });
  if (entry.kind === "text") {
    bubble.textContent = entry.text;
  } else if (entry.kind === "action") {
    bubble.append(el("span", { class: "action-label", text: "点击了" }), ` 「${entry.text}」`);
  } else {
    if (entry.previewUrl) {
      bubble.append(el("img", { class: "photo", src: entry.previewUrl, alt: entry.file.name }));
    }
    bubble.append(
      el(
        "div",
        { class: "file-line" },
        el("span", { class: "file-icon", text: entry.kind === "photo" ? "图" : "文" }),
        el("span", { class: "file-name", text: entry.file.name }),
        el("span", { class: "file-size", text: formatSize(entry.file.size) }),
      ),
    );
  }
  const status = {
    sending: "发送中…",
    done: "",
    duplicate: "重复消息",
    failed: "发送失败",
  }[entry.status];
  const node = el(
    "div",
    {
      class: `msg mine${entry.status === "failed" ? " failed" : ""}${entry.kind === "action" ? " action" : ""}`,
      dataset: { kind: entry.kind, from: "me", status: entry.status },
    },
    bubble,
    metaLine([formatTime(entry.at), status]),
  );
  if (entry.notice) node.append(el("div", { class: "msg-note", text: entry.notice }));
  if (entry.status === "failed") {
    node.append(
      el(
        "div",
        { class: "msg-error", role: "alert" },
        entry.error || "发送失败",
        entry.retry ? el("button", { type: "button", class: "link-button", text: "重试", onclick: entry.retry }) : null,
      ),
    );
  }
  return node;
}

function renderBot(item, view) {
  const payload = item.payload || {};
  const kind = item.kind;
  let body;
  switch (kind) {
    case "text":
      body = el("div", { class: "bubble text", text: payload.text || "" });
      break;
    case "markdown": {
      body = el("div", { class: "bubble markdown" });
      // The title is a notification summary on the chat platforms; show it only when the text
      // does not already open with it.
      const firstLine = (payload.text || "").trim().split(/\r?\n/, 1)[0] || "";
      if (payload.title && !firstLine.includes(payload.title)) {
        body.append(el("div", { class: "md-title", text: payload.title }));
      }
      const content = el("div", { class: "md-body" });
      content.innerHTML = renderMarkdown(payload.text || ""); // escaped inside renderMarkdown
      body.append(content);
      break;
    }
    case "image": {
      const path = payload.path || (payload.sha256 ? `generated/${payload.sha256}.png` : "");
      const url = mediaUrl(path);
      const img = el("img", { class: "photo", src: url, alt: payload.caption || "图片", loading: "lazy" });
      img.addEventListener("error", () => {
        img.replaceWith(el("div", { class: "media-missing", text: "图片无法加载" }));
      });
      body = el("div", { class: "bubble image" }, el("a", { href: url, target: "_blank", rel: "noopener" }, img));
      if (payload.caption) body.append(el("div", { class: "caption", text: payload.caption }));
      break;
    }
    case "file":
      body = el(
        "div",
        { class: "bubble file" },
        el(
          "div",
          { class: "file-line" },
          el("span", { class: "file-icon", text: "文" }),
          el("span", { class: "file-name", text: payload.filename || "文件" }),
          payload.sha256 ? el("span", { class: "file-size", text: payload.sha256.slice(0, 10) }) : null,
        ),
      );
      break;
    case "card":
    case "card_update":
      body = payload.card ? renderCard(payload.card, view) : el("div", { class: "bubble text", text: item.fallback || "" });
      break;
    default:
      body = el("div", { class: "bubble text", text: item.fallback || JSON.stringify(payload) });
  }
  const platform = item.platform && item.platform !== "console" ? PLATFORM_NAMES[item.platform] || item.platform : "";
  const status = STATUS_NAMES[item.status] || "";
  const node = el(
    "div",
    {
      class: `msg bot${item.status === "dead" ? " failed" : ""}`,
      dataset: { kind, id: item.id, from: "bot" },
    },
    body,
    metaLine([formatTime(parseInstant(item.created_at)), platform, status, item.updatedAt ? "已更新" : ""]),
  );
  return node;
}

let cardSeq = 0;

function renderCard(card, view) {
  const node = el("div", { class: "card", dataset: { taskId: card.task_id, testid: "card" } });
  node.append(el("div", { class: "card-title", text: card.title || "" }));
  if (card.body) node.append(el("div", { class: "card-body", text: card.body }));
  if (card.fields && card.fields.length) {
    const fields = el("dl", { class: "card-fields" });
    for (const f of card.fields) fields.append(el("dt", { text: f.label }), el("dd", { text: f.value }));
    node.append(fields);
  }
  if (card.closed_note) {
    node.classList.add("closed");
    node.append(el("div", { class: "card-closed" }, el("span", { class: "tick", text: "✔" }), " ", card.closed_note));
    return node;
  }
  const errorBox = el("div", { class: "card-error", role: "alert", hidden: true });
  const mode = card.choice_mode || "buttons";
  if (mode === "buttons") {
    if (card.buttons && card.buttons.length) {
      const actions = el("div", { class: "card-actions" });
      for (const button of card.buttons) {
        actions.append(
          el("button", {
            type: "button",
            class: `card-button btn-${button.style || "default"}`,
            dataset: { action: button.action },
            text: button.label,
            onclick: () => clickCard(node, card, button.action, undefined, button.label),
          }),
        );
      }
      node.append(actions);
    }
  } else {
    const group = `card-opt-${++cardSeq}`;
    const inputType = mode === "multiple" ? "checkbox" : "radio";
    const options = el("div", { class: "card-options", role: mode === "multiple" ? "group" : "radiogroup" });
    for (const option of card.options || []) {
      options.append(
        el(
          "label",
          { class: "card-option" },
          el("input", { type: inputType, name: group, value: option.action }),
          el("span", { text: option.label }),
        ),
      );
    }
    node.append(options);
    if (card.submit) {
      const submit = card.submit;
      node.append(
        el(
          "div",
          { class: "card-actions" },
          el("button", {
            type: "button",
            class: `card-button card-submit btn-${submit.style || "primary"}`,
            dataset: { action: submit.action },
            text: submit.label,
            onclick: () => {
              const chosen = Array.from(options.querySelectorAll("input:checked"), (i) => i.value);
              if (!chosen.length) {
                errorBox.textContent = mode === "multiple" ? "请至少选择一项。" : "请先选择一项。";
                errorBox.hidden = false;
                return;
              }
              const labels = Array.from(options.querySelectorAll("input:checked"), (i) => i.nextSibling.textContent);
              clickCard(node, card, submit.action, chosen, `${submit.label}:${labels.join("、")}`);
            },
          }),
        ),
      );
    }
  }
  node.append(errorBox);
  if (view && view.kind === "team") {
    node.append(el("div", { class: "card-hint", text: "按钮将以当前选中的成员身份点击" }));
  }
  return node;
}

async function clickCard(cardNode, card, action, values, label) {
  const member = state.current;
  const errorBox = cardNode.querySelector(".card-error");
  if (!member) {
    showError("请先在左侧选择一位成员,再点击卡片按钮。");
    return;
  }
  const controls = cardNode.querySelectorAll("button, input");
  controls.forEach((c) => (c.disabled = true));
  cardNode.classList.add("busy");
  if (errorBox) errorBox.hidden = true;
  const view = viewFor("member", member);
  const entry = { type: "mine", kind: "action", text: label, status: "sending", at: nowForEntry() };
  appendEntry(view, entry);
  const body = { member, task_id: card.task_id, action };
  if (values !== undefined) body.values = values;
  try {
    const result = await api(`${API}/actions`, { method: "POST", json: body });
    finishEntry(view, entry, result);
  } catch (err) {
    entry.status = "failed";
    entry.error = err.message;
    refreshEntry(entry, view);
    if (errorBox && errorBox.isConnected) {
      errorBox.textContent = `操作失败:${err.message}`;
      errorBox.hidden = false;
    }
    showError(`卡片操作失败:${err.message}`);
  } finally {
    if (cardNode.isConnected) {
      controls.forEach((c) => (c.disabled = false));
      cardNode.classList.remove("busy");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sending

function finishEntry(view, entry, result) {
  entry.status = result.status === "duplicate" ? "duplicate" : "done";
  entry.notice = result.notice || "";
  entry.eventId = result.event_id;
  refreshEntry(entry, view);
  routeItems(result.replies);
}

async function deliver(view, entry, request) {
  try {
    const result = await request();
    entry.retry = null;
    finishEntry(view, entry, result);
  } catch (err) {
    entry.status = "failed";
    entry.error = err.message;
    entry.retry = () => {
      entry.status = "sending";
      entry.error = "";
      refreshEntry(entry, view);
      deliver(view, entry, request);
    };
    refreshEntry(entry, view);
    showError(`发送失败:${err.message}`);
  }
}

function sendText() {
  const input = $("message-input");
  const text = input.value;
  if (!text.trim()) {
    input.focus();
    return;
  }
  const member = state.current;
  if (!member) {
    showError("请先在左侧选择一位成员。");
    return;
  }
  input.value = "";
  autosize();
  input.focus();
  const view = viewFor("member", member);
  const entry = { type: "mine", kind: "text", text, status: "sending", at: nowForEntry() };
  appendEntry(view, entry);
  const msgId = newMsgId();
  deliver(view, entry, () => api(`${API}/messages`, { method: "POST", json: { member, text, msg_id: msgId } }));
}

function sendFile(file, kind) {
  const member = state.current;
  if (!member) {
    showError("请先在左侧选择一位成员。");
    return;
  }
  const chosen = kind || (file.type && file.type.startsWith("image/") ? "photo" : "file");
  const view = viewFor("member", member);
  const entry = {
    type: "mine",
    kind: chosen,
    file: { name: file.name || "upload", size: file.size, type: file.type },
    previewUrl: chosen === "photo" && file.type.startsWith("image/") ? URL.createObjectURL(file) : null,
    status: "sending",
    at: nowForEntry(),
  };
  appendEntry(view, entry);
  const msgId = newMsgId();
  deliver(view, entry, () => {
    const form = new FormData();
    form.append("member", member);
    form.append("kind", chosen);
    form.append("msg_id", msgId);
    form.append("file", file, file.name || "upload");
    return api(`${API}/messages`, { method: "POST", form });
  });
}

function autosize() {
  const input = $("message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 168)}px`;
}

// ---------------------------------------------------------------------------------------------
// Clock

function serverNow() {
  return state.clock.serverMs + (Date.now() - state.clock.localMs);
}

function setServerNow(iso) {
  const ms = parseInstant(iso);
  if (Number.isNaN(ms)) return;
  state.clock.serverMs = ms;
  state.clock.localMs = Date.now();
  renderClock();
}

function renderClock() {
  if (state.clock.serverMs === null) return;
  const now = serverNow();
  $("clock").textContent = formatClock(now);
  $("clock").setAttribute("datetime", new Date(now).toISOString());
  const shift = now - Date.now();
  const shifted = Math.abs(shift) > 90 * 1000;
  const badge = $("clock-shifted");
  badge.hidden = !shifted;
  if (shifted) {
    const hours = shift / 3600000;
    badge.title = `比本机时间${hours > 0 ? "快" : "慢"} ${Math.abs(hours).toFixed(1)} 小时`;
  }
}

async function refreshClock() {
  const data = await api(`${API}/clock`);
  setServerNow(data.now);
  return data;
}

async function changeClock(body) {
  try {
    const data = await api(`${API}/clock`, { method: "POST", json: body });
    setServerNow(data.now);
    showNotice(`系统时间已调整为 ${formatClock(serverNow())}`);
    await pollNow();
  } catch (err) {
    showError(`调整时间失败:${err.message}`);
  }
}

function setupClockControls() {
  const form = $("clock-controls");
  form.hidden = !state.clockControl;
  if (!state.clockControl) return;
  form.addEventListener("submit", (e) => e.preventDefault());
  $("clock-advance-button").addEventListener("click", () => {
    const hours = Number($("clock-advance-hours").value);
    if (!Number.isFinite(hours) || hours === 0) {
      showError("请输入要快进的小时数(非 0 的数字)。");
      return;
    }
    changeClock({ advance_minutes: Math.round(hours * 60) });
  });
  const setInput = $("clock-set-input");
  setInput.addEventListener("focus", () => {
    if (!setInput.value && state.clock.serverMs !== null) {
      const d = new Date(serverNow());
      setInput.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    }
  });
  $("clock-set-button").addEventListener("click", () => {
    const value = setInput.value;
    const date = value ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) {
      showError("请先选择要设定的日期和时间。");
      return;
    }
    changeClock({ now: isoWithOffset(date) });
  });
}

// ---------------------------------------------------------------------------------------------
// Organisation: member picker and team list

function teamName(key) {
  const team = state.teams.get(key);
  return team ? team.name : key;
}

function memberGroups() {
  const groups = [];
  for (const key of state.teamOrder) {
    groups.push({ key, name: teamName(key), members: [] });
  }
  const other = { key: null, name: "未分组", members: [] };
  for (const member of state.members.values()) {
    const group = groups.find((g) => g.key === member.team) || other;
    group.members.push(member);
  }
  if (other.members.length) groups.push(other);
  for (const g of groups) {
    g.members.sort((a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9));
  }
  return groups.filter((g) => g.members.length);
}

function renderOrg() {
  const select = $("member-select");
  select.replaceChildren();
  const list = $("member-list");
  list.replaceChildren();
  for (const group of memberGroups()) {
    const optgroup = el("optgroup", { label: group.name });
    const section = el("div", { class: "member-group" }, el("div", { class: "member-group-name", text: group.name }));
    for (const m of group.members) {
      const role = ROLE_NAMES[m.role] || m.role;
      optgroup.append(el("option", { value: m.code, text: `${m.name}(${role})· ${m.code}` }));
      section.append(
        el(
          "button",
          {
            type: "button",
            class: "member-item",
            dataset: { code: m.code },
            title: `${m.name} · ${role} · ${m.code}`,
            onclick: () => selectMember(m.code),
          },
          el("span", { class: `avatar role-${m.role}`, text: (m.name || m.code).slice(0, 1) }),
          el("span", { class: "member-name", text: m.name }),
          el("span", { class: `role-badge role-${m.role}`, text: role }),
        ),
      );
    }
    select.append(optgroup);
    list.append(section);
  }
  select.disabled = state.members.size === 0;

  const teams = $("team-list");
  teams.replaceChildren();
  for (const key of state.teamOrder) {
    const team = state.teams.get(key);
    const manager = [...state.members.values()].find((m) => m.id === team.manager_id);
    teams.append(
      el(
        "button",
        { type: "button", class: "team-item", dataset: { team: key }, onclick: () => toggleTeam(key) },
        el("span", { class: "team-icon", text: "群" }),
        el("span", { class: "team-item-name", text: team.name }),
        manager ? el("span", { class: "team-item-sub", text: manager.name }) : null,
      ),
    );
  }
  if (!state.teamOrder.length) teams.append(el("div", { class: "side-empty", text: "没有团队" }));
}

function selectMember(code) {
  if (!state.members.has(code)) return;
  state.current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    /* storage may be unavailable */
  }
  const member = state.members.get(code);
  $("member-select").value = code;
  for (const item of document.querySelectorAll(".member-item")) {
    item.classList.toggle("active", item.dataset.code === code);
  }
  const role = ROLE_NAMES[member.role] || member.role;
  $("chat-avatar").textContent = (member.name || code).slice(0, 1);
  $("chat-avatar").className = `avatar role-${member.role}`;
  $("chat-name").textContent = member.name;
  $("chat-sub").textContent = [role, member.team ? teamName(member.team) : "未分组", member.code].join(" · ");
  document.title = `${member.name} · Pacebot 控制台`;
  const view = viewFor("member", code);
  renderView(view);
  pollView(view)
    .then(() => clearErrorFrom("poll"))
    .catch((err) => showError(`获取消息失败:${err.message}`, "poll"));
  $("message-input").focus();
}

function toggleTeam(key) {
  state.team = state.team === key ? null : key;
  for (const item of document.querySelectorAll(".team-item")) {
    item.classList.toggle("active", item.dataset.team === state.team);
  }
  const panel = $("team-panel");
  panel.hidden = !state.team;
  $("layout").classList.toggle("with-team", Boolean(state.team));
  if (!state.team) return;
  const team = state.teams.get(key);
  const members = [...state.members.values()].filter((m) => m.team === key);
  $("team-name").textContent = `${team.name} · 群消息`;
  $("team-sub").textContent = `${members.length} 位成员`;
  const view = viewFor("team", key);
  renderView(view);
  pollView(view).catch((err) => showError(`获取群消息失败:${err.message}`, "poll"));
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wireComposer() {
  const input = $("message-input");
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    sendText();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendText();
    }
  });
  input.addEventListener("input", autosize);

  const fileInput = $("file-input");
  const pick = (kind) => {
    state.pendingKind = kind;
    fileInput.accept = kind === "photo" ? "image/*" : "";
    fileInput.click();
  };
  $("photo-button").addEventListener("click", () => pick("photo"));
  $("attach-button").addEventListener("click", () => pick("file"));
  fileInput.addEventListener("change", () => {
    const kind = state.pendingKind;
    state.pendingKind = null;
    for (const file of Array.from(fileInput.files || [])) sendFile(file, kind);
    fileInput.value = "";
  });

  // Drag a file onto the chat, or paste an image, to send it.
  const chat = $("chat");
  let depth = 0;
  chat.addEventListener("dragenter", (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
    depth += 1;
    $("drop-hint").hidden = false;
  });
  chat.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) $("drop-hint").hidden = true;
  });
  chat.addEventListener("dragover", (e) => e.preventDefault());
  chat.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    $("drop-hint").hidden = true;
    for (const file of Array.from(e.dataTransfer?.files || [])) sendFile(file);
  });
  input.addEventListener("paste", (e) => {
    const files = Array.from(e.clipboardData?.files || []);
    if (!files.length) return;
    e.preventDefault();
    for (const file of files) sendFile(file);
  });
}

async function start() {
  $("error-close").addEventListener("click", hideBanner);
  $("member-select").addEventListener("change", (e) => selectMember(e.target.value));
  $("team-close").addEventListener("click", () => state.team && toggleTeam(state.team));
  wireComposer();
  setInterval(renderClock, 1000);

  let org;
  try {
    org = await api(`${API}/org`);
  } catch (err) {
    showError(`无法读取组织架构:${err.message}`, "org");
    $("member-select").replaceChildren(el("option", { value: "", text: "加载失败" }));
    setTimeout(start2Retry, 3000);
    return;
  }
  applyOrg(org);
}

async function start2Retry() {
  try {
    applyOrg(await api(`${API}/org`));
    clearErrorFrom("org");
  } catch (err) {
    showError(`无法读取组织架构:${err.message}`, "org");
    setTimeout(start2Retry, 3000);
  }
}

function applyOrg(org) {
  state.members = new Map(org.members.map((m) => [m.code, m]));
  state.teams = new Map(org.teams.map((t) => [t.key, t]));
  state.teamOrder = org.teams.map((t) => t.key);
  state.clockControl = Boolean(org.clock_control);
  clockZone = org.timezone || undefined;
  renderOrg();
  setupClockControls();
  refreshClock().catch((err) => showError(`读取系统时间失败:${err.message}`));

  let initial = null;
  try {
    initial = localStorage.getItem(STORAGE_KEY);
  } catch {
    initial = null;
  }
  if (!initial || !state.members.has(initial)) {
    const first = memberGroups()[0];
    initial = first ? first.members[0].code : null;
  }
  if (initial) selectMember(initial);
  else $("feed").replaceChildren(el("div", { class: "feed-empty", text: "组织里还没有成员,请先导入组织架构。" }));
  schedulePoll();
}

start();
