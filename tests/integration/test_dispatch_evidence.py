"""Evidence kept by dispatch for a report-back (现场证据) over real gRPC against a real Postgres: the
officer uploads a photo (JPEG or PNG, at most 5 MB), names it in the report-back, and whoever may read
the case downloads it; bad types and sizes name the field, others' assignments and places are refused."""
from __future__ import annotations

import hashlib
import os
import uuid

import grpc
import pytest

from smart110.common.v1 import common_pb2
from tests import support
from tests.integration.dispatch_harness import dispatch_service, field_violations, officer_of, pb

S = pb.AssignmentState
# The eight bytes every PNG starts with, then bytes of this run's own.
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
MAX_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def rid() -> str:
    return uuid.uuid4().hex


def on_scene(h):
    """A fresh case whose primary unit is on scene: (case, assignment, the officer's metadata)."""
    case = h.case_of(h.report())
    a = next(x for x in case.assignments if x.role == pb.ASSIGNMENT_ROLE_PRIMARY)
    md = officer_of(h.stub.GetUnit(pb.GetUnitRequest(name=a.unit)))
    h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=md)
    for state in (S.ASSIGNMENT_STATE_EN_ROUTE, S.ASSIGNMENT_STATE_ON_SCENE):
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name, state=state), metadata=md)
    return case, a, md


def upload(h, a, md, content=PNG, content_type="image/png", **kw):
    return h.stub.UploadEvidence(pb.UploadEvidenceRequest(
        request_id=kw.pop("request_id", rid()), parent=a.name, content_type=content_type, content=content,
        file_name=kw.pop("file_name", "现场.png")), metadata=md, **kw)


def test_an_uploaded_photo_is_named_in_the_report_back_and_read_back_as_stored(h):
    case, a, md = on_scene(h)
    req = pb.UploadEvidenceRequest(request_id=rid(), parent=a.name, content_type="image/png", content=PNG,
                                   file_name="现场.png")
    e = h.stub.UploadEvidence(req, metadata=md)
    assert e.name.startswith(a.name + "/evidence/") and e.file_name == "现场.png"
    assert (e.attachment.kind, e.attachment.content_type, e.attachment.size_bytes, e.attachment.sha256,
            e.attachment.storage_uri) == (common_pb2.ATTACHMENT_KIND_IMAGE, "image/png", len(PNG),
                                          hashlib.sha256(PNG).hexdigest(), e.name)
    # A retry stores nothing more: the same evidence.
    assert h.stub.UploadEvidence(req, metadata=md) == e
    h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name,
                                                         state=S.ASSIGNMENT_STATE_CLEARED), metadata=md)
    # What the phone sends may be short of the facts: dispatch records the upload as it stored it.
    claimed = common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_DOCUMENT, content_type="image/png",
                                    size_bytes=1, storage_uri=e.name)
    elsewhere = common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_VIDEO, content_type="video/mp4",
                                      size_bytes=2048, storage_uri="s3://bodycam/2026/11/v.mp4")
    back = h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=a.name, outcome=pb.OUTCOME_MEDIATED,
                                                  notes="已调解", evidence=[claimed, elsewhere]), metadata=md)
    assert list(back.evidence) == [e.attachment, elsewhere]
    got = next(x for x in h.case(case.name).assignments if x.name == a.name)
    assert list(got.evidence) == [e.attachment, elsewhere]
    # Downloaded by whoever may read the case: the officer, a dispatcher; the bytes as uploaded.
    for who in (md, support.caller(["dispatcher"], sub="t-dispatcher")):
        body = h.stub.DownloadEvidence(pb.DownloadEvidenceRequest(name=e.name), metadata=who)
        assert (body.content_type, body.data) == ("image/png", PNG)
    # After the report-back nothing more is added.
    with pytest.raises(grpc.RpcError) as err:
        upload(h, a, md)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "NOT_GATHERING_EVIDENCE"


def test_the_uploader_is_recorded(h):
    _, a, md = on_scene(h)
    u = h.stub.GetUnit(pb.GetUnitRequest(name=a.unit))
    assert upload(h, a, md).uploaded_by == u.officers[0].officer_id


def test_a_bad_type_or_size_names_the_field(h):
    _, a, md = on_scene(h)
    cases = [
        (PNG, "image/gif", {"content_type"}),
        (b"GIF89a" + PNG, "image/png", {"content"}),          # not the PNG it claims to be
        (b"", "image/jpeg", {"content"}),
        (b"\xff\xd8\xff" + bytes(MAX_BYTES - 2), "image/jpeg", {"content"}),  # one byte past 5 MB
    ]
    for content, content_type, fields in cases:
        with pytest.raises(grpc.RpcError) as err:
            upload(h, a, md, content=content, content_type=content_type)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, content_type
        assert field_violations(err.value) == fields, (content_type, len(content))
    with pytest.raises(grpc.RpcError) as err:
        h.stub.UploadEvidence(pb.UploadEvidenceRequest(parent="cases/x", content_type="text/plain",
                                                       content=b"x", file_name="../a"), metadata=md)
    assert field_violations(err.value) == {"request_id", "parent", "content_type", "file_name"}
    # Exactly 5 MB is taken.
    jpeg = b"\xff\xd8\xff" + bytes(MAX_BYTES - 3)
    assert upload(h, a, md, content=jpeg, content_type="image/jpeg").attachment.size_bytes == MAX_BYTES


def test_only_the_units_officer_uploads_and_only_the_case_s_readers_download(h):
    case, a, md = on_scene(h)
    other = next(x for x in case.assignments if x.name != a.name)
    someone_else = officer_of(h.stub.GetUnit(pb.GetUnitRequest(name=other.unit)))
    with pytest.raises(grpc.RpcError) as err:
        upload(h, a, someone_else)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The other unit's offer is not accepted: no evidence for it yet, even by the command.
    with pytest.raises(grpc.RpcError) as err:
        upload(h, other, support.caller(["dispatcher"], sub="t-dispatcher"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    e = upload(h, a, md)
    # Outside the case's jurisdiction the evidence does not exist.
    with pytest.raises(grpc.RpcError) as err:
        h.stub.DownloadEvidence(pb.DownloadEvidenceRequest(name=e.name),
                                metadata=support.caller(["station_chief"], station="S09", sub="t-chief-s09"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for missing in (e.name[:-4] + "0000", other.name + "/evidence/" + e.name.rsplit("/", 1)[1]):
        with pytest.raises(grpc.RpcError) as err:
            h.stub.DownloadEvidence(pb.DownloadEvidenceRequest(name=missing), metadata=md)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        h.stub.DownloadEvidence(pb.DownloadEvidenceRequest(name=a.name), metadata=md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err.value) == {"name"}


def test_a_report_back_naming_evidence_of_another_assignment_is_refused(h):
    _, a, md = on_scene(h)
    _, b, md_b = on_scene(h)
    theirs = upload(h, b, md_b)
    h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name,
                                                         state=S.ASSIGNMENT_STATE_CLEARED), metadata=md)
    borrowed = common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/png",
                                     size_bytes=len(PNG), storage_uri=theirs.name.replace(b.name, a.name))
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=a.name, outcome=pb.OUTCOME_MEDIATED,
                                               evidence=[theirs.attachment, borrowed]), metadata=md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {"evidence[0].storage_uri", "evidence[1].storage_uri"}
    assert h.stub.GetAssignment(pb.GetAssignmentRequest(name=a.name)).state == S.ASSIGNMENT_STATE_CLEARED
