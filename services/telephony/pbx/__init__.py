"""PBX adapters: Asterisk (AMI), Mango Office and Zadarma webhooks, all producing
``CallRecord`` / ``CallUpdate`` (see ``records``)."""
from services.telephony.pbx.records import CallEvent, CallRecord, CallUpdate

__all__ = ["CallEvent", "CallRecord", "CallUpdate"]
