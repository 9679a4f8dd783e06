// Answers as they stream: text, tools, the agent's mid-task messages, the final response,
// errors and Stop.
import { renderMarkdown } from "./markdown.js";
import { activeMessages, syncActive } from "./conversations.js";
import { el, findAnswer, findUser, scrollToBottom, timeElement } from "./dom.js";
import { showBanner } from "./header.js";
import { refreshInboxSoon } from "./inbox.js";
import { actionBar, assistantMessage, copyButton, refusalMessage, setRequestCost, setTools, systemMessage, updateTotal, userMessage } from "./messages.js";
import { WAITING_STATES, state } from "./state.js";
import { findRefusal, finish, refreshBadges, refreshWorking, setMessageState } from "./states.js";

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

export function scheduleRender(messageId) {
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

export function onTextDelta(event) {
  ensureAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  stream.text += event.text;
  scheduleRender(event.message_id);
}

export function onToolStarted(event) {
  const node = ensureAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  if (stream.text && !stream.text.endsWith("\n\n")) stream.text += "\n\n";
  stream.turnStart = stream.text.length;
  stream.tools.push({ name: event.tool, input_summary: event.input || "", running: true, is_error: false, summary: "" });
  setTools(node.querySelector(".tools"), stream.tools);
  scrollToBottom();
}

export function onToolFinished(event) {
  const node = ensureAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  const tool = stream.tools.find((t) => t.running && t.name === event.tool);
  if (tool) Object.assign(tool, { running: false, is_error: !!event.is_error, summary: event.summary || "" });
  setTools(node.querySelector(".tools"), stream.tools);
}

export function onResponse(event) {
  const old = findAnswer(event.message_id);
  const stream = state.streams.get(event.message_id);
  if (stream && stream.frame) cancelAnimationFrame(stream.frame);
  state.streams.delete(event.message_id);
  const open = old ? old.querySelector(".tools").open : false;
  const node = assistantMessage({
    content: event.text,
    reply_to_message_id: event.message_id,
    tools_used: event.tools_used || [],
    usage: event.usage || null,
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
  updateTotal(node.closest("section.conversation"));
  scrollToBottom();
  syncActive(event.message_id);
  refreshInboxSoon();
}

export function lastOfExchange(user) {
  let last = user;
  const id = user.dataset.messageId;
  while (last.nextSibling && last.nextSibling.dataset && last.nextSibling.dataset.replyTo === id) last = last.nextSibling;
  return last;
}

export function dropStream(messageId) {
  const stream = state.streams.get(messageId);
  if (stream && stream.frame) cancelAnimationFrame(stream.frame);
  state.streams.delete(messageId);
  const node = findAnswer(messageId);
  if (node && node.classList.contains("streaming")) node.remove();
}

export function onRequestCost(event) {
  const user = findUser(event.message_id);
  if (!user) return;
  setRequestCost(user, event.usage);
  updateTotal(user.closest("section.conversation"));
}

export function onCancelled(event) {
  dropStream(event.message_id);
  const user = findUser(event.message_id);
  if (user && !user.querySelector(".badge.stopped")) {
    user.querySelector(".msg-meta").append(el("span", { class: "badge stopped", text: "stopped" }));
  }
  finish(event.message_id);
}

export function onError(event) {
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

export function onMessageReceived(event) {
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
export function agentMessageNode(messageId, text, isQuestion, createdAt) {
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

export function onAgentMessage(event) {
  const node = agentMessageNode(event.message_id, event.text, event.is_question, null);
  const answer = findAnswer(event.message_id);
  const user = findUser(event.message_id);
  if (answer) answer.before(node);
  else if (user) lastOfExchange(user).after(node);
  else activeMessages().append(node);
  scrollToBottom();
}

export function onRetrospection(event) {
  const node = systemMessage({ content: event.text || "", created_at: event.created_at || null }, event.title || "conversation");
  activeMessages().append(node);
  scrollToBottom();
}
