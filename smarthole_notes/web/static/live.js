// The live WebSocket: a hello snapshot, then one handler per event type.
import { api } from "./api.js";
import { loadHistory, onSideCost } from "./conversations.js";
import { $ } from "./dom.js";
import { loadModels, setSmartHole, showBanner } from "./header.js";
import { refreshInboxSoon } from "./inbox.js";
import { state } from "./state.js";
import { applyAllStates, refreshBadges, setMessageState, setQueue, stateOf } from "./states.js";
import { onAgentMessage, onCancelled, onError, onMessageReceived, onRequestCost, onResponse, onRetrospection, onTextDelta, onToolFinished, onToolStarted, scheduleRender } from "./streaming.js";

// ------------------------------------------------------------------ live events

const HANDLERS = {
  hello(event) {
    setSmartHole(event.smarthole.status, event.smarthole.detail);
    state.vault = event.vault || "";
    const undoChanged = state.undoAvailable !== !!event.undo_available;
    state.undoAvailable = !!event.undo_available;
    state.writingTools = new Set(event.writing_tools || []);
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
  request_cost: onRequestCost,
  side_cost: onSideCost,
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

export function connect() {
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
