"""A citizen's update to a request (市民补充说明), as an Open311 app posts it (FixMyStreet's
servicerequestupdates extension): what the order's timeline says of it, and the record kept apart
from the timeline with who sent it.

The timeline is append-only (全程留痕), so it never holds the sender's name, e-mail or phone: those
stay on the `CitizenUpdate` record, whose contact is erased once the order has been closed for the
retention period (`erase_contact`). The record also makes a client's update id count once: the same
id again with the same content is the same update, with other content a conflict.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# What a client's status says of the problem, in words for the timeline. OPEN (or none of these) adds nothing.
STATUS_WORDS = {"CLOSED": "市民表示问题已解决", "FIXED": "市民表示问题已解决", "REOPEN": "市民表示问题仍未解决"}


@dataclass
class CitizenUpdate:
    """One posted update. `client` names the app (a digest of its api_key), `client_update_id` is the
    app's own id of the update, `fingerprint` a digest of what it sent; `timeline_seq` is the entry on
    the order's timeline (our update id is "{work_order_id}-{timeline_seq}", as the updates feed names
    every entry), `order_status` the order's status when it arrived."""

    work_order_id: str
    client: str
    client_update_id: str
    fingerprint: str
    status: str
    description: str
    create_time: datetime
    client_time: datetime | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    media_url: str = ""
    order_status: str = ""
    timeline_seq: int | None = None
    contact_erase_time: datetime | None = None

    @property
    def update_id(self) -> str:
        return f"{self.work_order_id}-{self.timeline_seq}"

    @property
    def sender(self) -> str:
        """The sender's name as a Chinese name is written, family name first."""
        return " ".join(x for x in (self.last_name, self.first_name) if x).strip()

    def timeline_detail(self) -> str:
        """The entry on the order's timeline: the citizen's words without the sender's own name,
        e-mail or phone (those are kept on this record only), and what the status says."""
        text = self.description
        for secret, mask in ((self.email, "[邮箱]"), (self.phone, "[电话]"), (self.sender, "某市民"),
                             (self.sender.replace(" ", ""), "某市民")):
            if secret:
                text = text.replace(secret, mask)
        detail = f"市民补充说明（Open311）：{text}"
        if self.media_url:
            detail += "；附图片（见附件）"
        words = STATUS_WORDS.get(self.status)
        return f"{detail}（{words}）" if words else detail

    def erase_contact(self, now: datetime) -> bool:
        """Drops the sender's contact and own words (the timeline keeps the words without the
        contact); the ids and fingerprint stay, so a repeat is still known. False when done already."""
        if self.contact_erase_time is not None:
            return False
        self.first_name = self.last_name = self.email = self.phone = self.description = ""
        self.contact_erase_time = now
        return True
