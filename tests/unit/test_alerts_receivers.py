"""Receivers, routes and inhibition rules as data: parsing, routing, muting, the delivery schedule."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.alerts.domain.receivers import (
    DEFAULT_CONFIG, ConfigError, Delivery, DeliveryPolicy, NotifyConfig, parse_matcher, sign, verify,
)

T0 = datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)


def config(**extra) -> NotifyConfig:
    data = {
        "receivers": [{"name": "console", "kind": "console"},
                      {"name": "hook", "kind": "webhook", "url": "http://hook.test/", "secret": "s"},
                      {"name": "sms", "kind": "sms", "numbers": {"S01": ["1"], "*": ["2"]}}],
        "routes": [{"receivers": ["console"]},
                   {"matchers": ["level=RED"], "receivers": ["sms"], "stop": True},
                   {"matchers": ["level=~ORANGE|RED"], "receivers": ["hook"]}],
    }
    data.update(extra)
    return NotifyConfig.parse(data, env={})


def test_routes_match_labels_in_order_and_stop_ends_the_walk():
    c = config()
    assert [r.name for r in c.receivers_for({"level": "BLUE"})] == ["console"]
    assert [r.name for r in c.receivers_for({"level": "ORANGE"})] == ["console", "hook"]
    assert [r.name for r in c.receivers_for({"level": "RED"})] == ["console", "sms"]
    assert c.receivers["sms"].numbers_for("S01") == ["1", "2"] and c.receivers["sms"].numbers_for("S09") == ["2"]


@pytest.mark.parametrize("bad, message", [
    ({"receivers": [{"name": "x", "kind": "pager"}]}, "receivers[0].kind"),
    ({"receivers": [{"name": "x", "kind": "console"}, {"name": "x", "kind": "console"}]}, "used twice"),
    ({"receivers": [{"name": "h", "kind": "webhook", "url": "http://h/"}]}, "signing secret"),
    ({"receivers": [{"name": "c", "kind": "console"}], "routes": [{"receivers": ["nobody"]}]}, "unknown nobody"),
    ({"receivers": [{"name": "c", "kind": "console"}], "routes": [{"receivers": ["c"], "matchers": ["level~RED"]}]},
     "routes[0].matchers[0]"),
    ({"receivers": [{"name": "c", "kind": "console"}], "routes": [{"receivers": ["c"], "matchers": ["level=~("]}]},
     "not a regular expression"),
])
def test_a_wrong_configuration_is_refused_naming_the_entry(bad, message):
    with pytest.raises(ConfigError) as err:
        NotifyConfig.parse(bad, env={})
    assert message in str(err.value)


def test_a_webhook_whose_url_variable_is_unset_is_off():
    c = NotifyConfig.parse({"receivers": [{"name": "h", "kind": "webhook", "url_env": "HOOK_URL",
                                           "secret_env": "HOOK_SECRET"}],
                            "routes": [{"receivers": ["h"]}]}, env={})
    assert c.receivers_for({}) == []
    on = NotifyConfig.parse({"receivers": [{"name": "h", "kind": "webhook", "url_env": "HOOK_URL",
                                            "secret_env": "HOOK_SECRET"}],
                             "routes": [{"receivers": ["h"]}]}, env={"HOOK_URL": "http://h/", "HOOK_SECRET": "k"})
    assert [(r.url, r.secret) for r in on.receivers_for({})] == [("http://h/", "k")]


def test_inhibition_mutes_the_target_while_a_matching_source_with_equal_labels_holds():
    c = config(inhibit_rules=[{"source_matchers": ["area_kind=STATION"], "target_matchers": ["area_kind=GRID"],
                               "equal": ["kind", "station_id"]}])
    grid = {"area_kind": "GRID", "kind": "VOLUME", "station_id": "S01"}
    assert c.inhibited_by(grid, [("alerts/w", {"area_kind": "STATION", "kind": "VOLUME", "station_id": "S01"})]) \
        == "alerts/w"
    assert c.inhibited_by(grid, [("alerts/o", {"area_kind": "STATION", "kind": "VOLUME", "station_id": "S02"})]) == ""
    assert c.inhibited_by(grid, [("alerts/k", {"area_kind": "STATION", "kind": "KEYWORD", "station_id": "S01"})]) == ""
    wide = {"area_kind": "STATION", "kind": "VOLUME", "station_id": "S01"}
    assert c.inhibited_by(wide, [("alerts/g", grid)]) == "", "the wider alert is not muted by the narrower"


def test_matchers_in_alertmanagers_syntax():
    assert (parse_matcher("level=RED", "m").operator, parse_matcher("level!=RED", "m").operator,
            parse_matcher('level=~"ORANGE|RED"', "m").value) == ("EQUAL", "NOT_EQUAL", "ORANGE|RED")


def test_the_signature_is_an_hmac_of_the_exact_body():
    body = '{"status":"firing"}'.encode()
    assert sign("k", body).startswith("sha256=") and verify("k", body, sign("k", body))
    assert not verify("k", body + b" ", sign("k", body)) and not verify("other", body, sign("k", body))


def test_the_retry_delay_doubles_to_the_cap_and_the_last_attempt_fails():
    policy = DeliveryPolicy(base_seconds=2, cap_seconds=10, max_attempts=4)
    assert [policy.retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]
    d = Delivery("d1", "a1", "hook", "WEBHOOK", "http://h/", "firing", "{}", T0, next_attempt_time=T0)
    for n in range(1, 4):
        d.failed(T0, f"HTTP 500 ({n})", policy)
        assert d.state == "PENDING" and d.next_attempt_time == T0 + policy.retry_delay(n)
    d.failed(T0, "HTTP 500 (4)", policy)
    assert (d.state, d.attempts, d.next_attempt_time, d.last_error) == ("FAILED", 4, None, "HTTP 500 (4)")
    refused = Delivery("d2", "a1", "hook", "WEBHOOK", "http://h/", "firing", "{}", T0, next_attempt_time=T0)
    refused.failed(T0, "HTTP 400", policy, retryable=False)
    assert (refused.state, refused.attempts) == ("FAILED", 1)
    ok = Delivery("d3", "a1", "hook", "WEBHOOK", "http://h/", "firing", "{}", T0, next_attempt_time=T0)
    ok.delivered(T0 + timedelta(seconds=1), "r1")
    assert (ok.state, ok.attempts, ok.delivered_time, ok.remote_id) == ("DELIVERED", 1, T0 + timedelta(seconds=1),
                                                                        "r1")


def test_the_shipped_configuration_parses():
    c = NotifyConfig.load(str(DEFAULT_CONFIG), env={})
    assert {r.kind for r in c.receivers.values()} == {"console", "webhook", "sms"} and c.inhibit_rules
    assert [r.name for r in c.receivers_for({"level": "RED", "station_id": "S01"})] == ["console", "duty-sms"]
