"""Loading declarations: a good file gives the spec it says; every bad one is refused with
`<file>: <key.path>: <problem>`, and a bad file in a providers folder stops the registry import
(nothing starts half-configured)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from declarative_helpers import ACME, BAANX_TOML, FIVESIM_TOML, acme_variant, write_declaration

from pipeline.model import ErrorClass, OrderState
from pipeline.providers.declarative import DeclarationError, load_file, load_folder
from pipeline.providers.declarative.paths import JsonPath
from pipeline.providers.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[3]


def refused(path: Path, key: str) -> str:
    """Load `path`, expect a `DeclarationError` at `key`; returns its problem text."""
    with pytest.raises(DeclarationError) as caught:
        load_file(path)
    error = caught.value
    assert str(error).startswith(f"{path}: {key}: "), str(error)
    assert (error.file, error.key) == (str(path), key)
    return error.problem


# --- a good file ------------------------------------------------------------------------------


def test_a_good_file_gives_its_spec(tmp_path: Path) -> None:
    provider = load_file(write_declaration(tmp_path, ACME))
    spec = provider.spec
    assert (spec.slug, spec.display_name, spec.family, spec.colour) == (
        "acme",
        "Acme Notify",
        "notifications",
        "#009E73",
    )
    assert spec.order_kinds == ("notification_order",)
    assert [(c.variable, c.name) for c in spec.credentials] == [
        ("ACME_API_KEY", "api_key"),
        ("ACME_ACCOUNT", "account"),
    ]
    assert spec.policy.cadence_for(OrderState.PENDING) == 2.0
    assert spec.policy.cadence_for(OrderState.UNKNOWN) == 5.0
    assert spec.policy.rate_limit_per_minute == 120.0
    assert spec.expiry_window("notification_order") is not None
    assert spec.event_time is not None and spec.event_time.column == "provider_updated_at"
    assert spec.sources == ("https://acme.example/docs/messages#status",)
    assert provider.path == tmp_path / "acme.toml"
    assert provider.adapter.slug == "acme" and provider.adapter.policy is spec.policy
    declaration = provider.declaration
    assert declaration.errors.http == {402: ErrorClass.FORBIDDEN}
    assert declaration.redactions == {"to": "phone", "account_ref": "hash"}
    assert declaration.status.map["UNDELIVERED"] is OrderState.FAILED


def test_the_shipped_and_test_declarations_load() -> None:
    assert load_file(FIVESIM_TOML).spec.slug == "fivesim"
    assert load_file(BAANX_TOML).spec.slug == "baanx"


def test_fivesim_is_registered_from_its_file() -> None:
    provider = REGISTRY["fivesim"]
    assert provider.origin.endswith("pipeline/providers/declared/fivesim.toml")
    assert provider.spec.family == "SMS activation"
    assert provider.spec.code_kinds == ("sms_receive",)
    assert all(source.startswith("https://") for source in provider.spec.sources)


def test_json_paths() -> None:
    body = {"data": {"items": [{"s": "a"}, {"s": "b"}], "0": {"s": "key"}}}
    assert JsonPath.parse("data.items.0.s").get(body) == "a"
    assert JsonPath.parse("data.items.-1.s").get(body) == "b"
    assert JsonPath.parse("data.0.s").get(body) == "key"  # a digit step on an object is a key
    assert JsonPath.parse("data.items.5.s").get(body) is None
    assert JsonPath.parse("data.items.s").get(body) is None
    for bad in ("", "a..b", ".a", "a.", "a b"):
        with pytest.raises(ValueError):
            JsonPath.parse(bad)


# --- refusals ---------------------------------------------------------------------------------


def test_bad_toml(declare: Callable[..., Path]) -> None:
    path = declare(ACME + "\nslug = [oops\n")
    assert "not valid TOML" in refused(path, "(toml)")


def test_unknown_keys_are_refused_at_every_level(declare: Callable[..., Path]) -> None:
    assert "unknown key" in refused(declare('colour_name = "green"\n' + ACME), "colour_name")
    path = declare(acme_variant(('path = "data.items.0.state"', 'pth = "data.items.0.state"')))
    assert refused(path, "status.path") == "missing"
    path = declare(acme_variant(("[paid]\n", "[paid]\nalways_paid = true\n")))
    assert "unknown key" in refused(path, "paid.always_paid")
    path = declare(acme_variant(('name = "X-Account"', 'name = "X-Account"\nprefix = "Key "')))
    assert "unknown key" in refused(path, "request.auth[1].prefix")
    path = declare(acme_variant(('status = "sending"\n', 'status = "sending"\ncolour = "red"\n')))
    assert "unknown key" in refused(
        path, "sandbox.lifecycles.notification_order.phases.sending.colour"
    )


def test_wrong_types(declare: Callable[..., Path]) -> None:
    path = declare(acme_variant(("default_cadence_s = 5", 'default_cadence_s = "fast"')))
    assert refused(path, "policy.default_cadence_s") == "expected a number, got a string"
    path = declare(acme_variant(('order_kinds = ["notification_order"]', 'order_kinds = "x"')))
    assert "array of strings" in refused(path, "order_kinds")
    path = declare(acme_variant(('display_name = "Acme Notify"', "display_name = 5")))
    assert refused(path, "display_name") == "expected a string, got an integer"
    windows = ACME[ACME.index("[[expiry_windows]]") : ACME.index("[event_time]")]
    path = declare("expiry_windows = 3\n" + acme_variant((windows, "")))
    assert "array of tables" in refused(path, "expiry_windows")
    path = declare(acme_variant(("terminal_grace_s = 30", "terminal_grace_s = true")))
    assert "got a boolean" in refused(path, "policy.terminal_grace_s")
    path = declare(acme_variant(("default_cadence_s = 5", "default_cadence_s = 0")))
    assert "greater than 0" in refused(path, "policy.default_cadence_s")


def test_an_expiry_window_names_the_states_an_order_can_expire_from(
    declare: Callable[..., Path],
) -> None:
    window = 'note = "ttl of an undelivered message"\n'
    assert load_file(declare(ACME)).spec.expiry_windows[0].expires_from is None
    path = declare(acme_variant((window, window + 'expires_from = ["pending"]\n')))
    assert load_file(path).spec.expiry_windows[0].expires_from == {"pending"}
    path = declare(acme_variant((window, window + 'expires_from = ["paid"]\n')))
    assert "is not a state" in refused(path, "expiry_windows[0].expires_from[0]")
    path = declare(acme_variant((window, window + 'expires_from = ["expired"]\n')))
    assert "is terminal" in refused(path, "expiry_windows[0].expires_from[0]")


def test_bad_state_names(declare: Callable[..., Path]) -> None:
    path = declare(acme_variant(('delivered = "completed"', 'delivered = "done"')))
    problem = refused(path, "status.map.delivered")
    assert "'done' is not a state" in problem and "completed" in problem
    path = declare(acme_variant(('state = "expired"\n', 'state = "late"\n')))
    assert "is not a state" in refused(path, "status.rules[0].state")
    path = declare(acme_variant(("pending = 2,", "waiting = 2,")))
    assert "is not a state" in refused(path, "policy.cadence_s.waiting")
    path = declare(
        acme_variant(('states = ["completed", "failed", "expired"]', 'states = ["gone"]'))
    )
    assert "is not a state" in refused(path, "event_time.states[0]")
    path = declare(
        acme_variant(('status = "queued"\nstate = "pending"', 'status = "queued"\nstate = "new"'))
    )
    assert "is not a state" in refused(
        path, "sandbox.lifecycles.notification_order.phases.queued.state"
    )


def test_bad_regular_expression(declare: Callable[..., Path]) -> None:
    path = declare(acme_variant(('id_pattern = "[A-Za-z0-9-]{1,40}"', 'id_pattern = "[a-z"')))
    assert "not a regular expression" in refused(path, "id_pattern")


def test_bad_variable_prefix(declare: Callable[..., Path]) -> None:
    path = declare(acme_variant(('variable = "ACME_API_KEY"', 'variable = "OTHER_API_KEY"')))
    assert "must start with ACME_" in refused(path, "credentials[0].variable")
    path = declare(acme_variant(('variable = "ACME_API_KEY"', 'variable = "acme_api_key"')))
    assert "must match" in refused(path, "credentials[0].variable")
    path = declare(acme_variant(('variable = "ACME_API_KEY"', 'variable = "ACME_BASE_URL"')))
    assert "reserved" in refused(path, "credentials[0].variable")
    path = declare(acme_variant(('variable = "ACME_ACCOUNT"', 'variable = "ACME_API_KEY"')))
    assert "declared twice" in refused(path, "credentials[1].variable")


def test_duplicate_slugs(tmp_path: Path) -> None:
    # A built-in provider's slug.
    folder = tmp_path / "builtin"
    folder.mkdir()
    path = write_declaration(folder, BAANX_TOML.read_text(), "baanx.toml")
    with pytest.raises(DeclarationError, match=rf"^{path}: slug: 'baanx' is a built-in provider"):
        load_folder(folder)
    # A slug shipped in pipeline/providers/declared/.
    folder = tmp_path / "mine"
    folder.mkdir()
    path = write_declaration(folder, FIVESIM_TOML.read_text(), "fivesim.toml")
    with pytest.raises(DeclarationError, match=rf"^{path}: slug: 'fivesim' is already declared in"):
        load_folder(folder)
    # A file named after another slug.
    path = write_declaration(tmp_path, ACME, "other.toml")
    assert "differs from the file name" in refused(path, "slug")


def test_bad_json_paths_and_references(declare: Callable[..., Path]) -> None:
    path = declare(acme_variant(('path = "data.items.0.state"', 'path = "data..state"')))
    assert "is not a JSON path" in refused(path, "status.path")
    path = declare(acme_variant(('credential = "account"', 'credential = "password"')))
    assert "not a declared credential" in refused(path, "request.auth[1].credential")
    path = declare(
        acme_variant(('path = "/api/messages"\nquery', 'path = "/api/{message}"\nquery'))
    )
    assert "unknown placeholder {message}" in refused(path, "request.path")
    path = declare(acme_variant(('column = "provider_updated_at"', 'column = "provider_paid_at"')))
    assert "not filled by any [times] entry" in refused(path, "event_time.column")
    path = declare(acme_variant(("402 = ", "99 = ")))
    assert "HTTP status" in refused(path, "errors.http.99")
    path = declare(acme_variant(('402 = "forbidden"', '402 = "payment_required"')))
    assert "is not one of" in refused(path, "errors.http.402")
    path = declare(acme_variant(('format = "epoch_ms"', 'format = "unix"')))
    assert "is not one of" in refused(path, "times.provider_updated_at.format")


def test_codes_and_phones_must_be_redacted(declare: Callable[..., Path]) -> None:
    path = declare(acme_variant(('to = "phone"\n', "")))
    assert "must be redacted" in refused(path, "fields.phone")
    text = FIVESIM_TOML.read_text().replace('code = "code"\n', "")
    path = declare(text, "fivesim.toml")
    assert "'code' must be redacted as code" in refused(path, "fields.code")


def test_sandbox_lifecycle_problems(declare: Callable[..., Path]) -> None:
    phases = "sandbox.lifecycles.notification_order"
    path = declare(acme_variant(('{ to = "bounced", share = 0.1', '{ to = "bounced", share = 0.3')))
    assert "add up to 1.1" in refused(path, f"{phases}.phases.sending.outcomes")
    path = declare(acme_variant(('{ to = "bounced"', '{ to = "vanished"')))
    assert "not a phase" in refused(path, f"{phases}.phases.sending.outcomes[1].to")
    path = declare(acme_variant(("after = { fixed = 15 }", "after = { gamma = [1, 2] }")))
    assert "unknown distribution" in refused(
        path, f"{phases}.phases.sending.outcomes[1].after.gamma"
    )
    path = declare(acme_variant(('on_window = "ttl"', 'on_window = "sending"')))
    assert "terminal phase" in refused(path, f"{phases}.on_window")
    path = declare(
        acme_variant(
            (
                '{ to = "delivered", share = 0.8',
                '{ to = "queued", share = 0.05, after = { fixed = 1 } },\n'
                '  { to = "delivered", share = 0.75',
            )
        )
    )
    assert "phases loop: queued -> sending -> queued" in refused(path, f"{phases}.phases")
    path = declare(ACME + f'\n[{phases}.phases.orphan]\nstatus = "queued"\nstate = "pending"\n')
    assert "never reached" in refused(path, f"{phases}.phases.orphan")
    path = declare(acme_variant(("cost = 0.05", 'cost = "{price:cents}"')))
    assert "price takes no format" in refused(path, "sandbox.body")
    path = declare(
        acme_variant(
            ("[sandbox.lifecycles.notification_order]\n", "[sandbox.lifecycles.sms_receive]\n")
        )
    )
    assert "not among order_kinds" in refused(path, "sandbox.lifecycles.sms_receive")
    path = declare(acme_variant(('ids = { kind = "uuid" }', 'ids = { kind = "hex", length = 48 }')))
    assert "is refused" in refused(path, "sandbox.ids")


def test_sandbox_answers_must_read_as_their_phase(declare: Callable[..., Path]) -> None:
    # Without the rule, the ttl phase's answer (undelivered/ttl) reads as failed, not expired.
    path = declare(acme_variant(('one_of = ["expired", "ttl"]', 'one_of = ["expired"]')))
    problem = refused(path, "sandbox.lifecycles.notification_order.phases.ttl")
    assert "reads this phase's answer" in problem and "'failed'" in problem
    # A 5SIM file without its code rule would serve a RECEIVED-with-SMS that reads as processing.
    text = FIVESIM_TOML.read_text().replace(
        'path = "sms.0"\npresent = true', 'path = "sms.5"\npresent = true'
    )
    path = declare(text, "fivesim.toml")
    assert "'processing'" in refused(path, "sandbox.lifecycles.sms_receive.phases.sms_arrived")


def test_missing_folder_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match=r": \(folder\): is not a directory$"):
        load_folder(tmp_path / "nowhere")
    assert load_folder(tmp_path) == []


def test_a_bad_file_stops_the_registry_import(tmp_path: Path) -> None:
    write_declaration(tmp_path, acme_variant(('delivered = "completed"', 'delivered = "done"')))
    result = subprocess.run(
        [sys.executable, "-c", "import pipeline.providers.registry"],
        cwd=ROOT,
        env={**os.environ, "PIPELINE_PROVIDERS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"{tmp_path / 'acme.toml'}: status.map.delivered: 'done' is not a state" in result.stderr


def test_a_good_file_in_the_providers_folder_is_registered(tmp_path: Path) -> None:
    write_declaration(tmp_path, ACME)
    code = (
        "from pipeline.providers.registry import PROVIDERS, REGISTRY;"
        "print(PROVIDERS[-2:], REGISTRY.sandbox('acme').wire.poll_path)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PIPELINE_PROVIDERS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('fivesim', 'acme') /api/messages?id={order_id}"
