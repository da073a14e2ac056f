"""Alert lifecycle and silence use cases: raising (or folding into) an alert for a finding,
acknowledging and resolving, escalating the unacknowledged, silences holding and releasing alerts,
and resolving alerts whose condition stopped holding. Each changed alert is collected, so its
events go out with the unit of work."""
from __future__ import annotations

from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.ids import new_id
from services.runtime.uow import UnitOfWork

from ..domain import SYSTEM, Alert, Finding, Matcher, Silence, ensure_visible, silence_holding
from ..domain import receivers


def queue_deliveries(uow: UnitOfWork, alert: Alert, status: str) -> int:
    """Queues what the alert's change sends to its routed receivers (webhooks, SMS), in the
    transaction of the change; the delivery worker sends them after the commit. Returns how many."""
    config = getattr(uow.context, "notify", None)
    if config is None:
        return 0
    repos = uow.repos
    told = repos.deliveries.told(alert.id) if status == "resolved" else None
    others = repos.alerts.open_labels(alert.station_id) if config.inhibit_rules else []
    planned = receivers.plan(config, alert, status, now=uow.now(), new_id=new_id,
                             open_alerts=others if status == "firing" else [], told=told)
    repos.deliveries.add(planned)
    if status == "resolved":
        _release_muted(uow, config, alert, others)
    return len(planned)


def _release_muted(uow: UnitOfWork, config: receivers.NotifyConfig, source: Alert, open_alerts: list) -> None:
    """A resolved alert no longer mutes others: what it held back is sent now, unless another open
    alert mutes it still (Alertmanager's inhibition ends with its source)."""
    labels = dict(open_alerts)
    for d in uow.repos.deliveries.muted_by(source.name):
        target = f"alerts/{d.alert_id}"
        if target not in labels:
            continue  # resolved meanwhile: it stays unsent
        d.release(uow.now(), config.inhibited_by(labels[target], [o for o in open_alerts if o[0] != target]))
        uow.repos.deliveries.save(d)


def _save(uow: UnitOfWork, alert: Alert, *, resolved: bool = False) -> None:
    """Saves a changed alert and collects it; someone told now (or a resolution) goes to the receivers too."""
    firing = bool(alert.new_notifications)
    uow.repos.alerts.save(alert)
    uow.collect(alert)
    if firing or resolved:
        queue_deliveries(uow, alert, "resolved" if resolved else "firing")


def raise_alert(uow: UnitOfWork, finding: Finding) -> Alert:
    """Raises the finding as a new alert, or folds it into the open alert of the same condition."""
    repos, now = uow.repos, uow.now()
    alert = repos.alerts.find_open(finding.fingerprint)
    if alert is None:
        silence = silence_holding(repos.silences.active(now), finding.alert_labels())
        alert = Alert.fire(finding, alert_id=new_id(now, prefix="a"), now=now, silence=silence)
        firing = bool(alert.new_notifications)
        if not repos.alerts.add(alert):  # raised concurrently by another consumer: fold into it
            return raise_alert(uow, finding)
        uow.collect(alert)
        if firing:
            queue_deliveries(uow, alert, "firing")
    else:
        alert.repeat(finding, now)
        _save(uow, alert)
    return alert


def _visible_alert(uow: UnitOfWork, alert_id: str, visible: list[str] | None) -> Alert:
    """The alert to change, as the caller sees it (another station's is not there)."""
    alert = uow.repos.alerts.get(alert_id, whole=True)
    ensure_visible(alert.station_id, visible, alert.name, alert.area.shared_station_ids)
    return alert


def acknowledge_alert(uow: UnitOfWork, *, alert_id: str, comment: str, visible: list[str] | None = None) -> Alert:
    """Acknowledged (签收): escalation stops."""
    alert = _visible_alert(uow, alert_id, visible)
    alert.acknowledge(uow.actor, comment, uow.now())
    uow.repos.alerts.save(alert)
    uow.collect(alert)
    return alert


