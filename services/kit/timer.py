"""``@every("KEY", default)``: the one timer entrypoint of every service.

- Its interval is read from the service configuration at set-up (``KEY``, seconds; unset
  or empty: ``default``), so tests tick fast and deployments tune it.
- It commits the unit of work when the body returns, as ``@rpc`` does, so a body never
  forgets to (its own ``self.db.commit()`` between steps stays fine).
- The body returns how much it did (a count, or a truthy value).  The call log
  (``CallLog``) writes a run that did nothing at DEBUG and one that did work at INFO, so
  ``make run`` does not print every tick of every service.
- Several replicas run the same timer: the body claims its rows with
  ``FOR UPDATE SKIP LOCKED`` (or a lease, ``services.kit.lease``) so no two do the same
  work.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from nameko.timer import Timer

from services.kit.dependencies import Work


class ConfigTimer(Timer):
    interval: float

    def __init__(self, key: str, default: float, **kwargs: Any) -> None:
        super().__init__(interval=default, **kwargs)
        self.key = key

    def setup(self) -> None:
        self.interval = configured_interval(self.container.config, self.key, self.interval)


def configured_interval(config: dict[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    return float(value) if value not in (None, "") else float(default)


def every(key: str, default: float) -> Callable[[Callable[..., Any]], Any]:
    def decorate(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(self: Any) -> Any:
            done = fn(self)
            work = getattr(self, "db", None)
            if isinstance(work, Work):
                work.commit()
            return done

        return ConfigTimer.decorator(key, default)(run)

    return decorate
