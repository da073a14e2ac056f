"""Evidence kept by dispatch for a report-back (现场证据): what is taken, and who may add it when.

An officer's photo is uploaded to dispatch before the report-back names it: JPEG or PNG only, at
most `MAX_BYTES`, and the bytes must be of the type they claim (a JPEG starts with FF D8 FF, a PNG
with its eight-byte signature). An upload is named under its assignment,
`cases/{case}/assignments/{assignment}/evidence/{id}`, and that name is the attachment's storage URI
that ReportBack records.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

MAX_BYTES = 5 * 1024 * 1024
MAX_FILE_NAME = 200
# The content types taken, with the bytes a file of that type starts with.
SIGNATURES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
# The assignment states in which its unit gathers evidence: from accepting to clearing, before the report-back.
GATHERING = ("ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED")
NAME = re.compile(r"^cases/([^/]+)/assignments/([^/]+)/evidence/([^/]+)$")


@dataclass(frozen=True)
class Evidence:
    id: str
    case_id: str
    assignment_id: str
    content_type: str
    size_bytes: int
    sha256: str
    file_name: str
    uploaded_by: str
    create_time: datetime

    @property
    def name(self) -> str:
        return f"cases/{self.case_id}/assignments/{self.assignment_id}/evidence/{self.id}"

    def attachment(self) -> dict:
        """As an assignment's `evidence` entry records it (the shape of ReportBack's attachments)."""
        return dict(kind="IMAGE", content_type=self.content_type, size_bytes=self.size_bytes, sha256=self.sha256,
                    storage_uri=self.name)


def problems(content_type: str, content: bytes, file_name: str) -> list[tuple[str, str]]:
    """(field, what is wrong) of an upload; none for one that is taken."""
    found: list[tuple[str, str]] = []
    signature = SIGNATURES.get(content_type)
    if signature is None:
        found.append(("content_type", f"must be one of {', '.join(SIGNATURES)}"))
    if not content:
        found.append(("content", "is required"))
    elif len(content) > MAX_BYTES:
        found.append(("content", f"at most {MAX_BYTES} bytes (5 MB); got {len(content)}"))
    elif signature is not None and not content.startswith(signature):
        found.append(("content", f"is not {content_type}: the bytes do not start as such a file does"))
    if len(file_name) > MAX_FILE_NAME:
        found.append(("file_name", f"at most {MAX_FILE_NAME} characters"))
    elif any(c in file_name for c in "/\\\x00"):
        found.append(("file_name", "must be a bare file name (no / or \\)"))
    return found


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
