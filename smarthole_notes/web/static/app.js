// SmartHole Notes chat page. Plain ES module, no build step; talks to the service's API
// (same origin, cookie auth) and follows its live events over a WebSocket.
import { renderMarkdown } from "./markdown.js";
import { droppedPaths } from "./paths.js";

const $ = (selector) => document.querySelector(selector);
const WRITING_TOOLS = new Set(["write_file", "edit_file", "move_file", "delete_file", "create_folder"]);
const HISTORY_PAGE = 5;

const state = {
  processing: null, // inbox id being processed now
  queued: new Set(), // inbox ids waiting
  messageStates: new Map(), // inbox id -> {state, next_attempt_at, error}: messages still in the inbox
  vault: "",
  undoAvailable: false,
  nextBefore: undefined, // undefined: not loaded yet; null: no older conversations
  loadingOlder: false,
  streams: new Map(), // message id -> {text, turnStart, element, frame}
  settings: null,
  socketRetry: 0,
  hadSocket: false,
  stickToBottom: true, // follow new messages unless the user scrolled up to read
};

// ------------------------------------------------------------------ API

async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401) showBanner("no-access");
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.key = data && data.key;
    throw error;
  }
  return data;
}

// ------------------------------------------------------------------ small helpers

let noticeTimer = 0;
function notice(text) {
  const box = $("#notice");
  box.textContent = text;
  box.classList.add("show");
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => box.classList.remove("show"), 2600);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function localTime(iso) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return { short: "", full: "" };
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const day = date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
  return { short: sameDay ? time : `${day}, ${time}`, full: date.toLocaleString(), iso: date.toISOString() };
}

function clockTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })}, ${time}`;
}

function timeElement(iso) {
  const t = localTime(iso);
  return el("time", { datetime: t.iso, title: t.full, text: t.short });
}

function cssEscape(value) {
  return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
}

function findUser(messageId) {
  return document.querySelector(`.msg.user[data-message-id="${cssEscape(messageId)}"]`);
}

function findAnswer(messageId) {
  return document.querySelector(`.msg.assistant[data-reply-to="${cssEscape(messageId)}"]`);
}

const log = () => $("#log");

function nearBottom() {
  const box = log();
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

function scrollToBottom(force = false) {
  if (force || state.stickToBottom) {
    const box = log();
    box.scrollTop = box.scrollHeight;
  }
}

// ------------------------------------------------------------------ messages

function sourceLabel(message) {
  if (message.source === "smarthole") return message.input_method === "voice" ? "voice" : "text";
  if (message.source === "system") return "system";
  return "typed";
}

function actionBar(...buttons) {
  return el("div", { class: "actions" }, ...buttons);
}

function copyButton(getText) {
  return el("button", {
    type: "button",
    class: "copy",
    text: "Copy",
    "aria-label": "Copy message",
    onclick: async () => {
      const text = getText();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const area = el("textarea", { class: "visually-hidden" });
        area.value = text;
        document.body.append(area);
        area.select();
        document.execCommand("copy");
        area.remove();
      }
      notice("Copied");
    },
  });
}

function userMessage(message) {
  const body = el("div", { class: "msg-body plain", text: message.content });
  const meta = el(
    "div",
    { class: "msg-meta" },
    el("span", { class: "who", text: "You" }),
    el("span", { class: "source", text: sourceLabel(message) }),
    timeElement(message.created_at),
  );
  const node = el("article", {
    class: "msg user",
    "aria-label": `You, ${sourceLabel(message)}`,
    dataset: { messageId: message.message_id || "" },
  });
  node.rawText = message.content;
  const edit = el("button", {
    type: "button",
    class: "edit",
    text: "Edit",
    "aria-label": "Edit message",
    onclick: () => startEdit(node),
  });
  node.append(meta, body, actionBar(copyButton(() => node.rawText), message.message_id ? edit : null));
  return node;
}

function toolItem(tool) {
  const outcome = tool.running ? "running…" : tool.is_error ? "failed" : "succeeded";
  const item = el(
    "li",
    { class: `tool ${tool.running ? "running" : tool.is_error ? "failed" : "ok"}` },
    el("span", { class: "tool-name", text: tool.name }),
    el("span", { class: "tool-outcome", text: outcome }),
    el("code", { class: "tool-input", text: tool.input_summary || "" }),
    tool.summary ? el("span", { class: "tool-summary", text: tool.summary }) : null,
  );
  item.dataset.tool = tool.name;
  return item;
}

function toolsBlock(tools, open = false) {
  const details = el("details", { class: "tools", open: open || undefined });
  const summary = el("summary");
  const list = el("ul");
  details.append(summary, list);
  setTools(details, tools);
  return details;
}

function setTools(details, tools) {
  const list = details.querySelector("ul");
  list.replaceChildren(...tools.map(toolItem));
  const failed = tools.filter((t) => t.is_error && !t.running).length;
  const count = `${tools.length} tool${tools.length === 1 ? "" : "s"} used`;
  details.querySelector("summary").textContent = failed ? `${count} (${failed} failed)` : count;
  details.hidden = tools.length === 0;
  details.tools = tools;
}

function assistantMessage(message) {
  const body = el("div", { class: "msg-body markdown" });
  renderMarkdown(body, message.content);
  const node = el("article", {
    class: "msg assistant",
    "aria-label": "Assistant",
    dataset: { replyTo: message.reply_to_message_id || "" },
  });
  node.rawText = message.content;
  const meta = el(
    "div",
    { class: "msg-meta" },
    el("span", { class: "who", text: "Assistant" }),
    timeElement(message.created_at),
  );
  const tools = toolsBlock(message.tools_used || []);
  const buttons = [copyButton(() => node.rawText)];
  if (state.undoAvailable && message.reply_to_message_id && changedFiles(message.tools_used)) {
    buttons.push(undoButton(message.reply_to_message_id));
  }
  node.append(meta, body, tools, actionBar(...buttons));
  return node;
}

function changedFiles(tools) {
  return (tools || []).some((t) => WRITING_TOOLS.has(t.name) && !t.is_error);
}

function undoButton(messageId) {
  return el("button", {
    type: "button",
    class: "undo",
    text: "Undo",
    "aria-label": "Undo the changes of this answer",
    onclick: async () => {
      try {
        const result = await api("POST", `/api/messages/${encodeURIComponent(messageId)}/undo`, {});
        notice(result.detail || "Undone");
      } catch (error) {
        notice(error.message);
      }
    },
  });
}

function systemMessage(message, title) {
  const heading = title ? `Retrospection: ${title}` : "System";
  const body = el("div", { class: "msg-body markdown" });
  renderMarkdown(body, message.content);
  const node = el(
    "article",
    { class: `msg system${title !== undefined ? " retrospection" : ""}`, "aria-label": heading },
    el("div", { class: "msg-meta" }, el("span", { class: "who", text: heading }), timeElement(message.created_at)),
    body,
  );
  node.rawText = message.content;
  node.append(actionBar(copyButton(() => node.rawText)));
  return node;
}

function messageNode(message, conversation) {
  if (message.role === "user") {
    if (message.message_id && message.state) state.messageStates.set(message.message_id, stateOf(message));
    return userMessage(message);
  }
  if (message.role === "assistant") {
    if (message.kind === "refusal") return refusalMessage(message.reply_to_message_id, message.content, message.created_at);
    if (message.kind === "update" || message.kind === "question") {
      return agentMessageNode(message.reply_to_message_id, message.content, message.kind === "question", message.created_at);
    }
    return assistantMessage(message);
  }
  if (message.kind === "retrospection") {
    return systemMessage(message, (conversation && conversation.title) || retrospectionTitle(message));
  }
  const retro = /^#*\s*retrospection/i.test(message.content || "");
  return systemMessage(message, retro ? retrospectionTitle(message) : undefined);
}

// A refusal: Claude declined the request. Shown as such, never as an answer.
function refusalMessage(messageId, text, createdAt) {
  const body = el("div", { class: "msg-body plain", text });
  const node = el(
    "article",
    { class: "msg refusal", "aria-label": "Refused", dataset: { replyTo: messageId || "", refusal: "true" } },
    el(
      "div",
      { class: "msg-meta" },
      el("span", { class: "who", text: "Assistant" }),
      el("span", { class: "badge refused", text: "refused" }),
      timeElement(createdAt),
    ),
    body,
  );
  node.rawText = text;
  node.append(actionBar(copyButton(() => node.rawText)));
  return node;
}

function retrospectionTitle(message) {
  const first = (message.content || "").split("\n")[0].replace(/^#+\s*/, "").replace(/^retrospection:\s*/i, "");
  return first.slice(0, 120) || "conversation";
}

// ------------------------------------------------------------------ conversations

function conversationSection(conversation) {
  const section = el("section", { class: "conversation", dataset: { id: conversation.id || "" } });
  section.dataset.active = conversation.active ? "true" : "false";
  const title = conversation.title || (conversation.active ? "Current conversation" : "Conversation");
  const heading = el("h2", { text: title });
  const when = el("span", { class: "when" }, timeElement(conversation.started_at));
  section.append(el("header", { class: "boundary" }, heading, when), el("div", { class: "messages" }));
  section.setAttribute("aria-label", title);
  for (const message of conversation.messages || []) section.lastChild.append(messageNode(message, conversation));
  return section;
}

function sections() {
  return Array.from(document.querySelectorAll("#conversations > section.conversation"));
}

function activeMessages() {
  const all = sections();
  let last = all[all.length - 1];
  if (!last || last.dataset.active !== "true") {
    last = conversationSection({ id: "", active: true, started_at: new Date().toISOString() });
    $("#conversations").append(last);
  }
  return last.querySelector(".messages");
}

// `keepLive`: messages shown live but not in the fetched history yet (still being
// processed) stay; after a clear nothing stays.
async function loadHistory(keepLive = true) {
  const page = await api("GET", `/api/conversations?limit=${HISTORY_PAGE}&messages=true`);
  const container = $("#conversations");
  const live = keepLive ? container.querySelectorAll(".msg") : [];
  container.replaceChildren(...page.conversations.slice().reverse().map(conversationSection));
  // Messages that arrived while the page loaded (not yet in the fetched history) stay.
  for (const node of live) {
    const id = node.dataset.messageId || node.dataset.replyTo;
    if (id && !container.querySelector(`[data-message-id="${cssEscape(id)}"], [data-reply-to="${cssEscape(id)}"]`)) {
      activeMessages().append(node);
    }
  }
  state.nextBefore = page.next_before;
  updateOlder();
  applyAllStates();
  refreshBadges();
  scrollToBottom(true);
}

async function loadOlder() {
  if (state.loadingOlder || !state.nextBefore) return;
  state.loadingOlder = true;
  try {
    const page = await api(
      "GET",
      `/api/conversations?limit=${HISTORY_PAGE}&messages=true&before=${encodeURIComponent(state.nextBefore)}`,
    );
    const box = log();
    const fromBottom = box.scrollHeight - box.scrollTop;
    const container = $("#conversations");
    for (const conversation of page.conversations) {
      if (!container.querySelector(`section[data-id="${cssEscape(conversation.id)}"]`)) {
        container.prepend(conversationSection(conversation));
      }
    }
    applyAllStates();
    box.scrollTop = box.scrollHeight - fromBottom;
    state.nextBefore = page.next_before;
  } catch (error) {
    notice(`Could not load older conversations: ${error.message}`);
  } finally {
    state.loadingOlder = false;
    updateOlder();
  }
}

function updateOlder() {
  $("#load-older").hidden = !state.nextBefore;
  $("#history-start").hidden = state.nextBefore !== null || sections().length === 0;
}

// Reconcile the newest conversation with the server after an answer: its id, whether it is
// still active, and a boundary where a new conversation began.
async function syncActive(messageId) {
  let page;
  try {
    page = await api("GET", "/api/conversations?limit=2");
  } catch {
    return;
  }
  const newest = page.conversations[0];
  if (!newest) return;
  const all = sections();
  const last = all[all.length - 1];
  if (!last) return;
  if (!last.dataset.id) {
    last.dataset.id = newest.id;
  } else if (last.dataset.id !== newest.id && messageId) {
    // A new conversation began with this message: move it (and what follows) into one.
    const first = findUser(messageId);
    if (first && last.contains(first)) {
      const fresh = conversationSection({ ...newest, messages: [] });
      const target = fresh.querySelector(".messages");
      let node = first;
      while (node) {
        const next = node.nextSibling;
        target.append(node);
        node = next;
      }
      last.dataset.active = "false";
      $("#conversations").append(fresh);
    }
  }
  const current = sections();
  const tail = current[current.length - 1];
  if (tail && tail.dataset.id === newest.id) tail.dataset.active = newest.active ? "true" : "false";
  for (const conversation of page.conversations) {
    const section = document.querySelector(`section[data-id="${cssEscape(conversation.id)}"]`);
    if (section && conversation.title) {
      section.querySelector(".boundary h2").textContent = conversation.title;
      section.setAttribute("aria-label", conversation.title);
    }
    if (section && !conversation.active) section.dataset.active = "false";
  }
}

// ------------------------------------------------------------------ working state

function setQueue(processing, queued) {
  state.processing = processing || null;
  state.queued = new Set(queued || []);
  refreshBadges();
  refreshWorking();
}

// ------------------------------------------------------------------ message states

const WAITING_STATES = new Set(["waiting_for_key", "retry_scheduled", "failed", "refused"]);

function stateOf(source) {
  return { state: source.state, next_attempt_at: source.next_attempt_at || null, error: source.error || null };
}

function stateLabel(st) {
  switch (st.state) {
    case "waiting_for_key":
      return "waiting for an API key";
    case "retry_scheduled":
      return st.next_attempt_at ? `failed, next try at ${clockTime(st.next_attempt_at)}` : "failed, will be tried again";
    case "processing":
      return "processing";
    default:
      return st.state;
  }
}

function setMessageState(messageId, st) {
  if (!messageId) return;
  if (!st || !st.state || st.state === "done") state.messageStates.delete(messageId);
  else state.messageStates.set(messageId, stateOf(st));
  applyState(messageId);
  // A message that is no longer queued or processing leaves the page idle: never a stuck
  // "Working…" (e.g. Process again while no key is set).
  const now = state.messageStates.get(messageId);
  if (now && WAITING_STATES.has(now.state) && (state.processing === messageId || state.queued.has(messageId))) {
    dropStream(messageId);
    finish(messageId);
  }
}

function applyAllStates() {
  for (const node of document.querySelectorAll(".msg.user")) applyState(node.dataset.messageId);
}

// The user's message shows its state (badge) and, while it waits after a failure, what the
// user was told, with "Process again".
function applyState(messageId) {
  if (!messageId) return;
  const st = state.messageStates.get(messageId);
  const user = findUser(messageId);
  if (user) {
    let badge = user.querySelector(".badge.state");
    const shown = st && st.state !== "queued" ? st : null; // queued: refreshBadges owns it
    if (shown) {
      if (!badge) {
        badge = el("span", { class: "badge state" });
        user.querySelector(".msg-meta").append(badge);
      }
      badge.className = `badge state ${shown.state.replaceAll("_", "-")}`;
      badge.textContent = stateLabel(shown);
      badge.dataset.state = shown.state;
    } else if (badge) {
      badge.remove();
    }
  }
  let note = document.querySelector(`.msg.error-note[data-state-of="${cssEscape(messageId)}"]`);
  const refusalShown = st && st.state === "refused" && findRefusal(messageId);
  if (st && WAITING_STATES.has(st.state) && st.error && !refusalShown) {
    if (!note) {
      note = failureNote(messageId);
      if (user) lastOfExchange(user).after(note);
      else activeMessages().append(note);
    }
    note.querySelector(".note-text").textContent = st.error;
    note.dataset.state = st.state;
  } else if (note) {
    note.remove();
  }
}

function findRefusal(messageId) {
  return document.querySelector(`.msg.refusal[data-reply-to="${cssEscape(messageId)}"]`);
}

function failureNote(messageId) {
  return el(
    "div",
    { class: "msg error-note", role: "alert", dataset: { replyTo: messageId, stateOf: messageId } },
    el("span", { class: "note-text" }),
    el("button", {
      type: "button",
      class: "plain process-again",
      text: "Process again",
      onclick: () => processAgain(messageId),
    }),
  );
}

async function processAgain(messageId) {
  try {
    const result = await api("POST", `/api/inbox/${encodeURIComponent(messageId)}/process`, {});
    if (result.state) setMessageState(messageId, result);
    notice(result.state === "waiting_for_key" ? "Waiting for an API key: set one in Settings." : "Queued again");
  } catch (error) {
    notice(error.message);
  }
  refreshInboxCount();
}

function refreshBadges() {
  for (const node of document.querySelectorAll(".msg.user")) {
    const id = node.dataset.messageId;
    const waiting = id && state.queued.has(id);
    let badge = node.querySelector(".badge.queued");
    if (waiting && !badge) {
      badge = el("span", { class: "badge queued", text: "queued" });
      node.querySelector(".msg-meta").append(badge);
    } else if (!waiting && badge) {
      badge.remove();
    }
  }
}

function refreshWorking() {
  const working = state.processing !== null;
  $("#typing").hidden = !working;
  const send = $("#send");
  send.textContent = working ? "Stop" : "Send";
  send.classList.toggle("stop", working);
  if (working) scrollToBottom();
}

function finish(messageId) {
  if (state.processing === messageId) state.processing = null;
  state.queued.delete(messageId);
  refreshBadges();
  refreshWorking();
}

// ------------------------------------------------------------------ streaming

function ensureAnswer(messageId) {
  let node = findAnswer(messageId);
  if (!node) {
    node = assistantMessage({ content: "", reply_to_message_id: messageId, tools_used: [], created_at: null });
    node.classList.add("streaming");
    node.setAttribute("aria-busy", "true");
    const user = findUser(messageId);
    if (user && user.parentNode) {
      let after = user;
      while (after.nextSibling && after.nextSibling.dataset && after.nextSibling.dataset.replyTo === messageId) {
        after = after.nextSibling;
      }
      after.after(node);
    } else {
      activeMessages().append(node);
    }
  }
  if (!state.streams.has(messageId)) {
    state.streams.set(messageId, { text: "", turnStart: 0, frame: 0, tools: [] });
  }
  if (state.processing !== messageId) {
    state.processing = messageId;
    state.queued.delete(messageId);
    refreshBadges();
    refreshWorking();
  }
  return node;
}

function scheduleRender(messageId) {
  const stream = state.streams.get(messageId);
  if (!stream || stream.frame) return;
  const paint = () => {
    stream.frame = 0;
    const node = findAnswer(messageId);
    if (!node) return;
    node.rawText = stream.text;
    renderMarkdown(node.querySelector(".msg-body"), stream.text);
    scrollToBottom();
  };
  stream.frame = document.hidden ? setTimeout(paint, 50) : requestAnimationFrame(paint);
}

function onTextDelta(event) {
  ensureAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  stream.text += event.text;
  scheduleRender(event.message_id);
}

function onToolStarted(event) {
  const node = ensureAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  if (stream.text && !stream.text.endsWith("\n\n")) stream.text += "\n\n";
  stream.turnStart = stream.text.length;
  stream.tools.push({ name: event.tool, input_summary: event.input || "", running: true, is_error: false, summary: "" });
  setTools(node.querySelector(".tools"), stream.tools);
  scrollToBottom();
}

function onToolFinished(event) {
  const node = ensureAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  const tool = stream.tools.find((t) => t.running && t.name === event.tool);
  if (tool) Object.assign(tool, { running: false, is_error: !!event.is_error, summary: event.summary || "" });
  setTools(node.querySelector(".tools"), stream.tools);
}

function onResponse(event) {
  const old = findAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  if (stream && stream.frame) cancelAnimationFrame(stream.frame);
  state.streams.delete(event.message_id);
  const open = old ? old.querySelector(".tools").open : false;
  const node = assistantMessage({
    content: event.text,
    reply_to_message_id: event.message_id,
    tools_used: event.tools_used || [],
    created_at: new Date().toISOString(),
  });
  node.querySelector(".tools").open = open;
  if (old) old.replaceWith(node);
  else {
    const user = findUser(event.message_id);
    if (user) lastOfExchange(user).after(node);
    else activeMessages().append(node);
  }
  setMessageState(event.message_id, null);
  finish(event.message_id);
  scrollToBottom();
  syncActive(event.message_id);
  refreshInboxSoon();
}

function lastOfExchange(user) {
  let last = user;
  const id = user.dataset.messageId;
  while (last.nextSibling && last.nextSibling.dataset && last.nextSibling.dataset.replyTo === id) last = last.nextSibling;
  return last;
}

function dropStream(messageId) {
  const stream = state.streams.get(messageId);
  if (stream && stream.frame) cancelAnimationFrame(stream.frame);
  state.streams.delete(messageId);
  const node = findAnswer(messageId);
  if (node && node.classList.contains("streaming")) node.remove();
}

function onCancelled(event) {
  dropStream(event.message_id);
  const user = findUser(event.message_id);
  if (user && !user.querySelector(".badge.stopped")) {
    user.querySelector(".msg-meta").append(el("span", { class: "badge stopped", text: "stopped" }));
  }
  finish(event.message_id);
}

function onError(event) {
  const id = event.message_id;
  dropStream(id);
  const user = id ? findUser(id) : null;
  const text = event.message || "Something went wrong.";
  if (user && event.code === "refused") {
    if (!findRefusal(id)) lastOfExchange(user).after(refusalMessage(id, text, new Date().toISOString()));
    const known = state.messageStates.get(id);
    setMessageState(id, { state: "refused", error: text, ...(known && known.state === "refused" ? known : {}) });
  } else if (user) {
    // The message's state (message_state) says the rest: waiting for a key, next try, failed.
    const known = state.messageStates.get(id);
    if (known && WAITING_STATES.has(known.state)) setMessageState(id, { ...known, error: text });
    else setMessageState(id, { state: event.code === "no_api_key" ? "waiting_for_key" : "failed", error: text });
  } else {
    const note = el(
      "div",
      { class: "msg error-note", role: "alert", dataset: { replyTo: id || "" } },
      el("span", { class: "note-text", text }),
    );
    activeMessages().append(note);
  }
  if (event.code === "no_api_key") showBanner("no-key");
  finish(id);
  scrollToBottom();
  refreshInboxSoon();
}

function onMessageReceived(event) {
  if (findUser(event.message_id)) return;
  const node = userMessage({
    content: event.text,
    message_id: event.message_id,
    source: event.source,
    input_method: event.input_method,
    created_at: event.timestamp || null,
  });
  activeMessages().append(node);
  refreshBadges();
  scrollToBottom(event.source === "chat");
}

// A message the agent sent mid-task (send_message): live, and from the history after a reload.
function agentMessageNode(messageId, text, isQuestion, createdAt) {
  const node = el(
    "article",
    {
      class: `msg agent-message${isQuestion ? " question" : ""}`,
      "aria-label": isQuestion ? "Question from the assistant" : "Message from the assistant",
      dataset: { replyTo: messageId || "" },
    },
    el(
      "div",
      { class: "msg-meta" },
      el("span", { class: "who", text: "Assistant" }),
      isQuestion ? el("span", { class: "badge question", text: "Question" }) : null,
      timeElement(createdAt),
    ),
  );
  const body = el("div", { class: "msg-body markdown" });
  renderMarkdown(body, text);
  node.rawText = text;
  node.append(body, actionBar(copyButton(() => node.rawText)));
  return node;
}

function onAgentMessage(event) {
  const node = agentMessageNode(event.message_id, event.text, event.is_question, null);
  const answer = findAnswer(event.message_id);
  const user = findUser(event.message_id);
  if (answer) answer.before(node);
  else if (user) lastOfExchange(user).after(node);
  else activeMessages().append(node);
  scrollToBottom();
}

function onRetrospection(event) {
  const node = systemMessage({ content: event.text || "", created_at: event.created_at || null }, event.title || "conversation");
  activeMessages().append(node);
  scrollToBottom();
}

// ------------------------------------------------------------------ edit and fork

function startEdit(node) {
  if (node.querySelector(".edit-box")) return;
  const body = node.querySelector(".msg-body");
  const area = el("textarea", { "aria-label": "Edit message" });
  area.value = node.rawText;
  const cancel = () => {
    box.remove();
    body.hidden = false;
    node.querySelector(".actions").hidden = false;
    node.querySelector("button.edit")?.focus();
  };
  const submit = async () => {
    const text = area.value;
    if (!text.trim()) return;
    // The message and everything after it become an archived branch: no longer shown.
    // Taken now: the edited message may arrive (and be appended) before the reply does.
    const archived = [];
    for (let next = node; next; next = next.nextSibling) archived.push(next);
    try {
      await api("POST", `/api/messages/${encodeURIComponent(node.dataset.messageId)}/fork`, { text });
    } catch (error) {
      notice(error.message);
      return;
    }
    for (const old of archived) old.remove();
  };
  const box = el(
    "div",
    { class: "edit-box" },
    area,
    el(
      "div",
      { class: "edit-actions" },
      el("button", { type: "button", class: "plain", text: "Cancel", onclick: cancel }),
      el("button", { type: "button", class: "primary", text: "Send edit", onclick: submit }),
    ),
  );
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  body.hidden = true;
  node.querySelector(".actions").hidden = true;
  body.after(box);
  area.focus();
}

// ------------------------------------------------------------------ composer

async function sendMessage() {
  const box = $("#message");
  const text = box.value;
  if (!text.trim()) return;
  box.disabled = true;
  try {
    const { id } = await api("POST", "/api/messages", { text });
    box.value = "";
    autosize();
    if (!findUser(id)) {
      onMessageReceived({ message_id: id, text, source: "chat", input_method: "typed", timestamp: new Date().toISOString() });
    }
    state.stickToBottom = true;
    scrollToBottom(true);
  } catch (error) {
    notice(`Not sent: ${error.message}`);
  } finally {
    box.disabled = false;
    box.focus();
  }
}

async function stop() {
  const button = $("#send");
  button.disabled = true;
  try {
    await api("POST", "/api/cancel", {});
  } catch (error) {
    notice(`Could not stop: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function autosize() {
  const box = $("#message");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

function insertAtCursor(box, text) {
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? start;
  const before = box.value.slice(0, start);
  const pad = before && !/\s$/.test(before) ? " " : "";
  box.setRangeText(pad + text, start, end, "end");
  box.dispatchEvent(new Event("input"));
}

function setupComposer() {
  const form = $("#composer");
  const box = $("#message");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // Only the button submits (Enter is handled below): it is Stop while the agent works.
    if (state.processing !== null) stop();
    else sendMessage();
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  box.addEventListener("input", autosize);
  box.addEventListener("dragover", (event) => event.preventDefault());
  box.addEventListener("drop", (event) => {
    const paths = droppedPaths(event.dataTransfer, state.vault);
    if (!paths.length) return;
    event.preventDefault();
    insertAtCursor(box, paths.join(" "));
    box.focus();
  });
}

// ------------------------------------------------------------------ header: status, model

// SmartHole simply not running (nothing listens at its address) is the normal case for a
// user without it: a quiet grey "not running", with the way to turn the connection off.
// Red stays for real problems (a refused registration, a broken connection).
function smartHoleAbsent(status, detail) {
  return status === "disconnected" && /^cannot reach SmartHole\b/.test(detail || "");
}

function setSmartHole(status, detail) {
  const pill = $("#smarthole-status");
  const absent = smartHoleAbsent(status, detail);
  pill.dataset.status = absent ? "absent" : status;
  pill.querySelector(".status-text").textContent = absent ? "SmartHole: not running (retrying)" : `SmartHole: ${status}`;
  const hint = pill.querySelector(".status-hint");
  hint.hidden = !absent;
  pill.title = absent
    ? `${detail}. Not using SmartHole? Turn off "Connect to SmartHole" in Settings.`
    : detail || "";
}

async function loadModels() {
  const select = $("#model");
  try {
    const data = await api("GET", "/api/models");
    select.replaceChildren(
      ...data.models.map((m) => el("option", { value: m.id, text: m.display_name === m.id ? m.id : `${m.display_name}` })),
    );
    select.value = data.current;
    select.title = data.source === "api" ? "Models your Anthropic account offers" : "Built-in list (the Models API was not reachable)";
    select.disabled = false;
    const list = $("#model-options");
    if (list) list.replaceChildren(...data.models.map((m) => el("option", { value: m.id })));
  } catch (error) {
    notice(`Could not load the models: ${error.message}`);
  }
}

function setupModel() {
  const select = $("#model");
  let previous = select.value;
  select.addEventListener("focus", () => (previous = select.value));
  select.addEventListener("change", async () => {
    const model = select.value;
    try {
      await api("PUT", "/api/settings", { model });
      previous = model;
      notice(`Model: ${model} (applies to the next message)`);
    } catch (error) {
      select.value = previous;
      notice(`Model not changed: ${error.message}`);
    }
  });
}

function showBanner(kind) {
  const banner = $("#banner");
  if (banner.dataset.kind === "no-access" && kind !== "no-access") return;
  banner.dataset.kind = kind || "";
  if (kind === "no-access") {
    banner.replaceChildren(
      el("span", {
        text: "This page lost its access (the service restarted with a new token?). Open the address smarthole-notes serve printed.",
      }),
    );
    banner.hidden = false;
  } else if (kind === "no-key") {
    banner.replaceChildren(
      el("span", { text: "No Anthropic API key is set: messages are kept until one is." }),
      el("button", { type: "button", class: "plain", text: "Open Settings", onclick: openSettings }),
    );
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

// ------------------------------------------------------------------ inbox

let inboxTimer = 0;
function refreshInboxSoon() {
  // The pipeline cleans the inbox up just after it reports: look a moment later.
  clearTimeout(inboxTimer);
  inboxTimer = setTimeout(refreshInboxCount, 400);
}

async function refreshInboxCount() {
  try {
    const data = await api("GET", "/api/inbox");
    const waiting = data.messages.filter((m) => WAITING_STATES.has(m.state)).length;
    const count = $("#inbox-count");
    count.textContent = String(waiting);
    count.hidden = waiting === 0;
    $("#inbox-button").setAttribute("aria-label", waiting ? `Inbox, ${waiting} waiting` : "Inbox");
    if ($("#inbox-dialog").open) renderInbox(data.messages);
  } catch {
    /* the count is a hint; the dialog shows errors */
  }
}

function renderInbox(messages) {
  const list = $("#inbox-list");
  list.replaceChildren(
    ...messages.map((m) =>
      el(
        "li",
        { class: "inbox-item", dataset: { id: m.id } },
        el(
          "div",
          { class: "msg-meta" },
          el("span", {
            class: `badge state ${m.state.replaceAll("_", "-")}`,
            text: m.state === "processing" ? "processing now" : stateLabel(m),
          }),
          el("span", { class: "source", text: m.source === "smarthole" ? `SmartHole (${m.input_method})` : "chat" }),
          timeElement(m.timestamp || null),
          m.attempts ? el("span", { text: `${m.attempts} attempt${m.attempts === 1 ? "" : "s"}` }) : null,
        ),
        el("div", { class: "inbox-text", text: m.text }),
        m.error ? el("p", { class: "inbox-error", text: m.error }) : null,
        el("button", {
          type: "button",
          text: "Process again",
          disabled: m.state === "processing" || m.state === "queued" || undefined,
          onclick: async (event) => {
            event.target.disabled = true;
            await processAgain(m.id);
          },
        }),
      ),
    ),
  );
  $("#inbox-empty").hidden = messages.length > 0;
}

async function openInbox() {
  const dialog = $("#inbox-dialog");
  if (!dialog.open) dialog.showModal();
  try {
    const data = await api("GET", "/api/inbox");
    renderInbox(data.messages);
  } catch (error) {
    notice(error.message);
  }
}

// ------------------------------------------------------------------ settings

const FIELDS = [
  { legend: "Agent" },
  { key: "model", label: "Model ID", type: "text", list: "model-options", hint: "The model for the agent; the header's selector sets it too." },
  { key: "information_architecture", label: "Information architecture", type: "textarea", hint: "How you want the vault organised: guidance for the agent." },
  { key: "stream_idle_timeout_seconds", label: "Stream idle timeout (seconds)", type: "number", step: "any", hint: "A silent stream is abandoned and retried after this long." },
  {
    key: "retry_failed_messages_minutes",
    label: "Automatic retries (minutes)",
    type: "list",
    hint: "When a message that failed for a transient reason (Anthropic overloaded, rate limited, a server or network error) is tried again, in minutes after its previous failure, e.g. 1, 5, 15, 60, 240. After the last it waits for you.",
  },
  { key: "verbose_logging", label: "Verbose logging", type: "checkbox" },
  { legend: "SmartHole" },
  { key: "enable_smarthole_connection", label: "Connect to SmartHole", type: "checkbox" },
  { key: "smarthole_url", label: "SmartHole address", type: "text", hint: "For example ws://127.0.0.1:9473" },
  { key: "client_name", label: "Client name", type: "text", hint: "The name this service registers with SmartHole." },
  { key: "routing_description", label: "Routing description", type: "textarea", generate: true, hint: "What SmartHole's router is told this client handles." },
  { legend: "Conversations" },
  { key: "conversation_idle_timeout_minutes", label: "Idle timeout (minutes)", type: "number", hint: "Silence that ends a conversation." },
  { key: "max_conversations_retained", label: "Conversations kept", type: "number" },
  { key: "conversation_state_timeout_minutes", label: "Pending question timeout (minutes)", type: "number" },
  { key: "enable_conversation_retrospection", label: "Reflect on each ended conversation (retrospection)", type: "checkbox" },
  { key: "retrospection_prompt", label: "Retrospection prompt", type: "textarea" },
  { legend: "Git" },
  { key: "enable_git_version_control", label: "Version the vault with git", type: "checkbox" },
  { key: "auto_commit_after_processing", label: "Commit after each processed message", type: "checkbox" },
];

function buildSettingsForm() {
  const container = $("#settings-fields");
  let fieldset = null;
  for (const field of FIELDS) {
    if (field.legend) {
      fieldset = el("fieldset", {}, el("legend", { text: field.legend }));
      container.append(fieldset);
      continue;
    }
    const id = `setting-${field.key}`;
    const hintId = field.hint ? `${id}-hint` : null;
    const errorId = `${id}-error`;
    const describedBy = [hintId, errorId].filter(Boolean).join(" ");
    let input;
    if (field.type === "textarea") {
      input = el("textarea", { id, name: field.key, "aria-describedby": describedBy, spellcheck: "true" });
    } else {
      input = el("input", {
        id,
        name: field.key,
        type: field.type === "list" ? "text" : field.type,
        inputmode: field.type === "list" ? "decimal" : undefined,
        step: field.step,
        list: field.list,
        "aria-describedby": describedBy,
        spellcheck: field.type === "text" ? "false" : undefined,
      });
    }
    input.dataset.key = field.key;
    if (field.type === "list") input.dataset.list = "true";
    const wrapper = el("div", { class: `field${field.type === "checkbox" ? " check" : ""}`, dataset: { key: field.key } });
    if (field.type === "checkbox") wrapper.append(el("label", { for: id }, input, el("span", { text: field.label })));
    else wrapper.append(el("label", { for: id, text: field.label }), input);
    if (field.hint) wrapper.append(el("p", { id: hintId, class: "hint", text: field.hint }));
    if (field.generate) {
      const status = el("span", { class: "hint", role: "status" });
      wrapper.append(
        el(
          "div",
          { class: "field-actions" },
          el("button", {
            type: "button",
            text: "Generate from information architecture",
            onclick: async (event) => {
              const button = event.currentTarget;
              button.disabled = true;
              status.textContent = "Writing…";
              try {
                const architecture = $("#setting-information_architecture").value;
                const data = await api("POST", "/api/settings/routing-description/generate", {
                  information_architecture: architecture,
                });
                input.value = data.routing_description;
                status.textContent = "Written: review it, then save.";
              } catch (error) {
                status.textContent = error.message;
              } finally {
                button.disabled = false;
              }
            },
          }),
          status,
        ),
      );
    }
    wrapper.append(el("p", { id: errorId, class: "error", hidden: true }));
    fieldset.append(wrapper);
  }
  container.append(el("datalist", { id: "model-options" }));
}

function fillSettings(view) {
  state.settings = view.settings;
  for (const [key, value] of Object.entries(view.settings)) {
    const input = document.getElementById(`setting-${key}`);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = !!value;
    else if (Array.isArray(value)) input.value = value.join(", ");
    else input.value = value;
  }
  // A key whose value in settings.toml is invalid: the form shows the default in effect,
  // marked, and saving writes what is shown.
  state.invalidKeys = Object.keys(view.invalid || {});
  for (const [key, message] of Object.entries(view.invalid || {})) {
    const input = document.getElementById(`setting-${key}`);
    const box = document.getElementById(`setting-${key}-error`);
    if (input) input.setAttribute("aria-invalid", "true");
    if (box) {
      box.textContent = `${message}. Saving writes the value shown.`;
      box.hidden = false;
    }
  }
  const from = view.api_key.source === "environment" ? " (from ANTHROPIC_API_KEY, which takes precedence)" : view.api_key.source === "file" ? " (saved)" : "";
  $("#api-key-status").textContent = view.api_key.status === "set" ? `Set${from}` : "Not set";
  $("#api-key-remove").hidden = view.api_key.source !== "file";
  $("#api-key").value = "";
  const problems = $("#settings-problems");
  problems.textContent = view.problems.join("\n");
  problems.hidden = view.problems.length === 0;
  for (const key of view.overridden || []) {
    const wrapper = document.querySelector(`.field[data-key="${cssEscape(key)}"]`);
    if (wrapper && !wrapper.querySelector(".overridden")) {
      wrapper.append(el("p", { class: "hint overridden", text: "Set by a command-line flag for this run; saving here overrides it." }));
    }
  }
  showBanner(view.api_key.status === "set" ? null : "no-key");
}

function clearFieldErrors() {
  for (const node of document.querySelectorAll("#settings-form .error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of document.querySelectorAll("#settings-form [aria-invalid]")) node.removeAttribute("aria-invalid");
}

// "1, 5, 15" -> [1, 5, 15]; anything unreadable is sent as typed, for the service to explain.
function listValue(text) {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const numbers = parts.map(Number);
  return parts.length && numbers.every((n) => Number.isFinite(n)) ? numbers : text;
}

function changedSettings() {
  const changes = {};
  const invalid = new Set(state.invalidKeys || []);
  for (const [key, old] of Object.entries(state.settings || {})) {
    const input = document.getElementById(`setting-${key}`);
    if (!input) continue;
    let value;
    if (input.type === "checkbox") value = input.checked;
    else if (input.dataset.list) value = listValue(input.value);
    else if (input.type === "number") {
      value = input.value.trim() === "" ? input.value : Number(input.value);
      if (Number.isNaN(value)) value = input.value;
    } else value = input.value;
    if (invalid.has(key) || JSON.stringify(value) !== JSON.stringify(old)) changes[key] = value;
  }
  const key = $("#api-key").value.trim();
  if (key) changes.api_key = key;
  return changes;
}

async function saveSettings(event) {
  event.preventDefault();
  clearFieldErrors();
  const status = $("#settings-status");
  status.classList.remove("error");
  const changes = changedSettings();
  for (const [key, value] of Object.entries(changes)) {
    const input = document.getElementById(`setting-${key}`);
    if (input && input.dataset.list && !Array.isArray(value)) {
      const message = "Enter minutes as numbers separated by commas, such as 1, 5, 15, 60, 240.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      const box = document.getElementById(`setting-${key}-error`);
      box.textContent = message;
      box.hidden = false;
      status.textContent = message;
      status.classList.add("error");
      return;
    }
  }
  if (!Object.keys(changes).length) {
    status.textContent = "Nothing changed.";
    return;
  }
  status.textContent = "Saving…";
  try {
    const view = await api("PUT", "/api/settings", changes);
    fillSettings(view);
    status.textContent = view.warning ? view.warning : "Saved.";
    if ("model" in changes) loadModels();
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
    if (error.key) {
      const input = error.key === "api_key" ? $("#api-key") : document.getElementById(`setting-${error.key}`);
      const box = document.getElementById(`setting-${error.key}-error`);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
      if (box) {
        box.textContent = error.message;
        box.hidden = false;
      }
    }
  }
}

async function openSettings() {
  const dialog = $("#settings-dialog");
  $("#settings-status").textContent = "";
  clearFieldErrors();
  try {
    fillSettings(await api("GET", "/api/settings"));
  } catch (error) {
    notice(error.message);
    return;
  }
  if (!dialog.open) dialog.showModal();
}

function setupSettings() {
  buildSettingsForm();
  $("#settings-form").addEventListener("submit", saveSettings);
  $("#api-key-remove").addEventListener("click", async () => {
    try {
      fillSettings(await api("PUT", "/api/settings", { api_key: null }));
      $("#settings-status").textContent = "Saved key removed.";
    } catch (error) {
      $("#settings-status").textContent = error.message;
    }
  });
  $("#clear-history").addEventListener("click", () => {
    const confirm = $("#confirm-dialog");
    confirm.returnValue = "";
    confirm.showModal();
  });
  $("#confirm-dialog").addEventListener("close", async () => {
    if ($("#confirm-dialog").returnValue !== "confirm") return;
    try {
      await api("POST", "/api/conversations/clear", { confirm: true });
      $("#settings-status").textContent = "Conversation history cleared.";
      await loadHistory(false);
    } catch (error) {
      $("#settings-status").textContent = error.message;
    }
  });
}

// ------------------------------------------------------------------ live events

const HANDLERS = {
  hello(event) {
    setSmartHole(event.smarthole.status, event.smarthole.detail);
    state.vault = event.vault || "";
    const undoChanged = state.undoAvailable !== !!event.undo_available;
    state.undoAvailable = !!event.undo_available;
    state.messageStates = new Map(Object.entries(event.states || {}).map(([id, st]) => [id, stateOf(st)]));
    setQueue(event.processing, event.queued);
    applyAllStates();
    showBanner(event.api_key === "set" ? null : "no-key");
    if (state.hadSocket || undoChanged) loadHistory().catch(() => {});
    state.hadSocket = true;
  },
  message_received: onMessageReceived,
  queued(event) {
    // Alone in the queue of an idle worker: it is being processed already, not waiting.
    if (state.processing === null && event.position <= 1) setQueue(event.message_id, [...state.queued]);
    else if (state.processing !== event.message_id) state.queued.add(event.message_id);
    refreshBadges();
  },
  queue_state(event) {
    setQueue(event.processing, event.queued);
    refreshInboxSoon();
  },
  message_state(event) {
    setMessageState(event.message_id, event);
    refreshInboxSoon();
  },
  agent_message: onAgentMessage,
  text_delta: onTextDelta,
  stream_restarted(event) {
    const stream = state.streams.get(event.message_id);
    if (!stream) return;
    stream.text = stream.text.slice(0, stream.turnStart);
    scheduleRender(event.message_id);
  },
  tool_started: onToolStarted,
  tool_finished: onToolFinished,
  response: onResponse,
  error: onError,
  cancelled: onCancelled,
  status(event) {
    setSmartHole(event.smarthole, event.detail);
  },
  retrospection: onRetrospection,
  settings_changed(event) {
    const keys = event.keys || [];
    if (keys.includes("model")) loadModels();
    if (keys.includes("enable_git_version_control")) {
      api("GET", "/api/status").then((s) => (state.undoAvailable = !!s.undo_available)).catch(() => {});
    }
    if (keys.includes("api_key")) api("GET", "/api/settings").then((v) => showBanner(v.api_key.status === "set" ? null : "no-key")).catch(() => {});
  },
  history_cleared() {
    loadHistory(false).catch(() => {});
  },
};

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/events`);
  socket.addEventListener("open", () => {
    state.socketRetry = 0;
    document.body.dataset.live = "true";
  });
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    const handler = HANDLERS[event.type];
    if (handler) {
      try {
        handler(event);
      } catch (error) {
        console.error("event", event.type, error);
      }
    }
  });
  socket.addEventListener("close", () => {
    document.body.dataset.live = "false";
    setSmartHole("disconnected", "The page lost its connection to smarthole-notes; retrying.");
    // A refused handshake looks like any close: ask the API whether the token still works.
    api("GET", "/api/status").catch(() => {});
    const delay = Math.min(10000, 500 * 2 ** state.socketRetry++);
    setTimeout(connect, delay);
  });
}

// ------------------------------------------------------------------ start

function setupDialogs() {
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  $("#settings-button").addEventListener("click", openSettings);
  $("#smarthole-off").addEventListener("click", async () => {
    await openSettings();
    $("#setting-enable_smarthole_connection")?.focus();
  });
  $("#inbox-button").addEventListener("click", openInbox);
}

function setupScrolling() {
  const box = log();
  state.stickToBottom = true;
  box.addEventListener("scroll", () => {
    state.stickToBottom = nearBottom();
  });
  $("#load-older").addEventListener("click", loadOlder);
  const observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting) && state.nextBefore && box.scrollHeight > box.clientHeight) loadOlder();
    },
    { root: box, rootMargin: "200px 0px 0px 0px" },
  );
  observer.observe($("#older-sentinel"));
}

async function start() {
  setupComposer();
  setupModel();
  setupSettings();
  setupDialogs();
  setupScrolling();
  refreshWorking();
  connect();
  await Promise.allSettled([loadHistory(), loadModels(), refreshInboxCount()]);
  document.body.dataset.ready = "true";
  $("#message").focus();
}

start();
