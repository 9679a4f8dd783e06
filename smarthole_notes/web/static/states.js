// The working state (what is processing, what is queued) and each waiting message's state.
import { api } from "./api.js";
import { activeMessages } from "./conversations.js";
import { $, clockTime, cssEscape, el, findUser, notice, scrollToBottom } from "./dom.js";
import { refreshInboxCount } from "./inbox.js";
import { WAITING_STATES, state } from "./state.js";
import { dropStream, lastOfExchange } from "./streaming.js";

// ------------------------------------------------------------------ working state

export function setQueue(processing, queued) {
  state.processing = processing || null;
  state.queued = new Set(queued || []);
  refreshBadges();
  refreshWorking();
}

// ------------------------------------------------------------------ message states

export function stateOf(source) {
  return { state: source.state, next_attempt_at: source.next_attempt_at || null, error: source.error || null };
}

export function stateLabel(st) {
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

export function setMessageState(messageId, st) {
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

export function applyAllStates() {
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

export function findRefusal(messageId) {
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

export async function processAgain(messageId) {
  try {
    const result = await api("POST", `/api/inbox/${encodeURIComponent(messageId)}/process`, {});
    if (result.state) setMessageState(messageId, result);
    notice(result.state === "waiting_for_key" ? "Waiting for an API key: set one in Settings." : "Queued again");
  } catch (error) {
    notice(error.message);
  }
  refreshInboxCount();
}

export function refreshBadges() {
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

export function refreshWorking() {
  const working = state.processing !== null;
  $("#typing").hidden = !working;
  const send = $("#send");
  send.textContent = working ? "Stop" : "Send";
  send.classList.toggle("stop", working);
  if (working) scrollToBottom();
}

export function finish(messageId) {
  if (state.processing === messageId) state.processing = null;
  state.queued.delete(messageId);
  refreshBadges();
  refreshWorking();
}
