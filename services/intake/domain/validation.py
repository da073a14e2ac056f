"""Validation of a new report as plain values (the servicer translates the request first): channels,
callers' numbers, places, media, languages and their limits. Pure; violations go on a `Violations`."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from services.runtime.language import asks

from ..classifier.evidence import ASKED_ABOUT
from .classification import classify

CHANNELS = {
    "PHONE", "SMS", "WECHAT", "WEIBO", "QQ", "APP", "MINI_PROGRAM", "KIOSK", "VIDEO",
    "SILENT_ALARM", "HOTLINE_12345", "PATROL", "WALK_IN", "TIP_OFF", "MAILBOX",
}
CATEGORIES = {"POLICE", "NON_POLICE", "CONSULTATION", "INVALID"}
# Channels whose reports may come without a description (a button press).
WORDLESS_CHANNELS = {"KIOSK", "SILENT_ALARM"}
# Media a report may carry: kind -> (accepted MIME types, max bytes).
ATTACHMENT_LIMITS = {
    "IMAGE": ({"image/jpeg", "image/png", "image/heic", "image/heif", "image/webp", "image/gif"}, 20 * 1024 * 1024),
    "VIDEO": ({"video/mp4", "video/quicktime", "video/3gpp", "video/webm"}, 500 * 1024 * 1024),
    "VOICE": ({"audio/amr", "audio/mpeg", "audio/aac", "audio/mp4", "audio/wav", "audio/ogg", "audio/webm"},
              50 * 1024 * 1024),
}
MAX_ATTACHMENTS = 20
# Object storage the evidence store accepts: s3://bucket/key, oss://…, obs://…, https://host/path.
STORAGE_URI = re.compile(r"^(s3|oss|obs|https)://[A-Za-z0-9.\-_]+(:\d+)?/[^\s]+$")
# Location sources a client may claim; GAZETTEER is set by the server when it geocodes address_text.
CLIENT_LOCATION_SOURCES = {"", "GNSS", "CELL", "CALL_TAKER", "FIXED_DEVICE"}
MAX_ACCURACY_M = 50_000.0
MAX_DESCRIPTION_CHARS = 2000
MAX_ADDRESS_CHARS = 300
MAX_CLOCK_SKEW = timedelta(minutes=5)
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0[1-9]\d{1,2}-?[2-9]\d{6,7}$")
# Service short numbers (110, 119, 120, 122, 12345, 95xxx…) cannot be a caller's own number.
SHORT_NUMBER = re.compile(r"^(1\d{2}|12\d{3}|95\d{3,4}|96\d{3,4})$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# BCP-47 (RFC 5646) language tag: language[-script][-region][-variant]*.
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|\d{3}))?(-([A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*$")
DEFAULT_LANGUAGE = "zh-CN"


def normalize_phone(raw: str) -> str:
    """Spaces dropped and a +86/0086 country prefix removed; the rest kept as given."""
    phone = raw.strip().replace(" ", "")
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix):].lstrip("-")
    return phone


def check_point(lon: float, lat: float, v, path: str) -> None:
    v.check(math.isfinite(lon) and -180.0 <= lon <= 180.0, f"{path}.longitude", "must be between -180 and 180")
    v.check(math.isfinite(lat) and -90.0 <= lat <= 90.0, f"{path}.latitude", "must be between -90 and 90")


def validate_new_report(r: dict, v, *, now: datetime | None = None) -> None:
    """Checks a new report given as plain values; records violations on `v`."""
    v.check(r["channel"] in CHANNELS, "report.channel", "is required: one of " + ", ".join(sorted(CHANNELS)))
    phone = r["caller_phone"]
    if phone:
        if SHORT_NUMBER.match(phone):
            v.add("report.caller.phone_number", "is a service short number (110, 12345…), not a caller's number")
        else:
            v.check(bool(MOBILE.match(phone) or LANDLINE.match(phone)), "report.caller.phone_number",
                    "must be a mainland mobile number (11 digits, 1[3-9]…) or a landline with its area code "
                    "like 027-85551234")
    v.check(len(r["caller_name"]) <= 50, "report.caller.name", "must be at most 50 characters")
    has_point = r["lon"] is not None
    if has_point:
        check_point(r["lon"], r["lat"], v, "report.location.point")
        v.check(math.isfinite(r["accuracy_m"]) and 0 <= r["accuracy_m"] <= MAX_ACCURACY_M,
                "report.location.accuracy_m", f"must be between 0 and {MAX_ACCURACY_M:.0f} metres")
        v.check(r["location_source"] in CLIENT_LOCATION_SOURCES, "report.location.source",
                "must be GNSS, CELL, CALL_TAKER or FIXED_DEVICE (GAZETTEER is set by the server)")
    if not (has_point or r["address_text"].strip() or r.get("address_code")):
        # A question or a misdial needs no place; nothing a citizen sends is dropped for lacking one.
        c = classify(r["description"], r["channel"])
        # A question about a service matter may be answered from the knowledge base (Report.answer_question).
        question = c.incident_type in ASKED_ABOUT and bool(asks(r["description"]))
        v.check(c.category in ("CONSULTATION", "INVALID") or question, "report.location",
                "a location point, report.address_text or report.address_code is required to route the report")
    v.check(len(r["address_text"]) <= MAX_ADDRESS_CHARS, "report.address_text",
            f"must be at most {MAX_ADDRESS_CHARS} characters")
    description = r["description"]
    # A kiosk's one-button press and a silent alarm carry no words: their channel says what they are.
    v.check(bool(description.strip()) or bool(r["attachments"]) or r["channel"] in WORDLESS_CHANNELS,
            "report.description", "is required unless the report carries an attachment or comes from a kiosk "
            "button or a silent alarm")
    v.check(len(description) <= MAX_DESCRIPTION_CHARS, "report.description",
            f"must be at most {MAX_DESCRIPTION_CHARS} characters")
    v.check(len(r["attachments"]) <= MAX_ATTACHMENTS, "report.attachments",
            f"must be at most {MAX_ATTACHMENTS} items")
    for i, a in enumerate(r["attachments"]):
        path = f"report.attachments[{i}]"
        limits = ATTACHMENT_LIMITS.get(a.kind)
        if not v.check(limits is not None, f"{path}.kind", "must be IMAGE, VIDEO or VOICE"):
            continue
        types, max_bytes = limits
        v.check(a.content_type in types, f"{path}.content_type",
                f"must be one of {', '.join(sorted(types))} for {a.kind}")
        v.check(0 < a.size_bytes <= max_bytes, f"{path}.size_bytes",
                f"must be between 1 and {max_bytes} bytes for {a.kind}")
        v.check(bool(SHA256.match(a.sha256)), f"{path}.sha256", "must be 64 hex digits (SHA-256 of the content)")
        v.check(bool(STORAGE_URI.match(a.storage_uri)), f"{path}.storage_uri",
                "must be an object storage URI: s3://, oss://, obs:// or https:// with a bucket and a path")
        if r["channel"] == "SILENT_ALARM":
            v.check(a.kind != "VOICE", f"{path}.kind", "a silent alarm is text only: no voice")
    language = r.get("language", "")
    if language:
        v.check(bool(LANGUAGE_TAG.match(language)) and len(language) <= 35, "report.language",
                "must be a BCP-47 language tag such as zh-CN, zh-Hans-CN or en")
    received = r.get("receive_time")
    if received is not None and now is not None:
        v.check(received <= now + MAX_CLOCK_SKEW, "report.receive_time", "must not be in the future")


def validate_report_so_far(r: dict, v, *, now: datetime | None = None) -> None:
    """Checks a report still being taken (PreviewReport): what is given must be valid as
    `validate_new_report` has it, but no place or description is required yet."""
    v.check(r["channel"] in CHANNELS, "report.channel", "is required: one of " + ", ".join(sorted(CHANNELS)))
    phone = r["caller_phone"]
    if phone:
        v.check(not SHORT_NUMBER.match(phone) and bool(MOBILE.match(phone) or LANDLINE.match(phone)),
                "report.caller.phone_number",
                "must be a mainland mobile number (11 digits, 1[3-9]…) or a landline with its area code "
                "like 027-85551234")
    v.check(len(r["caller_name"]) <= 50, "report.caller.name", "must be at most 50 characters")
    if r["lon"] is not None:
        check_point(r["lon"], r["lat"], v, "report.location.point")
        v.check(r["location_source"] in CLIENT_LOCATION_SOURCES, "report.location.source",
                "must be GNSS, CELL, CALL_TAKER or FIXED_DEVICE (GAZETTEER is set by the server)")
    v.check(len(r["address_text"]) <= MAX_ADDRESS_CHARS, "report.address_text",
            f"must be at most {MAX_ADDRESS_CHARS} characters")
    v.check(len(r["description"]) <= MAX_DESCRIPTION_CHARS, "report.description",
            f"must be at most {MAX_DESCRIPTION_CHARS} characters")
    received = r.get("receive_time")
    if received is not None and now is not None:
        v.check(received <= now + MAX_CLOCK_SKEW, "report.receive_time", "must not be in the future")
