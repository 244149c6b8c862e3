"""PBX adapters: every source turned into the same call record.

* ``records`` — ``CallRecord`` (a finished call) and ``CallUpdate`` (one piece of it).
* ``ami`` — Asterisk Manager Interface: frame parser, call assembler, ``AmiClient``.
* ``mango`` — Mango Office VPBX webhooks (``MangoWebhooks``).
* ``zadarma`` — Zadarma webhooks (``ZadarmaWebhooks``).
"""
from services.telephony.pbx.records import CallEvent, CallRecord, CallUpdate

__all__ = ["CallEvent", "CallRecord", "CallUpdate"]
