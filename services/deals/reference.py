"""The reference lists' revision: statuses, process types with their stages and loss
reasons change rarely and are shown on every deal page, so a caller that holds them sends
the revision it holds and gets them again only when they changed (migration e4b7c2a91f35
keeps the number by trigger)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deals.models import ReferenceRevision

LISTS = ("statuses", "types", "loss_reasons")


def revision(db: Session) -> int:
    """The current revision.  Read it before the lists: a change committed between the
    two reads then leaves newer lists under an older number, which the caller's next
    request replaces, never older lists under a newer number it would keep."""
    return int(db.scalar(select(ReferenceRevision.revision)) or 0)


def is_current(known: object, current: int) -> bool:
    """Whether the caller's revision is the current one (anything else, or nothing: send
    the lists)."""
    if isinstance(known, bool) or not isinstance(known, int | str):
        return False
    try:
        return int(known) == current
    except ValueError:
        return False
