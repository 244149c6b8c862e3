"""Link tokens never reach a log line."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from gateway.redact import RedactingLogger, redact

TOKEN = "Abc_def-123456789012345678901234"


def test_a_link_token_is_masked_in_any_logged_path():
    assert redact(f"GET /d/{TOKEN}/pdf HTTP/1.1") == "GET /d/***/pdf HTTP/1.1"
    assert redact(f"/q/{TOKEN}") == "/q/***"
    assert redact("/deals/12/documents") == "/deals/12/documents"


def test_the_access_log_masks_the_request_line_and_path():
    logger = RedactingLogger(SimpleNamespace(**{
        "errorlog": "-", "loglevel": "info", "accesslog": "-", "access_log_format":
        '%(r)s', "syslog": False, "capture_output": False, "logconfig": None,
        "logconfig_dict": {}, "logconfig_json": None, "disable_redirect_access_to_syslog":
        False, "user": 0, "group": 0, "errorlog_fmt": None}))
    req = SimpleNamespace(method="GET", path=f"/d/{TOKEN}", query="", version=(1, 1),
                      headers=[], uri=f"/d/{TOKEN}")
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[], response_length=10)
    environ = {"RAW_URI": f"/d/{TOKEN}", "REQUEST_METHOD": "GET", "PATH_INFO": f"/d/{TOKEN}",
               "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "1.2.3.4",
               "HTTP_REFERER": f"https://crm.example/d/{TOKEN}"}
    atoms = logger.atoms(resp, req, environ, timedelta(seconds=0.1))
    assert TOKEN not in atoms["r"] and TOKEN not in atoms["U"] and TOKEN not in atoms["f"]