def resolve_alert(uow: UnitOfWork, *, alert_id: str, reason: str, visible: list[str] | None = None) -> Alert:
    alert = _visible_alert(uow, alert_id, visible)
    alert.resolve(uow.actor, reason, uow.now())
    _save(uow, alert, resolved=True)
    return alert


def _resolve(uow: UnitOfWork, alert_id: str, actor: AuthContext, reason: str) -> None:
    alert = uow.repos.alerts.get(alert_id)
    alert.resolve(actor, reason, uow.now())
    _save(uow, alert, resolved=True)


def resolve_alerts_about(uow: UnitOfWork, subject: str, *, actor: AuthContext, reason: str) -> int:
    """Resolves the open alerts about a subject (an obligation done)."""
    ids = uow.repos.alerts.open_about(subject)
    for alert_id in ids:
        _resolve(uow, alert_id, actor, reason)
    return len(ids)


def escalate_due(uow: UnitOfWork) -> int:
    """Alerts nobody acknowledged in time climb the command chain; returns how many did."""
    escalated = 0
    for alert in uow.repos.alerts.due_for_escalation(uow.now()):
        if alert.escalate(uow.now()):
            escalated += 1
        _save(uow, alert)
    return escalated


def resolve_lapsed(uow: UnitOfWork) -> int:
    """Alerts whose condition stopped holding (a window passed quiet) resolve by themselves."""
    ids = uow.repos.alerts.auto_resolvable(uow.now())
    for alert_id in ids:
        _resolve(uow, alert_id, SYSTEM, "条件已不再成立，自动解除")
    return len(ids)


# -- silences -------------------------------------------------------------------

def create_silence(uow: UnitOfWork, *, matchers: list[Matcher], start: datetime, expire: datetime,
                   reason: str) -> Silence:
    """A silence; one that starts now holds the firing alerts it matches at once."""
    now = uow.now()
    silence = Silence(id=new_id(now, prefix="s"), matchers=matchers, start_time=start, expire_time=expire,
                      reason=reason, creator=uow.actor.subject, create_time=now)
    uow.repos.silences.add(silence)
    if start <= now:
        apply_silence(uow, silence)
    return silence


def expire_silence(uow: UnitOfWork, *, silence_id: str, reason: str) -> Silence:
    """Ends a silence early: the alerts it held fire again."""
    silence = uow.repos.silences.get(silence_id)
    silence.expire(uow.actor, reason, uow.now())
    uow.repos.silences.save(silence)
    release_silence(uow, silence)
    return silence


def apply_silence(uow: UnitOfWork, silence: Silence) -> int:
    """The silence holds every firing alert it matches; returns how many."""
    held = 0
    now = uow.now()
    for alert_id, labels in uow.repos.alerts.firing_labels():
        if silence.holds(labels):
            alert = uow.repos.alerts.get(alert_id)
            alert.hold(silence, now)
            uow.repos.alerts.save(alert)
            uow.collect(alert)
            held += 1
    silence.applied = True
    uow.repos.silences.save(silence)
    return held


def release_silence(uow: UnitOfWork, silence: Silence) -> int:
    """A silence ended: its alerts fire again (or pass to another silence) and are notified now."""
    released = 0
    now = uow.now()
    held = uow.repos.alerts.held_by(silence.id)
    active = uow.repos.silences.active(now) if held else []
    for alert in held:
        other = silence_holding(active, alert.labels)
        if other is not None:
            alert.pass_to(other, now)
        else:
            alert.release(silence.id, now)
            released += 1
        _save(uow, alert)
    silence.released = True
    uow.repos.silences.save(silence)
    return released


def start_silences(uow: UnitOfWork) -> int:
    """Silences that started since (a silence may start later than it was made)."""
    return sum(apply_silence(uow, s) for s in uow.repos.silences.starting(uow.now()))


def end_silences(uow: UnitOfWork) -> int:
    return sum(release_silence(uow, s) for s in uow.repos.silences.ending(uow.now()))
