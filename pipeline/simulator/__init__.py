"""The provider sandbox: one local server imitating every registered provider's API.

`build_app(config)` gives the Starlette app (its `Sandbox` state at `app.state.sandbox`);
`pipeline simulator` serves it with uvicorn. The lifecycle model (`lifecycles`) works without
HTTP. No module here names a provider: each provider's imitation (routes, bodies, lifecycle
figures and state machines, options, how the workload creates an order) is a `SandboxProvider`
in its own package (`pipeline/providers/<slug>/sandbox.py`, `SANDBOX`), found through the
registry (`REGISTRY.sandbox(slug)`). Module map:

- `provider`: `SandboxProvider`, `Drawer`, the workload's `Creator` and `CreatedOrder`.
- `clock`: real and fake clocks.
- `distributions`: duration distributions (`Dist`) and variation tables (`Traits`, `choose`).
- `timeline`: `Timeline` (what drawers fill), `Transition`, `OrderTruth`.
- `lifecycles`: profiles, `LifecycleConfig`, `draw_order` (runs a provider's state machine).
- `per_provider`: per-provider values with provider defaults (`LifecycleConfig`, options).
- `options`: configuration of behaviour the real APIs leave undocumented (PROVIDERS.md §8).
- `wire`: the `Reply` type and helpers shared by the provider imitations.
- `faults`: fault scenarios (format, shipped scenarios, the engine that applies them).
- `ratelimit`: sliding-window limits (OrdinalsBot's 300 requests per minute).
- `state`: the `Sandbox` (orders, ids, eviction, truth flushing).
- `control`: the `/_sandbox/*` endpoints (orders, truth, faults, health).
- `truth`: ground-truth records and the JSONL log.
- `workload`: creates orders through the create endpoints and drops them in the inbox.
- `app`: assembles the Starlette app.
- `command`: the `pipeline simulator` CLI.
"""
