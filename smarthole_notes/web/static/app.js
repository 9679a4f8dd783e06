// SmartHole Notes chat page. Plain ES modules, no build step: this one starts the page; each
// part of it lives in a module of its own, and the state they share is in state.js.
import { setupComposer } from "./composer.js";
import { loadHistory, loadOlder } from "./conversations.js";
import { $, log, nearBottom } from "./dom.js";
import { loadModels, setupModel } from "./header.js";
import { openInbox, refreshInboxCount } from "./inbox.js";
import { connect } from "./live.js";
import { openSettings, setupSettings } from "./settings.js";
import { state } from "./state.js";
import { refreshWorking } from "./states.js";

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
  const settingsForm = setupSettings();
  setupDialogs();
  setupScrolling();
  refreshWorking();
  connect();
  await Promise.allSettled([settingsForm, loadHistory(), loadModels(), refreshInboxCount()]);
  document.body.dataset.ready = "true";
  $("#message").focus();
}

start();
