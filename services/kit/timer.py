"""``@every("KEY", default)``: nameko's timer with its interval read from the service
configuration at set-up, so tests tick fast and deployments tune it."""
from __future__ import annotations

from typing import Any

from nameko.timer import Timer


class ConfigTimer(Timer):
    def __init__(self, key: str, default: float, **kwargs: Any) -> None:
        super().__init__(interval=default, **kwargs)
        self.key = key

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.key, self.interval))


every = ConfigTimer.decorator
