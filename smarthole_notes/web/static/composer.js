// The composer: send, Stop, autosize, dropped file paths.
import { droppedPaths } from "./paths.js";
import { api } from "./api.js";
import { $, findUser, notice, scrollToBottom } from "./dom.js";
import { state } from "./state.js";
import { onMessageReceived } from "./streaming.js";

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

export function setupComposer() {
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
