// The header: SmartHole's status, the model selector, and the banner.
import { api } from "./api.js";
import { $, el, notice } from "./dom.js";
import { openSettings } from "./settings.js";

// ------------------------------------------------------------------ header: status, model

// SmartHole simply not running (nothing listens at its address) is the normal case for a
// user without it: a quiet grey "not running", with the way to turn the connection off.
// Red stays for real problems (a refused registration, a broken connection).
function smartHoleAbsent(status, detail) {
  return status === "disconnected" && /^cannot reach SmartHole\b/.test(detail || "");
}

// Its retries ("connecting") keep the quiet "not running" rather than flashing between the two.
let absentDetail = null;

export function setSmartHole(status, detail) {
  const pill = $("#smarthole-status");
  if (smartHoleAbsent(status, detail)) absentDetail = detail;
  else if (status !== "connecting") absentDetail = null;
  const absent = absentDetail !== null;
  if (absent) detail = absentDetail;
  pill.dataset.status = absent ? "absent" : status;
  pill.querySelector(".status-text").textContent = absent ? "SmartHole: not running (retrying)" : `SmartHole: ${status}`;
  const hint = pill.querySelector(".status-hint");
  hint.hidden = !absent;
  pill.title = absent
    ? `${detail}. Not using SmartHole? Turn off "Connect to SmartHole" in Settings.`
    : detail || "";
}

export async function loadModels() {
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

export function setupModel() {
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

export function showBanner(kind) {
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
