"""The provider sandbox: one local server imitating the five provider APIs.

`build_app(config)` gives the Starlette app (its `Sandbox` state at `app.state.sandbox`);
`pipeline simulator` serves it with uvicorn. The lifecycle model (`lifecycles`) works without
HTTP. Module map:

- `clock`: real and fake clocks.
- `lifecycles`: per-provider state machines, duration/probability tables, profiles, ground truth.
- `options`: configuration of behaviour the real APIs leave undocumented (PROVIDERS.md §8).
- `wire`: the `Reply` type and helpers shared by the provider modules.
- `sms4sats`, `smsonline`, `ordinalsbot`, `baanx`, `altinn`: one provider's routes and bodies.
- `faults`: fault scenarios (format, shipped scenarios, the engine that applies them).
- `ratelimit`: sliding-window limits (OrdinalsBot's 300 requests per minute).
- `state`: the `Sandbox` (orders, ids, eviction, truth flushing).
- `control`: the `/_sandbox/*` endpoints (orders, truth, faults, health).
- `truth`: ground-truth records and the JSONL log.
- `workload`: creates orders through the create endpoints and drops them in the inbox.
- `app`: assembles the Starlette app.
- `command`: the `pipeline simulator` CLI.
"""
