"""The LLM layer: provider-neutral types, the Anthropic provider, and the agent service.

- `types`, `errors`, `events`: what the rest of the program sees of any LLM API.
- `anthropic_provider`: streaming and non-streaming calls with retries, cancellation,
  a stall watchdog and linear-time stream assembly (`assembly`).
- `service`: the agent loop (tools, history, abort, conversation state); `prompt` builds
  its system prompt (a stable part, then the moment's part).
- `caching`: where requests mark prompt-cache breakpoints; `pricing`: the price table and
  each answer's estimated cost.
"""
