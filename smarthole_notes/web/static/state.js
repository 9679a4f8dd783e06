// The page's shared mutable state, in one place. Each field says who writes it; every other
// module only reads it (or calls the writer's functions).

export const HISTORY_PAGE = 5;

// Message states after which a message waits for the user or a retry (not queued, not working).
export const WAITING_STATES = new Set(["waiting_for_key", "retry_scheduled", "failed", "refused"]);

export const state = {
  processing: null, // inbox id being processed now (states.js, streaming.js)
  queued: new Set(), // inbox ids waiting (states.js)
  messageStates: new Map(), // inbox id -> {state, next_attempt_at, error}: still in the inbox (states.js, live.js)
  vault: "", // the vault's folder, for dropped file paths (live.js: hello)
  undoAvailable: false, // git undo offered (live.js: hello, settings_changed)
  writingTools: new Set(), // tools whose success changed notes: the server's list (live.js: hello)
  nextBefore: undefined, // paging: undefined not loaded yet; null no older conversations (conversations.js)
  loadingOlder: false, // (conversations.js)
  streams: new Map(), // message id -> {text, turnStart, frame, tools} while streaming (streaming.js)
  settings: null, // the settings as last loaded into the form (settings.js)
  invalidKeys: [], // keys whose value in settings.toml is invalid (settings.js)
  socketRetry: 0, // reconnect back-off step (live.js)
  hadSocket: false, // a socket was open before: reload the history on reconnect (live.js)
  stickToBottom: true, // follow new messages unless the user scrolled up to read (app.js, composer.js)
};
