"""Client link pages are rate-limited per IP."""
from __future__ import annotations

from gateway.sections.documents import IpLimiter


def test_an_address_past_its_limit_waits_while_others_pass():
    limiter = IpLimiter()
    assert all(limiter.allow("203.0.113.1", 3) for _ in range(3))
    assert not limiter.allow("203.0.113.1", 3)
    assert limiter.allow("203.0.113.2", 3)


def test_the_window_slides(monkeypatch):
    import gateway.sections.documents as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    limiter = IpLimiter()
    assert limiter.allow("198.51.100.7", 1) and not limiter.allow("198.51.100.7", 1)
    now[0] += 61
    assert limiter.allow("198.51.100.7", 1)
